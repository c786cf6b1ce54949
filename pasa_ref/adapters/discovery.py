"""What a wrapped kernel supports, measured: tiny probe calls, one per feature, on the device
where it runs, summarised as a kernel declaration (the format of specs/declaration.schema.json,
issue 10).

A feature is *supported* when the kernel accepts a call that uses it: it returns without an
exception. Whether the answer is right is the certifier's question, never the probe's, so a
probe cannot hide a defect; it only keeps the certifier from calling a kernel with inputs
its framework rejects before computing anything (not applicable, not failed).

    profiles      the candidate profiles whose input dtype the kernel accepts
                  (B = 1, Hq = Hkv = 2, S1 = S2 = 16, D = 64)
    mask          an explicit boolean mask (key 0 hidden from every query)
    causal        "bottom-right" when a causal route (in the backend's order of preference)
                  accepts S1 = 8 < S2 = 16 and S1 = 16 > S2 = 8;
                  else "top-left" when the top-left flag accepts S1 = S2; else false
    gqa, mqa      Hq = 4 over Hkv = 2, Hq = 4 over Hkv = 1
    dv_ne_d       Dv = 32 != D = 64
    head_dim      every D in PROBED_HEAD_DIMS (SPARSE_HEAD_DIMS for kernels that compile per
                  shape), summarised as min/max/multiple_of when the
                  accepted set is such a progression (max left open when the largest probed
                  D is accepted), else as the list of values
    seq_q, seq_k  the smallest accepted length in 1..16
    conventions   fully masked rows: the output of a row whose keys are all masked (by the
                  mask, or by bottom-right causality with S1 > S2): all zeros "zero", all
                  NaN "nan", else "unspecified"; not declared when no probe can mask a row

Feature probes run in the first accepted dtype. After a failed probe the basic call is made
again: a failure that leaves the device unusable (a sticky CUDA error) is an AdapterError
naming the probe, never a silent "unsupported" for every later feature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = [
    "PROBED_HEAD_DIMS",
    "SPARSE_HEAD_DIMS",
    "SCHEMA",
    "AdapterError",
    "Capabilities",
    "Probe",
    "discover",
    "head_dim_range",
]

SCHEMA = "pasa-ref/declaration/1"
PROBED_HEAD_DIMS = range(1, 257)
#: for kernels that compile per shape (JAX): 1..16, the suite's common sizes and their
#: neighbours (pasa_ref.strategies.head_dims), and multiples of 8 and 16 up to 256
SPARSE_HEAD_DIMS = (*range(1, 17), 24, 31, 32, 33, 40, 48, 63, 64, 65, 72, 96, 127, 128, 129,
                    136, 192, 255, 256)
LONGEST_PROBED_SEQ = 16


class AdapterError(ValueError):
    """An adapter cannot be built: unknown name, missing framework, unusable device."""


@dataclass(frozen=True)
class Probe:
    """One tiny call: B = 1, inputs N(0, 1) rounded into `dtype` (seeded), scale 1/sqrt(D).
    masked_row: an explicit mask hiding every key from query row 0; masked_key: one hiding
    key 0 from every row."""

    dtype: np.dtype
    heads_q: int = 2
    heads_kv: int = 2
    seq_q: int = LONGEST_PROBED_SEQ
    seq_k: int = LONGEST_PROBED_SEQ
    head_dim: int = 64
    value_dim: int | None = None
    causal: bool = False
    masked_key: bool = False
    masked_row: bool = False

    def arguments(self) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
        rng = np.random.default_rng(0)
        dv = self.head_dim if self.value_dim is None else self.value_dim
        shapes = (
            (1, self.heads_q, self.seq_q, self.head_dim),
            (1, self.heads_kv, self.seq_k, self.head_dim),
            (1, self.heads_kv, self.seq_k, dv),
        )
        q, k, v = (rng.standard_normal(s).astype(self.dtype) for s in shapes)
        mask = None
        if self.masked_key or self.masked_row:
            mask = np.ones((1, 1, self.seq_q, self.seq_k), dtype=bool)
            if self.masked_key:
                mask[..., 0] = False
            if self.masked_row:
                mask[..., 0, :] = False
        kwargs = {"scale": 1.0 / math.sqrt(self.head_dim), "causal": self.causal, "mask": mask}
        return (q, k, v), kwargs


#: attempt(probe, route) calls the kernel through the adapter with causal route `route` and
#: returns its output as numpy; it raises when the kernel rejects the call
Attempt = Callable[[Probe, str | None], np.ndarray]


@dataclass(frozen=True)
class Capabilities:
    """The features of one kernel on one device; `measured` False for static knowledge."""

    profiles: tuple[str, ...]
    mask: bool
    causal: str | None
    route: str | None  # the causal route of "bottom-right", else None
    gqa: bool
    mqa: bool
    dv_ne_d: bool
    head_dim: Mapping[str, Any]  # {"values": [...]} or {"min", "max"?, "multiple_of"}
    seq_q_min: int = 1
    seq_k_min: int = 1
    fully_masked_rows: str | None = None
    measured: bool = True
    rejections: tuple[str, ...] = field(default=(), compare=False)  # "feature: message"

    def declaration(self, name: str) -> dict[str, Any]:
        """The kernel declaration (issue 10's format) of these capabilities."""
        supports: dict[str, Any] = {
            "mask": self.mask,
            "causal": self.causal if self.causal is not None else False,
            "gqa": self.gqa,
            "mqa": self.mqa,
            "dv_ne_d": self.dv_ne_d,
            "head_dim": dict(self.head_dim),
            "profiles": list(self.profiles),
        }
        if self.seq_q_min > 1:
            supports["seq_q"] = {"min": self.seq_q_min}
        if self.seq_k_min > 1:
            supports["seq_k"] = {"min": self.seq_k_min}
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "name": name,
            "algorithm": {"class": "softmax"},
            "supports": supports,
        }
        if self.fully_masked_rows is not None:
            out["conventions"] = {"fully_masked_rows": self.fully_masked_rows}
        return out


def head_dim_range(accepted: Sequence[int], probed: Sequence[int]) -> dict[str, Any]:
    """The accepted head dims as a declaration range: {min, max, multiple_of} when they are
    exactly the multiples of their gcd between their extremes among `probed` (max omitted
    when the largest probed size is accepted), else {values}."""
    chosen = sorted(set(accepted))
    if not chosen:
        raise ValueError("argument 'accepted': expected at least one accepted head dim, got none")
    step = math.gcd(*chosen)
    low, high = chosen[0], chosen[-1]
    progression = [d for d in probed if low <= d <= high and d % step == 0]
    if chosen != sorted(progression):
        return {"values": chosen}
    out: dict[str, Any] = {"min": low, "multiple_of": step}
    if high < max(probed):
        out["max"] = high
    return out


class _Prober:
    """Runs probes, remembers why the rejected ones failed, and checks after each failure
    that the basic call still works."""

    def __init__(self, attempt: Attempt, basic: Probe) -> None:
        self.attempt, self.basic = attempt, basic
        self.rejections: list[str] = []

    def accepts(self, feature: str, probe: Probe, route: str | None = None) -> bool:
        return self.output(feature, probe, route) is not None

    def output(self, feature: str, probe: Probe, route: str | None = None) -> np.ndarray | None:
        """The kernel's output on the probe, None when it rejects the call."""
        try:
            return np.asarray(self.attempt(probe, route))
        except Exception as error:  # noqa: BLE001 - any rejection by the framework
            self.rejections.append(f"{feature}: {_first_line(error)}")
        try:
            self.attempt(self.basic, None)
        except Exception as error:  # noqa: BLE001
            raise AdapterError(
                f"probing {feature!r} left the kernel unusable (the basic call now fails: "
                f"{_first_line(error)}); the device may hold a sticky error"
            ) from error
        return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:200]


def discover(
    attempt: Attempt,
    dtypes: Mapping[str, np.dtype],
    routes: Sequence[str],
    head_dims: Sequence[int] = PROBED_HEAD_DIMS,
) -> Capabilities:
    """Probe a kernel: `dtypes` maps each candidate profile to its input dtype (in order of
    preference for the feature probes), `routes` the causal routes to try in order (labels
    that `attempt` understands: arguments.CAUSAL_ROUTES, or "native" for a kernel that takes
    the spec's causal flag itself)."""
    profiles, errors = [], []
    for profile, dtype in dtypes.items():
        try:
            attempt(Probe(np.dtype(dtype)), None)
            profiles.append(profile)
        except Exception as error:  # noqa: BLE001
            errors.append(f"{profile}: {_first_line(error)}")
    if not profiles:
        raise AdapterError(
            "the kernel rejects the basic call in every candidate profile: " + "; ".join(errors)
        )
    basic = Probe(np.dtype(dtypes[profiles[0]]))
    prober = _Prober(attempt, basic)
    prober.rejections.extend(errors)
    mask = prober.accepts("mask", replace(basic, masked_key=True))
    route = next(
        (
            r
            for r in routes
            if prober.accepts(f"causal S1 < S2 via {r}", replace(basic, causal=True, seq_q=8), r)
            and prober.accepts(f"causal S1 > S2 via {r}", replace(basic, causal=True, seq_k=8), r)
        ),
        None,
    )
    if route is not None:
        causal: str | None = "bottom-right"
    elif prober.accepts("causal S1 = S2", replace(basic, causal=True)):
        causal = "top-left"
    else:
        causal = None
    accepted_dims = [
        d
        for d in head_dims
        if d == basic.head_dim or prober.accepts(f"D = {d}", replace(basic, head_dim=d))
    ]
    if not accepted_dims:
        raise AdapterError("the kernel accepts none of the probed head dims")
    return Capabilities(
        profiles=tuple(profiles),
        mask=mask,
        causal=causal,
        route=route,
        gqa=prober.accepts("GQA", replace(basic, heads_q=4, heads_kv=2)),
        mqa=prober.accepts("MQA", replace(basic, heads_q=4, heads_kv=1)),
        dv_ne_d=prober.accepts("Dv != D", replace(basic, value_dim=32)),
        head_dim=head_dim_range(accepted_dims, head_dims),
        seq_q_min=_shortest(prober, "S1", lambda n: replace(basic, seq_q=n)),
        seq_k_min=_shortest(prober, "S2", lambda n: replace(basic, seq_k=n)),
        fully_masked_rows=_fully_masked_rows(prober, basic, mask, route),
        rejections=tuple(prober.rejections),
    )


def _shortest(prober: _Prober, name: str, probe: Callable[[int], Probe]) -> int:
    """The smallest accepted length in 1..LONGEST_PROBED_SEQ (the basic call's length)."""
    return next(
        n
        for n in range(1, LONGEST_PROBED_SEQ + 1)
        if n == LONGEST_PROBED_SEQ or prober.accepts(f"{name} = {n}", probe(n))
    )


def _fully_masked_rows(prober: _Prober, basic: Probe, mask: bool, route: str | None) -> str | None:
    """What the kernel returns on a row with no visible key, from the first probe that can
    make one: the explicit mask, else bottom-right causality with S1 = 16 > S2 = 8 (rows
    0..7 see no key)."""
    if mask:
        out = prober.output("fully masked row", replace(basic, masked_row=True))
        rows = None if out is None else out[..., :1, :]
    elif route is not None:
        out = prober.output("fully masked row", replace(basic, causal=True, seq_k=8), route)
        rows = None if out is None else out[..., : basic.seq_q - 8, :]
    else:
        return None
    if rows is None:
        return None
    values = rows.astype(np.float64)
    if np.all(values == 0):
        return "zero"
    if np.all(np.isnan(values)):
        return "nan"
    return "unspecified"
