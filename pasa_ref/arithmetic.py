"""The arithmetic of a precision profile: every operation the kernels use, rounded where the
profile says (spec PASA-NUM-1..5).

`Arithmetic(profile)` gives the kernels a small vocabulary, one rounding point per call:

    operand(x)        fl_operand(x)                      GEMM operands
    matmul(a, b)      fl_output(sum_k fl_operand(a)_ik fl_operand(b)_kj), partial sums in
                      the accumulation format (binary32/64: the exact sum rounded once, or
                      with `accumulation_chunk` c a partial sum rounded after every c
                      products, PASA-NUM-3)
    vector(x)         fl_vector(x)                       scale products, S - m, exp, sums
    stat(x)           fl_statistics(x)                   m, l, abar, x, y and their updates
    acc(x)            fl_accumulator(x)                  O and its updates
    exp(x)            fl_vector(exp(x))
    rowsum(x)         pairwise row sum, every addition rounded into the vector format
    rowmean(x)        rowsum(fl_vector(x * fl_vector(1/n)))
    rowmax(x)         exact

Arrays are carriers (binary32, or binary64 in the fp64 profile) holding values that are
exactly representable in the format of their last rounding point. Overflow and invalid
operations produce inf and NaN silently, as IEEE hardware does; numpy's warnings about them
are switched off inside kernels by `Arithmetic.ieee()`.
"""

from __future__ import annotations

import numpy as np

from pasa_ref.formats import Format
from pasa_ref.profiles import Profile

__all__ = ["Arithmetic"]


class Arithmetic:
    """Rounding points of one profile, as small pure operations on carrier arrays."""

    def __init__(self, profile: Profile, accumulation_chunk: int | None = None) -> None:
        """accumulation_chunk: None for the spec's GEMM model with binary32/binary64
        accumulation (the exact sum rounded once, PASA-NUM-3); an integer c >= 1 for a
        running sum rounded into the accumulation format after every c products (c = 1: the
        sequential sum; c = 16: a tensor core's k = 16 step), the orders against which the
        certifier measures a kernel's accumulation (PASA-CERT-9)."""
        if accumulation_chunk is not None and (
            isinstance(accumulation_chunk, bool)
            or not isinstance(accumulation_chunk, (int, np.integer))
            or accumulation_chunk < 1
        ):
            raise ValueError(
                "argument 'accumulation_chunk': expected None or an integer >= 1, got "
                f"{accumulation_chunk!r}"
            )
        self.profile = profile
        self.accumulation_chunk = accumulation_chunk
        widest = max(
            (
                profile.input,
                profile.matmul_accumulate,
                profile.vector,
                profile.statistics,
                profile.accumulator,
                profile.matmul_output,
            ),
            key=lambda f: f.carrier.itemsize,
        )
        #: dtype every intermediate array is carried in
        self.carrier: np.dtype = widest.carrier

    @staticmethod
    def ieee() -> np.errstate:
        """Context in which overflow gives inf and inf - inf gives NaN without warnings."""
        return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")

    def _round(self, fmt: Format, x: np.ndarray) -> np.ndarray:
        return fmt.round(x).astype(self.carrier, copy=False)

    def from_input(self, x: np.ndarray) -> np.ndarray:
        """Input array (storage dtype of the input format) -> carrier, exactly."""
        return x.astype(self.carrier)

    def operand(self, x: np.ndarray) -> np.ndarray:
        return self._round(self.profile.matmul_operand, x)

    def vector(self, x: np.ndarray) -> np.ndarray:
        return self._round(self.profile.vector, x)

    def stat(self, x: np.ndarray) -> np.ndarray:
        return self._round(self.profile.statistics, x)

    def acc(self, x: np.ndarray) -> np.ndarray:
        return self._round(self.profile.accumulator, x)

    def output(self, x: np.ndarray) -> np.ndarray:
        """Round into the output format and return the output format's storage dtype."""
        return self.profile.output.to_storage(x)

    def constant(self, value: float, fmt: Format) -> np.ndarray:
        """A binary64 constant rounded once into `fmt` (0-d carrier array)."""
        return self._round(fmt, np.float64(value))

    def gemm_operand(self, x: np.ndarray, fmt: Format) -> np.ndarray:
        """x (a carrier array of values in `fmt`) rounded into the operand format, in binary64,
        the dtype GEMMs read: prepare an operand once when several GEMMs use it."""
        if not self.profile.matmul_operand.contains(fmt):
            x = self.operand(x)
        return x.astype(np.float64, copy=False)

    def matmul(
        self, a: np.ndarray, b: np.ndarray, a_format: Format, b_format: Format
    ) -> np.ndarray:
        """fl_output(A B) with operands rounded into the operand format and partial sums in
        the accumulation format (PASA-NUM-3). a: ... x M x K, b: ... x K x N.

        a_format, b_format: the formats a and b are already in (the operand format for
        results of gemm_operand); the operand rounding is skipped when the operand format
        contains them, since it would be the identity."""
        a, b = self.gemm_operand(a, a_format), self.gemm_operand(b, b_format)
        accumulate = self.profile.matmul_accumulate
        if accumulate.precision < 24:
            product = self._chunked_matmul(a, b, accumulate, 1)
        elif self.accumulation_chunk is None:
            # binary32/binary64 accumulation: the exact products summed by BLAS in binary64,
            # then one rounding into the accumulation format (PASA-NUM-3). Products of
            # operands of <= 26 bits are exact in binary64, and the sum no longer depends on
            # BLAS's shape-dependent summation order (except within K 2^-53 of a tie).
            product = accumulate.round(np.matmul(a, b))
        else:
            product = self._chunked_matmul(a, b, accumulate, self.accumulation_chunk)
        return self._round(self.profile.matmul_output, product)

    def _chunked_matmul(
        self, a: np.ndarray, b: np.ndarray, accumulate: Format, chunk: int
    ) -> np.ndarray:
        """A running sum over the inner dimension, in chunks of `chunk` products taken in
        order k = 0, 1, ...: total <- fl_accumulate(total + sum of the chunk's products),
        the chunk's sum computed in binary64 (chunk = 1: the sequential sum, every partial
        sum rounded). For binary32 partial sums of operands of at most 12 bits, chunk = 1
        runs in binary32 itself: the products are exact there and every addition is the
        correctly rounded one."""
        shape = np.broadcast_shapes(a.shape[:-1] + (1,), b.shape[:-2] + (1, b.shape[-1]))
        if chunk == 1 and accumulate.name == "fp32" and self.profile.matmul_operand.precision <= 12:
            a32, b32 = a.astype(np.float32), b.astype(np.float32)
            total = np.zeros(shape, dtype=np.float32)
            for k in range(a.shape[-1]):
                total += a32[..., :, k, None] * b32[..., k, None, :]
            return total.astype(self.carrier, copy=False)
        total = np.zeros(shape, dtype=np.float64)
        for start in range(0, a.shape[-1], chunk):
            part = np.matmul(a[..., :, start : start + chunk], b[..., start : start + chunk, :])
            total = accumulate.round(total + part).astype(np.float64, copy=False)
        return total.astype(self.carrier, copy=False)

    def exp(self, x: np.ndarray) -> np.ndarray:
        """fl_vector(exp(x)) (PASA-NUM-2)."""
        return self.vector(np.exp(x))

    def rowsum(self, x: np.ndarray) -> np.ndarray:
        """Pairwise sum over the last axis, keepdims (PASA-NUM-4): while more than one column
        is left, with h = ceil(len/2), column t becomes fl_vector(x_t + x_{t+h}) for
        t < len - h (an odd middle column is carried). binary32/binary64 vector formats use
        numpy's own pairwise summation instead."""
        fmt = self.profile.vector
        if fmt.precision >= 24 and fmt.carrier == x.dtype:
            return x.sum(axis=-1, keepdims=True)
        columns = np.moveaxis(x, -1, 0)  # halves of the leading axis are contiguous blocks
        while columns.shape[0] > 1:
            half = (columns.shape[0] + 1) // 2
            paired = columns.shape[0] - half
            summed = fmt.round(np.add(columns[:paired], columns[half:], order="C"))
            if half > paired:
                summed = np.concatenate([summed, columns[paired:half]])
            columns = summed
        return np.moveaxis(columns, 0, -1)

    def rowmean(self, x: np.ndarray, x_format: Format | None = None) -> np.ndarray:
        """rowsum(fl_vector(x * fl_vector(1/n))), n the number of columns (PASA-NUM-4).

        Scaling before summing keeps every partial sum below n max|x_t| / n = max|x_t|, so
        the mean overflows only where an entry does (a sum first would overflow fp16 for
        n = 128 once the entries pass 512). x_format: the format x is in (None: unknown). When
        fl(1/n) is a
        power of two, the vector format contains x_format and no product falls below the
        vector format's smallest normal, every product is exact and its rounding is skipped
        (it would be the identity)."""
        fmt = self.profile.vector
        inverse = self.constant(1.0 / x.shape[-1], fmt)
        scaled = x * inverse
        exact = (
            x_format is not None
            and fmt.contains(x_format)
            and np.frexp(inverse)[0] == 0.5
            and np.abs(scaled).min(initial=np.inf) >= fmt.smallest_normal
        )
        return self.rowsum(scaled if exact else self.vector(scaled))

    @staticmethod
    def rowmax(x: np.ndarray) -> np.ndarray:
        """Row maximum over the last axis, keepdims (exact in every format)."""
        return x.max(axis=-1, keepdims=True)
