"""Hypothesis strategies for adversarial attention problems (spec
specs/strategies-and-hunting.md, PASA-GEN-1 .. PASA-GEN-9). Import them in your own tests:

    from hypothesis import given
    from pasa_ref import strategies

    @given(strategies.cases("fp16-full", max_seq=512, distributions=["bias-steps"]))
    def test_my_kernel(case):
        out = my_kernel(case.q, case.k, case.v, **case.call_kwargs())

Every case is a `pasa_ref.cases.Case` whose q, k, v are arrays of the profile's input storage
dtype (float16, bfloat16, float32 or float64): values are drawn in binary64, clipped to
[-max_F, max_F] and rounded to nearest into the input format F, so they are exactly
representable and finite (PASA-GEN-1). A distribution draws a handful of parameters (amplitudes
as m 2^e, a seed for numpy's PCG64) and builds the arrays from them: hypothesis shrinks the
parameters (sizes to their minimum, noise to 0, mantissas to 1, seeds to 0), so a shrunk case
reads as a short recipe, written in `Case.label` and in `Case.metadata`.

Shapes (PASA-GEN-2): B, Hq, Hkv | Hq, S1, S2 in {1, block multiples +- 1, anything up to
max_seq}, D and Dv up to max_dim (odd sizes included). Masks (PASA-GEN-3): none, causal,
random, key padding, fully masked rows. Value distributions (PASA-GEN-4 .. PASA-GEN-8): see
DISTRIBUTIONS; `distribution(name)` registers more. Masks correlated with the values
(PASA-GEN-10): `correlated_cases` (hidden maxima, masked negative blocks, single keys at block
edges, padding over outliers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from hypothesis import strategies as st

from pasa_ref import profiles
from pasa_ref.cases import Case
from pasa_ref.formats import Format
from pasa_ref.profiles import Profile

if TYPE_CHECKING:
    from pasa_ref.certify.declaration import Range, Support

__all__ = [
    "DEFAULT_MAX_PAIRS",
    "DISTRIBUTIONS",
    "HIDDEN_BY",
    "MASKS",
    "SCENARIOS",
    "MaskChoice",
    "Scenario",
    "Shape",
    "Values",
    "amounts",
    "cases",
    "correlated_cases",
    "distribution",
    "edge_key",
    "head_dims",
    "hidden_max",
    "masked_block",
    "in_scope",
    "masks",
    "padded_outliers",
    "representable",
    "seq_lengths",
    "shapes",
    "values",
]

DEFAULT_MAX_PAIRS = 2**22  # B * Hq * S1 * S2: keeps one reference-kernel call below ~2 s


@dataclass(frozen=True)
class Shape:
    """The sizes of one attention problem (layout BNSD, PASA-IO-1); value_dim defaults to the
    head size D. Every size is an integer >= 1 and heads_kv divides heads_q."""

    batch: int
    heads_q: int
    heads_kv: int
    seq_q: int
    seq_k: int
    head_dim: int
    value_dim: int | None = None

    def __post_init__(self) -> None:
        if self.value_dim is None:
            object.__setattr__(self, "value_dim", self.head_dim)
        for name, value in vars(self).items():
            _check_positive(name, value)
        if self.heads_q % self.heads_kv:
            raise ValueError(
                f"argument 'heads_kv': expected a divisor of heads_q = {self.heads_q}, "
                f"got {self.heads_kv}"
            )

    @property
    def q(self) -> tuple[int, int, int, int]:
        return (self.batch, self.heads_q, self.seq_q, self.head_dim)

    @property
    def k(self) -> tuple[int, int, int, int]:
        return (self.batch, self.heads_kv, self.seq_k, self.head_dim)

    @property
    def v(self) -> tuple[int, int, int, int]:
        return (self.batch, self.heads_kv, self.seq_k, self.value_dim)

    @property
    def pairs(self) -> int:
        """B Hq S1 S2: the number of query-key pairs, the cost of one call."""
        return self.batch * self.heads_q * self.seq_q * self.seq_k


def _check_positive(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"argument {name!r}: expected an integer >= 1, got {value!r}")
    return int(value)


def _restricted(
    allowed: Range, high: int, preferred: Sequence[Sequence[int]]
) -> st.SearchStrategy[int]:
    """Sizes of a declared Range up to `high` (its smallest size above `high` when none is
    below): drawn from each non-empty intersection with a `preferred` group, or from all."""
    members = allowed.members(1, high) or [allowed.fit(high)]
    chosen = set(members)
    groups = [[n for n in group if n in chosen] for group in preferred]
    return st.one_of([st.sampled_from(g) for g in groups if g] + [st.sampled_from(members)])


def seq_lengths(
    max_seq: int, block: int = 128, allowed: Range | None = None
) -> st.SearchStrategy[int]:
    """Sequence lengths in [1, max_seq]: 1, small lengths, multiples of `block` plus or minus
    one (ragged last blocks), and anything up to max_seq (thousands of keys when allowed).
    With `allowed` (a declared Range, pasa_ref.certify.declaration) only its sizes, the
    same kinds first."""
    max_seq = _check_positive("max_seq", max_seq)
    block = _check_positive("block", block)
    near_blocks = sorted(
        {
            n
            for m in range(1, max_seq // block + 2)
            for d in (-1, 0, 1)
            if 1 <= (n := m * block + d) <= max_seq
        }
    )
    if allowed is not None and not allowed.unrestricted:
        return _restricted(allowed, max_seq, [[1], range(1, min(max_seq, 64) + 1), near_blocks])
    options = [st.just(1), st.integers(1, min(max_seq, 64)), st.integers(1, max_seq)]
    if near_blocks:
        options.insert(2, st.sampled_from(near_blocks))
    return st.one_of(options)


def head_dims(max_dim: int, allowed: Range | None = None) -> st.SearchStrategy[int]:
    """Head sizes in [1, max_dim]: the common powers of two, odd neighbours, and anything;
    with `allowed` (a declared Range) only its sizes, the common ones first."""
    max_dim = _check_positive("max_dim", max_dim)
    common = [
        d for d in (1, 2, 3, 7, 8, 16, 31, 33, 64, 65, 127, 128, 129, 255, 256) if d <= max_dim
    ]
    if allowed is not None and not allowed.unrestricted:
        return _restricted(allowed, max_dim, [common])
    return st.one_of(st.sampled_from(common), st.integers(1, max_dim))


@st.composite
def shapes(
    draw: st.DrawFn,
    *,
    max_seq: int = 256,
    max_dim: int = 128,
    max_batch: int = 2,
    max_heads: int = 4,
    block: int = 128,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    support: Support | None = None,
) -> Shape:
    """Problem sizes (PASA-GEN-2): Hkv divides Hq (GQA, MQA, MHA), B Hq S1 S2 <= max_pairs
    (the query length is drawn below max_pairs / S2, the heads below what is left). With
    `support` (a declaration's Support, pasa_ref.certify.declaration) every size is one it
    allows; GQA or MQA heads it does not support are drawn as MHA, Dv as D unless it
    supports Dv != D."""
    _check_positive("max_batch", max_batch)
    _check_positive("max_heads", max_heads)
    max_pairs = _check_positive("max_pairs", max_pairs)
    seq_k = draw(seq_lengths(max_seq, block, support and support.seq_k))
    seq_q = draw(
        seq_lengths(max(1, min(max_seq, max_pairs // seq_k)), block, support and support.seq_q)
    )
    room = max(1, max_pairs // (seq_q * seq_k))
    heads_kv = draw(st.integers(1, max(1, min(max_heads, room))))
    group = draw(st.integers(1, max(1, min(max_heads, room) // heads_kv)))
    if support is not None and group > 1 and not (support.gqa if heads_kv > 1 else support.mqa):
        group = 1
    top_batch = max(1, min(max_batch, room // (heads_kv * group)))
    if support is None or support.batch.unrestricted:
        batch = draw(st.integers(1, top_batch))
    else:
        batch = draw(_restricted(support.batch, top_batch, []))
    head_dim = draw(head_dims(max_dim, support and support.head_dim))
    if support is None:
        value_dim = draw(st.one_of(st.just(head_dim), head_dims(max_dim)))
    elif not support.dv_ne_d:
        value_dim = head_dim
    else:
        values_allowed = support.value_dim or support.head_dim
        same = [st.just(head_dim)] if head_dim in values_allowed else []
        value_dim = draw(st.one_of(*same, head_dims(max_dim, values_allowed)))
    return Shape(batch, heads_kv * group, heads_kv, seq_q, seq_k, head_dim, value_dim)


def in_scope(kind: str, shape: Shape, support: Support | None) -> bool:
    """Whether a mask kind (MASKS) is one the declared support accepts at this shape."""
    if support is None or kind == "none":
        return True
    if kind == "causal":
        return support.allows_causal(shape.seq_q, shape.seq_k)
    return support.mask


MASKS = ("none", "causal", "random", "padding", "empty-rows")


@dataclass(frozen=True)
class MaskChoice:
    """A visibility rule: causal flag, explicit mask (True = visible) and its kind."""

    kind: str
    causal: bool
    mask: np.ndarray | None
    parameters: dict[str, Any]


@st.composite
def masks(draw: st.DrawFn, shape: Shape, kinds: Sequence[str] | None = None) -> MaskChoice:
    """Masks (PASA-GEN-3) for `shape`: "none"; "causal" (bottom-right, PASA-MASK-2; with
    S1 > S2 its first rows see nothing); "random" (each pair visible with probability p);
    "padding" (per batch, keys at or past a length L are invisible; L = 0 hides everything);
    "empty-rows" (chosen query rows see no key, PASA-MASK-3)."""
    kind = draw(st.sampled_from(_checked("masks", kinds, MASKS)))
    b, s1, s2 = shape.batch, shape.seq_q, shape.seq_k
    if kind in ("none", "causal"):
        return MaskChoice(kind, kind == "causal", None, {})
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if kind == "random":
        density = draw(st.sampled_from([0.5, 0.1, 0.9, 0.01]))
        mask = rng.random((b, 1, s1, s2)) < density
        return MaskChoice(kind, False, mask, {"density": density, "seed": seed})
    if kind == "padding":
        lengths = rng.integers(0, s2 + 1, size=b)
        mask = (np.arange(s2) < lengths[:, None])[:, None, None, :]
        return MaskChoice(kind, False, mask, {"lengths": lengths.tolist(), "seed": seed})
    share = draw(st.sampled_from([0.5, 1.0, 0.1]))
    rows = rng.random((b, 1, s1, 1)) >= share  # True: the row sees every key
    return MaskChoice(kind, False, rows, {"empty_share": share, "seed": seed})


_masks = masks  # `cases` takes an argument called masks


@dataclass(frozen=True)
class Values:
    """q, k, v in binary64 (before the rounding into the input format) and their recipe."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    name: str
    parameters: dict[str, Any]

    @property
    def label(self) -> str:
        shown = ", ".join(f"{key}={_short(value)}" for key, value in self.parameters.items())
        return f"{self.name}({shown})"


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


Builder = Callable[[st.DrawFn, Shape, Format], Values]
DISTRIBUTIONS: dict[str, Builder] = {}


def distribution(name: str) -> Callable[[Builder], Builder]:
    """Register a value distribution under `name` (available to `values` and `cases`)."""

    def register(builder: Builder) -> Builder:
        DISTRIBUTIONS[name] = builder
        return builder

    return register


def amounts(fmt: Format, low: int, high: int, *, signed: bool = False) -> st.SearchStrategy[float]:
    """m 2^e with m in [1, 2) and low <= e <= min(high, emax - 1) (times +-1 when signed):
    shrinks to 2^low."""
    top = max(low, min(high, fmt.emax - 1))
    unsigned = st.builds(
        lambda e, m: m * 2.0**e, st.integers(low, top), st.floats(1.0, 2.0, exclude_max=True)
    )
    if not signed:
        return unsigned
    return st.builds(lambda sign, x: sign * x, st.sampled_from([1.0, -1.0]), unsigned)


def _noise(draw: st.DrawFn) -> float:
    """Standard deviation of the noise added to structured values: shrinks to 0."""
    return draw(st.sampled_from([0.0, 1.0, 0.1, 0.5, 2.0]))


def _seeded(draw: st.DrawFn, parameters: dict[str, Any]) -> np.random.Generator:
    """numpy's PCG64 from a drawn seed, recorded in `parameters`."""
    seed = draw(st.integers(0, 2**32 - 1))
    parameters["seed"] = seed
    return np.random.default_rng(seed)


def _direction(
    draw: st.DrawFn, rng: np.random.Generator, d: int, parameters: dict[str, Any]
) -> np.ndarray:
    """A direction along the head dimension: all ones, or random signs."""
    kind = draw(st.sampled_from(["ones", "signs"]))
    parameters["direction"] = kind
    return np.ones(d) if kind == "ones" else rng.choice([-1.0, 1.0], size=d)


def _gaussian(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    return rng.standard_normal(shape) * sd if sd else np.zeros(shape)


@distribution("normal")
def _normal(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-4: benign q, k ~ N(0, sd^2), v ~ N(0, 1) (the PASA-ACC-1 domain for sd <= 3)."""
    parameters: dict[str, Any] = {"sd": draw(st.sampled_from([1.0, 0.25, 3.0, 0.5, 2.0]))}
    rng = _seeded(draw, parameters)
    q, k = (_gaussian(rng, s, parameters["sd"]) for s in (shape.q, shape.k))
    return Values(q, k, rng.standard_normal(shape.v), "normal", parameters)


def _paper_means(fmt: Format) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.0, 10.0, 20.0, 30.0]), amounts(fmt, -2, 127, signed=True))


def _paper_amplitudes(fmt: Format) -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from([0.5, 5.0, 10.0, 20.0]), amounts(fmt, -4, 127))


@distribution("uniform")
def _uniform(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-4: the PASA paper's uniform benchmark, (rand - 0.5) 2 Am + mean_val, for q, k
    and v; mean_val in {0, 10, 20, 30} or +-m 2^e, Am in {0.5, 5, 10, 20} or m 2^e."""
    parameters = {"mean_val": draw(_paper_means(fmt)), "Am": draw(_paper_amplitudes(fmt))}
    rng = _seeded(draw, parameters)
    q, k, v = (
        (rng.random(s) - 0.5) * 2 * parameters["Am"] + parameters["mean_val"]
        for s in (shape.q, shape.k, shape.v)
    )
    return Values(q, k, v, "uniform", parameters)


def _outliers(rng: np.random.Generator, shape: tuple[int, ...], sd: float, p: float) -> np.ndarray:
    """N(0, sd^2) * Bernoulli(p)."""
    return rng.standard_normal(shape) * sd * (rng.random(shape) < p)


@distribution("hybrid")
def _hybrid(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-4: the PASA paper's hybrid benchmark, N(mean_val, 1) + N(0, Am^2) Bernoulli(p),
    p in {0.001, 0.01, 0.1}, for q, k and v."""
    parameters = {
        "mean_val": draw(_paper_means(fmt)),
        "Am": draw(_paper_amplitudes(fmt)),
        "p": draw(st.sampled_from([0.001, 0.01, 0.1])),
    }
    rng = _seeded(draw, parameters)
    q, k, v = (
        rng.standard_normal(s)
        + parameters["mean_val"]
        + _outliers(rng, s, parameters["Am"], parameters["p"])
        for s in (shape.q, shape.k, shape.v)
    )
    return Values(q, k, v, "hybrid", parameters)


@distribution("fa3-outlier")
def _fa3_outlier(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-4: FlashAttention-3's test inputs N(0, 1) + N(0, 100) Bernoulli(0.001) for q, k
    and v, times a factor (1 by default, m 2^e to push the magnitudes)."""
    parameters = {"factor": draw(st.one_of(st.just(1.0), amounts(fmt, -4, 127)))}
    rng = _seeded(draw, parameters)
    q, k, v = (
        (rng.standard_normal(s) + _outliers(rng, s, 10.0, 0.001)) * parameters["factor"]
        for s in (shape.q, shape.k, shape.v)
    )
    return Values(q, k, v, "fa3-outlier", parameters)


def _bias(pattern: str) -> Builder:
    """PASA-GEN-5: a large bias along the sequence dimension. Keys k_t = b(t) u + noise,
    queries q_i = offset u + noise, v ~ N(0, 1), u all ones or random signs; b(t) is constant
    (level), a ramp from -level to level, or steps: level s_j on runs of `step` keys, with
    s_j alternating +-1, random +-1, or the staircase 1, 2, 3, ... (j the run index)."""

    def build(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
        parameters: dict[str, Any] = {
            "level": draw(amounts(fmt, 0, 127, signed=True)),
            "offset": draw(amounts(fmt, -2, 127, signed=True)),
            "noise": _noise(draw),
        }
        s2 = shape.seq_k
        t = np.arange(s2)
        if pattern == "constant":
            profile_of_keys = np.ones(s2)
        elif pattern == "ramp":
            profile_of_keys = 2.0 * t / max(s2 - 1, 1) - 1.0
        else:
            parameters["step"] = draw(st.sampled_from([128, 64, 16, 1, 256]))
            parameters["signs"] = draw(st.sampled_from(["alternate", "random", "staircase"]))
        rng = _seeded(draw, parameters)
        u = _direction(draw, rng, shape.head_dim, parameters)
        if pattern == "steps":
            run = t // parameters["step"]
            profile_of_keys = {
                "alternate": lambda: np.where(run % 2 == 0, 1.0, -1.0),
                "random": lambda: rng.choice([-1.0, 1.0], size=run.max() + 1)[run],
                "staircase": lambda: run + 1.0,
            }[parameters["signs"]]()
        noise = parameters["noise"]
        k = parameters["level"] * profile_of_keys[:, None] * u + _gaussian(rng, shape.k, noise)
        q = parameters["offset"] * u + _gaussian(rng, shape.q, noise)
        return Values(q, k, rng.standard_normal(shape.v), f"bias-{pattern}", parameters)

    return build


for _pattern in ("constant", "ramp", "steps"):
    distribution(f"bias-{_pattern}")(_bias(_pattern))


@distribution("resonance")
def _resonance(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-6: q_d = A sin(w d + phi) + noise, k_td = B_t sin(w d + phi + delta) + noise with
    delta = 0 (in phase) or pi (180 degrees apart), w = 2 pi f / D, B_t = B (1/2 + U(0, 1)):
    |q . k_t| reaches |q| |k_t| (PASA-BND-2); v ~ N(0, 1)."""
    parameters: dict[str, Any] = {
        "A": draw(amounts(fmt, 0, 127)),
        "B": draw(amounts(fmt, 0, 127)),
        "delta": draw(st.sampled_from(["0", "pi"])),
        "f": draw(st.sampled_from([1.0, 2.0, 0.5, 3.7])),
        "phi": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "noise": _noise(draw),
    }
    rng = _seeded(draw, parameters)
    d = np.arange(shape.head_dim)
    angle = 2 * math.pi * parameters["f"] / shape.head_dim * d + parameters["phi"]
    shift = 0.0 if parameters["delta"] == "0" else math.pi
    amplitude_k = parameters["B"] * (0.5 + rng.random(shape.k[:3] + (1,)))
    q = parameters["A"] * np.sin(angle) + _gaussian(rng, shape.q, parameters["noise"])
    k = amplitude_k * np.sin(angle + shift) + _gaussian(rng, shape.k, parameters["noise"])
    return Values(q, k, rng.standard_normal(shape.v), "resonance", parameters)


@distribution("sink")
def _sink(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-6: attention sinks. The first `sinks` keys are strength u, every query is
    pull u + N(0, 1), the other keys N(0, 1): the sinks take most of the attention; their
    values are 0 (as learned sinks carry little), the others N(0, 1)."""
    parameters: dict[str, Any] = {
        "sinks": draw(st.sampled_from([1, 4])),
        "strength": draw(amounts(fmt, 0, 127)),
        "pull": draw(amounts(fmt, 0, 127)),
    }
    rng = _seeded(draw, parameters)
    u = _direction(draw, rng, shape.head_dim, parameters)
    k = rng.standard_normal(shape.k)
    sinks = min(parameters["sinks"], shape.seq_k)
    k[:, :, :sinks] = parameters["strength"] * u
    q = parameters["pull"] * u + rng.standard_normal(shape.q)
    v = rng.standard_normal(shape.v)
    v[:, :, :sinks] = 0.0
    return Values(q, k, v, "sink", parameters)


@distribution("flat")
def _flat(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-6: ties and flat attention. "equal-keys": every key is one vector (all scores of
    a row tie); "zero-queries": q = 0 (every score is 0); "duplicated-keys": keys drawn from 2
    distinct rows (ties between the maxima). Keys scaled by `size`; v ~ N(0, 1)."""
    parameters: dict[str, Any] = {
        "kind": draw(st.sampled_from(["equal-keys", "zero-queries", "duplicated-keys"])),
        "size": draw(st.one_of(st.just(1.0), amounts(fmt, -4, 127))),
    }
    rng = _seeded(draw, parameters)
    q = rng.standard_normal(shape.q)
    k = rng.standard_normal(shape.k) * parameters["size"]
    if parameters["kind"] == "equal-keys":
        k[...] = k[:, :, :1]
    elif parameters["kind"] == "zero-queries":
        q[...] = 0.0
    else:
        k = k[:, :, rng.integers(0, min(2, shape.seq_k), size=shape.seq_k)]
    return Values(q, k, rng.standard_normal(shape.v), "flat", parameters)


def _unit_rows(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@distribution("qwen2-bias")
def _qwen2_bias(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-6: the large bias along the sequence the PASA paper traces in Qwen2, set by the
    statistic the MiniLM capture prints: keys k_t = size (a mu + z_t) and queries
    q_i = size (a mu + z'_i), mu one unit direction, z unit vectors of random direction, with
    a = ratio / sqrt(1 - ratio^2), so that |mean_t k_t| / mean_t |k_t| is about `ratio`
    (0.74: MiniLM's largest; 0.9, 0.99, 0.999: stronger biases); v ~ N(0, 1)."""
    parameters: dict[str, Any] = {
        "ratio": draw(st.sampled_from([0.74, 0.9, 0.99, 0.999])),
        "size": draw(amounts(fmt, 0, 127)),
    }
    rng = _seeded(draw, parameters)
    a = parameters["ratio"] / math.sqrt(1.0 - parameters["ratio"] ** 2)
    mu = _unit_rows(rng, (shape.head_dim,))
    q, k = (parameters["size"] * (a * mu + _unit_rows(rng, s)) for s in (shape.q, shape.k))
    return Values(q, k, rng.standard_normal(shape.v), "qwen2-bias", parameters)


@distribution("svd-resonance")
def _svd_resonance(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-6: the query-key resonance the PASA paper traces in Stable Video Diffusion, set
    by the statistic the MiniLM capture prints, the cosine q . k / (|q| |k|): every query is
    A (q^ + 0.05 noise), every key B_t (sign c q^ + sqrt(1 - c^2) w_t) with w_t a unit vector
    orthogonal to q^, B_t = B (1/2 + U(0, 1)), c in {0.92 (MiniLM's largest), 0.99, 0.999} and
    sign +1 (phase coincidence) or -1 (180 degrees); v ~ N(0, 1)."""
    parameters: dict[str, Any] = {
        "cosine": draw(st.sampled_from([0.92, 0.99, 0.999])),
        "sign": draw(st.sampled_from([1.0, -1.0])),
        "A": draw(amounts(fmt, 0, 127)),
        "B": draw(amounts(fmt, 0, 127)),
    }
    rng = _seeded(draw, parameters)
    c = parameters["cosine"]
    axis = _unit_rows(rng, (shape.head_dim,))
    w = rng.standard_normal(shape.k)
    w -= (w @ axis)[..., None] * axis
    w /= np.maximum(np.linalg.norm(w, axis=-1, keepdims=True), 1e-300)
    amplitude_k = parameters["B"] * (0.5 + rng.random(shape.k[:3] + (1,)))
    k = amplitude_k * (parameters["sign"] * c * axis + math.sqrt(1.0 - c * c) * w)
    q = parameters["A"] * (axis + 0.05 * _unit_rows(rng, shape.q))
    return Values(q, k, rng.standard_normal(shape.v), "svd-resonance", parameters)


def _which(draw: st.DrawFn, parameters: dict[str, Any]) -> str:
    parameters["tensors"] = draw(st.sampled_from(["v", "k", "q", "qk", "qkv"]))
    return parameters["tensors"]


@distribution("near-max")
def _near_max(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-7: the chosen tensors have entries +-max_F U(low, 1), low in {0.5, 0.9, 0.99};
    the others N(0, 1)."""
    parameters: dict[str, Any] = {"low": draw(st.sampled_from([0.5, 0.9, 0.99]))}
    tensors = _which(draw, parameters)
    rng = _seeded(draw, parameters)

    def near(s: tuple[int, ...]) -> np.ndarray:
        size = rng.uniform(parameters["low"], 1.0, s) * fmt.max_finite
        return rng.choice([-1.0, 1.0], size=s) * size

    q, k, v = (
        near(s) if name in tensors else rng.standard_normal(s)
        for name, s in zip("qkv", (shape.q, shape.k, shape.v), strict=True)
    )
    return Values(q, k, v, "near-max", parameters)


@distribution("subnormal")
def _subnormal(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-7: the chosen tensors have entries in the subnormal range of the input format,
    +-U(0, 2^emin), a share of them 0; the others N(0, 1)."""
    parameters: dict[str, Any] = {"zeros": draw(st.sampled_from([0.0, 0.5]))}
    tensors = _which(draw, parameters)
    rng = _seeded(draw, parameters)

    def tiny(s: tuple[int, ...]) -> np.ndarray:
        x = rng.uniform(-1.0, 1.0, s) * fmt.smallest_normal
        return np.where(rng.random(s) < parameters["zeros"], 0.0, x)

    q, k, v = (
        tiny(s) if name in tensors else rng.standard_normal(s)
        for name, s in zip("qkv", (shape.q, shape.k, shape.v), strict=True)
    )
    return Values(q, k, v, "subnormal", parameters)


@distribution("large-v")
def _large_v(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-8: values +-size U(1/2, 1) with size = m 2^e up to the format's range; q, k
    ~ N(0, sd^2), sd in {1, 0.1} (0.1: nearly flat attention, every weight counts)."""
    parameters: dict[str, Any] = {
        "size": draw(amounts(fmt, 4, 127)),
        "sd": draw(st.sampled_from([1.0, 0.1])),
    }
    rng = _seeded(draw, parameters)
    q, k = (_gaussian(rng, s, parameters["sd"]) for s in (shape.q, shape.k))
    v = rng.choice([-1.0, 1.0], size=shape.v) * rng.uniform(0.5, 1.0, shape.v) * parameters["size"]
    return Values(q, k, v, "large-v", parameters)


@distribution("tiny-v")
def _tiny_v(draw: st.DrawFn, shape: Shape, fmt: Format) -> Values:
    """PASA-GEN-8: values +-2^e U(1, 2) with e from the smallest subnormal exponent up to
    emin + 4 (subnormal and barely normal); q, k ~ N(0, 1)."""
    low = fmt.emin - fmt.precision + 1
    parameters: dict[str, Any] = {"exponent": draw(st.integers(low, fmt.emin + 4))}
    rng = _seeded(draw, parameters)
    q, k = (rng.standard_normal(s) for s in (shape.q, shape.k))
    v = (
        rng.choice([-1.0, 1.0], size=shape.v)
        * rng.uniform(1.0, 2.0, shape.v)
        * 2.0 ** parameters["exponent"]
    )
    return Values(q, k, v, "tiny-v", parameters)


def _checked(argument: str, given: Sequence[str] | None, allowed: Sequence[str]) -> list[str]:
    """`given` (default: all of `allowed`) after checking every name is allowed."""
    if given is None:
        return list(allowed)
    if isinstance(given, str) or not given:
        raise ValueError(
            f"argument {argument!r}: expected a non-empty list of names among {list(allowed)}, "
            f"got {given!r}"
        )
    unknown = [name for name in given if name not in allowed]
    if unknown:
        raise ValueError(
            f"argument {argument!r}: expected names among {list(allowed)}, got unknown {unknown}"
        )
    return list(given)


@st.composite
def values(
    draw: st.DrawFn, shape: Shape, fmt: Format, distributions: Sequence[str] | None = None
) -> Values:
    """q, k, v of `shape` in binary64 from one of `distributions` (default: all of
    DISTRIBUTIONS); round them with `fmt.to_storage` after clipping (see `cases`)."""
    name = draw(st.sampled_from(_checked("distributions", distributions, list(DISTRIBUTIONS))))
    return DISTRIBUTIONS[name](draw, shape, fmt)


def representable(x: np.ndarray, fmt: Format) -> np.ndarray:
    """x clipped to [-max_F, max_F] and rounded to nearest into F: an array of F's storage
    dtype, exactly representable and finite (PASA-GEN-1)."""
    top = fmt.max_finite
    return fmt.to_storage(np.clip(np.asarray(x, dtype=np.float64), -top, top))


@st.composite
def cases(
    draw: st.DrawFn,
    profile: str | Profile,
    *,
    max_seq: int = 256,
    max_dim: int = 128,
    distributions: Sequence[str] | None = None,
    masks: Sequence[str] | None = None,
    max_batch: int = 2,
    max_heads: int = 4,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    support: Support | None = None,
) -> Case:
    """Adversarial attention problems for `profile` (PASA-GEN-1): a shape, one value
    distribution and one mask kind, q, k, v exactly representable in the profile's input
    format. Case.label reads "distribution(parameters); mask=kind"; Case.metadata holds the
    same as data ("distribution", "parameters", "mask", "mask_parameters"). With `support`
    (a kernel declaration's Support, PASA-CERT-7) every case lies in the declared scope:
    shapes as `shapes` draws them, only the mask kinds it accepts ("none" when it accepts
    none of those asked for)."""
    prof = profiles.get(profile)
    names = _checked("distributions", distributions, list(DISTRIBUTIONS))
    mask_kinds = _checked("masks", masks, MASKS)
    shape = draw(
        shapes(
            max_seq=max_seq,
            max_dim=max_dim,
            max_batch=max_batch,
            max_heads=max_heads,
            block=prof.block_k,
            max_pairs=max_pairs,
            support=support,
        )
    )
    vals = draw(values(shape, prof.input, names))
    choice = draw(
        _masks(shape, [k for k in mask_kinds if in_scope(k, shape, support)] or ["none"])
    )
    return Case(
        q=representable(vals.q, prof.input),
        k=representable(vals.k, prof.input),
        v=representable(vals.v, prof.input),
        causal=choice.causal,
        mask=choice.mask,
        label=f"{vals.label}; mask={choice.kind}",
        metadata={
            "distribution": vals.name,
            "parameters": vals.parameters,
            "mask": choice.kind,
            "mask_parameters": choice.parameters,
        },
    )


# -- masks correlated with the values (PASA-GEN-10) -----------------------------------------
#
# Each scenario is a pure function of a generator, a shape, the key block size n and a few
# parameters, so that the deterministic level-1 cases of pasa_ref.certify.generators build
# the same recipes with fixed parameters. Queries are q_i = u + N(0, 1/16) with u a direction
# of +-1 entries (|u|^2 = D), so a key h u + noise has the scaled score about h sqrt(D):
# a key "of score s" is (s / sqrt(D)) u + N(0, 1).

SCENARIOS = ("hidden-max", "masked-block", "edge-key", "padded-outliers")
HIDDEN_BY = ("causal-ramp", "padding", "random")


@dataclass(frozen=True)
class Scenario:
    """q, k, v in binary64, the visibility rule and the recipe of one correlated case."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    causal: bool
    mask: np.ndarray | None
    name: str
    parameters: dict[str, Any]

    def case(self, fmt: Format) -> Case:
        """The scenario as a Case with q, k, v rounded into `fmt` (PASA-GEN-1)."""
        shown = ", ".join(f"{key}={_short(value)}" for key, value in self.parameters.items())
        return Case(
            q=representable(self.q, fmt),
            k=representable(self.k, fmt),
            v=representable(self.v, fmt),
            causal=self.causal,
            mask=self.mask,
            label=f"{self.name}({shown})",
            metadata={"scenario": self.name, "parameters": self.parameters},
        )


def _aligned_queries(rng: np.random.Generator, shape: Shape, u: np.ndarray) -> np.ndarray:
    return u + _gaussian(rng, shape.q, 0.25)


def _keys_of_score(
    rng: np.random.Generator, shape: Shape, u: np.ndarray, score: np.ndarray | float
) -> np.ndarray:
    """Keys whose scaled score against the aligned queries is about `score` (broadcast over
    B x Hkv x S2 x 1): (score / sqrt(D)) u + N(0, 1)."""
    return np.asarray(score) / math.sqrt(shape.head_dim) * u + rng.standard_normal(shape.k)


def _per_query_head(key_visible: np.ndarray, heads_q: int) -> np.ndarray:
    """B x Hkv x ... x S2 visibility of keys -> B x Hq x ... x S2 (query head h reads kv head
    h // G, PASA-IO-2)."""
    return np.repeat(key_visible, heads_q // key_visible.shape[1], axis=1)


def hidden_max(
    rng: np.random.Generator, shape: Shape, u: np.ndarray, margin: float, hidden_by: str
) -> Scenario:
    """The mask hides the largest scores: the hidden keys score about `margin` above the
    visible ones (which score N(0, 1)-ish). hidden_by "causal-ramp": k_t has score
    margin (t + 1) / S2 (a positional bias that grows along the sequence), causal, so every
    row's future keys outscore its visible ones; "padding": per batch, keys t >= L_b (L_b
    drawn in [1, S2 - 1]) score `margin`; "random": per (batch, kv head) a random half of
    the keys scores `margin` and is hidden from every query, the rest visible with
    probability 0.7 (rows left without a key are then fully masked)."""
    b, hkv, s2 = shape.batch, shape.heads_kv, shape.seq_k
    parameters: dict[str, Any] = {"margin": margin, "hidden_by": hidden_by}
    q = _aligned_queries(rng, shape, u)
    if hidden_by == "causal-ramp":
        ramp = (np.arange(s2) + 1.0) / s2
        k = _keys_of_score(rng, shape, u, margin * ramp[:, None])
        return Scenario(q, k, rng.standard_normal(shape.v), True, None, "hidden-max", parameters)
    if hidden_by == "padding":
        lengths = rng.integers(1, max(s2, 2), size=b)
        parameters["lengths"] = lengths.tolist()
        hidden = np.arange(s2) >= lengths[:, None]  # B x S2
        k = _keys_of_score(rng, shape, u, margin * hidden[:, None, :, None])
        mask = ~hidden[:, None, None, :]
        return Scenario(q, k, rng.standard_normal(shape.v), False, mask, "hidden-max", parameters)
    hidden = rng.random((b, hkv, s2)) < 0.5
    k = _keys_of_score(rng, shape, u, margin * hidden[..., None])
    visible = ~hidden[:, :, None, :] & (rng.random((b, hkv, shape.seq_q, s2)) < 0.7)
    mask = _per_query_head(visible, shape.heads_q)
    return Scenario(q, k, rng.standard_normal(shape.v), False, mask, "hidden-max", parameters)


def masked_block(
    rng: np.random.Generator, shape: Shape, u: np.ndarray, depth: float, n: int
) -> Scenario:
    """Causal masking with whole key blocks masked and strongly negative: the first key
    block scores N(0, 1)-ish, every later key scores about -depth. The rows of the first
    query block see none of the later blocks; their shifted scores there are about
    -(1 - beta) depth, so a finite mask penalty of -65504 added in fp16 rounds them all to
    -inf, the block's row maximum is -inf and -inf - (-inf) gives NaN on rows that do see
    keys (the authors' code). Needs S2 > n; depth >= 2^11 puts the shifted scores below -16
    for beta <= 0.99."""
    parameters: dict[str, Any] = {"depth": depth}
    q = _aligned_queries(rng, shape, u)
    later = (np.arange(shape.seq_k) >= n)[:, None]
    k = _keys_of_score(rng, shape, u, -depth * later)
    return Scenario(q, k, rng.standard_normal(shape.v), True, None, "masked-block", parameters)


def edge_key(
    rng: np.random.Generator, shape: Shape, u: np.ndarray, margin: float, n: int, share: float
) -> Scenario:
    """Visible keys only at block edges (t in {0, n - 1, n, 2n - 1, 2n, ..., S2 - 1}), with
    scores N(0, 1)-ish, every other key hidden and scoring `margin`. A share of the rows
    (per batch, head and row) sees exactly one edge key, drawn per row (criterion (d): the
    output is that key's value); the other rows see each edge key with probability 1/2 (or
    none: fully masked). The mask is B x Hq x S1 x S2, different in every batch and head."""
    b, hq, s1, s2 = shape.batch, shape.heads_q, shape.seq_q, shape.seq_k
    edges = np.array(sorted({t for j in range(0, s2, n) for t in (j, j + n - 1, s2 - 1) if t < s2}))
    parameters: dict[str, Any] = {"margin": margin, "single_share": share}
    high = np.ones(s2, dtype=bool)
    high[edges] = False
    q = _aligned_queries(rng, shape, u)
    k = _keys_of_score(rng, shape, u, margin * high[:, None])
    mask = np.zeros((b, hq, s1, s2), dtype=bool)
    chosen = rng.choice(edges, size=(b, hq, s1))
    np.put_along_axis(mask, chosen[..., None], True, axis=-1)
    several = rng.random((b, hq, s1)) >= share
    mask[several] = False
    mask[..., edges] |= several[..., None] & (rng.random((b, hq, s1, edges.size)) < 0.5)
    return Scenario(q, k, rng.standard_normal(shape.v), False, mask, "edge-key", parameters)


def padded_outliers(
    rng: np.random.Generator, shape: Shape, u: np.ndarray, margin: float, size: float, n: int
) -> Scenario:
    """Key padding over outliers: per batch a length L_b (at a block edge n - 1, n, n + 1, 1
    or S2 - 1, or anywhere), the padded keys t >= L_b score `margin` and carry values
    +-size U(1/2, 1) (large activations of padding tokens); visible keys score N(0, 1)-ish,
    values N(0, 1). Any weight leaking onto a padded key shows at the scale of `size`."""
    b, s2 = shape.batch, shape.seq_k
    choices = np.array([t for t in (n - 1, n, n + 1, 1, s2 - 1) if 1 <= t <= s2] or [s2])
    lengths = np.where(rng.random(b) < 0.8, rng.choice(choices, size=b), rng.integers(1, s2 + 1, b))
    parameters: dict[str, Any] = {
        "margin": margin,
        "size": size,
        "lengths": lengths.tolist(),
    }
    padded = np.arange(s2) >= lengths[:, None]  # B x S2
    q = _aligned_queries(rng, shape, u)
    k = _keys_of_score(rng, shape, u, margin * padded[:, None, :, None])
    outliers = rng.choice([-1.0, 1.0], size=shape.v) * rng.uniform(0.5, 1.0, shape.v) * size
    v = np.where(padded[:, None, :, None], outliers, rng.standard_normal(shape.v))
    return Scenario(q, k, v, False, ~padded[:, None, None, :], "padded-outliers", parameters)


def _block_lengths(n: int, max_blocks: int, low: int = 1) -> st.SearchStrategy[int]:
    """Key lengths at block edges: m n + d, d in {-1, 0, 1}, low <= m <= max_blocks."""
    return st.sampled_from(
        sorted(
            {
                m * n + d
                for m in range(low, max_blocks + 1)
                for d in (0, 1, -1)
                if m * n + d > n * (low - 1)
            }
        )
    )


@st.composite
def correlated_cases(
    draw: st.DrawFn,
    profile: str | Profile,
    *,
    max_blocks: int = 3,
    max_dim: int = 128,
    scenarios: Sequence[str] | None = None,
    max_batch: int = 2,
    max_heads: int = 4,
) -> Case:
    """Attention problems whose mask is correlated with the values (PASA-GEN-10): the mask
    hides the largest scores ("hidden-max"), whole causally masked key blocks are strongly
    negative ("masked-block"), only keys at block edges are visible ("edge-key"), padding
    covers keys with outlier values ("padded-outliers"). S2 is a block multiple +- 1 with at
    most `max_blocks` blocks of the profile's block_k; B >= 2 where max_batch allows, so that
    batches hold different data. Case.label reads "scenario(parameters)", Case.metadata
    holds "scenario" and "parameters"."""
    prof = profiles.get(profile)
    name = draw(st.sampled_from(_checked("scenarios", scenarios, SCENARIOS)))
    _check_positive("max_blocks", max_blocks)
    n, fmt = prof.block_k, prof.input
    seq_k = draw(_block_lengths(n, max(max_blocks, 2), low=2 if name == "masked-block" else 1))
    seq_q = seq_k if name == "masked-block" else draw(st.sampled_from([seq_k, 1, 17, n + 1]))
    heads_kv = draw(st.integers(1, max(1, min(2, max_heads))))
    group = draw(st.integers(1, max(1, max_heads // heads_kv)))
    batch = draw(st.integers(min(2, max_batch), max_batch))
    head_dim = draw(st.sampled_from([d for d in (64, 16, 128, 7) if d <= max_dim] or [max_dim]))
    shape = Shape(batch, heads_kv * group, heads_kv, seq_q, seq_k, head_dim)
    parameters: dict[str, Any] = {}
    rng = _seeded(draw, parameters)
    u = _direction(draw, rng, head_dim, parameters)
    if name == "hidden-max":
        margin = draw(amounts(fmt, 4, 127))
        scenario = hidden_max(rng, shape, u, margin, draw(st.sampled_from(HIDDEN_BY)))
    elif name == "masked-block":
        scenario = masked_block(rng, shape, u, draw(amounts(fmt, 11, 127)), n)
    elif name == "edge-key":
        share = draw(st.sampled_from([1.0, 0.5]))
        scenario = edge_key(rng, shape, u, draw(amounts(fmt, 4, 127)), n, share)
    else:
        margin, size = draw(amounts(fmt, 4, 127)), draw(amounts(fmt, 0, 127))
        scenario = padded_outliers(rng, shape, u, margin, size, n)
    scenario.parameters.update(parameters)
    return scenario.case(fmt)
