"""Error-free splitting of binary64 arrays into slices whose products sum exactly in binary64
(Ozaki, Ogita, Oishi and Rump, "Error-free transformations of matrix multiplication by using
fast routines of matrix multiplication", Numer. Algorithms 59, 2012); spec PASA-ORC-5.

Given x and an integer exponent e per group of elements with max |x| <= 2^e, write

    x = 2^e * (X_0 + X_1 + ... + X_(k-1) + R)

where slice X_a holds integer multiples of 2^(-(a+1) beta) with |X_a| <= 2^(-a beta), and
R is what is left after k slices. Extraction of slice a from the running remainder r is

    X_a = rint(r * 2^((a+1) beta)) * 2^(-(a+1) beta),    r <- r - X_a,

every step exact in binary64 (scaling by a power of two is exact, rint gives an integer of at
most beta + 1 bits, and r - X_a is a multiple of ulp(r) no larger than |r|). Products
X_a[d] * Y_b[d] are then integer multiples of 2^(-(a+b+2) beta) of magnitude at most
2^(2 beta) such units, so a sum of n such products (in any order, with or without FMA) is
exact as long as n * 2^(2 beta) <= 2^52; `slice_bits` picks beta so that this holds, with a
factor 2 to spare for the difference of two such sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "row_exponents", "slice_bits", "split"]

# Normalising by 2^-e can lose the bits of a subnormal binary64 input below 2^-1074 * 2^e;
# such an element then carries an extra error of at most half of 2^-1074 (normalised units).
_NORMALISATION_SLOP = 2.0**-1074


@dataclass(frozen=True)
class Split:
    """x = 2^exponent * (sum(slices) + R) with |R| <= residual elementwise (normalised units).

    slices[a] is an integer multiple of 2^(-(a+1) beta) with |slices[a]| <= 2^(-a beta);
    `normalized` is fl(x * 2^-exponent), |normalized| <= 1.
    """

    slices: tuple[np.ndarray, ...]
    residual: np.ndarray
    normalized: np.ndarray


def slice_bits(terms: int) -> int:
    """beta = floor((52 - ceil(log2(terms))) / 2): the largest slice width for which a sum of
    `terms` slice products, and the difference of two such sums, are exact in binary64."""
    if terms < 1:
        raise ValueError(f"slice_bits: expected terms >= 1, got {terms}")
    return (52 - math.ceil(math.log2(terms))) // 2


def row_exponents(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The smallest e with max |x| < 2^e over `axes` (kept as size-1 axes); 0 for all-zero
    groups. frexp(m) = (f, e) with 1/2 <= f < 1 gives m < 2^e exactly."""
    top = np.abs(x).max(axis=axes, keepdims=True)
    return np.frexp(top)[1].astype(np.int64)


def split(x: np.ndarray, exponent: np.ndarray, beta: int, max_slices: int) -> Split:
    """Split binary64 `x` into at most `max_slices` slices of `beta` bits relative to 2^exponent
    (broadcastable to x, max |x| <= 2^exponent), stopping early once the remainder is zero."""
    normalized = np.ldexp(x, -exponent)
    inexact = np.ldexp(normalized, exponent) != x
    remainder = normalized.copy()
    slices: list[np.ndarray] = []
    for a in range(max_slices):
        if not remainder.any():
            break
        width = beta * (a + 1)
        piece = np.ldexp(np.rint(np.ldexp(remainder, width)), -width)
        remainder -= piece
        slices.append(piece)
    residual = np.abs(remainder)
    if inexact.any():
        residual = residual + np.where(inexact, _NORMALISATION_SLOP, 0.0)
    if not slices:
        slices.append(np.zeros_like(normalized))
    return Split(slices=tuple(slices), residual=residual, normalized=normalized)
