"""Reference kernels against an independent float64 attention (PASA-EQ-1, PASA-EQ-3,
PASA-ACC-1), plus the structural relations every kernel must honour."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasa_ref import profiles
from pasa_ref.accuracy import reference_bound as accuracy_bound
from pasa_ref.kernels import KERNELS, pasa
from tests.float64_attention import attention64


@st.composite
def attention_problems(draw, max_seq_q: int = 40, max_seq_k: int = 160):
    """Benign problems of the PASA-ACC-1 domain: shapes with GQA, ragged lengths, masks."""
    hkv = draw(st.integers(1, 2))
    heads = hkv * draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    s1 = draw(st.integers(1, max_seq_q))
    s2 = draw(st.integers(1, max_seq_k))
    d = draw(st.sampled_from([1, 3, 8, 16, 33, 64]))
    sd = draw(st.sampled_from([0.25, 1.0, 3.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((batch, heads, s1, d)) * sd
    k = rng.standard_normal((batch, hkv, s2, d)) * sd
    v = rng.standard_normal((batch, hkv, s2, d))
    kind = draw(st.sampled_from(["none", "causal", "random", "padding"]))
    mask = None
    if kind == "random":
        mask = rng.random((batch, 1, s1, s2)) < 0.7
    elif kind == "padding":
        lengths = rng.integers(0, s2 + 1, size=(batch, 1, 1, 1))
        mask = np.arange(s2) < lengths
    return {"q": q, "k": k, "v": v, "causal": kind == "causal", "mask": mask}


def run(kernel: str, problem: dict, profile: str, **options) -> tuple[np.ndarray, np.ndarray]:
    """(kernel output in float64, exact output, row range) on inputs cast to the profile."""
    dtype = profiles.get(profile).input.storage
    q, k, v = (problem[name].astype(dtype) for name in "qkv")
    out = KERNELS[kernel](
        q, k, v, profile=profile, causal=problem["causal"], mask=problem["mask"], **options
    )
    exact, score_range = attention64(q, k, v, causal=problem["causal"], mask=problem["mask"])
    return out.astype(np.float64), exact, score_range


block_sizes = st.integers(1, 64)
betas = st.floats(0.05, 0.99)


@pytest.mark.parametrize("profile", ["fp64", "fp32"])
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(problem=attention_problems(), block_q=block_sizes, block_k=block_sizes, beta=betas)
def test_wide_profiles_match_float64_attention(kernel, profile, problem, block_q, block_k, beta):
    options = {"block_q": block_q}
    if kernel != "naive":
        options["block_k"] = block_k
    if kernel == "pasa":
        options["beta"] = beta
    out, exact, score_range = run(kernel, problem, profile, **options)
    bound = accuracy_bound(kernel, profile, problem["v"], score_range, beta)
    assert np.isfinite(out).all()
    assert np.abs(out - exact).max() <= bound


@pytest.mark.parametrize(
    "profile", ["fp16-full", "fp16-mixed", "bf16-full", "bf16-mixed", "bf16-in-fp16"]
)
@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(problem=attention_problems())
def test_low_precision_profiles_within_spec_bound(kernel, profile, problem):
    out, exact, score_range = run(kernel, problem, profile)
    v = problem["v"].astype(profiles.get(profile).input.storage)
    bound = accuracy_bound(kernel, profile, v, score_range, profiles.get(profile).beta)
    assert np.isfinite(out).all()
    assert np.abs(out - exact).max() <= bound


@pytest.mark.parametrize("ragged", ["pad", "authors"])
@given(problem=attention_problems(max_seq_k=300), block_k=st.integers(2, 64), beta=betas)
def test_padding_and_true_length_agree_in_exact_arithmetic(ragged, problem, block_k, beta):
    """PASA-BLK-2..4: a padded ragged block (the last row repeated, or the authors' padding)
    and the true-length block give the same output up to binary64 rounding."""
    q, k, v = problem["q"], problem["k"], problem["v"]
    common = {
        "profile": "fp64",
        "causal": problem["causal"],
        "mask": problem["mask"],
        "block_k": block_k,
        "beta": beta,
    }
    padded = pasa.attention(q, k, v, ragged=ragged, **common)
    true_length = pasa.attention(q, k, v, ragged="true-length", **common)
    _, score_range = attention64(q, k, v, causal=problem["causal"], mask=problem["mask"])
    bound = accuracy_bound("pasa", "fp64", v, score_range, beta)
    assert np.abs(padded - true_length).max() <= 2 * bound


@pytest.mark.parametrize("ragged", ["pad", "authors"])
def test_padding_differs_from_true_length_in_fp16(ragged):
    """The ragged modes are different computations: in fp16 they round differently."""
    rng = np.random.default_rng(7)
    q, k, v = (rng.standard_normal((1, 2, 16, 32)).astype(np.float16) for _ in range(3))
    k = np.concatenate([k, k[:, :, :5]], axis=2)
    v = np.concatenate([v, v[:, :, :5]], axis=2)
    padded = pasa.attention(q, k, v, profile="fp16-full", block_k=8, ragged=ragged)
    true_length = pasa.attention(q, k, v, profile="fp16-full", block_k=8)
    assert not np.array_equal(padded, true_length)


@pytest.mark.parametrize("seq_k", [5, 21, 30])
def test_authors_padding_is_their_padded_input(seq_k):
    """PASA-BLK-4, built as the authors' script does it: S2 padded to a multiple of n with
    the last P rows of K and V appended again (zeros when S2 < n), the padded keys masked,
    every block full. Run through the true-length mode, it gives the same bits in fp16."""
    n = 8
    rng = np.random.default_rng(seq_k)
    q = rng.standard_normal((1, 2, 6, 16)).astype(np.float16)
    k = (rng.standard_normal((1, 2, seq_k, 16)) + 4).astype(np.float16)
    v = rng.standard_normal((1, 2, seq_k, 16)).astype(np.float16)
    missing = -seq_k % n
    if seq_k >= n:
        k_pad, v_pad = k[:, :, seq_k - missing :], v[:, :, seq_k - missing :]
    else:
        k_pad, v_pad = np.zeros_like(k[:, :, :missing]), np.zeros_like(v[:, :, :missing])
    k_full = np.concatenate([k, k_pad], axis=2)
    v_full = np.concatenate([v, v_pad], axis=2)
    real_keys = np.arange(seq_k + missing) < seq_k
    for causal in (False, True):
        visible = real_keys & (
            np.arange(seq_k + missing)[None, :] <= np.arange(6)[:, None] + seq_k - 6
            if causal
            else True
        )
        authors = pasa.attention(
            q, k, v, profile="fp16-full", block_k=n, ragged="authors", causal=causal
        )
        by_hand = pasa.attention(q, k_full, v_full, profile="fp16-full", block_k=n, mask=visible)
        assert np.array_equal(authors, by_hand)


def uniform_case(mean: float, amplitude: float, shape, seed: int = 0) -> np.ndarray:
    """The PASA paper's "uniform" benchmark input: (rand - 0.5) * 2 * Am + mean_val, fp16."""
    rng = np.random.default_rng(seed)
    return ((rng.random(shape) - 0.5) * 2 * amplitude + mean).astype(np.float16)


def test_fp16_full_baselines_overflow_where_pasa_does_not():
    """The paper's uniform case mean_val = 30, Am = 0.5, D = 128: raw q.k ~ 128 * 900 exceeds
    fp16's 65504, so naive and flash (scores formed before scaling) give inf/NaN; pasa
    (scale and shift folded into M) stays finite and accurate to a few fp16 ulps of max|V|."""
    shape = (1, 2, 64, 128)
    q, k, v = (uniform_case(30.0, 0.5, shape, seed) for seed in range(3))
    assert np.abs(q.astype(np.float64) @ k.astype(np.float64).swapaxes(-1, -2)).max() > 65504
    for kernel in ("naive", "flash"):
        out = KERNELS[kernel](q, k, v, profile="fp16-full")
        assert not np.isfinite(out.astype(np.float64)).any(), kernel
    out = KERNELS["pasa"](q, k, v, profile="fp16-full").astype(np.float64)
    exact, _ = attention64(q, k, v)
    assert np.isfinite(out).all()
    fp16_unit_roundoff = 2.0**-11
    assert np.abs(out - exact).max() <= 8 * fp16_unit_roundoff * np.abs(v.astype(float)).max()


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("profile", ["fp64", "fp16-full"])
def test_fully_masked_rows_are_zero(kernel, profile):
    """PASA-MASK-3: rows with no visible key give 0; other rows are unaffected."""
    rng = np.random.default_rng(3)
    dtype = profiles.get(profile).input.storage
    q, k, v = (rng.standard_normal((1, 2, 6, 8)).astype(dtype) for _ in range(3))
    mask = np.ones((1, 1, 6, 6), dtype=bool)
    mask[..., 2, :] = False
    out = KERNELS[kernel](q, k, v, profile=profile, mask=mask).astype(np.float64)
    assert np.all(out[:, :, 2] == 0)
    assert np.isfinite(out).all()
    assert np.abs(out[:, :, 3]).max() > 0


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(problem=attention_problems(), profile=st.sampled_from(["fp32", "fp16-full", "bf16-mixed"]))
def test_gqa_equals_mha_with_repeated_heads(kernel, problem, profile):
    """PASA-IO-2: query head h reads key/value head h // G, exactly as repeat_interleave."""
    dtype = profiles.get(profile).input.storage
    q, k, v = (problem[name].astype(dtype) for name in "qkv")
    group = q.shape[1] // k.shape[1]
    common = {"profile": profile, "causal": problem["causal"], "mask": problem["mask"]}
    grouped = KERNELS[kernel](q, k, v, **common)
    repeated = KERNELS[kernel](q, np.repeat(k, group, 1), np.repeat(v, group, 1), **common)
    np.testing.assert_array_equal(grouped, repeated)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(problem=attention_problems())
def test_causal_equals_explicit_bottom_right_mask(kernel, problem):
    """PASA-MASK-2: causal=True is the mask t <= i + (S2 - S1), bit for bit."""
    q, k, v = (problem[name].astype(np.float16) for name in "qkv")
    s1, s2 = q.shape[2], k.shape[2]
    triangle = np.arange(s2)[None, :] <= np.arange(s1)[:, None] + (s2 - s1)
    causal = KERNELS[kernel](q, k, v, profile="fp16-full", causal=True)
    explicit = KERNELS[kernel](q, k, v, profile="fp16-full", mask=triangle)
    np.testing.assert_array_equal(causal, explicit)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@given(problem=attention_problems(), block_q=st.integers(1, 50))
def test_query_block_size_never_changes_the_result(kernel, problem, block_q):
    """PASA-BLK-1: query rows are independent, in every profile."""
    q, k, v = (problem[name].astype(np.float16) for name in "qkv")
    common = {"profile": "fp16-full", "causal": problem["causal"], "mask": problem["mask"]}
    np.testing.assert_array_equal(
        KERNELS[kernel](q, k, v, block_q=block_q, **common), KERNELS[kernel](q, k, v, **common)
    )


@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_batch_and_head_independence(kernel):
    """Each (batch, head) is computed on its own: slicing commutes with the kernel."""
    rng = np.random.default_rng(11)
    q = rng.standard_normal((3, 4, 20, 16)).astype(np.float16)
    k, v = (rng.standard_normal((3, 2, 30, 16)).astype(np.float16) for _ in range(2))
    whole = KERNELS[kernel](q, k, v, profile="fp16-full")
    part = KERNELS[kernel](q[1:2, 2:4], k[1:2, 1:2], v[1:2, 1:2], profile="fp16-full")
    np.testing.assert_array_equal(whole[1:2, 2:4], part)


@pytest.mark.parametrize("profile", profiles.names())
@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_output_dtype_and_shape(kernel, profile):
    prof = profiles.get(profile)
    rng = np.random.default_rng(5)
    q = rng.standard_normal((2, 4, 5, 8)).astype(prof.input.storage)
    k = rng.standard_normal((2, 2, 9, 8)).astype(prof.input.storage)
    v = rng.standard_normal((2, 2, 9, 3)).astype(prof.input.storage)
    out = KERNELS[kernel](q, k, v, profile=profile)
    assert out.shape == (2, 4, 5, 3)
    assert out.dtype == prof.output.storage


@pytest.mark.parametrize("scale_at", ["q", "scores", "shift"])
@pytest.mark.parametrize("kernel", sorted(KERNELS))
def test_every_scale_placement_is_attention_in_fp64(kernel, scale_at):
    rng = np.random.default_rng(9)
    q, k, v = (rng.standard_normal((1, 2, 17, 8)) for _ in range(3))
    out = KERNELS[kernel](q, k, v, profile="fp64", scale_at=scale_at, scale=0.3)
    exact, _ = attention64(q, k, v, scale=0.3)
    np.testing.assert_allclose(out, exact, rtol=0, atol=1e-13)


def test_shift_matrix_entries():
    m = pasa.shift_matrix(4, 0.5, 2.0)
    assert m[0, 0] == 2.0 * (1 - 0.5 / 4)
    assert m[0, 1] == -2.0 * 0.5 / 4
    assert m.shape == (4, 4)
