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
    batches           B >= 2 with other data in every batch and head, at sizes a kernel of
                      fixed tiles accepts (level 1; drawn_batches: level 2)
    long_sequence     S2 up to 16384 keys (level 3)

Every recipe takes the kernel's declared Support (pasa_ref.certify.declaration, PASA-CERT-7)
and fits its shape into it (Support.fit); an edge recipe keeps the sizes it tests, so that
it is not applicable when its point lies outside the scope.

Case ids are lowercase words joined by '-', unique within a level; they are the stems of
the case files `pasa gen` writes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pasa_ref import strategies
from pasa_ref.cases import Case
from pasa_ref.certify.declaration import Support
from pasa_ref.profiles import Profile
from pasa_ref.reproduce import distributions
from pasa_ref.strategies import Shape

__all__ = [
    "BATCH_SHAPES",
    "EDGE_RECIPES",
    "GRID_AMPLITUDES",
    "GRID_MEANS",
    "batch_case",
    "batches",
    "benign",
    "correlated_masks",
    "drawn_batches",
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
BENIGN_SHAPE = Shape(batch=1, heads_q=4, heads_kv=2, seq_q=64, seq_k=300, head_dim=128)
#: the default support: every input the spec defines (nothing is fitted)
ANY = Support()


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


def paper_grid(profile: Profile, support: Support = ANY) -> list[Case]:
    """32 cases: {uniform, hybrid} x mean x amplitude, GQA 4/2, S1 = 32, S2 = 520, D = 128
    (fitted into the declared support)."""
    shape = support.fit(GRID_SHAPE)
    cases = []
    for distribution in distributions.DISTRIBUTIONS:
        for mean in GRID_MEANS:
            for amplitude in GRID_AMPLITUDES:
                case_id = f"grid-{distribution}-mean{mean:g}-amp{amplitude:g}".replace(".", "p")
                q, k, v = distributions.qkv(distribution, shape, mean, amplitude, seed=0)
                cases.append(_case(profile, case_id, q, k, v, group="grid"))
    return cases


def benign(profile: Profile, seed: int = 0, support: Support = ANY) -> list[Case]:
    """6 cases of the PASA-ACC-1 domain: the absolute bounds of PASA-CERT-13 apply. Level 1
    uses seed 0; other seeds serve the calibration of those bounds. The shape is fitted into
    the declared support (causal is what three of them test: never removed)."""
    shape = support.fit(BENIGN_SHAPE)
    cases = []
    for sd in (0.5, 1.0, 3.0):
        for causal in (False, True):
            case_id = f"benign-sd{sd:g}{'-causal' if causal else ''}".replace(".", "p")
            rng = rng_for(case_id, seed)
            q, k = rng.normal(0, sd, shape.q), rng.normal(0, sd, shape.k)
            cases.append(
                _case(
                    profile,
                    case_id,
                    q,
                    k,
                    rng.normal(0, 1, shape.v),
                    group="benign",
                    causal=causal,
                    benign=True,
                )
            )
    return cases


def edge(profile: Profile, support: Support = ANY) -> list[Case]:
    """The edge corpus of criterion (d): each recipe names what it exercises. The sizes a
    recipe does not test are fitted into the declared support; the ones it tests are kept,
    so that a case whose point lies outside the scope is not applicable."""
    cases = []
    n = profile.block_k
    for case_id, recipe in EDGE_RECIPES.items():
        shape = support.fit(recipe.shape(n), keep=recipe.tests)
        q, k, v, options = recipe.build(rng_for(case_id), shape, n)
        cases.append(_case(profile, case_id, q, k, v, group="edge", causal=recipe.causal,
                           **options))
    return cases


#: (rng, shape, block_k) -> (q, k, v, keyword options of the Case other than causal)
Build = Callable[[np.random.Generator, Shape, int], tuple]


@dataclass(frozen=True)
class EdgeRecipe:
    """One edge case: its shape for block_k = n, the sizes that carry what it tests (never
    fitted into a declared support: "batch", "heads", "seq_q", "seq_k", "head_dim",
    "value_dim"), whether it is causal, and how its inputs are built at a shape."""

    shape: Callable[[int], Shape]
    tests: tuple[str, ...]
    build: Build
    causal: bool = False


def _normal(
    rng: np.random.Generator, shape: Shape, sd: float = 1.0
) -> tuple[np.ndarray, ...]:
    return rng.normal(0, sd, shape.q), rng.normal(0, sd, shape.k), rng.normal(0, 1, shape.v)


def _plain(rng, shape, n):
    return (*_normal(rng, shape), {})


def _masked_rows(rng, shape, n):
    """An explicit mask with fully masked rows and per-batch padding lengths (batch 1 pads
    its last 87 keys)."""
    q, k, v = _normal(rng, shape)
    b, s1, s2 = shape.batch, shape.seq_q, shape.seq_k
    lengths = np.array([s2] + [max(s2 - 87, 1)] * (b - 1)).reshape(b, 1, 1, 1)
    mask = (np.arange(s2) < lengths) & (rng.random((b, shape.heads_q, s1, s2)) < 0.8)
    mask[:, :, 3] = False
    mask[-1, 0, 7] = False
    return q, k, v, {"mask": mask}


def _head_dim_one(rng, shape, n):
    return (*_normal(rng, shape, sd=3.0), {})


def _explicit_scale(rng, shape, n):
    return (*_normal(rng, shape), {"scale": 0.5})


def _tiny(rng, shape, n):
    """Values near fp16's subnormal range: products underflow in fp16."""
    q, k, v = _normal(rng, shape)
    return q * 2e-3, k * 2e-3, v * 2e-3, {}


def _resonance(rng, shape, n):
    """q and k sinusoidal along the head dimension with equal or opposite phase (PASA-BND-2),
    plus a little noise: |q . k| near |q| |k|."""
    b, hkv, s2, d = shape.k
    phase = rng.uniform(0, 2 * np.pi, (b, hkv, s2, 1))
    sign = np.where(rng.random((b, hkv, s2, 1)) < 0.5, 1.0, -1.0)
    wave = np.arange(d) / 4.0
    k = 3.0 * sign * np.sin(wave + 0.1 * phase) + rng.normal(0, 0.1, shape.k)
    q = 3.0 * np.sin(wave) * np.ones(shape.q[:3] + (1,)) + rng.normal(0, 0.1, shape.q)
    return q, k, rng.normal(0, 1, shape.v), {}


def _key_bias(rng, shape, n):
    """A large bias along the sequence (the Qwen2 pattern the paper traces): every key and
    query carries the same offset vector, so raw scores are large and nearly equal."""
    q, k, v = _normal(rng, shape)
    bias = rng.normal(6.0, 1.0, (1, 1, 1, shape.head_dim))
    return q + bias, k + bias, v, {}


def _block_means_jump(rng, shape, n):
    """Each later key block aligns more with the queries, so the block means and the row
    maximum both jump from block to block: the frame conversions and the running maximum
    matter (PASA-ALG-4, -5)."""
    q, k, v = _normal(rng, shape)
    d = shape.head_dim
    direction = np.sqrt(40 / d) * rng.choice([-1.0, 1.0], (1, 1, 1, d))  # |direction|^2 = 40
    step = (np.arange(shape.seq_k) // n).reshape(1, 1, shape.seq_k, 1)
    return q + direction, k + step * direction, v, {}  # block j: scores up by about 5 j


def _sizes(b: int, hq: int, hkv: int, s1: int, s2: int, d: int, dv: int | None = None):
    return lambda n: Shape(b, hq, hkv, s1, s2, d, dv)


EDGE_RECIPES: dict[str, EdgeRecipe] = {
    "edge-one-key": EdgeRecipe(_sizes(1, 2, 1, 4, 1, 16), ("seq_k",), _plain),
    "edge-short-block": EdgeRecipe(
        lambda n: Shape(1, 2, 2, 8, n - 1, 32), ("seq_k",), _plain
    ),
    "edge-ragged-one": EdgeRecipe(lambda n: Shape(1, 2, 1, 8, n + 1, 32), ("seq_k",), _plain),
    # causal S1 = S2 with a ragged last block, GQA
    "edge-ragged-causal": EdgeRecipe(
        lambda n: Shape(1, 4, 2, 2 * n + 5, 2 * n + 5, 64), ("seq_q", "seq_k"), _plain, True
    ),
    # S1 > S2: bottom-right alignment leaves the first S1 - S2 rows fully masked
    "edge-causal-more-queries": EdgeRecipe(
        _sizes(1, 2, 1, 40, 24, 32), ("seq_q", "seq_k"), _plain, True
    ),
    # S1 < S2: each query sees the keys up to its own position at the end
    "edge-causal-decode": EdgeRecipe(
        lambda n: Shape(1, 2, 2, 5, 2 * n + 44, 64), ("seq_q", "seq_k"), _plain, True
    ),
    "edge-masked-rows": EdgeRecipe(
        lambda n: Shape(2, 2, 1, 12, n + 37, 32), ("batch", "seq_q"), _masked_rows
    ),
    "edge-mqa": EdgeRecipe(lambda n: Shape(1, 4, 1, 16, n + 60, 64), ("heads",), _plain),
    "edge-value-dim": EdgeRecipe(
        lambda n: Shape(1, 2, 1, 16, n + 20, 64, 24), ("value_dim",), _plain
    ),
    "edge-head-dim-one": EdgeRecipe(_sizes(1, 2, 2, 8, 200, 1), ("head_dim",), _head_dim_one),
    "edge-explicit-scale": EdgeRecipe(_sizes(1, 2, 1, 8, 150, 32), (), _explicit_scale),
    "edge-tiny": EdgeRecipe(_sizes(1, 2, 1, 8, 140, 64), (), _tiny),
    "edge-resonance": EdgeRecipe(lambda n: Shape(1, 2, 1, 8, 2 * n + 10, 128), (), _resonance),
    "edge-key-bias": EdgeRecipe(lambda n: Shape(1, 2, 1, 16, 2 * n + 30, 128), (), _key_bias),
    "edge-block-means-jump": EdgeRecipe(
        lambda n: Shape(1, 2, 1, 8, 4 * n, 64), (), _block_means_jump
    ),
    # the authors' configuration at a few queries: GQA 28 -> 4 heads scaled to 14 -> 2,
    # S2 = 1407 = 10 blocks + 127, D = 128, causal (the last 16 queries)
    "edge-authors-shape": EdgeRecipe(_sizes(1, 14, 2, 16, 1407, 128), ("heads",), _plain, True),
}


def metamorphic_base(profile: Profile, index: int, seed: int, support: Support = ANY) -> Case:
    """A base case for the metamorphic relations: q ~ N(0, 1); k, v on 2^-3 Z with |x| < 8
    (so k + c, v + c for integer |c| <= 16 and v 2^s, s in {-2, 3}, are exact); shapes with
    GQA, ragged blocks and causal masks drawn from the seed, then fitted into the declared
    support (causal dropped where it is outside the scope)."""
    case_id = f"metamorphic-{index}"
    rng = rng_for(case_id, seed)
    n = profile.block_k
    hkv = int(rng.integers(1, 3))
    drawn = Shape(
        1,
        hkv * int(rng.integers(1, 3)),
        hkv,
        int(rng.integers(1, 65)),
        int(rng.integers(1, 3 * n + 1)),
        int(rng.choice([16, 64, 128])),
    )
    shape = support.fit(drawn)
    on_grid = [
        np.clip(np.round(rng.normal(0, 2.0, s) * 8) / 8, -7.875, 7.875) for s in (shape.k, shape.v)
    ]
    causal = bool(rng.random() < 0.5) and support.allows_causal(shape.seq_q, shape.seq_k)
    return _case(
        profile,
        case_id,
        rng.normal(0, 1, shape.q),
        *on_grid,
        group="metamorphic",
        causal=causal,
        relations_seed=int(rng.integers(2**31)),
    )


def long_sequence(
    profile: Profile, keys: int, queries: int, causal: bool, seed: int, support: Support = ANY
) -> Case:
    """Level 3: S2 = keys, S1 = queries, GQA 2/1, D = 128, the paper's hybrid inputs with
    mean 10 and amplitude 5 (large scores over many blocks); the key length is what it tests
    (kept), the other sizes are fitted into the declared support."""
    case_id = f"long-{keys}{'-causal' if causal else ''}"
    rng = rng_for(case_id, seed)
    shape = support.fit(Shape(1, 2, 1, queries, keys, 128), keep=("seq_k",))
    q, k, v = (
        distributions.draw("hybrid", rng, size, 10.0, 5.0) for size in (shape.q, shape.k, shape.v)
    )
    return _case(profile, case_id, q, k, v, group="long", causal=causal)


#: level 1's batch cases (PASA-CERT-5): (B, Hq, Hkv, S1, S2, D, causal), at sizes a kernel of
#: fixed tiles accepts (S1, S2 multiples of 128, D in {64, 128})
BATCH_SHAPES = {
    "batch-mha": (2, 2, 2, 128, 256, 64, False),
    "batch-gqa-causal": (2, 4, 2, 128, 128, 128, True),
    "batch-mqa": (3, 2, 1, 128, 256, 128, False),
    "batch-gqa-decode-causal": (2, 4, 2, 128, 256, 64, True),
}
#: how many batch cases level 2 draws from the seed
BATCH_DRAWN = 4


def batch_case(
    profile: Profile, case_id: str, sizes: tuple, seed: int, support: Support = ANY
) -> Case:
    """B >= 2 with different data in every batch and head, so that a batch offset or a head
    stride that reads another slice must show: q, k ~ N(0, 1) with the queries of (b, h)
    scaled by 1/2 + (b Hq + h) / (2 B Hq) (other attention patterns), v ~ N(0, 1) plus the
    offset b Hkv + h on key/value head h of batch b (other outputs: two slices' outputs
    differ by about 1 or more). Sizes are fitted into the declared support, B kept."""
    *dims, causal = sizes
    shape = support.fit(Shape(*dims), keep=("batch",))
    rng = rng_for(case_id, seed)
    q, k, v = _normal(rng, shape)
    b, hq, hkv = shape.batch, shape.heads_q, shape.heads_kv
    q *= (0.5 + np.arange(b * hq).reshape(b, hq, 1, 1) / (2 * b * hq))
    v += np.arange(b * hkv, dtype=np.float64).reshape(b, hkv, 1, 1)
    causal = causal and support.allows_causal(shape.seq_q, shape.seq_k)
    return _case(profile, case_id, q, k, v, group="batch", causal=causal)


def batches(profile: Profile, support: Support = ANY) -> list[Case]:
    """Level 1's batch cases (BATCH_SHAPES), the same for every seed."""
    return [
        batch_case(profile, case_id, sizes, 0, support)
        for case_id, sizes in BATCH_SHAPES.items()
    ]


def drawn_batches(profile: Profile, seed: int, support: Support = ANY) -> list[Case]:
    """Level 2's BATCH_DRAWN batch cases: B in {2, 3}, heads MHA, GQA or MQA (Hq <= 4),
    S1 = 128, S2 in {128, 256} (multiples of 64 and 128), D in {64, 128}, causal or not,
    drawn from the seed."""
    cases = []
    for index in range(BATCH_DRAWN):
        case_id = f"batch-drawn-{index}"
        rng = rng_for(case_id, seed)
        hq = int(rng.choice([2, 4]))
        sizes = (
            int(rng.integers(2, 4)),
            hq,
            int(rng.choice([hq, hq // 2, 1])),
            128,
            int(rng.choice([128, 256])),
            int(rng.choice([64, 128])),
            bool(rng.random() < 0.5),
        )
        cases.append(batch_case(profile, case_id, sizes, seed, support))
    return cases


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


def mutation_survivors(profile: Profile, support: Support = ANY) -> list[Case]:
    """Level-1 cases made from the live survivors of benchmarks/mutation_score.py: each is a
    small input on which a mutant of the reference kernels that passed levels 1 and 2
    misbehaves inside the safe envelope. Sizes are fitted into the declared support."""
    cases = []
    for case_id, recipe in _SURVIVOR_RECIPES.items():
        q, k, v, options = recipe(rng_for(case_id), profile.block_k, support)
        cases.append(_case(profile, case_id, q, k, v, group="survivor", **options))
    return cases


def _negative_first_block(rng, n, support):
    """q near 80, k near -80, D = 128 (PASA-ENV-8): the mean shifted score of the first block
    is about -72400, so gamma (abar_0 - abar_1) overflows fp16 statistics to +inf, and a kernel
    that converts the empty frame m_0 = -inf anyway gets -inf + inf = NaN inside the safe
    envelope (the survivor: PASA-ALG-5's guard for a maximum of -inf tested against +inf).
    Any lengths show it; D = 128 is kept where the support allows it."""
    q, k, v = _normal(rng, support.fit(Shape(2, 2, 1, 4, 2 * n + 2, 128)), sd=0.25)
    return q + 80.0, k - 80.0, v, {}


#: a survivor case: (rng, block size n, support) -> (q, k, v, call options)
SurvivorRecipe = Callable[[np.random.Generator, int, Support], tuple]
_SURVIVOR_RECIPES: dict[str, SurvivorRecipe] = {"survivor-negative-first-block": _negative_first_block}
