"""Rounding into fp16/bf16/fp32 (PASA-NUM-1/2): bit-exact against independent conversions."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pasa_ref import formats
from pasa_ref.arithmetic import Arithmetic
from pasa_ref.formats import round_binary64
from pasa_ref.profiles import get as get_profile

EDGES32 = np.float32(
    [
        0.0,
        -0.0,
        1.0,
        65504.0,
        65519.99,
        65520.0,
        -65520.0,
        65536.0,
        3.0e38,
        -3.0e38,
        2.0**-24,
        2.0**-25,
        1.5 * 2.0**-24,
        2.5 * 2.0**-24,
        -2.5 * 2.0**-24,
        2.0**-14,
        2.0**-14 * (1 - 2.0**-12),
        1 + 2.0**-11,
        1 + 3 * 2.0**-11,
        1 + 2.0**-8,
        1 + 3 * 2.0**-8,
        np.inf,
        -np.inf,
        np.nan,
        1e-45,
        -1e-45,
    ]
)


def all_kinds_of_binary32(seed: int, count: int = 200_000) -> np.ndarray:
    """Random bit patterns (every class: normal, subnormal, inf, NaN) plus values spread over
    the fp16 range, plus hand-picked ties and overflow thresholds."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, size=count, dtype=np.uint64).astype(np.uint32).view(np.float32)
    spread = (rng.standard_normal(count) * np.exp2(rng.uniform(-30, 18, count))).astype(np.float32)
    return np.concatenate([bits, spread, EDGES32])


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    both_nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.uint32) == b.view(np.uint32)) | both_nan))


@pytest.mark.parametrize("seed", [0, 1])
def test_fp16_rounding_equals_numpy_float16_cast(seed):
    x = all_kinds_of_binary32(seed)
    with np.errstate(over="ignore", invalid="ignore"):
        expected = x.astype(np.float16).astype(np.float32)
    assert same_bits(formats.get("fp16").round(x), expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_bf16_rounding_equals_ml_dtypes_cast_from_binary32(seed):
    x = all_kinds_of_binary32(seed)
    expected = x.astype(ml_dtypes.bfloat16).astype(np.float32)
    assert same_bits(formats.get("bf16").round(x), expected)


@pytest.mark.parametrize("name", ["fp16", "bf16"])
def test_fast_paths_equal_the_generic_binary64_rounding(name):
    fmt = formats.get(name)
    x = all_kinds_of_binary32(2)
    generic = round_binary64(x.astype(np.float64), fmt.precision, fmt.emin, fmt.emax)
    assert same_bits(fmt.round(x), generic.astype(np.float32))


def test_bf16_from_binary64_has_no_double_rounding():
    """1 + 2^-8 + 2^-30 is just above a bf16 tie: it rounds up. Going through binary32 first
    loses the 2^-30 and the tie then rounds to even (down): ml_dtypes' cast does that."""
    x = np.array([1 + 2.0**-8 + 2.0**-30])
    assert formats.get("bf16").round(x)[0] == 1 + 2.0**-7


@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_generic_rounding_is_nearest_and_idempotent(value):
    fmt = formats.get("fp16")
    rounded = float(round_binary64(np.array([value]), 11, -14, 15)[0])
    assert float(round_binary64(np.array([rounded]), 11, -14, 15)[0]) == rounded
    if np.isfinite(rounded):
        with np.errstate(over="ignore"):
            cast = float(np.float16(value))
        assert rounded == cast
    else:
        assert abs(value) >= fmt.max_finite + 2.0 ** (fmt.emax - fmt.precision)


def test_format_constants():
    fp16, bf16 = formats.get("fp16"), formats.get("bf16")
    assert fp16.max_finite == 65504.0
    assert fp16.smallest_subnormal == 2.0**-24
    assert bf16.max_finite == float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    assert fp16.unit_roundoff == 2.0**-11
    assert formats.get("fp32").contains(fp16) and formats.get("fp32").contains(bf16)
    assert not fp16.contains(bf16) and not bf16.contains(fp16)


def test_overflow_gives_inf_and_inf_minus_inf_gives_nan_in_the_arithmetic():
    ar = Arithmetic(get_profile("fp16-full"))
    with ar.ieee():
        big = ar.vector(np.float32([60000.0]) * np.float32(2.0))
        assert np.isposinf(big[0])
        assert np.isnan(ar.vector(big - big)[0])


def test_unknown_format_is_a_clear_error():
    with pytest.raises(ValueError, match="format: expected one of .* got 'fp8'"):
        formats.get("fp8")
