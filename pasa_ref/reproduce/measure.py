"""Run kernels on one binary64 draw and measure their outputs.

The draw is rounded to nearest into each profile's input format (fp16 for fp16-full and
fp16-mixed, bf16 for bf16-in-fp16, ...). Each rounded input is a different problem, so the
oracle runs once per input format and its output r serves every (kernel, profile) that reads
that format. For a kernel output o (N elements) and the rounded value input V:

    RMSE           = sqrt(sum (o_i - r_i)^2 / N)
    RMSE / RMS(V)  = RMSE / sqrt(sum V_i^2 / |V|)       (the PASA paper's relative metric)

Both are None when o has a NaN or an infinity: non-finite elements are counted, never averaged
(PASA-MET-1). On request the RMSE is also taken against the oracle on the unrounded binary64
draw ("rmse_unrounded"): that error includes the rounding of the inputs, as when a benchmark
keeps its reference inputs in a wider format than the kernel's. The oracle's bound (about 1e-13
max|v| on the fast path) is reported beside them so that a reader can see that it does not
matter at these error levels.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pasa_ref import formats, kernels, metrics, oracle, profiles

__all__ = ["VARIANTS", "Measurement", "Setting", "accuracy", "finiteness", "kernel", "settings"]

Draw = tuple[np.ndarray, np.ndarray, np.ndarray]

#: kernels measured beside the bundled ones: name -> (bundled kernel, fixed options)
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    # PASA as the authors' published code runs it (repository chenglong92/PASA at HEAD):
    # beta 0.984497 for fp16 and bf16 inputs, the ragged last key block padded as their
    # script pads it (PASA-BLK-4). The bundled "pasa" is the suite's default: the profile's
    # beta (0.9375 for fp16 inputs) and the block's true length (PASA-BLK-2).
    "pasa-authors": ("pasa", {"beta": 0.984497, "ragged": "authors"}),
}


def kernel(name: str) -> tuple[Callable[..., np.ndarray], dict[str, Any]]:
    """The kernel called `name` (a bundled kernel or a VARIANTS entry) and its options."""
    if name in VARIANTS:
        base, options = VARIANTS[name]
        return kernels.get(base), dict(options)
    if name not in kernels.KERNELS:
        raise ValueError(
            f"argument 'kernel': expected one of {[*kernels.KERNELS, *VARIANTS]}, got {name!r}"
        )
    return kernels.get(name), {}


@dataclass(frozen=True)
class Setting:
    """One kernel in one precision profile."""

    kernel: str
    profile: str

    @property
    def label(self) -> str:
        return f"{self.kernel} {self.profile}"


@dataclass(frozen=True)
class Measurement:
    """What one kernel call gave. rmse, rmse_over_rms_v and reference_bound are None when no
    reference was computed (`finiteness`); rmse and rmse_over_rms_v are None when the output has
    non-finite elements."""

    setting: Setting
    input_format: str
    elements: int
    nonfinite: int
    seconds: float
    rmse: float | None = None
    rmse_over_rms_v: float | None = None
    reference_bound: float | None = None
    rmse_unrounded: float | None = None


def settings(kernel_names: Iterable[str], profile_names: Iterable[str]) -> tuple[Setting, ...]:
    """Every (kernel, profile) pair, kernels outermost; unknown names raise ValueError."""
    kernel_names, profile_names = tuple(kernel_names), tuple(profile_names)
    for name in kernel_names:
        kernel(name)
    for name in profile_names:
        profiles.get(name)
    return tuple(Setting(k, p) for k in kernel_names for p in profile_names)


def accuracy(
    draw: Draw, chosen: Sequence[Setting], block_k: int, *, unrounded: bool = False
) -> Iterator[Measurement]:
    """Run every setting on `draw` and measure it against the oracle; one Measurement per
    setting, yielded as soon as it is known. unrounded: also measure rmse_unrounded."""
    exact = oracle.attention(*draw, method="fast").output if unrounded else None
    for input_format, group in _by_input_format(chosen).items():
        q, k, v = _rounded(draw, input_format)
        reference = oracle.attention(q, k, v, method="fast")
        for setting in group:
            out, seconds = _run(setting, q, k, v, block_k)
            counts = metrics.nonfinite(out)
            finite = counts.total == 0
            yield Measurement(
                setting=setting,
                input_format=input_format,
                elements=out.size,
                nonfinite=counts.total,
                seconds=seconds,
                rmse=metrics.rmse(out, reference.output) if finite else None,
                rmse_over_rms_v=(
                    metrics.rmse_over_rms_v(out, reference.output, v) if finite else None
                ),
                reference_bound=reference.max_bound,
                rmse_unrounded=metrics.rmse(out, exact) if finite and unrounded else None,
            )


def finiteness(draw: Draw, chosen: Sequence[Setting], block_k: int) -> Iterator[Measurement]:
    """Run every setting on `draw` and count its non-finite outputs (no reference)."""
    for input_format, group in _by_input_format(chosen).items():
        q, k, v = _rounded(draw, input_format)
        for setting in group:
            out, seconds = _run(setting, q, k, v, block_k)
            yield Measurement(
                setting=setting,
                input_format=input_format,
                elements=out.size,
                nonfinite=metrics.nonfinite(out).total,
                seconds=seconds,
            )


def _by_input_format(chosen: Sequence[Setting]) -> dict[str, list[Setting]]:
    groups: dict[str, list[Setting]] = {}
    for setting in chosen:
        groups.setdefault(profiles.get(setting.profile).input.name, []).append(setting)
    return groups


def _rounded(draw: Draw, input_format: str) -> Draw:
    fmt = formats.get(input_format)
    q, k, v = (fmt.to_storage(x) for x in draw)
    return q, k, v


def _run(
    setting: Setting, q: np.ndarray, k: np.ndarray, v: np.ndarray, block_k: int
) -> tuple[np.ndarray, float]:
    """The kernel's output and its wall time. block_k is passed to the kernels that tile keys
    (naive has no key blocks); block_q is left at the profile's default because query blocks
    never change a result (PASA-BLK-1)."""
    fn, options = kernel(setting.kernel)
    if "block_k" in inspect.signature(fn).parameters:
        options["block_k"] = block_k
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        out = fn(q, k, v, profile=setting.profile, **options)
    return out, time.perf_counter() - start
