"""Accuracy metrics (spec PASA-MET) on vectors whose values are known by hand."""

from __future__ import annotations

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pasa_ref import formats, metrics

O = np.array([1.0, 2.0, 3.0, 4.0])
R = np.array([1.0, 2.0, 3.0, 5.0])


def test_rmse_and_its_ratios():
    assert metrics.rmse(O, R) == 0.5
    assert metrics.rmse_over_rms_v(O, R, np.array([3.0, -4.0])) == pytest.approx(
        0.5 / math.sqrt(12.5), rel=1e-15
    )
    assert metrics.rmse_over_rms_reference(O, R) == pytest.approx(
        0.5 / math.sqrt(39 / 4), rel=1e-15
    )


def test_max_errors_rel_l1_and_cosine():
    assert metrics.max_abs_error(O, R) == 1.0
    assert metrics.max_rel_error(O, R) == 0.2
    assert metrics.rel_l1(O, R) == pytest.approx(1 / 11, rel=1e-15)
    assert metrics.cosine_similarity(O, R) == pytest.approx(34 / math.sqrt(30 * 39), rel=1e-15)


def test_metrics_do_not_overflow():
    o, r = np.array([1e300, -1e300]), np.zeros(2)
    assert metrics.rmse(o, r) == 1e300
    assert metrics.cosine_similarity(np.array([1e300, 1e300]), np.array([1e-300, 1e-300])) == (
        pytest.approx(1.0, rel=1e-15)
    )
    assert metrics.rel_l1(np.full(4, 1e308), np.full(4, 5e307)) == pytest.approx(1.0)


def test_zero_conventions():
    zero = np.zeros(3)
    assert metrics.rel_l1(zero, zero) == 0.0
    assert metrics.rel_l1(np.ones(3), zero) == math.inf
    assert metrics.rmse_over_rms_reference(np.ones(3), zero) == math.inf
    assert metrics.cosine_similarity(zero, zero) == 1.0
    assert metrics.cosine_similarity(np.ones(3), zero) == 0.0


def test_relative_errors_use_the_guard_below_it():
    o, r = np.array([1e-4, 2.0]), np.array([0.0, 1.0])
    np.testing.assert_array_equal(metrics.relative_errors(o, r, guard=1e-3), [0.1, 1.0])
    fp16 = np.array([2.0**-10, 1.0], dtype=np.float16)
    np.testing.assert_array_equal(metrics.relative_errors(fp16, np.zeros(2)), [1.0, 2.0**10])
    assert metrics.default_guard(formats.get("bf16")) == 2.0**-7


def test_pass_ratios():
    r = np.ones(4)
    o = r * (1 + np.array([0.0, 5e-4, 5e-3, 5e-2]))
    assert metrics.pass_ratio(o, r, 1e-2) == 0.75
    assert metrics.pass_ratio(o, r, 1e-3) == 0.5


@pytest.mark.parametrize(
    "fmt, x, expected",
    [
        ("fp16", 1.0, 2.0**-10),
        ("fp16", 1.9, 2.0**-10),
        ("fp16", 65504.0, 32.0),
        ("fp16", 2.0**-24, 2.0**-24),  # subnormal
        ("fp16", 0.0, 2.0**-24),
        ("bf16", 3.0, 2.0**-6),
        ("bf16", 0.0, 2.0**-133),
        ("fp32", 1.0, 2.0**-23),
        ("fp64", -1.5, 2.0**-52),
        ("fp64", 0.0, 2.0**-1074),
    ],
)
def test_ulp(fmt, x, expected):
    assert metrics.ulp(np.array([x]), formats.get(fmt))[0] == expected


def test_ulp_errors_in_the_output_format():
    r = np.array([1.0, 1.0 + 2.0**-11, 2.0**-24, 0.0])
    o = np.array([1.0 + 2.0**-10, 1.0, 0.0, 2.0**-23], dtype=np.float16)
    np.testing.assert_array_equal(metrics.ulp_errors(o, r), [1.0, 0.5, 1.0, 2.0])
    bf = np.array([1.0 + 2.0**-7], dtype=ml_dtypes.bfloat16)
    assert metrics.ulp_errors(bf, np.array([1.0]))[0] == 1.0
    assert metrics.ulp_errors(bf, np.array([1.0]), dtype="fp32")[0] == 2.0**16


def test_nonfinite_outputs_are_reported_never_averaged():
    o = np.array([1.0, np.nan, np.inf, -np.inf, 2.0])
    r = np.array([1.0, 1.0, 1.0, 1.0, 2.0])
    assert metrics.nonfinite(o) == metrics.NonFinite(nan=1, posinf=1, neginf=1)
    for metric in (
        metrics.rmse,
        metrics.max_abs_error,
        metrics.max_rel_error,
        metrics.rel_l1,
        metrics.cosine_similarity,
        metrics.ulp_errors,
        metrics.rmse_over_rms_reference,
    ):
        with pytest.raises(metrics.NonFiniteOutputError, match="3 non-finite of 5"):
            metric(o, r)
    assert metrics.pass_ratio(o, r, 1e-2) == 0.4  # non-finite elements fail
    report = metrics.summary(o, r, v=np.ones(3))
    assert report["nonfinite"] == {"nan": 1, "posinf": 1, "neginf": 1, "total": 3}
    for key in ("rmse", "rmse_over_rms_v", "max_abs_error", "cosine_similarity", "max_ulp_error"):
        assert report[key] is None
    assert report["pass_ratio_0.01"] == 0.4


def test_summary_reports_every_metric():
    o = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    bound = np.full(4, 2.0**-30)
    report = metrics.summary(o, R, v=np.array([3.0, -4.0]), reference_bound=bound)
    assert report["format"] == "fp32" and report["elements"] == 4
    assert report["guard"] == 2.0**-23
    assert report["rmse"] == 0.5
    assert report["rmse_over_rms_v"] == metrics.rmse_over_rms_v(o, R, np.array([3.0, -4.0]))
    assert report["max_rel_error"] == 0.2
    assert report["max_ulp_error"] == 2.0**21  # |4 - 5| / ulp_fp32(5) = 1 / 2^-21
    assert report["pass_ratio_0.01"] == 0.75 and report["pass_ratio_0.001"] == 0.75
    assert report["reference_bound_max_ulps"] == 2.0**-30 / 2.0**-23
    assert metrics.summary(o, R)["rmse_over_rms_v"] is None


@pytest.mark.parametrize(
    "call, name, error",
    [
        (lambda: metrics.rmse([1.0], np.ones(1)), "output", TypeError),
        (lambda: metrics.rmse(np.ones(2), np.ones(3)), "reference", ValueError),
        (lambda: metrics.rmse(np.ones(2), np.array([1.0, np.nan])), "reference", ValueError),
        (lambda: metrics.rmse(np.ones(2, dtype=np.int32), np.ones(2)), "output", ValueError),
        (lambda: metrics.rmse(np.ones(0), np.ones(0)), "output", ValueError),
        (lambda: metrics.max_rel_error(O, R, guard=0.0), "guard", ValueError),
        (lambda: metrics.pass_ratio(O, R, -1.0), "threshold", ValueError),
        (lambda: metrics.ulp_errors(O, R, dtype="fp8"), "dtype", ValueError),
        (lambda: metrics.rmse_over_rms_v(O, R, np.array([np.inf])), "v", ValueError),
        (lambda: metrics.summary(O, R, reference_bound=np.ones(3)), "reference_bound", ValueError),
    ],
)
def test_bad_arguments_name_the_argument(call, name, error):
    with pytest.raises(error, match=f"'{name}'"):
        call()


# no values near the subnormal range, so that scaling by 2^power below is exact
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(
    lambda x: x if abs(x) > 1e-250 else 0.0
)


@given(
    hnp.arrays(np.float64, st.integers(1, 30), elements=finite),
    hnp.arrays(np.float64, 30, elements=finite),
    st.integers(-20, 20),
)
def test_metric_invariants(o, r_full, power):
    r = r_full[: o.size]
    assert metrics.rmse(o, r) <= metrics.max_abs_error(o, r)
    c = 2.0**power  # exact scaling
    assert metrics.rmse(c * o, c * r) == pytest.approx(c * metrics.rmse(o, r), rel=1e-12)
    assert metrics.rel_l1(c * o, c * r) == pytest.approx(metrics.rel_l1(o, r), rel=1e-12)
    assert 0.0 <= metrics.pass_ratio(o, r, 1e-3) <= metrics.pass_ratio(o, r, 1e-2) <= 1.0
    assert -1.0 - 1e-12 <= metrics.cosine_similarity(o, r) <= 1.0 + 1e-12
    if np.any(o):
        assert metrics.cosine_similarity(o, o) == pytest.approx(1.0, rel=1e-12)
    assert metrics.rmse(o, o) == 0.0
    assert (metrics.ulp_errors(o, o) == 0.0).all()
