"""Property suite on adversarial cases against the oracle (specs/strategies-and-hunting.md,
PASA-PROP-1 .. 6): accuracy within PASA-ACC-1, no overflow inside the safe envelope, the
metamorphic relations PASA-MR-1..3 and key-block independence. hypothesis.target drives each
tested ratio upward. The structural relations against an independent float64 attention (GQA,
causal, query blocks, batch and heads) are in test_kernels.py."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from hypothesis import assume, given, target
from hypothesis import strategies as st

from pasa_ref import envelope, oracle, profiles, strategies
from pasa_ref.accuracy import domain as accuracy_domain
from pasa_ref.accuracy import reference_bound as accuracy_bound
from pasa_ref.cases import Case
from pasa_ref.inputs import validate
from pasa_ref.kernels import KERNELS

PROFILES = profiles.names()
ONLINE = ("flash", "pasa")
# the PASA-ACC-1 domain: q, k ~ N(0, sd^2) with sd <= 3, v ~ N(0, 1), S1 <= 300, S2 <= 600
BENIGN = {"max_seq": accuracy_domain()["max_seq_q"], "max_dim": accuracy_domain()["max_head_dim"],
          "distributions": ["normal"], "max_pairs": 2**15}


def run(kernel: str, case: Case, profile: str, **options) -> np.ndarray:
    out = KERNELS[kernel](case.q, case.k, case.v, profile=profile, **case.call_kwargs(),
                          **options)
    return out.astype(np.float64)


def exact(case: Case) -> np.ndarray:
    return oracle.attention(case.q, case.k, case.v, method="fast", **case.call_kwargs()).output


def score_extent(case: Case) -> tuple[float, float]:
    """(R, M): the largest row range max - min and the largest magnitude of the exact visible
    scores (binary64 products of the inputs; visibility from pasa_ref.inputs)."""
    inputs = validate(case.q, case.k, case.v, **case.call_kwargs())
    q, k = inputs.q.astype(np.float64), inputs.k.astype(np.float64)
    s = inputs.scale * (q @ np.swapaxes(k, -1, -2))
    visible = inputs.visible(slice(0, inputs.seq_q), slice(0, inputs.seq_k))
    visible = np.broadcast_to(True if visible is None else visible, s.shape)
    top = np.where(visible, s, -np.inf).max(axis=-1)
    bottom = np.where(visible, s, np.inf).min(axis=-1)
    seen = visible.any(axis=-1)
    if not seen.any():
        return 0.0, 0.0
    return float((top - bottom)[seen].max()), float(np.abs(np.where(visible, s, 0.0)).max())


def bound(kernel: str, profile: str, case: Case, v: np.ndarray | None = None,
          magnitude: bool = False) -> float:
    """PASA-ACC-1: C u_p max|V| (1 + g R); with magnitude=True, R + M in place of R."""
    r, m = score_extent(case)
    extent = r + m if magnitude else r
    return accuracy_bound(kernel, profile, case.v if v is None else v, extent,
                          profiles.get(profile).beta)


def aim(error: float, allowed: float, label: str) -> float:
    """error / allowed, reported to hypothesis.target."""
    ratio = error / allowed if allowed > 0 else (0.0 if error == 0 else np.inf)
    target(min(ratio, 1e6), label=label)
    return ratio


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(data=st.data())
def test_accuracy_against_the_oracle_on_the_benign_domain(kernel, profile, data):
    """PASA-PROP-1: PASA-ACC-1 against the oracle, with every shape and mask of the strategies
    (GQA, ragged blocks, odd D, fully masked rows)."""
    case = data.draw(strategies.cases(profile, **BENIGN))
    error = np.abs(run(kernel, case, profile) - exact(case)).max()
    assert aim(error, bound(kernel, profile, case), "error / PASA-ACC-1 bound") <= 1.0


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(data=st.data())
def test_fp64_accuracy_on_every_distribution_inside_the_envelope(kernel, data):
    """PASA-PROP-2: in fp64 beyond the benign domain, with R + M (M the largest visible |score|):
    rounding errors of the scores grow with their magnitude, not only with their range.
    Subnormal inputs (tiny-v, subnormal) are left out: their absolute rounding is not relative
    to max |V|."""
    names = [d for d in strategies.DISTRIBUTIONS if d not in ("tiny-v", "subnormal")]
    case = data.draw(strategies.cases("fp64", max_seq=200, max_pairs=2**15, distributions=names))
    assume(envelope.within(case, "fp64", kernel))
    error = np.abs(run(kernel, case, "fp64") - exact(case)).max()
    allowed = bound(kernel, "fp64", case, magnitude=True)
    assert aim(error, allowed, "error / bound with R + M") <= 1.0


@pytest.mark.parametrize("profile", PROFILES)
@given(data=st.data())
def test_pasa_is_finite_inside_the_safe_envelope(profile, data):
    """PASA-PROP-3 (PASA-ENV-1): inside the envelope no intermediate overflows. The target is
    the pressure of inside cases, which pushes them toward the boundary."""
    case = data.draw(strategies.cases(profile, max_seq=300, max_pairs=2**16))
    report = envelope.checks(case, profile)
    if not report.inside:
        return
    target(report.pressure, label="envelope pressure inside")
    with np.errstate(over="ignore", invalid="ignore"):
        out = run("pasa", case, profile)
    assert np.isfinite(out).all(), envelope.explain(case, profile)


def first_block_case(magnitude: float) -> Case:
    """D = 1, one key: q = m, k = -m, S = -m^2. The shifted score S~ = (1 - beta) S and the
    local maximum x_1 = m~ + gamma (a_1 - abar_1) leave fp16's range once (1 - beta) m^2
    passes 65504, m about 1020 (PASA-ENV-8). (Before the PASA-ALG-5 rule for frames without
    mass, y_1 = -inf + gamma (0 - abar_1) gave NaN from m = 265 on: see the corpus.)"""
    q = np.full((1, 1, 1, 1), magnitude, np.float16)
    return Case(q, -q, np.ones((1, 1, 1, 1), np.float16))


def flat_values_case(size: float, keys: int = 100) -> Case:
    """q = 0 (flat attention) over `keys` keys with v = size: the unnormalised accumulator O
    reaches keys * size (PASA-ENV-10)."""
    q = np.zeros((1, 1, 2, 8), np.float16)
    k = np.ones((1, 1, keys, 8), np.float16)
    return Case(q, k, np.full((1, 1, keys, 4), size, np.float16))


@pytest.mark.parametrize(
    "inside, outside, clause",
    [
        (first_block_case(990.0), first_block_case(1100.0), "PASA-ENV-8"),
        (flat_values_case(600.0), flat_values_case(700.0), "PASA-ENV-10"),
    ],
    ids=["first-block-shifted-score", "accumulator-of-large-values"],
)
def test_the_envelope_is_tight_where_pasa_overflows(inside, outside, clause):
    """Just inside: finite. Just outside, failing the named check: pasa's output is not finite
    (fp16-full), so these checks are close to necessary."""
    assert envelope.within(inside, "fp16-full")
    assert np.isfinite(run("pasa", inside, "fp16-full")).all()
    report = envelope.checks(outside, "fp16-full")
    assert not report.inside and report.binding.clause == clause
    with np.errstate(over="ignore", invalid="ignore"):
        assert not np.isfinite(run("pasa", outside, "fp16-full")).all()


def test_the_paper_case_is_inside_for_pasa_and_outside_for_the_baselines():
    """The PASA paper's uniform mean_val = 30, Am = 0.5, D = 128 case in fp16-full."""
    rng = np.random.default_rng(0)
    q, k, v = (((rng.random((1, 2, 64, 128)) - 0.5) + 30).astype(np.float16) for _ in range(3))
    case = Case(q, k, v)
    assert envelope.within(case, "fp16-full", "pasa")
    assert not envelope.within(case, "fp16-full", "naive")
    assert not envelope.within(case, "fp16-full", "flash")
    assert "INSIDE" in envelope.explain(case, "fp16-full").splitlines()[0]


@st.composite
def exactly_scalable(draw, profile: str) -> Case:
    """Cases on which scaling V by 2^s (|s| <= 3) is exact (PASA-PROP-4): positive values in
    [1, 2), scores of magnitude <= 1/2 (weights >= e^-1), at most 300 keys."""
    fmt = profiles.get(profile).input
    shape = draw(strategies.shapes(max_seq=300, max_dim=64, max_pairs=2**14))
    choice = draw(strategies.masks(shape))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = 0.5 / np.sqrt(shape.head_dim) ** 0.5  # |q|, |k| <= size sqrt(D): |lambda q.k| <= 1/2
    q, k = (rng.uniform(-size, size, s) for s in (shape.q, shape.k))
    v = rng.uniform(1.0, 2.0, shape.v)
    return Case(*(strategies.representable(x, fmt) for x in (q, k, v)), causal=choice.causal,
                mask=choice.mask, label=f"exactly scalable; mask={choice.kind}")


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(data=st.data())
def test_scaling_values_by_a_power_of_two_is_exact(kernel, profile, data):
    """PASA-PROP-4 (PASA-MR-3): out(2^s V) = 2^s out(V), bit for bit."""
    case = data.draw(exactly_scalable(profile))
    s = data.draw(st.integers(-3, 3))
    fmt = profiles.get(profile).input
    scaled = Case(case.q, case.k, fmt.to_storage(np.ldexp(case.v.astype(np.float64), s)),
                  causal=case.causal, mask=case.mask)
    np.testing.assert_array_equal(run(kernel, scaled, profile),
                                  np.ldexp(run(kernel, case, profile), s))


def grid_values(x: np.ndarray, profile: str) -> np.ndarray:
    """x on the grid 2^-g with |x| <= 8, g = p - 5 (6 for fp16): sums of two such values with
    magnitude < 16 are exact in the input format, so shifted problems stay exact."""
    fmt = profiles.get(profile).input
    grid = 2.0 ** -min(fmt.precision - 5, 20)
    return fmt.to_storage(np.clip(np.round(x / grid) * grid, -8.0, 8.0))


@st.composite
def shifted_pair(draw, profile: str, tensor: str) -> tuple[Case, Case, np.ndarray]:
    """(case, case with c added to every row of `tensor`, c): benign values on a grid and
    c in [-1, 1]^D on the same grid, so that the shift is exact (PASA-PROP-5)."""
    case = draw(strategies.cases(profile, **BENIGN))
    q, k, v = (grid_values(getattr(case, n).astype(np.float64), profile) for n in "qkv")
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    width = (k if tensor == "k" else v).shape[-1]
    c = grid_values(rng.uniform(-1.0, 1.0, width), profile).astype(np.float64)
    base = Case(q, k, v, causal=case.causal, mask=case.mask)
    moved = {"k": k, "v": v}
    moved[tensor] = profiles.get(profile).input.to_storage(moved[tensor].astype(np.float64) + c)
    assert (moved[tensor].astype(np.float64) == getattr(base, tensor).astype(np.float64) + c).all()
    return base, Case(q, moved["k"], moved["v"], causal=case.causal, mask=case.mask), c


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(data=st.data())
def test_adding_a_vector_to_every_key_keeps_the_output(kernel, profile, data):
    """PASA-PROP-5 (PASA-MR-1): the exact outputs are equal, so the kernel's two outputs differ
    by at most the sum of their PASA-ACC-1 bounds."""
    base, shifted, _ = data.draw(shifted_pair(profile, "k"))
    difference = np.abs(run(kernel, shifted, profile) - run(kernel, base, profile)).max()
    allowed = bound(kernel, profile, base) + bound(kernel, profile, shifted)
    assert aim(difference, allowed, "MR-1 difference / allowed") <= 1.0


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(data=st.data())
def test_adding_a_vector_to_every_value_adds_it_to_the_output(kernel, profile, data):
    """PASA-PROP-5 (PASA-MR-2): visible rows move by c, fully masked rows stay 0."""
    base, shifted, c = data.draw(shifted_pair(profile, "v"))
    inputs = validate(base.q, base.k, base.v, **base.call_kwargs())
    seen = inputs.ungroup(inputs.has_visible_key())  # B x Hq x S1 x 1
    expected = run(kernel, base, profile) + np.where(seen, c, 0.0)
    difference = np.abs(run(kernel, shifted, profile) - expected).max()
    allowed = bound(kernel, profile, base) + bound(kernel, profile, base, v=shifted.v)
    assert aim(difference, allowed, "MR-2 difference / allowed") <= 1.0


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("kernel", ONLINE)
@given(data=st.data(), blocks=st.tuples(st.integers(1, 64), st.integers(1, 64)))
def test_key_block_size_changes_results_only_within_the_bound(kernel, profile, data, blocks):
    """PASA-PROP-6 (PASA-BLK-1): two block sizes give outputs within the sum of their
    PASA-ACC-1 bounds (fp64: u = 2^-53, so they agree to about 1e-15 max|V| (1 + g R))."""
    case = data.draw(strategies.cases(profile, **{**BENIGN, "max_seq": 128}))
    first, second = (run(kernel, case, profile, block_k=b) for b in blocks)
    difference = np.abs(first - second).max()
    assert aim(difference, 2 * bound(kernel, profile, case), "block difference / allowed") <= 1


def test_the_spec_table_of_envelope_constants_matches_the_profiles():
    """specs/strategies-and-hunting.md lists Theta of every rounding point and gamma^ per
    bundled profile (after PASA-ENV-13); they must be what the envelope computes."""
    text = resources.files("pasa_ref.specs").joinpath("strategies-and-hunting.md").read_text()
    rows = {cells[0]: cells for line in text.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    for name in PROFILES:
        prof = profiles.get(name)
        theta = [envelope.overflow_threshold(f) for f in (
            prof.matmul_output, prof.vector, prof.statistics, prof.accumulator, prof.output)]
        gamma = float(prof.statistics.round(prof.beta / (1 - prof.beta)))
        expected = [name, prof.input.name, prof.scale_at, *(f"{t:.6g}" for t in theta),
                    f"{gamma:.7g}"]
        assert rows[name] == expected, name
