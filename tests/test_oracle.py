"""The oracle (spec specs/oracle-and-metrics.md, PASA-ORC): hand-checkable cases, the exact
path's guarantee, the fast path against the exact path on adversarial inputs, the oracle
against a plain float64 attention, the error-free split and the exp assumptions."""

from __future__ import annotations

import math
from fractions import Fraction
from unittest import mock

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasa_ref import oracle
from pasa_ref.inputs import InputError
from pasa_ref.oracle import exact, fast
from pasa_ref.oracle.split import slice_bits, split
from tests.float64_attention import attention64

METHODS = ("mpmath", "fast")
DTYPES = {
    "fp16": np.dtype(np.float16),
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "fp32": np.dtype(np.float32),
    "fp64": np.dtype(np.float64),
}


def arrays(rng, shape, dtype="fp16", scale=1.0, loc=0.0):
    return (loc + scale * rng.standard_normal(shape)).astype(DTYPES[dtype])


def assert_within(result, expected):
    """|output - expected| <= bound elementwise, expected exact (a float64 value or array)."""
    err = np.abs(result.output - expected)
    assert (err <= result.bound).all(), float((err - result.bound).max())


# ---------------------------------------------------------------- hand-checkable cases


@pytest.mark.parametrize("method", METHODS)
def test_one_key_returns_its_value(method):
    rng = np.random.default_rng(0)
    q, k, v = arrays(rng, (2, 4, 3, 8)), arrays(rng, (2, 2, 1, 8)), arrays(rng, (2, 2, 1, 5))
    result = oracle.attention(q, k, v, method=method)
    expected = np.repeat(v.astype(np.float64), 2, axis=1).repeat(3, axis=2)
    np.testing.assert_array_equal(result.output, expected)
    assert result.method == method
    assert result.max_bound <= (1e-40 if method == "mpmath" else 1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_equal_scores_give_the_mean_value(method):
    rng = np.random.default_rng(1)
    q = np.zeros((1, 1, 2, 4), dtype=np.float32)
    k, v = arrays(rng, (1, 1, 7, 4), "fp32"), arrays(rng, (1, 1, 7, 3), "fp32")
    result = oracle.attention(q, k, v, method=method)
    mean = [float(sum(Fraction(float(x)) for x in v[0, 0, :, c]) / 7) for c in range(3)]
    assert_within(result, np.array(mean))
    if method == "mpmath":  # correctly rounded
        np.testing.assert_array_equal(result.output[0, 0, 0], mean)


@pytest.mark.parametrize("method", METHODS)
def test_one_hot_attention(method):
    # key 2 scores 64 * 64 * 4 / 2 = 8192 above the others: its weight is 1, the others e^-8192
    q = np.full((1, 1, 1, 4), 64.0, dtype=np.float16)
    k = np.zeros((1, 1, 5, 4), dtype=np.float16)
    k[0, 0, 2] = 64.0
    v = np.arange(15, dtype=np.float16).reshape(1, 1, 5, 3) - 4
    result = oracle.attention(q, k, v, method=method)
    np.testing.assert_array_equal(result.output[0, 0, 0], v[0, 0, 2].astype(np.float64))


@pytest.mark.parametrize("method", METHODS)
def test_two_keys_by_hand(method):
    # scores 0 and 1 (scale 0.5): o = (v0 + e v1) / (1 + e), checked with mpmath at 60 digits
    q = np.ones((1, 1, 1, 1), dtype=np.float64)
    k = np.array([0.0, 2.0]).reshape(1, 1, 2, 1)
    v = np.array([1.0, -3.0]).reshape(1, 1, 2, 1)
    result = oracle.attention(q, k, v, scale=0.5, method=method)
    with mpmath.workdps(60):
        e = mpmath.e
        exact_value = (1 - 3 * e) / (1 + e)
        assert abs(mpmath.mpf(float(result.output[0, 0, 0, 0])) - exact_value) <= mpmath.mpf(
            float(result.bound[0, 0, 0, 0])
        )
    assert result.bound[0, 0, 0, 0] <= (3 * 2.0**-53 if method == "mpmath" else 3e-14)


@pytest.mark.parametrize("method", METHODS)
def test_masks_select_keys_and_fully_masked_rows_are_zero(method):
    rng = np.random.default_rng(2)
    q, k, v = arrays(rng, (1, 2, 3, 4)), arrays(rng, (1, 2, 5, 4)), arrays(rng, (1, 2, 5, 2))
    mask = np.zeros((1, 2, 3, 5), dtype=bool)
    mask[0, 0, 0, 3] = True  # row 0 of head 0 sees key 3 only
    mask[0, 1, 1, [0, 4]] = True  # row 1 of head 1 sees keys 0 and 4; every other row nothing
    result = oracle.attention(q, k, v, mask=mask, method=method)
    np.testing.assert_array_equal(result.output[0, 0, 0], v[0, 0, 3].astype(np.float64))
    np.testing.assert_array_equal(result.output[0, 0, 1:], 0.0)
    np.testing.assert_array_equal(result.bound[0, 0, 1:], 0.0)
    expected, _ = attention64(q, k, v, mask=mask)
    np.testing.assert_allclose(result.output[0, 1, 1], expected[0, 1, 1], rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_causal_is_bottom_right_and_combines_with_mask(method):
    rng = np.random.default_rng(3)
    q, k, v = arrays(rng, (1, 1, 3, 4)), arrays(rng, (1, 1, 5, 4)), arrays(rng, (1, 1, 5, 2))
    mask = np.ones((3, 5), dtype=bool)
    mask[0, :3] = False  # row 0 sees keys 0..2 causally: with the mask, nothing
    result = oracle.attention(q, k, v, causal=True, mask=mask, method=method)
    np.testing.assert_array_equal(result.output[0, 0, 0], 0.0)
    expected, _ = attention64(q, k, v, causal=True, mask=mask)
    np.testing.assert_allclose(result.output, expected, rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", METHODS)
def test_gqa_reads_head_h_over_g(method):
    rng = np.random.default_rng(4)
    q, k, v = arrays(rng, (2, 6, 3, 4)), arrays(rng, (2, 2, 4, 4)), arrays(rng, (2, 2, 4, 3))
    grouped = oracle.attention(q, k, v, method=method)
    repeated = oracle.attention(q, k.repeat(3, axis=1), v.repeat(3, axis=1), method=method)
    np.testing.assert_array_equal(grouped.output, repeated.output)


def test_default_scale_is_the_binary64_inverse_square_root():
    rng = np.random.default_rng(5)
    q, k, v = arrays(rng, (1, 1, 2, 6)), arrays(rng, (1, 1, 3, 6)), arrays(rng, (1, 1, 3, 2))
    a = oracle.attention(q, k, v, method="mpmath")
    b = oracle.attention(q, k, v, scale=1.0 / math.sqrt(6), method="mpmath")
    c = oracle.attention(q, k, v, scale=np.nextafter(1.0 / math.sqrt(6), 1.0), method="mpmath")
    np.testing.assert_array_equal(a.output, b.output)
    assert not np.array_equal(a.output, c.output)


def test_auto_picks_mpmath_for_small_and_fast_for_large_problems():
    rng = np.random.default_rng(6)
    small = [arrays(rng, (1, 1, 4, 4)) for _ in range(3)]
    large = [arrays(rng, (1, 1, 80, 4)) for _ in range(3)]
    assert oracle.attention(*small).method == "mpmath"
    assert oracle.attention(*large).method == "fast"


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"method": "exact"}, "method"),
        ({"digits": 10}, "digits"),
        ({"digits": 50.0}, "digits"),
        ({"scale": -1.0}, "scale"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    x = np.ones((1, 1, 2, 2), dtype=np.float16)
    with pytest.raises(InputError, match=f"'{name}'"):
        oracle.attention(x, x, x, **kwargs)


def test_inputs_go_through_validate():
    x = np.ones((1, 1, 2, 2), dtype=np.float16)
    with pytest.raises(InputError, match="'k'"):
        oracle.attention(x, x.astype(np.float32), x)


# ---------------------------------------------------------------- the exact path's guarantee


def test_mpmath_bound_is_half_an_ulp_plus_the_stated_term():
    rng = np.random.default_rng(7)
    q, k, v = (
        arrays(rng, (1, 2, 5, 8), "fp32", 3),
        arrays(rng, (1, 2, 9, 8), "fp32", 3),
        arrays(rng, (1, 2, 9, 4), "fp32"),
    )
    result = oracle.attention(q, k, v, method="mpmath", digits=50)
    term = 2 * 9 * 2.0 ** -exact.precision_bits(50) * np.abs(v).max()
    half_ulp = np.spacing(np.abs(result.output)) / 2
    assert (result.bound <= half_ulp * (1 + 1e-12) + term).all()


def test_mpmath_agrees_with_itself_at_higher_precision():
    rng = np.random.default_rng(8)
    q, k, v = (
        arrays(rng, (1, 1, 4, 6), "bf16", 8, 5),
        arrays(rng, (1, 1, 7, 6), "bf16", 8),
        arrays(rng, (1, 1, 7, 3), "bf16"),
    )
    a = oracle.attention(q, k, v, method="mpmath", digits=20)
    b = oracle.attention(q, k, v, method="mpmath", digits=120)
    assert (np.abs(a.output - b.output) <= a.bound + b.bound).all()
    assert b.max_bound < a.max_bound or a.max_bound == b.max_bound == 0


def test_mpmath_exp_meets_the_stated_accuracy():
    """PASA-ORC-3 assumes mpmath's exp at p bits has relative error < 2^(10 - p)."""
    rng = np.random.default_rng(9)
    low, high = mpmath.MPContext(), mpmath.MPContext()
    low.prec, high.prec = 120, 400
    for x in np.concatenate([-rng.exponential(30, 300), -rng.uniform(0, 1e-5, 50)]):
        approx = low.exp(low.mpf(float(x)))
        truth = high.exp(high.mpf(float(x)))
        assert abs(high.mpf(approx) - truth) <= truth * high.mpf(2) ** (10 - low.prec)


def test_numpy_exp_meets_the_stated_accuracy():
    """PASA-ORC-7 assumes numpy's binary64 exp has relative error <= EXP_REL_ERROR where the
    result is normal and absolute error <= 2^-1074 below; measured here against mpmath."""
    rng = np.random.default_rng(10)
    x = np.concatenate(
        [
            rng.uniform(-745.2, 1.0, 6000),
            -rng.exponential(1e-3, 2000),
            rng.uniform(-745.2, -700.0, 2000),
            [0.0, -1e-300, 1.0],
        ]
    )
    y = np.exp(x)
    ctx = mpmath.MPContext()
    ctx.prec = 120
    tiny = ctx.mpf(2) ** -1022
    for xi, yi in zip(x.tolist(), y.tolist()):
        truth = ctx.exp(ctx.mpf(xi))
        err = abs(ctx.mpf(yi) - truth)
        if truth >= tiny:
            assert err <= truth * fast.EXP_REL_ERROR / 2
        else:
            assert err <= ctx.mpf(2) ** -1074


# ---------------------------------------------------------------- the error-free split


@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=24),
    st.integers(1, 256),
)
def test_split_is_error_free(values, terms):
    x = np.array(values).reshape(1, -1)
    e = np.frexp(np.abs(x).max(axis=-1, keepdims=True))[1]
    beta = slice_bits(terms)
    parts = split(x, e, beta, max_slices=80)
    for a, s in enumerate(parts.slices):
        units = np.ldexp(s, beta * (a + 1))
        np.testing.assert_array_equal(units, np.rint(units))
        assert (np.abs(s) <= 2.0 ** (-a * beta)).all()
    scale = Fraction(2) ** int(e[0, 0])
    for j, value in enumerate(x[0].tolist()):
        pieces = sum(Fraction(float(s[0, j])) for s in parts.slices)
        assert abs(Fraction(value) / scale - pieces) <= Fraction(float(parts.residual[0, j]))


def test_slice_products_sum_exactly():
    rng = np.random.default_rng(11)
    d = 256
    beta = slice_bits(fast.MAX_SLICES * d)
    wide = rng.standard_normal((3, d)) * 2.0 ** rng.integers(-26, 15, (3, d))
    a = wide.astype(np.float16).astype(np.float64)  # fp16 values from subnormals to 2^15
    b = rng.standard_normal((4, d)).astype(np.float16).astype(np.float64)
    qa = split(a, np.frexp(np.abs(a).max(axis=-1, keepdims=True))[1], beta, fast.MAX_SLICES)
    kb = split(b, np.frexp(np.abs(b).max())[1], beta, fast.MAX_SLICES)
    assert len(qa.slices) == 2 and not qa.residual.any()  # fp16 rows: two slices, exact
    for x, y in ((qa.slices[0], kb.slices[0]), (qa.slices[-1], kb.slices[0])):
        got = x @ y.T
        want = [[sum(Fraction(u) * Fraction(w) for u, w in zip(r, c)) for c in y] for r in x]
        assert [[Fraction(g) for g in row] for row in got.tolist()] == want


# ---------------------------------------------------------------- fast path vs mpmath


@st.composite
def adversarial(draw):
    """Small attention problems in the shapes and value ranges that break naive attention:
    large bias, large amplitude, resonance (q and k in phase), ragged key blocks, masks."""
    fmt = draw(st.sampled_from(sorted(DTYPES)))
    b, hkv, g = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    s1, s2 = draw(st.integers(1, 5)), draw(st.integers(1, 12))
    d, dv = draw(st.integers(1, 16)), draw(st.integers(1, 4))
    limit = {"fp16": 6e4, "bf16": 1e30, "fp32": 1e30, "fp64": 1e150}[fmt]
    amplitude = draw(st.sampled_from([1.0, 30.0, 300.0, 3e4, limit]))
    bias = draw(st.sampled_from([0.0, 10.0, 100.0, 3e3, limit / 4]))
    kind = draw(st.sampled_from(["uniform", "hybrid", "resonant"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    def values(shape, bias, amplitude):
        if kind == "uniform":
            x = bias + amplitude * rng.uniform(-1, 1, shape)
        elif kind == "hybrid":
            x = rng.normal(bias, 1, shape) + rng.normal(0, amplitude, shape) * (
                rng.random(shape) < 0.05
            )
        else:
            phase = np.cos(np.arange(shape[-1]) * 0.7)
            x = bias + amplitude * phase * rng.uniform(0.5, 1, shape[:-1] + (1,))
        return np.clip(x, -limit, limit).astype(DTYPES[fmt])

    q = values((b, hkv * g, s1, d), bias, amplitude)
    k = values((b, hkv, s2, d), bias, amplitude)
    v = values((b, hkv, s2, dv), draw(st.sampled_from([0.0, 5.0])), 1.0)
    mask = None
    if draw(st.booleans()):
        mask = rng.random((b, hkv * g, s1, s2)) < draw(st.sampled_from([0.1, 0.5, 0.9]))
    causal = draw(st.booleans())
    key_block = draw(st.sampled_from([1, 3, 4, fast.KEY_BLOCK]))
    scale = draw(st.sampled_from([None, None, 1e-310, 1e-3, 7.0, 1e300]))
    return q, k, v, mask, causal, key_block, scale


def check_fast_against_mpmath(q, k, v, mask, causal, key_block, scale=None):
    options = {"mask": mask, "causal": causal, "scale": scale}
    with mock.patch.object(fast, "KEY_BLOCK", key_block):
        quick = oracle.attention(q, k, v, method="fast", **options)
    truth = oracle.attention(q, k, v, method="mpmath", **options)
    assert np.isfinite(quick.output).all() and np.isfinite(quick.bound).all()
    err = np.abs(quick.output - truth.output)
    assert (err <= quick.bound + truth.bound).all(), float((err - quick.bound).max())
    return quick


@given(adversarial())
def test_fast_path_within_its_bound_of_mpmath(problem):
    check_fast_against_mpmath(*problem)


@given(st.integers(0, 2**32 - 1), st.sampled_from(["fp16", "bf16"]), st.booleans())
def test_fast_path_across_key_blocks(seed, fmt, causal):
    """More keys than KEY_BLOCK, with a ragged last block, at the real block size."""
    rng = np.random.default_rng(seed)
    s2 = int(rng.integers(fast.KEY_BLOCK + 1, 2 * fast.KEY_BLOCK + 100))
    q = arrays(rng, (1, 2, 2, 8), fmt, 30, 20)
    k = arrays(rng, (1, 1, s2, 8), fmt, 30, 20)
    v = arrays(rng, (1, 1, s2, 3), fmt)
    check_fast_against_mpmath(q, k, v, None, causal, fast.KEY_BLOCK)


def test_fast_path_at_head_size_256():
    """D = 256 (beta = 20): fp16 rows with large bias still split exactly in two slices."""
    rng = np.random.default_rng(15)
    phase = np.cos(np.arange(256) * 0.37)
    q = (300 + 1000 * phase * rng.uniform(0.5, 1, (1, 2, 2, 1))).astype(np.float16)
    k = (300 + 1000 * phase * rng.uniform(0.5, 1, (1, 1, 700, 1))).astype(np.float16)
    k[..., ::7] = rng.standard_normal((1, 1, 700, 37)).astype(np.float16)  # tiny entries too
    v = rng.standard_normal((1, 1, 700, 4)).astype(np.float16)
    quick = check_fast_against_mpmath(q, k, v, None, True, fast.KEY_BLOCK)
    assert quick.exact_rows == 0 and quick.max_bound < 1e-12


def test_fast_path_bound_is_small_on_fp16_extremes():
    """Resonant fp16 inputs at the top of the range (scores ~ 1e9): the bound stays ~1e-13."""
    phase = np.cos(np.arange(64) * 0.3)
    q = (60000 * phase).astype(np.float16).reshape(1, 1, 1, 64).repeat(3, axis=2)
    k = (np.array([60000, -60000, 59000, 30])[:, None] * phase).astype(np.float16)
    v = np.arange(8, dtype=np.float16).reshape(1, 1, 4, 2)
    quick = check_fast_against_mpmath(q, k.reshape(1, 1, 4, 64), v, None, False, fast.KEY_BLOCK)
    assert quick.exact_rows == 0
    assert quick.max_bound <= 1e-12 * 7


def test_fast_path_hands_hopeless_rows_to_the_exact_path():
    """fp64 scores ~1e300 cannot be resolved in binary64: those rows go to mpmath."""
    rng = np.random.default_rng(12)
    q = rng.uniform(-1, 1, (1, 1, 3, 4)) * 1e150
    k = rng.uniform(-1, 1, (1, 1, 6, 4)) * 1e150
    v = rng.standard_normal((1, 1, 6, 2))
    quick = check_fast_against_mpmath(q, k, v, None, False, fast.KEY_BLOCK)
    assert quick.exact_rows == 3


def test_fast_path_refines_its_reference_key():
    """Scores near 2^78 that differ by 2^21 m in a coordinate the binary64 estimate cannot see:
    the estimate's reference key is wrong (without refinement the row goes to the exact path);
    one refinement finds the right one."""
    m = np.array([-3, 0, 2, -1, 3, 1, 3, -2])
    q = np.array([2.0**40, 1.0]).reshape(1, 1, 1, 2).astype(ml_dtypes.bfloat16)
    k = np.stack([np.full(8, 2.0**40), 2.0**30 * (1 + m * 2.0**-7)], axis=-1)
    k = k.reshape(1, 1, 8, 2).astype(ml_dtypes.bfloat16)
    v = np.random.default_rng(13).standard_normal((1, 1, 8, 2)).astype(ml_dtypes.bfloat16)
    with mock.patch.object(fast, "MAX_REFINEMENTS", 0):
        assert oracle.attention(q, k, v, method="fast").exact_rows == 1
    quick = check_fast_against_mpmath(q, k, v, None, False, fast.KEY_BLOCK)
    assert quick.exact_rows == 0


# ---------------------------------------------------------------- oracle vs float64 attention


@pytest.mark.parametrize("fmt", sorted(DTYPES))
@pytest.mark.parametrize("method", METHODS)
def test_oracle_matches_float64_attention_on_benign_inputs(fmt, method):
    rng = np.random.default_rng(14)
    q, k, v = (
        arrays(rng, (2, 4, 6, 16), fmt),
        arrays(rng, (2, 2, 9, 16), fmt),
        arrays(rng, (2, 2, 9, 8), fmt),
    )
    result = oracle.attention(q, k, v, causal=True, method=method)
    np.testing.assert_allclose(result.output, attention64(q, k, v, causal=True)[0], atol=1e-14)
    assert result.max_bound <= 1e-13
