"""The safe envelope: inputs on which a reference kernel provably never overflows
(spec specs/strategies-and-hunting.md, PASA-ENV-1 .. PASA-ENV-13).

The envelope is a list of checks computed from the inputs alone (q, k, v, scale) and the profile.
Each check bounds the magnitude of one class of intermediate values of the kernel, before it is
rounded into its format F, and requires the bound to stay below F's overflow threshold

    Theta_F = (2 - 2^-p) 2^emax      (the smallest magnitude that rounds to +-inf; inf for fp64)

A case is inside the envelope when every check holds; then every intermediate of the kernel is
finite, except the -inf of masked scores, of the running max before the first visible key and of
differences that are <= 0 and only feed exp (which then gives 0, as it would for any very
negative number), so the output is finite (PASA-ENV-1). The envelope is a sufficient condition,
not a necessary one.

Rounding model (PASA-ENV-2). For |y| <= Y < Theta_F, fl_F(y) is finite and

    |fl_F(y)| <= rho_F(Y) = Y (1 + u_F) + eta_F,     |fl_F(y) - y| <= rho_F(Y) - Y,

u_F = 2^-p, eta_F the smallest subnormal of F. A chain of roundings composes: the error of the
chain is the final bound minus the first. Sums of n terms bounded by X_t, each addition rounded
into F along a tree of depth d (d = ceil(log2 n) for the pairwise sums of fp16/bf16, d = n - 1
for any order), are bounded by (sum X_t + n eta_F)(1 + u_F)^d, every partial sum included. GEMMs
with binary32/binary64 accumulation sum the exact products in binary64 (relative error
<= n 2^-53 of sum |products|) and round once into the accumulation format, then into the GEMM
output format (PASA-NUM-3).

Bounds are evaluated in binary64; a check holds when bound (1 + 2^-30) < Theta_F, the factor
covering the binary64 rounding of the bound arithmetic itself (PASA-ENV-13).

    report = checks(case, "fp16-full")          # every check, with its pressure bound / Theta
    within(case, "fp16-full")                   # True when every check holds
    print(explain(case, "fp16-full"))           # why it is in or out, check by check
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pasa_ref import profiles
from pasa_ref.cases import Case
from pasa_ref.formats import Format
from pasa_ref.inputs import InputError, blocks, validate
from pasa_ref.profiles import Profile

__all__ = [
    "KERNELS",
    "SLACK",
    "Check",
    "Report",
    "checks",
    "explain",
    "overflow_threshold",
    "pressure",
    "relation",
    "within",
]

KERNELS = ("naive", "flash", "pasa")
SLACK = 2.0**-30
_B64 = 2.0**-53  # unit roundoff of binary64, for the GEMMs' exact-product sums


def overflow_threshold(fmt: Format) -> float:
    """Theta_F = (2 - 2^-p) 2^emax: magnitudes at or above it round to inf (ties to even: the
    largest finite value has an odd significand). inf for fp64, whose Theta exceeds binary64."""
    if fmt.precision >= 53:
        return math.inf
    return math.ldexp(2.0 - 2.0**-fmt.precision, fmt.emax)


def _rho(fmt: Format, bound: np.ndarray | float) -> np.ndarray:
    """rho_F(Y) = Y (1 + u_F) + eta_F: a bound on |fl_F(y)| for |y| <= Y (PASA-ENV-2)."""
    return np.asarray(bound) * (1.0 + fmt.unit_roundoff) + fmt.smallest_subnormal


def _sum_depth(fmt: Format, count: int) -> int:
    """Depth of the rounding tree of a row sum of `count` terms in `fmt` (PASA-NUM-4)."""
    if fmt.precision < 24:
        return max(0, math.ceil(math.log2(count))) if count > 1 else 0
    return max(0, count - 1)


def _sum_bound(fmt: Format, total: np.ndarray, count: int, depth: int) -> np.ndarray:
    """(sum X_t + n eta)(1 + u)^d: every partial sum of a rounded sum (PASA-ENV-2)."""
    return (total + count * fmt.smallest_subnormal) * (1.0 + fmt.unit_roundoff) ** depth


@dataclass(frozen=True)
class Check:
    """One bound: the largest value of `bound` over its elements against Theta of `fmt`."""

    clause: str
    quantity: str
    fmt: str
    bound: float
    threshold: float
    where: str

    @property
    def pressure(self) -> float:
        """bound / Theta: below 1 inside the envelope (0 when Theta is infinite)."""
        if math.isinf(self.threshold):
            return 0.0 if math.isfinite(self.bound) else math.inf
        return self.bound / self.threshold

    @property
    def holds(self) -> bool:
        return self.bound * (1.0 + SLACK) < self.threshold


@dataclass(frozen=True)
class Report:
    """Every check of one case for one kernel and profile."""

    kernel: str
    profile: str
    checks: tuple[Check, ...]

    @property
    def inside(self) -> bool:
        return all(check.holds for check in self.checks)

    @property
    def pressure(self) -> float:
        """The largest pressure of any check: < 1 inside, >= 1 (or inf) outside."""
        return max((check.pressure for check in self.checks), default=0.0)

    @property
    def binding(self) -> Check:
        """The check with the largest pressure (the first failing one decides ties)."""
        return max(self.checks, key=lambda check: (check.pressure, not check.holds))


class _Recorder:
    """Collects checks; several calls with the same clause and quantity keep the worst."""

    def __init__(self, axes: dict[str, tuple[str, ...]]) -> None:
        self._axes = axes
        self._checks: dict[tuple[str, str], Check] = {}

    def check(
        self, clause: str, quantity: str, fmt: Format, bound: np.ndarray | float, axes: str,
        block: int | None = None,
    ) -> None:
        """Record that values bounded by `bound` are rounded into `fmt`. `axes` names the
        layout of `bound` (a key of the recorder's axes table); block: the key block."""
        bound = np.asarray(bound, dtype=np.float64)
        bound = np.where(np.isnan(bound), np.inf, bound)  # inf - inf in a failed bound
        threshold = overflow_threshold(fmt)
        flat = int(np.argmax(bound)) if bound.size else 0
        worst = float(bound.flat[flat]) if bound.size else 0.0
        where = self._where(axes, np.unravel_index(flat, bound.shape) if bound.ndim else (), block)
        key = (clause, quantity)
        old = self._checks.get(key)
        if old is None or worst > old.bound or math.isnan(worst):
            self._checks[key] = Check(clause, quantity, fmt.name, worst, threshold, where)

    def rounded(
        self, clause: str, quantity: str, fmt: Format, bound: np.ndarray | float, axes: str,
        block: int | None = None,
    ) -> np.ndarray:
        """check(...), then rho_F(bound): the bound after the rounding."""
        self.check(clause, quantity, fmt, bound, axes, block)
        return _rho(fmt, bound)

    def exact(
        self, clause: str, quantity: str, fmt: Format, values: np.ndarray | float, axes: str
    ) -> np.ndarray:
        """Values known exactly (from the inputs): check them, return fl_F(values) in binary64."""
        values = np.asarray(values, dtype=np.float64)
        self.check(clause, quantity, fmt, np.abs(values), axes)
        return fmt.round(values).astype(np.float64)

    def report(self, kernel: str, profile: str) -> Report:
        return Report(kernel, profile, tuple(self._checks.values()))

    def _where(self, axes: str, index: tuple, block: int | None) -> str:
        names = self._axes[axes]
        parts = [f"{name} {int(i)}" for name, i in zip(names, index, strict=True) if name]
        if block is not None:
            parts.append(f"key block {block}")
        return ", ".join(parts)


@dataclass(frozen=True)
class _Problem:
    """The inputs as binary64 arrays in the grouped view, after the operand rounding.

    q: B x Hkv x G x S1 x D (as the kernel's GEMM reads it, scale applied for scale_at = "q"),
    k: B x Hkv x S2 x D, v: B x Hkv x S2 x Dv, both fl_operand of the inputs."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scale: float
    scale_at: str
    blocks: tuple[slice, ...]


_AXES = {
    "scalar": (),
    "q": ("batch", "kv head", "group", "query row", "dim"),
    "kv": ("batch", "kv head", "key", "dim"),
    "row": ("batch", "kv head", "group", "query row"),
    "row-block": ("batch", "kv head", "group", "query row", "key block"),
    "value": ("batch", "kv head", "value dim"),
}


def checks(
    case: Case,
    profile: str | Profile,
    kernel: str = "pasa",
    *,
    block_k: int | None = None,
    beta: float | None = None,
) -> Report:
    """Every envelope check of `case` for `kernel` ("naive", "flash" or "pasa") in `profile`;
    block_k and beta default to the profile's (ragged mode "true-length")."""
    prof = profiles.get(profile)
    if kernel not in KERNELS:
        raise InputError(f"argument 'kernel': expected one of {KERNELS}, got {kernel!r}")
    block_k = prof.block_k if block_k is None else block_k
    if isinstance(block_k, bool) or not isinstance(block_k, (int, np.integer)) or block_k < 1:
        raise InputError(f"argument 'block_k': expected an integer >= 1, got {block_k!r}")
    beta = prof.beta if beta is None else float(beta)
    if not 0.0 < beta < 1.0:
        raise InputError(f"argument 'beta': expected a value in (0, 1), got {beta}")
    rec = _Recorder(_AXES)
    # bounds of cases far outside overflow binary64 too: inf, and inf - inf = NaN, fail checks
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        problem = _operands(rec, case, prof, block_k if kernel != "naive" else None)
        if kernel == "pasa":
            _pasa(rec, problem, prof, beta)
        else:
            _baseline(rec, problem, prof, online=kernel == "flash")
    return rec.report(kernel, prof.name)


def within(case: Case, profile: str | Profile, kernel: str = "pasa", **options) -> bool:
    """True when `case` is inside the safe envelope of `kernel` in `profile` (PASA-ENV-1)."""
    return checks(case, profile, kernel, **options).inside


def pressure(case: Case, profile: str | Profile, kernel: str = "pasa", **options) -> float:
    """The largest bound / Theta over the checks: < 1 inside the envelope."""
    return checks(case, profile, kernel, **options).pressure


def explain(case: Case, profile: str | Profile, kernel: str = "pasa", **options) -> str:
    """Why `case` is inside or outside the envelope: a verdict line, then one line per check."""
    report = checks(case, profile, kernel, **options)
    binding = report.binding
    verdict = "INSIDE" if report.inside else "OUTSIDE"
    lines = [
        f"{kernel} in {report.profile}: {verdict} the safe envelope; largest pressure "
        f"{binding.pressure:.3g} ({binding.clause}, {binding.quantity}, in {binding.fmt}"
        + (f", at {binding.where})" if binding.where else ")")
    ]
    for check in sorted(report.checks, key=lambda c: -c.pressure):
        mark = "ok  " if check.holds else "FAIL"
        lines.append(
            f"  {mark} {check.clause:11s} {check.quantity}: pressure {check.pressure:.3g}; "
            f"{relation(check)}"
        )
    return "\n".join(lines)


def relation(check: Check) -> str:
    """The condition of `check` as it stands, in words that are true of the printed numbers:

        holds                      bound B < Theta_F, the overflow threshold of F
        fails, B >= Theta_F        bound B >= Theta_F, ...: overflow possible
        fails, B < Theta_F         bound B within the slack 2^-30 of Theta_F (...): overflow
                                   possible (bound (1 + 2^-30) >= Theta_F, PASA-ENV-13)

    with as many significant digits as the comparison of the two numbers needs."""
    bound, theta = check.bound, check.threshold
    where = f"the overflow threshold of {check.fmt}"
    if math.isinf(theta):  # fp64: Theta exceeds binary64, a finite bound is below it
        if check.holds:
            return f"bound {bound:.4g} < {where}, which exceeds binary64"
        return f"bound {bound:.4g} >= {where}: overflow possible"
    shown_bound, shown_theta = _distinct(bound, theta)
    if check.holds:
        return f"bound {shown_bound} < {shown_theta}, {where}"
    if bound >= theta:
        return f"bound {shown_bound} >= {shown_theta}, {where}: overflow possible"
    return (
        f"bound {shown_bound} is within a factor 1 + 2^-30 of {shown_theta}, {where}: "
        "overflow possible"
    )


def _distinct(a: float, b: float) -> tuple[str, str]:
    """a and b printed with the fewest significant digits (at least 4 and 6) that keep their
    order: a < b prints as two numbers of which the first is smaller."""
    for extra in range(14):
        shown_a, shown_b = f"{a:.{4 + extra}g}", f"{b:.{6 + extra}g}"
        if (float(shown_a) < float(shown_b)) == (a < b) and (a == b) == (shown_a == shown_b):
            return shown_a, shown_b
    return repr(a), repr(b)


def _operands(rec: _Recorder, case: Case, prof: Profile, block_k: int | None) -> _Problem:
    """PASA-ENV-3: the inputs converted to GEMM operands (and q scaled for scale_at = "q")."""
    inputs = validate(case.q, case.k, case.v, scale=case.scale, causal=case.causal,
                      mask=case.mask, dtypes=[prof.input.storage])
    op = prof.matmul_operand

    def operand(x: np.ndarray, fmt: Format, axes: str) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if op.contains(fmt):
            return x
        return rec.exact("PASA-ENV-3", "inputs as GEMM operands", op, x, axes)

    q = np.asarray(inputs.q, dtype=np.float64)
    if prof.scale_at == "q":
        lam = rec.exact("PASA-ENV-3", "scale in the vector format", prof.vector, inputs.scale,
                        "scalar")
        q = rec.exact("PASA-ENV-3", "scale * q", prof.vector, lam * q, "q")
        q = operand(q, prof.vector, "q")
    else:
        q = operand(q, prof.input, "q")
    seq_k = inputs.seq_k
    return _Problem(
        q=q,
        k=operand(inputs.k[:, :, 0], prof.input, "kv"),
        v=operand(inputs.v[:, :, 0], prof.input, "kv"),
        scale=inputs.scale,
        scale_at=prof.scale_at,
        blocks=tuple(blocks(seq_k, block_k or seq_k)),
    )


def _gemm(
    rec: _Recorder, clause: str, quantity: str, prof: Profile, value: np.ndarray, inner: int,
    axes: str, block: int | None = None, magnitude: np.ndarray | None = None,
) -> np.ndarray:
    """Bound on fl_output(s) for a sum s of `inner` products with |s| <= value and
    sum |products| <= magnitude (default: value); checks the accumulation and the output
    rounding (PASA-ENV-2, PASA-NUM-3)."""
    magnitude = value if magnitude is None else magnitude
    acc = prof.matmul_accumulate
    if acc.precision >= 24:
        accumulated = rec.rounded(clause, quantity, acc, value + inner * _B64 * magnitude, axes,
                                  block)
    else:
        partial = _sum_bound(acc, magnitude, inner, inner)
        rec.check(clause, quantity, acc, partial, axes, block)
        accumulated = value + (partial - magnitude)
    return rec.rounded(clause, quantity, prof.matmul_output, accumulated, axes, block)


def _scaled_scores(
    rec: _Recorder, clause: str, prof: Profile, product: np.ndarray, scale_hat: float, axes: str,
    block: int | None = None,
) -> np.ndarray:
    """fl_vector(lambda^ * S) for scale_at = "scores" (and the baselines' "shift")."""
    if scale_hat == 1.0:
        return product
    return rec.rounded(clause, "scale * scores", prof.vector, scale_hat * product, axes, block)


def _score_scale(rec: _Recorder, prof: Profile, problem: _Problem, kernel_has_shift: bool) -> float:
    """lambda^ = fl_vector(lambda) where the scores are scaled after the GEMM, else 1."""
    scaled_after = problem.scale_at == "scores" or (problem.scale_at == "shift"
                                                    and not kernel_has_shift)
    if not scaled_after:
        return 1.0
    return float(rec.exact("PASA-ENV-3", "scale in the vector format", prof.vector,
                           problem.scale, "scalar"))


def _row_norms(x: np.ndarray) -> np.ndarray:
    """Euclidean norms over the last axis (computed without overflow)."""
    top = np.abs(x).max(axis=-1, keepdims=True)
    safe = np.where(top > 0, top, 1.0)
    return (top * np.sqrt(np.sum(np.square(x / safe), axis=-1, keepdims=True)))[..., 0]


def _baseline(rec: _Recorder, problem: _Problem, prof: Profile, *, online: bool) -> None:
    """PASA-ENV-12: naive (online=False) and FlashAttention-2 (online=True)."""
    q_norm = _row_norms(problem.q)  # B x Hkv x G x S1
    scale_hat = _score_scale(rec, prof, problem, kernel_has_shift=False)
    d = problem.q.shape[-1]
    key_norms = _row_norms(problem.k)  # B x Hkv x S2
    weights = _Weights(prof)
    for j, cols in enumerate(problem.blocks, start=1):
        top_key = key_norms[..., cols].max(axis=-1)[:, :, None, None]
        product = _gemm(rec, "PASA-ENV-12", "scores q k^T", prof, q_norm * top_key, d, "row", j)
        _scaled_scores(rec, "PASA-ENV-12", prof, product, scale_hat, "row", j)
    if online:
        _online_sums(rec, problem, prof, weights)
        return
    n = problem.k.shape[-2]
    vec = prof.vector
    row_sum = _sum_bound(vec, np.float64(n), n, _sum_depth(vec, n))
    rec.check("PASA-ENV-12", "row sum of exp (naive)", vec, row_sum, "scalar")
    v_max = np.abs(problem.v).max(axis=-2)  # B x Hkv x Dv
    pv = _gemm(rec, "PASA-ENV-12", "P V (naive)", prof, v_max * weights.normalised_sum(n), n,
               "value")
    rec.check("PASA-ENV-11", "output", prof.output, pv, "value")


class _Weights:
    """Bounds on the softmax weights' sums shared by the kernels (PASA-ENV-9, -10, -11)."""

    def __init__(self, prof: Profile) -> None:
        self.prof = prof

    def block_sum(self, n: int) -> float:
        """rowsum of n weights p <= 1 in the vector format: every partial sum."""
        vec = self.prof.vector
        return float(_sum_bound(vec, np.float64(n), n, _sum_depth(vec, n)))

    def normalised_sum(self, n: int) -> float:
        """sum_t fl(e_t / l) for naive, with l = rounded sum of e >= 1 (PASA-ENV-12)."""
        vec = self.prof.vector
        low = (1.0 - vec.unit_roundoff) ** _sum_depth(vec, n) - n * vec.smallest_subnormal
        return (1.0 + vec.unit_roundoff) / low + n * vec.smallest_subnormal

    def value_growth(self, n: int) -> tuple[float, float]:
        """(g, h): |P~ V_j| <= l~_j (g max|v| + h) for a block of n keys (PASA-ENV-11)."""
        prof = self.prof
        acc, out, op, vec = (prof.matmul_accumulate, prof.matmul_output, prof.matmul_operand,
                             prof.vector)
        low = (1.0 - vec.unit_roundoff) ** _sum_depth(vec, n) - n * vec.smallest_subnormal
        if acc.precision >= 24:
            gemm = (1.0 + n * _B64) * (1.0 + acc.unit_roundoff)
            absolute = acc.smallest_subnormal
        else:
            gemm = (1.0 + acc.unit_roundoff) ** n
            absolute = n * acc.smallest_subnormal * gemm
        gemm *= 1.0 + out.unit_roundoff
        absolute += out.smallest_subnormal
        g = gemm * (1.0 + op.unit_roundoff + n * op.smallest_subnormal) / low
        return g, absolute / low


def _online_sums(rec: _Recorder, problem: _Problem, prof: Profile, weights: _Weights) -> None:
    """PASA-ENV-9 .. PASA-ENV-11: the row sums l, the accumulator O and the output O / l of the
    online softmax (pasa and flash); every rescaling factor exp(.) is <= 1."""
    stat, acc_fmt = prof.statistics, prof.accumulator
    ell = np.float64(0.0)
    v_max = np.abs(problem.v).max(axis=-2)  # B x Hkv x Dv
    total = np.zeros_like(v_max)  # bound on |O_j|
    mean = np.zeros_like(v_max)  # W_j with |O_j| <= l_j W_j
    for j, cols in enumerate(problem.blocks, start=1):
        n = cols.stop - cols.start
        local = weights.block_sum(n)
        rec.check("PASA-ENV-9", "block row sum l~", prof.vector, local, "scalar", j)
        ell = rec.rounded(
            "PASA-ENV-9", "row sum l", stat,
            rec.rounded("PASA-ENV-9", "row sum l", stat, ell, "scalar", j)
            + rec.rounded("PASA-ENV-9", "row sum l", stat, local, "scalar", j),
            "scalar", j,
        )
        column_sum = np.abs(problem.v[:, :, cols]).sum(axis=-2)
        pv = _gemm(rec, "PASA-ENV-10", "P~ V block product", prof, column_sum, n, "value", j)
        total = rec.rounded(
            "PASA-ENV-10", "accumulator O", acc_fmt,
            rec.rounded("PASA-ENV-10", "accumulator O", acc_fmt, total, "value", j)
            + rec.rounded("PASA-ENV-10", "accumulator O", acc_fmt, pv, "value", j),
            "value", j,
        )
        g, h = weights.value_growth(n)
        mean = (np.maximum(mean, v_max * g + h) * (1.0 + acc_fmt.unit_roundoff) ** 2
                * (1.0 + 4.0 * stat.smallest_subnormal) / (1.0 - stat.unit_roundoff) ** 2
                + 4.0 * acc_fmt.smallest_subnormal)
    final = rec.rounded("PASA-ENV-11", "O / l", acc_fmt, np.minimum(total, mean), "value")
    rec.check("PASA-ENV-11", "output", prof.output, final, "value")


def _pasa(rec: _Recorder, problem: _Problem, prof: Profile, beta: float) -> None:
    """PASA-ENV-4 .. PASA-ENV-11 for the pasa kernel (spec section 5, PASA-ALG-1 .. 6)."""
    stat = prof.statistics
    gamma = float(rec.exact("PASA-ENV-8", "gamma in the statistics format", stat,
                            beta / (1.0 - beta), "scalar"))
    keys = _shifted_keys(rec, problem, prof, beta)
    scores = _shifted_scores(rec, problem, prof, keys)
    means = _pseudo_averages(rec, problem, prof, keys, scores)
    _running_statistics(rec, prof, gamma, scores, means)
    _online_sums(rec, problem, prof, _Weights(prof))


@dataclass(frozen=True)
class _ShiftedKeys:
    """Per key block j: the largest bound on ||K~_t|| (B x Hkv x T), the sum over the block of
    the bounds on ||fl(K~_t) - K~_t|| (B x Hkv x T), the exact column sum
    sigma_j = (d^ + (n - 1) o^) sum_t k_t (B x Hkv x T x D) and its magnitude bound."""

    norm: np.ndarray
    error: np.ndarray
    column_sum: np.ndarray
    column_sum_abs: np.ndarray
    lengths: tuple[int, ...]


def _shifted_keys(
    rec: _Recorder, problem: _Problem, prof: Profile, beta: float
) -> _ShiftedKeys:
    """PASA-ENV-4: K~_j = fl_output(M^_n^T K_j), M^_n with diagonal d^ = fl(lambda_M (1 - beta/n))
    and off-diagonal o^ = fl(-lambda_M beta / n) in the operand format.

    The exact K~_td = d^ k_td + o^ (sum_{s in j} k_sd - k_td) is evaluated in binary64, with an
    evaluation error below (n + 4) 2^-53 (|d^| |k_td| + |o^| (sum_s |k_sd| - |k_td|))."""
    lam = problem.scale if problem.scale_at == "shift" else 1.0
    op = prof.matmul_operand
    norms, errors, sums, sums_abs = [], [], [], []
    for j, cols in enumerate(problem.blocks, start=1):
        n = cols.stop - cols.start
        diag = float(rec.exact("PASA-ENV-4", "shift matrix entries", op,
                               lam * (1.0 - beta / n), "scalar"))
        off = float(rec.exact("PASA-ENV-4", "shift matrix entries", op,
                              lam * (0.0 - beta / n), "scalar"))
        k = problem.k[:, :, cols]
        k_abs = np.abs(k)
        column_abs = k_abs.sum(axis=-2, keepdims=True)
        magnitude = abs(diag) * k_abs + abs(off) * (column_abs - k_abs)
        computed = np.abs(diag * k + off * (k.sum(axis=-2, keepdims=True) - k))
        exact = computed + (n + 4) * _B64 * magnitude  # >= |K~_td|
        rounded = _gemm(rec, "PASA-ENV-4", "shifted keys K~", prof, exact, n, "kv", j,
                        magnitude=magnitude)
        if not op.contains(prof.matmul_output):
            rounded = rec.rounded("PASA-ENV-4", "shifted keys K~ as operands", op, rounded, "kv",
                                  j)
        norms.append(_row_norms(rounded).max(axis=-1))
        errors.append(_row_norms(rounded - computed).sum(axis=-1))
        factor = diag + (n - 1) * off
        sums.append(factor * k.sum(axis=-2))
        sums_abs.append((abs(diag) + (n - 1) * abs(off)) * column_abs[..., 0, :])
    stack = np.stack
    return _ShiftedKeys(stack(norms, -1), stack(errors, -1), stack(sums, -2), stack(sums_abs, -2),
                        tuple(c.stop - c.start for c in problem.blocks))


@dataclass(frozen=True)
class _ShiftedScores:
    """Per query row i and key block j (B x Hkv x G x S1 x T): bound on |S~_it| over the block,
    bound on |S~_it - lambda_s q_i . K~_t| (lambda_s the score scale, 1 unless "scores"),
    and lambda_s; plus ||q_i|| (B x Hkv x G x S1)."""

    bound: np.ndarray
    error: np.ndarray
    scale: float
    q_norm: np.ndarray


def _shifted_scores(
    rec: _Recorder, problem: _Problem, prof: Profile, keys: _ShiftedKeys
) -> _ShiftedScores:
    """PASA-ENV-5: S~_it = fl(q_i . K~_t) (then fl_vector(lambda^ .) for scale_at = "scores");
    |q_i . K~_t| <= ||q_i|| ||K~_t|| (PASA-BND-1, Cauchy-Schwarz on the rounded operands)."""
    q_norm = _row_norms(problem.q)
    scale_hat = _score_scale(rec, prof, problem, kernel_has_shift=True)
    d = problem.q.shape[-1]
    exact = q_norm[..., None] * keys.norm[:, :, None, None, :]  # B x Hkv x G x S1 x T
    product = _gemm(rec, "PASA-ENV-5", "shifted scores S~", prof, exact, d, "row-block")
    bound = _scaled_scores(rec, "PASA-ENV-5", prof, product, scale_hat, "row-block")
    return _ShiftedScores(bound, bound - scale_hat * exact, scale_hat, q_norm)


@dataclass(frozen=True)
class _Means:
    """Pseudo-averages a_ij relative to a per-row centre kappa_i (B x Hkv x G x S1):
    |a_ij - kappa_i| <= spread_i, |a_ij| <= magnitude_ij."""

    centre: np.ndarray
    spread: np.ndarray
    magnitude: np.ndarray


def _pseudo_averages(
    rec: _Recorder, problem: _Problem, prof: Profile, keys: _ShiftedKeys, scores: _ShiftedScores
) -> _Means:
    """PASA-ENV-6: a_ij = rowsum(fl(S~_it fl(1/n))) = c_ij + E_ij with the exact-operand centre
    c_ij = fl(1/n) lambda_s q_i . sigma_j and a rounding term |E_ij| bounded term by term."""
    vec = prof.vector
    lengths = np.asarray(keys.lengths, dtype=np.float64)
    inverse = vec.round(1.0 / lengths).astype(np.float64)  # fl_vector(1/n_j), T
    depth = np.asarray([_sum_depth(vec, n) for n in keys.lengths], dtype=np.float64)
    term = rec.rounded("PASA-ENV-6", "S~ / n terms of the row mean", vec,
                       scores.bound * inverse, "row-block")
    total = (lengths * term + lengths * vec.smallest_subnormal) * (1 + vec.unit_roundoff) ** depth
    rec.check("PASA-ENV-6", "pseudo-average a (partial sums)", vec, total, "row-block")
    q = problem.q
    centre = inverse * scores.scale * np.einsum("bhgsd,bhtd->bhgst", q, keys.column_sum)
    d = q.shape[-1]
    centre_error = (inverse * scores.scale * scores.q_norm[..., None]
                    * _row_norms(keys.column_sum_abs)[:, :, None, None, :]
                    * (lengths + d + 4) * 2.0**-52)
    error = (
        inverse * scores.scale * scores.q_norm[..., None] * keys.error[:, :, None, None, :]
        + inverse * lengths * scores.error
        + lengths * (term - inverse * scores.bound)
        + (total - lengths * term)
        + centre_error
    )
    top, bottom = centre.max(axis=-1), centre.min(axis=-1)
    mid = 0.5 * (top + bottom)
    spread = 0.5 * (top - bottom) + error.max(axis=-1)
    magnitude = np.minimum(total, (np.abs(mid) + spread)[..., None])
    return _Means(mid, spread, magnitude)


def _running_statistics(
    rec: _Recorder, prof: Profile, gamma: float, scores: _ShiftedScores, means: _Means
) -> None:
    """PASA-ENV-7 (running reference abar) and PASA-ENV-8 (frame offsets x, y and the running
    max m), per row, by induction over the key blocks j = 1..T.

    rho_j bounds |abar_j - kappa|; Phi_j bounds |m_j + gamma (abar_j - kappa)|, which is how far
    the running max can drift from the recovered frame (the gamma terms telescope)."""
    stat = prof.statistics
    kappa, spread = np.abs(means.centre), means.spread
    rho = kappa  # |abar_0 - kappa| = |kappa|
    abar = np.zeros_like(kappa)  # bound on |abar_{j-1}|
    phi = np.zeros_like(kappa)
    for j in range(1, means.magnitude.shape[-1] + 1):
        a = means.magnitude[..., j - 1]
        first = float(stat.round(1.0 / j))
        carried = float(stat.round((j - 1) / j))
        p = rec.rounded("PASA-ENV-7", "running reference abar", stat, a * first, "row", j)
        r = rec.rounded("PASA-ENV-7", "running reference abar", stat, abar * carried, "row", j)
        new_abar = rec.rounded("PASA-ENV-7", "running reference abar", stat, p + r, "row", j)
        new_rho = (first * spread + carried * rho + abs(first + carried - 1.0) * kappa
                   + (p - first * a) + (r - carried * abar) + (new_abar - (p + r)))
        new_rho = np.minimum(new_rho, kappa + new_abar)
        phi = _frame_offsets(rec, stat, gamma, j, scores.bound[..., j - 1], a, spread,
                             means.centre, rho, new_rho, abar, new_abar, phi)
        rho, abar = new_rho, new_abar


def _frame_offsets(
    rec: _Recorder, stat: Format, gamma: float, j: int, score: np.ndarray, a: np.ndarray,
    spread: np.ndarray, centre: np.ndarray, rho: np.ndarray, new_rho: np.ndarray, abar: np.ndarray,
    new_abar: np.ndarray, phi: np.ndarray,
) -> np.ndarray:
    """PASA-ENV-8 for block j: x = m~ + gamma (a - abar_j), y = m_{j-1} + gamma (abar_{j-1} -
    abar_j); returns Phi_j."""
    clause = "PASA-ENV-8"
    diff_x = np.minimum(spread + new_rho, a + new_abar)
    dx = rec.rounded(clause, "a - abar", stat, diff_x, "row", j)
    gx = rec.rounded(clause, "gamma (a - abar)", stat, gamma * dx, "row", j)
    x_pre = score + gx
    x = rec.rounded(clause, "x = m~ + gamma (a - abar)", stat, x_pre, "row", j)
    phi_x = score + gamma * spread + (gx - gamma * diff_x) + (x - x_pre)
    if j == 1:
        return phi_x  # m_0 = -inf: y_1 = -inf, a frame without mass (PASA-ALG-5)
    diff_y = np.minimum(rho + new_rho, abar + new_abar)
    dy = rec.rounded(clause, "abar_{j-1} - abar_j", stat, diff_y, "row", j)
    gy = rec.rounded(clause, "gamma (abar_{j-1} - abar_j)", stat, gamma * dy, "row", j)
    slip = gy - gamma * diff_y
    y_pre = phi + gamma * new_rho + slip
    y = rec.rounded(clause, "y = m_{j-1} + gamma (abar_{j-1} - abar_j)", stat, y_pre, "row", j)
    phi_y = phi + slip + (y - y_pre)
    return np.maximum(phi_x, phi_y)
