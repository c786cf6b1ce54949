"""Binary floating-point formats and IEEE round-to-nearest-even into them (spec PASA-NUM-1).

A format F is described by (p, emin, emax): p significand bits with the hidden bit counted,
normal exponents emin..emax. Its finite values are

    x = (-1)^s * m * 2^(e - p + 1),   m integer, 0 <= m < 2^p,   emin <= e <= emax,

and rounding into F (written fl_F) is round-to-nearest, ties-to-even, with overflow to +-inf:
a value whose magnitude rounds above max_F = (2 - 2^(1-p)) * 2^emax becomes inf, and NaN
stays NaN. Nothing is clipped.

Values are *carried* in a numpy dtype at least as wide as F: binary32 when p <= 24 and the
exponent range fits, binary64 otherwise. `Format.round(x)` returns a carrier array whose
elements are exactly representable in F. Carrying fp16/bf16 values in binary32 is exact
emulation of one correctly rounded operation: for operands in F and an operation among
+, -, *, /, the binary32 result rounded once more into F equals the correctly rounded result
in F, because 24 >= 2p + 2 makes double rounding innocuous (Figueroa, 1995).
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = ["FORMATS", "Format", "get"]


@dataclass(frozen=True)
class Format:
    """A binary floating-point format, its storage dtype and its carrier dtype."""

    name: str
    precision: int  # p, significand bits including the hidden bit
    emin: int
    emax: int
    storage: np.dtype  # dtype users hand in and get back (float16, bfloat16, ...)

    @property
    def carrier(self) -> np.dtype:
        """binary32 for formats it holds exactly, else binary64."""
        if self.precision <= 24 and self.emax <= 127 and self.emin >= -126:
            return np.dtype(np.float32)
        return np.dtype(np.float64)

    @property
    def unit_roundoff(self) -> float:
        """u = 2^-p: the relative error bound of one rounding to nearest."""
        return 2.0**-self.precision

    @property
    def max_finite(self) -> float:
        """max_F = (2 - 2^(1-p)) * 2^emax."""
        return (2.0 - 2.0 ** (1 - self.precision)) * 2.0**self.emax

    @property
    def smallest_normal(self) -> float:
        return 2.0**self.emin

    @property
    def smallest_subnormal(self) -> float:
        return 2.0 ** (self.emin - self.precision + 1)

    def round(self, x: np.ndarray | float) -> np.ndarray:
        """fl_F(x): round every element of x to nearest-even in F; returns the carrier dtype."""
        x = np.asarray(x)
        carrier = self.carrier
        if x.dtype == carrier and self._carrier_is_exact():
            return x
        if x.dtype == np.float32 and carrier == np.float32:
            return self._round_from_binary32(x)
        if x.dtype == np.float64 and self.name == "fp32":
            return x.astype(np.float32)  # numpy's binary64 -> binary32 cast is IEEE RNE
        if x.dtype.kind != "f" or x.dtype.itemsize > 8:
            raise TypeError(f"Format.round: expected a float16/32/64 array, got dtype {x.dtype}")
        return round_binary64(x.astype(np.float64), self.precision, self.emin, self.emax).astype(
            carrier
        )

    def contains(self, other: Format) -> bool:
        """True when every value of `other` is a value of this format (rounding into self
        is then the identity on values of other)."""
        return (
            self.precision >= other.precision
            and self.emax >= other.emax
            and self.emin - self.precision <= other.emin - other.precision
        )

    def to_carrier(self, x: np.ndarray) -> np.ndarray:
        """Convert an array of the storage dtype to the carrier dtype (exact)."""
        return np.asarray(x).astype(self.carrier)

    def to_storage(self, x: np.ndarray) -> np.ndarray:
        """Round x into F and return it in the storage dtype (exact after the rounding)."""
        return self.round(x).astype(self.storage)

    def _carrier_is_exact(self) -> bool:
        return self.carrier.itemsize * 8 == {24: 32, 53: 64}.get(self.precision)

    def _round_from_binary32(self, x: np.ndarray) -> np.ndarray:
        if self.name == "fp16":
            return _round_binary32_to_binary16(x)
        if self.name == "bf16":
            return _round_binary32_to_bfloat16(x)
        return round_binary64(x.astype(np.float64), self.precision, self.emin, self.emax).astype(
            np.float32
        )


def round_binary64(x: np.ndarray, precision: int, emin: int, emax: int) -> np.ndarray:
    """Round binary64 values to nearest-even in (precision, emin, emax); inf on overflow.

    With x = f * 2^e, 1/2 <= |f| < 1 (frexp), the last kept bit has weight
    2^q, q = max(e - p, emin - p + 1) (the second term handles subnormals); then
    fl(x) = rint(x / 2^q) * 2^q, where rint rounds to nearest-even. Scaling by powers of two
    is exact, so the only rounding is rint's.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        _, exponent = np.frexp(x)
        quantum = np.maximum(exponent - precision, emin - precision + 1)
        rounded = np.ldexp(np.rint(np.ldexp(x, -quantum)), quantum)
        max_finite = (2.0 - 2.0 ** (1 - precision)) * 2.0**emax
        return np.where(np.abs(rounded) > max_finite, np.copysign(np.inf, x), rounded)


def _round_binary32_to_binary16(x: np.ndarray) -> np.ndarray:
    """RNE from binary32 to binary16, values kept in binary32 (several times faster than
    numpy's scalar float16 cast here, and equal to it: tests compare them bit for bit).

    With e the binary32 exponent of x clamped to [-14, 16], let C = 1.5 * 2^(e + 13). Then
    x + C lies in C's binade, whose binary32 quantum 2^(e - 10) is binary16's quantum at
    exponent e (2^-24 for binary16 subnormals), and C / quantum is even: the binary32 sum
    rounds x to nearest-even at that quantum and (x + C) - C is exact. The sign of x is then
    restored on the bit pattern (it only changes zeros). Results above 65504 become inf; NaN stays NaN.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    exponent_bits = x.view(np.uint32) & np.uint32(0x7F800000)
    # only |x| >= 2^15 (binary32 exponent field >= 142), inf or NaN can leave binary16's range
    may_overflow = bool(exponent_bits.max(initial=0) >= np.uint32((127 + 15) << 23))
    np.clip(
        exponent_bits, np.uint32((127 - 14) << 23), np.uint32((127 + 16) << 23), out=exponent_bits
    )
    exponent_bits += np.uint32((13 << 23) | 0x00400000)
    shift = exponent_bits.view(np.float32)
    rounded = x + shift
    rounded -= shift
    sign_bits = np.bitwise_and(x.view(np.uint32), np.uint32(0x80000000), out=exponent_bits)
    np.bitwise_or(rounded.view(np.uint32), sign_bits, out=rounded.view(np.uint32))  # zeros
    if may_overflow:
        overflow = np.abs(rounded) > np.float32(65504.0)  # NaN compares False: stays NaN
        rounded[overflow] = np.copysign(np.float32(np.inf), x[overflow])
    return rounded


def _round_binary32_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """RNE from binary32 to bfloat16 on the bit pattern: add 0x7FFF plus the lowest kept bit,
    then clear the 16 discarded bits. A carry into the exponent field is the correct rounding
    up, including overflow to inf; NaNs are passed through unchanged."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    rounded &= np.uint32(0xFFFF0000)
    out = rounded.view(np.float32)
    return np.where(np.isnan(x), x, out)


FORMATS: dict[str, Format] = {
    "fp16": Format("fp16", 11, -14, 15, np.dtype(np.float16)),
    "bf16": Format("bf16", 8, -126, 127, np.dtype(ml_dtypes.bfloat16)),
    "fp32": Format("fp32", 24, -126, 127, np.dtype(np.float32)),
    "fp64": Format("fp64", 53, -1022, 1023, np.dtype(np.float64)),
}


def get(name: str) -> Format:
    """The format called `name` (one of FORMATS)."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"format: expected one of {sorted(FORMATS)}, got {name!r}") from None


def of_dtype(dtype: np.dtype) -> Format:
    """The format whose storage dtype is `dtype`."""
    for fmt in FORMATS.values():
        if fmt.storage == np.dtype(dtype):
            return fmt
    names = ", ".join(str(f.storage) for f in FORMATS.values())
    raise ValueError(f"dtype: expected one of {names}, got {np.dtype(dtype)}")
