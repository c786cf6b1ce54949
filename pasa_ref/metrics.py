"""Accuracy metrics of an attention output against a reference (spec PASA-MET-1 .. PASA-MET-12).

Notation: o is the output under test, r the reference (normally `oracle.attention(...).output`),
both converted exactly to binary64; e_i = o_i - r_i evaluated in binary64; N the number of
elements; F the output format (fp16, bf16, fp32 or fp64), p its precision, emin its minimum
exponent. Every metric is over all N elements.

A metric never averages a non-finite output into a number (PASA-MET-1): the aggregate metrics
raise NonFiniteOutputError when o has a NaN or an infinity, `summary` reports them as None next
to the counts, and the pass ratios count a non-finite element as failed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from pasa_ref import formats
from pasa_ref.formats import Format

__all__ = [
    "PASS_THRESHOLDS",
    "NonFinite",
    "NonFiniteOutputError",
    "cosine_similarity",
    "default_guard",
    "max_abs_error",
    "max_rel_error",
    "nonfinite",
    "pass_ratio",
    "rel_l1",
    "relative_errors",
    "rms",
    "rmse",
    "rmse_over_rms_reference",
    "rmse_over_rms_v",
    "summary",
    "ulp",
    "ulp_errors",
]

PASS_THRESHOLDS = (1e-2, 1e-3)


class NonFiniteOutputError(ValueError):
    """The output has NaN or infinite elements, so an aggregate metric has no value."""


@dataclass(frozen=True)
class NonFinite:
    """Counts of the non-finite elements of an output (PASA-MET-1)."""

    nan: int
    posinf: int
    neginf: int

    @property
    def total(self) -> int:
        return self.nan + self.posinf + self.neginf


def nonfinite(output: np.ndarray) -> NonFinite:
    """NaN, +inf and -inf counts of `output`."""
    o = _as_float64("output", output)
    return NonFinite(
        nan=int(np.isnan(o).sum()),
        posinf=int(np.isposinf(o).sum()),
        neginf=int(np.isneginf(o).sum()),
    )


def rms(x: np.ndarray) -> float:
    """sqrt(sum x_i^2 / N), evaluated as M sqrt(sum (x_i / M)^2 / N) with M = max |x_i| so that
    no square overflows or underflows (PASA-MET-2)."""
    x = _finite("x", x)
    top = float(np.abs(x).max())
    if top == 0.0:
        return 0.0
    return top * math.sqrt(float(np.mean(np.square(x / top))))


def rmse(output: np.ndarray, reference: np.ndarray) -> float:
    """RMSE = sqrt(sum e_i^2 / N) (PASA-MET-2)."""
    return rms(_errors(output, reference))


def rmse_over_rms_v(output: np.ndarray, reference: np.ndarray, v: np.ndarray) -> float:
    """RMSE / RMS(V), RMS(V) over every element of v (the PASA paper's metric, PASA-MET-3)."""
    return _ratio(rmse(output, reference), rms(_finite("v", v)))


def rmse_over_rms_reference(output: np.ndarray, reference: np.ndarray) -> float:
    """RMSE / RMS(r) (PASA-MET-4)."""
    return _ratio(rmse(output, reference), rms(_finite("reference", reference)))


def max_abs_error(output: np.ndarray, reference: np.ndarray) -> float:
    """max |e_i| (PASA-MET-5)."""
    return float(np.abs(_errors(output, reference)).max())


def relative_errors(
    output: np.ndarray, reference: np.ndarray, *, guard: float | None = None
) -> np.ndarray:
    """|e_i| / max(|r_i|, guard) elementwise, inf or NaN where o_i is not finite (PASA-MET-6).
    guard defaults to `default_guard` of the output's format."""
    o, r = _pair(output, reference)
    g = _check_guard(guard, _format_of(output, None))
    with np.errstate(invalid="ignore"):
        return np.abs(o - r) / np.maximum(np.abs(r), g)


def max_rel_error(
    output: np.ndarray, reference: np.ndarray, *, guard: float | None = None
) -> float:
    """max_i |e_i| / max(|r_i|, guard) (PASA-MET-6)."""
    _finite("output", output)
    return float(relative_errors(output, reference, guard=guard).max())


def rel_l1(output: np.ndarray, reference: np.ndarray) -> float:
    """sum |e_i| / sum |r_i| (SageAttention's relative L1, PASA-MET-7)."""
    e = _errors(output, reference)
    r = _finite("reference", reference)
    return _ratio(_scaled_sum(np.abs(e)), _scaled_sum(np.abs(r)))


def cosine_similarity(output: np.ndarray, reference: np.ndarray) -> float:
    """sum o_i r_i / (||o|| ||r||), 1 when both are zero, 0 when exactly one is (PASA-MET-8).
    Each vector is divided by its largest magnitude first, so nothing overflows."""
    o, r = _pair(output, reference)
    _finite("output", o)
    top_o, top_r = float(np.abs(o).max()), float(np.abs(r).max())
    if top_o == 0.0 or top_r == 0.0:
        return 1.0 if top_o == top_r else 0.0
    o, r = o.ravel() / top_o, r.ravel() / top_r
    return float(np.dot(o, r) / (np.linalg.norm(o) * np.linalg.norm(r)))


def ulp(x: np.ndarray, fmt: Format) -> np.ndarray:
    """ulp_F(x) = 2^(max(floor(log2 |x|), emin) - p + 1); ulp_F(0) = 2^(emin - p + 1)
    (PASA-MET-9)."""
    x = np.abs(np.asarray(x, dtype=np.float64))
    _, e = np.frexp(x)  # x = f 2^e, 1/2 <= f < 1, so floor(log2 x) = e - 1
    exponent = np.where(x > 0, np.maximum(e - 1, fmt.emin), fmt.emin)
    return np.ldexp(1.0, exponent - fmt.precision + 1)


def ulp_errors(output: np.ndarray, reference: np.ndarray, *, dtype: object = None) -> np.ndarray:
    """|e_i| / ulp_F(r_i) elementwise, F = `dtype` (a format name or dtype; default the
    output's format), PASA-MET-9."""
    o, r = _pair(output, reference)
    _finite("output", o)
    return np.abs(o - r) / ulp(r, _format_of(output, dtype))


def pass_ratio(
    output: np.ndarray, reference: np.ndarray, threshold: float, *, guard: float | None = None
) -> float:
    """Share of elements with |e_i| / max(|r_i|, guard) < threshold; non-finite outputs fail
    (Ascend's pass ratios for thresholds 0.01 and 0.001, PASA-MET-10)."""
    if not (isinstance(threshold, (int, float)) and threshold > 0):
        raise ValueError(f"argument 'threshold': expected a number > 0, got {threshold!r}")
    rel = relative_errors(output, reference, guard=guard)
    return float(np.count_nonzero(rel < threshold) / rel.size)


def default_guard(fmt: Format) -> float:
    """The small-value guard of relative errors: the machine epsilon 2^(1-p) of F
    (PASA-MET-6). Below it a reference value counts as if it were 2^(1-p)."""
    return 2.0 ** (1 - fmt.precision)


def summary(
    output: np.ndarray,
    reference: np.ndarray,
    *,
    v: np.ndarray | None = None,
    dtype: object = None,
    guard: float | None = None,
    reference_bound: np.ndarray | None = None,
) -> dict[str, object]:
    """Every metric in one dict (PASA-MET-12). Aggregates are None when the output has
    non-finite elements, counted under "nonfinite"; "rmse_over_rms_v" is None without v.
    reference_bound (the oracle's bound) adds "reference_bound_max_ulps", the largest bound in
    ulps of F, which says down to what ulp error the figures are meaningful."""
    fmt = _format_of(output, dtype)
    g = _check_guard(guard, fmt)
    counts = nonfinite(output)
    result: dict[str, object] = {
        "elements": int(np.asarray(output).size),
        "format": fmt.name,
        "guard": g,
        "nonfinite": {**asdict(counts), "total": counts.total},
    }
    for threshold in PASS_THRESHOLDS:
        result[f"pass_ratio_{threshold:g}"] = pass_ratio(output, reference, threshold, guard=g)
    if reference_bound is not None:
        bound = _finite("reference_bound", reference_bound)
        if bound.shape != np.shape(reference):
            raise ValueError(
                f"argument 'reference_bound': expected shape {np.shape(reference)} (as "
                f"reference), got {bound.shape}"
            )
        result["reference_bound_max_ulps"] = float((bound / ulp(reference, fmt)).max())
    finite = counts.total == 0
    aggregates = {
        "rmse": lambda: rmse(output, reference),
        "rmse_over_rms_v": lambda: None if v is None else rmse_over_rms_v(output, reference, v),
        "rmse_over_rms_reference": lambda: rmse_over_rms_reference(output, reference),
        "max_abs_error": lambda: max_abs_error(output, reference),
        "max_rel_error": lambda: max_rel_error(output, reference, guard=g),
        "rel_l1": lambda: rel_l1(output, reference),
        "cosine_similarity": lambda: cosine_similarity(output, reference),
        "ulp_errors": lambda: ulp_errors(output, reference, dtype=fmt.name),
    }
    for name, metric in aggregates.items():
        result[name] = metric() if finite else None
    ulps = result.pop("ulp_errors")
    result["max_ulp_error"] = None if ulps is None else float(ulps.max())
    result["mean_ulp_error"] = None if ulps is None else float(ulps.mean())
    return result


def _as_float64(name: str, x: object) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"argument {name!r}: expected a numpy array, got {type(x).__name__}")
    if x.size == 0:
        raise ValueError(f"argument {name!r}: expected at least one element, got shape {x.shape}")
    try:
        formats.of_dtype(x.dtype)
    except ValueError:
        raise ValueError(
            f"argument {name!r}: expected dtype float16, bfloat16, float32 or float64, "
            f"got {x.dtype}"
        ) from None
    return x.astype(np.float64)


def _finite(name: str, x: np.ndarray) -> np.ndarray:
    x = _as_float64(name, x)
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        message = f"argument {name!r}: expected finite values, got {bad} non-finite of {x.size}"
        if name == "output":
            raise NonFiniteOutputError(message)
        raise ValueError(message)
    return x


def _pair(output: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    o = _as_float64("output", output)
    r = _finite("reference", reference)
    if o.shape != r.shape:
        raise ValueError(
            f"argument 'reference': expected shape {o.shape} (as output), got {r.shape}"
        )
    return o, r


def _errors(output: np.ndarray, reference: np.ndarray) -> np.ndarray:
    o, r = _pair(output, reference)
    _finite("output", o)
    with np.errstate(over="ignore"):
        e = o - r
    if not np.isfinite(e).all():
        raise ValueError("arguments 'output', 'reference': output - reference overflows binary64")
    return e


def _format_of(output: np.ndarray, dtype: object) -> Format:
    if dtype is None:
        return formats.of_dtype(np.asarray(output).dtype)
    if isinstance(dtype, str) and dtype in formats.FORMATS:
        return formats.get(dtype)
    try:
        return formats.of_dtype(np.dtype(dtype))
    except (TypeError, ValueError):
        raise ValueError(
            f"argument 'dtype': expected one of {sorted(formats.FORMATS)} or their dtypes, "
            f"got {dtype!r}"
        ) from None


def _check_guard(guard: float | None, fmt: Format) -> float:
    if guard is None:
        return default_guard(fmt)
    if not (isinstance(guard, (int, float)) and math.isfinite(guard) and guard > 0):
        raise ValueError(f"argument 'guard': expected a finite number > 0, got {guard!r}")
    return float(guard)


def _scaled_sum(x: np.ndarray) -> tuple[float, float]:
    """sum x_i >= 0 as (M, sum x_i / M) with M = max x_i, so that nothing overflows."""
    top = float(x.max())
    return (top, float(np.sum(x / top))) if top > 0 else (0.0, 0.0)


def _ratio(a: float | tuple[float, float], b: float | tuple[float, float]) -> float:
    """a / b for a, b >= 0 (plain or scaled as (M, s) = M s), with 0 / 0 = 0 and a / 0 = inf."""
    (ma, sa), (mb, sb) = (x if isinstance(x, tuple) else (x, 1.0) for x in (a, b))
    if ma * sa == 0.0:
        return 0.0
    if mb * sb == 0.0:
        return math.inf
    return (ma / mb) * (sa / sb)
