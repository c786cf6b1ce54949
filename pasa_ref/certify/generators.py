"""Deterministic input recipes of the certification levels (specs/certification.md,
PASA-CERT-5). Every case is built from numpy's PCG64 seeded by (seed, crc32(case id)), cast
once into the profile's input format (round to nearest even), so the same id and seed give
the same bits on every machine.

    paper_grid        the PASA paper's random benchmark (pasa_ref.reproduce.distributions:
                      "uniform" and "hybrid", mean_val in {0, 10, 20, 30}, Am in
                      {0.5, 5, 10, 20}) at a certification-sized shape
    benign            q, k ~ N(0, sd^2), sd in {0.5, 1, 3}, v ~ N(0, 1), with and without
                      causal: the domain of PASA-ACC-1, where absolute bounds apply
    edge              one key, ragged and short key blocks, fully masked rows, causal with
                      S1 != S2, GQA and MQA, Dv != D, D = 1, explicit scale, tiny values,
                      resonance (PASA-BND-2), a large key bias, block means that jump
    metamorphic_base  inputs on the grid 2^-3 Z with |x| < 8, so that the transformations of
                      pasa_ref.certify.relations are exact in fp16 and bf16
    long_sequence     S2 up to 16384 keys (level 3)

Case ids are lowercase words joined by '-', unique within a level; they are the stems of
the case files `pasa gen` writes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from pasa_ref import strategies
from pasa_ref.cases import Case
from pasa_ref.profiles import Profile
from pasa_ref.reproduce import distributions
from pasa_ref.strategies import Shape

__all__ = [
    "GRID_AMPLITUDES",
    "GRID_MEANS",
    "benign",
    "correlated_masks",
    "edge",
    "long_sequence",
    "metamorphic_base",
    "mutation_survivors",
    "paper_grid",
    "rng_for",
]

GRID_MEANS = (0.0, 10.0, 20.0, 30.0)
GRID_AMPLITUDES = (0.5, 5.0, 10.0, 20.0)
# S2 = 4 full blocks of 128 plus a ragged one of 8; GQA 4 -> 2
GRID_SHAPE = Shape(batch=1, heads_q=4, heads_kv=2, seq_q=32, seq_k=520, head_dim=128)
BENIGN_SHAPE = (1, 4, 2, 64, 300, 128)


def rng_for(case_id: str, seed: int = 0) -> np.random.Generator:
    """The generator of one case: PCG64 seeded by (seed, crc32(case_id))."""
    return np.random.default_rng([seed, zlib.crc32(case_id.encode())])


def _case(
    profile: Profile,
    case_id: str,
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    group: str,
    causal: bool = False,
    mask: np.ndarray | None = None,
    scale: float | None = None,
    **metadata: object,
) -> Case:
    """A Case with q, k, v rounded into the profile's input format."""
    to_input = profile.input.to_storage
    return Case(
        q=to_input(q),
        k=to_input(k),
        v=to_input(v),
        causal=causal,
        mask=mask,
        scale=scale,
        label=case_id,
        metadata={"id": case_id, "group": group, **metadata},
    )


def _shapes(b: int, hq: int, hkv: int, s1: int, s2: int, d: int, dv: int | None = None):
    return (b, hq, s1, d), (b, hkv, s2, d), (b, hkv, s2, d if dv is None else dv)


def paper_grid(profile: Profile) -> list[Case]:
    """32 cases: {uniform, hybrid} x mean x amplitude, GQA 4/2, S1 = 32, S2 = 520, D = 128."""
    cases = []
    for distribution in distributions.DISTRIBUTIONS:
        for mean in GRID_MEANS:
            for amplitude in GRID_AMPLITUDES:
                case_id = f"grid-{distribution}-mean{mean:g}-amp{amplitude:g}".replace(".", "p")
                q, k, v = distributions.qkv(distribution, GRID_SHAPE, mean, amplitude, seed=0)
                cases.append(_case(profile, case_id, q, k, v, group="grid"))
    return cases


def benign(profile: Profile, seed: int = 0) -> list[Case]:
    """6 cases of the PASA-ACC-1 domain: the absolute bounds of PASA-CERT-13 apply. Level 1
    uses seed 0; other seeds serve the calibration of those bounds."""
    cases = []
    for sd in (0.5, 1.0, 3.0):
        for causal in (False, True):
            case_id = f"benign-sd{sd:g}{'-causal' if causal else ''}".replace(".", "p")
            rng = rng_for(case_id, seed)
            qs, ks, vs = _shapes(*BENIGN_SHAPE)
            q, k = rng.normal(0, sd, qs), rng.normal(0, sd, ks)
            cases.append(
                _case(
                    profile,
                    case_id,
                    q,
                    k,
                    rng.normal(0, 1, vs),
                    group="benign",
                    causal=causal,
                    benign=True,
                )
            )
    return cases


def edge(profile: Profile) -> list[Case]:
    """The edge corpus of criterion (d): each recipe names what it exercises."""
    cases = []
    for case_id, recipe in _EDGE_RECIPES.items():
        q, k, v, options = recipe(rng_for(case_id), profile.block_k)
        cases.append(_case(profile, case_id, q, k, v, group="edge", **options))
    return cases


#: (rng, block_k) -> (q, k, v, keyword options of the Case)
Recipe = Callable[[np.random.Generator, int], tuple]


def _normal(
    rng: np.random.Generator,
    b: int,
    hq: int,
    hkv: int,
    s1: int,
    s2: int,
    d: int,
    dv: int | None = None,
    sd: float = 1.0,
) -> tuple[np.ndarray, ...]:
    qs, ks, vs = _shapes(b, hq, hkv, s1, s2, d, dv)
    return rng.normal(0, sd, qs), rng.normal(0, sd, ks), rng.normal(0, 1, vs)


def _one_key(rng, n):
    return (*_normal(rng, 1, 2, 1, 4, 1, 16), {})


def _short_block(rng, n):
    return (*_normal(rng, 1, 2, 2, 8, n - 1, 32), {})


def _ragged_one(rng, n):
    return (*_normal(rng, 1, 2, 1, 8, n + 1, 32), {})


def _ragged_causal(rng, n):
    return (*_normal(rng, 1, 4, 2, 2 * n + 5, 2 * n + 5, 64), {"causal": True})


def _causal_more_queries(rng, n):
    """S1 > S2: bottom-right alignment leaves the first S1 - S2 rows fully masked."""
    return (*_normal(rng, 1, 2, 1, 40, 24, 32), {"causal": True})


def _causal_decode(rng, n):
    """S1 < S2: each query sees the keys up to its own position at the end."""
    return (*_normal(rng, 1, 2, 2, 5, 2 * n + 44, 64), {"causal": True})


def _masked_rows(rng, n):
    """An explicit mask with fully masked rows and per-batch padding lengths."""
    q, k, v = _normal(rng, 2, 2, 1, 12, n + 37, 32)
    lengths = np.array([n + 37, n - 50]).reshape(2, 1, 1, 1)
    mask = (np.arange(n + 37) < lengths) & (rng.random((2, 2, 12, n + 37)) < 0.8)
    mask[:, :, 3] = False
    mask[1, 0, 7] = False
    return q, k, v, {"mask": mask}


def _mqa(rng, n):
    return (*_normal(rng, 1, 4, 1, 16, n + 60, 64), {})


def _value_dim(rng, n):
    return (*_normal(rng, 1, 2, 1, 16, n + 20, 64, dv=24), {})


def _head_dim_one(rng, n):
    return (*_normal(rng, 1, 2, 2, 8, 200, 1, sd=3.0), {})


def _explicit_scale(rng, n):
    return (*_normal(rng, 1, 2, 1, 8, 150, 32), {"scale": 0.5})


def _tiny(rng, n):
    """Values near fp16's subnormal range: products underflow in fp16."""
    q, k, v = _normal(rng, 1, 2, 1, 8, 140, 64)
    return q * 2e-3, k * 2e-3, v * 2e-3, {}


def _resonance(rng, n):
    """q and k sinusoidal along the head dimension with equal or opposite phase (PASA-BND-2),
    plus a little noise: |q . k| near |q| |k|."""
    d, s2 = 128, 2 * n + 10
    phase = rng.uniform(0, 2 * np.pi, (1, 1, s2, 1))
    sign = np.where(rng.random((1, 1, s2, 1)) < 0.5, 1.0, -1.0)
    k = 3.0 * sign * np.sin(np.arange(d) / 4.0 + 0.1 * phase) + rng.normal(0, 0.1, (1, 1, s2, d))
    q = 3.0 * np.sin(np.arange(d) / 4.0) * np.ones((1, 2, 8, 1)) + rng.normal(0, 0.1, (1, 2, 8, d))
    return q, k, rng.normal(0, 1, (1, 1, s2, d)), {}


def _key_bias(rng, n):
    """A large bias along the sequence (the Qwen2 pattern the paper traces): every key and
    query carries the same offset vector, so raw scores are large and nearly equal."""
    q, k, v = _normal(rng, 1, 2, 1, 16, 2 * n + 30, 128)
    bias = rng.normal(6.0, 1.0, (1, 1, 1, 128))
    return q + bias, k + bias, v, {}


def _block_means_jump(rng, n):
    """Each later key block aligns more with the queries, so the block means and the row
    maximum both jump from block to block: the frame conversions and the running maximum
    matter (PASA-ALG-4, -5)."""
    q, k, v = _normal(rng, 1, 2, 1, 8, 4 * n, 64)
    direction = np.sqrt(40 / 64) * rng.choice([-1.0, 1.0], (1, 1, 1, 64))  # |direction|^2 = 40
    step = np.repeat(np.arange(4), n).reshape(1, 1, 4 * n, 1)
    return q + direction, k + step * direction, v, {}  # block j: scores up by about 5 j


def _authors_shape(rng, n):
    """The authors' configuration at a few queries: GQA 28 -> 4 heads scaled to 14 -> 2,
    S2 = 1407 = 10 blocks + 127, D = 128, causal (the last 16 queries)."""
    return (*_normal(rng, 1, 14, 2, 16, 1407, 128), {"causal": True})


_EDGE_RECIPES: dict[str, Recipe] = {
    "edge-one-key": _one_key,
    "edge-short-block": _short_block,
    "edge-ragged-one": _ragged_one,
    "edge-ragged-causal": _ragged_causal,
    "edge-causal-more-queries": _causal_more_queries,
    "edge-causal-decode": _causal_decode,
    "edge-masked-rows": _masked_rows,
    "edge-mqa": _mqa,
    "edge-value-dim": _value_dim,
    "edge-head-dim-one": _head_dim_one,
    "edge-explicit-scale": _explicit_scale,
    "edge-tiny": _tiny,
    "edge-resonance": _resonance,
    "edge-key-bias": _key_bias,
    "edge-block-means-jump": _block_means_jump,
    "edge-authors-shape": _authors_shape,
}


def metamorphic_base(profile: Profile, index: int, seed: int) -> Case:
    """A base case for the metamorphic relations: q ~ N(0, 1); k, v on 2^-3 Z with |x| < 8
    (so k + c, v + c for integer |c| <= 16 and v 2^s, s in {-2, 3}, are exact); shapes with
    GQA, ragged blocks and causal masks drawn from the seed."""
    case_id = f"metamorphic-{index}"
    rng = rng_for(case_id, seed)
    n = profile.block_k
    hkv = int(rng.integers(1, 3))
    shape = (
        1,
        hkv * int(rng.integers(1, 3)),
        hkv,
        int(rng.integers(1, 65)),
        int(rng.integers(1, 3 * n + 1)),
        int(rng.choice([16, 64, 128])),
    )
    qs, ks, vs = _shapes(*shape)
    on_grid = [np.clip(np.round(rng.normal(0, 2.0, s) * 8) / 8, -7.875, 7.875) for s in (ks, vs)]
    return _case(
        profile,
        case_id,
        rng.normal(0, 1, qs),
        *on_grid,
        group="metamorphic",
        causal=bool(rng.random() < 0.5),
        relations_seed=int(rng.integers(2**31)),
    )


def long_sequence(profile: Profile, keys: int, queries: int, causal: bool, seed: int) -> Case:
    """Level 3: S2 = keys, S1 = queries, GQA 2/1, D = 128, the paper's hybrid inputs with
    mean 10 and amplitude 5 (large scores over many blocks)."""
    case_id = f"long-{keys}{'-causal' if causal else ''}"
    rng = rng_for(case_id, seed)
    q, k, v = (
        distributions.draw("hybrid", rng, shape, 10.0, 5.0)
        for shape in _shapes(1, 2, 1, queries, keys, 128)
    )
    return _case(profile, case_id, q, k, v, group="long", causal=causal)


def correlated_masks(profile: Profile) -> list[Case]:
    """Level-1 cases whose mask is correlated with the values (PASA-GEN-10, the recipes of
    pasa_ref.strategies): the hidden keys score far above the visible ones (margins 2^17,
    1.5 2^15 and 1.5 2^13, past the finite penalties -65504, -30000 and -1e4 of masked_fill
    implementations where the score format holds them; the causal ramp at 1.5 2^15 stays
    inside fp16), whole causally masked key blocks
    score about -2^13 (a finite -65504 mask gives -inf - (-inf) = NaN in fp16), single
    visible keys at block edges, and padding over keys with outlier values. Every case has
    B = 2 with different data in each batch and head."""
    n = profile.block_k
    cases = []
    for case_id, (sizes, build) in _CORRELATED_RECIPES.items():
        rng = rng_for(case_id)
        shape = Shape(*sizes(n))
        u = rng.choice([-1.0, 1.0], size=shape.head_dim)
        found = build(rng, shape, u, n)
        cases.append(
            _case(
                profile,
                case_id,
                found.q,
                found.k,
                found.v,
                group="mask",
                causal=found.causal,
                mask=found.mask,
                scenario=found.name,
                parameters=found.parameters,
            )
        )
    return cases


#: case id -> (block size n -> Shape fields, (rng, shape, u, n) -> strategies.Scenario)
_CORRELATED_RECIPES: dict[str, tuple[Callable, Callable]] = {
    "mask-hidden-max-causal-ramp": (
        lambda n: (2, 4, 2, 2 * n + 1, 2 * n + 1, 64),
        lambda rng, shape, u, n: strategies.hidden_max(rng, shape, u, 2.0**17, "causal-ramp"),
    ),
    "mask-hidden-max-causal-ramp-fp16": (
        lambda n: (2, 2, 2, 2 * n + 1, 2 * n + 1, 64),
        lambda rng, shape, u, n: strategies.hidden_max(rng, shape, u, 1.5 * 2**15, "causal-ramp"),
    ),
    "mask-hidden-max-padding": (
        lambda n: (2, 2, 1, 33, n + 1, 64),
        lambda rng, shape, u, n: strategies.hidden_max(rng, shape, u, 1.5 * 2**15, "padding"),
    ),
    "mask-hidden-max-random": (
        lambda n: (2, 4, 2, 16, n + 7, 32),
        lambda rng, shape, u, n: strategies.hidden_max(rng, shape, u, 1.5 * 2**13, "random"),
    ),
    "mask-block-negative": (
        lambda n: (2, 2, 2, 2 * n, 2 * n, 64),
        lambda rng, shape, u, n: strategies.masked_block(rng, shape, u, 2.0**13, n),
    ),
    "mask-block-negative-gqa-ragged": (
        lambda n: (2, 4, 1, 3 * n + 1, 3 * n + 1, 16),
        lambda rng, shape, u, n: strategies.masked_block(rng, shape, u, 2.0**12, n),
    ),
    "mask-edge-key": (
        lambda n: (2, 4, 2, 40, 2 * n + 1, 64),
        lambda rng, shape, u, n: strategies.edge_key(rng, shape, u, 1.5 * 2**13, n, 1.0),
    ),
    "mask-padded-outliers": (
        lambda n: (2, 2, 2, 24, 2 * n + 1, 64),
        lambda rng, shape, u, n: strategies.padded_outliers(rng, shape, u, 1.5 * 2**13, 2.0**10, n),
    ),
}


def mutation_survivors(profile: Profile) -> list[Case]:
    """Level-1 cases made from the live survivors of benchmarks/mutation_score.py: each is a
    small input on which a mutant of the reference kernels that passed levels 1 and 2
    misbehaves inside the safe envelope."""
    cases = []
    for case_id, recipe in _SURVIVOR_RECIPES.items():
        q, k, v, options = recipe(rng_for(case_id), profile.block_k)
        cases.append(_case(profile, case_id, q, k, v, group="survivor", **options))
    return cases


def _negative_first_block(rng, n):
    """q near 80, k near -80, D = 128 (PASA-ENV-8): the mean shifted score of the first block
    is about -72400, so gamma (abar_0 - abar_1) overflows fp16 statistics to +inf, and a kernel
    that converts the empty frame m_0 = -inf anyway gets -inf + inf = NaN inside the safe
    envelope (the survivor: PASA-ALG-5's guard for a maximum of -inf tested against +inf)."""
    q, k, v = _normal(rng, 2, 2, 1, 4, 2 * n + 2, 128, sd=0.25)
    return q + 80.0, k - 80.0, v, {}


_SURVIVOR_RECIPES: dict[str, Recipe] = {"survivor-negative-first-block": _negative_first_block}
