"""The attention oracle: softmax(scale q k^T + mask) v from the exact inputs, with a bound on
the error of every output element (spec specs/oracle-and-metrics.md, PASA-ORC).

    result = oracle.attention(q, k, v, scale=None, causal=False, mask=None,
                              method="auto", digits=50)
    result.output   # float64, B x Hq x S1 x Dv
    result.bound    # float64, same shape: |output - exact| <= bound, element by element

Inputs, layout, GQA, causal and explicit masks and fully masked rows (output 0) mean exactly
what they mean for the kernels: they go through `pasa_ref.inputs.validate` (PASA-ORC-1).
The inputs are converted exactly; scale is the binary64 number 1/sqrt(D) (or the float given),
used exactly as that number (PASA-ORC-2).

Methods: "mpmath" (`exact`, ground truth: bound <= ulp(x)/2 + 2 n 10^-digits max|v|, PASA-ORC-3),
"fast" (`fast`, exact scores by error-free splitting and a binary64 softmax; bound about
1e-13 max|v| for S2 up to 16384, PASA-ORC-4..9) and "auto" (mpmath when
B Hq S1 S2 <= AUTO_MPMATH_PAIRS, else fast).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pasa_ref.inputs import InputError, validate
from pasa_ref.oracle import exact, fast

__all__ = ["AUTO_MPMATH_PAIRS", "METHODS", "MIN_DIGITS", "OracleResult", "attention"]

METHODS = ("auto", "mpmath", "fast")
AUTO_MPMATH_PAIRS = 4096
MIN_DIGITS = 17


@dataclass(frozen=True)
class OracleResult:
    """The oracle's answer: |output - exact| <= bound holds for every element (PASA-ORC-2).

    method: "mpmath" or "fast" (what ran); digits: precision of the exact path;
    exact_rows: query rows computed by the exact path (all visible rows for "mpmath", the
    fall-back rows of PASA-ORC-9 for "fast").
    """

    output: np.ndarray
    bound: np.ndarray
    method: str
    digits: int
    exact_rows: int

    @property
    def max_bound(self) -> float:
        """max over elements of the bound (0.0 for an empty selection)."""
        return float(self.bound.max(initial=0.0))


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: np.ndarray | None = None,
    method: str = "auto",
    digits: int = 50,
) -> OracleResult:
    """softmax(scale q k^T, masked) v from the exact inputs; B x Hq x S1 x Dv float64 values with
    an elementwise error bound.

    q: B x Hq x S1 x D, k: B x Hkv x S2 x D, v: B x Hkv x S2 x Dv, one dtype among float16,
    bfloat16, float32, float64. method: "auto", "mpmath" or "fast". digits: precision of the
    exact path in decimal digits (>= MIN_DIGITS); the fast path uses it for its fall-back rows.
    """
    inputs = validate(q, k, v, scale=scale, causal=causal, mask=mask)
    if method not in METHODS:
        raise InputError(f"argument 'method': expected one of {METHODS}, got {method!r}")
    if isinstance(digits, bool) or not isinstance(digits, (int, np.integer)) or digits < MIN_DIGITS:
        raise InputError(f"argument 'digits': expected an integer >= {MIN_DIGITS}, got {digits!r}")
    digits = int(digits)
    if method == "auto":
        pairs = inputs.batch * inputs.heads * inputs.seq_q * inputs.seq_k
        method = "mpmath" if pairs <= AUTO_MPMATH_PAIRS else "fast"
    if method == "mpmath":
        out, bound = exact.attention(inputs, digits)
        exact_rows = int(inputs.has_visible_key().sum())
    else:
        out, bound, exact_rows = fast.attention(inputs, digits)
    return OracleResult(
        output=inputs.ungroup(out),
        bound=inputs.ungroup(bound),
        method=method,
        digits=digits,
        exact_rows=exact_rows,
    )
