"""The rounding-aware beta solver (PASA-BETA-1) reproduces the authors' values."""

from __future__ import annotations

import pytest

from pasa_ref import beta


@pytest.mark.parametrize(
    "start, authors",
    [(1 - 2**-4, 0.9375), (1 - 2**-5, 0.9689939), (1 - 2**-6, 0.984497)],
)
def test_reproduces_the_authors_values_to_six_digits(start, authors):
    solution = beta.solve(start, 128, "fp16")
    assert f"{solution.beta:.6g}" == f"{authors:.6g}"


def test_exactly_representable_start_is_its_own_fixed_point():
    """beta = 15/16, n = 128: beta/n = 15/2048 and 1 - beta/n are exact in fp16, so a = 1
    and F = b n / (1 - b n) = 15, beta = 15/16."""
    assert beta.fixed_point_map(0.9375, 128, beta.formats.get("fp16")) == 0.9375


def test_the_solution_depends_on_the_format():
    assert beta.solve(0.9375, 128, "bf16").beta != beta.solve(0.9375, 128, "fp16").beta


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start": 1.0}, "argument 'start': expected a value in \\(0, 1\\), got 1.0"),
        ({"start": 0.9, "n": 0}, "argument 'n': expected an integer >= 1, got 0"),
        ({"start": 0.9, "tol": 0.0}, "argument 'tol': expected a value > 0, got 0.0"),
        ({"start": 0.9, "fmt": "fp12"}, "format: expected one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        beta.solve(**kwargs)
