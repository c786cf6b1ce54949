"""The certification clauses, criteria (a)..(f) of specs/certification.md, as pure functions
of a case's evidence (PASA-CERT-10..16).

Each check returns None when the clause does not apply to the case, else a Finding with a
severity: the case passes the clause iff severity <= 1. Graded rules report
measured / allowed; yes/no rules report 0 (pass) or 1 + the number of offending items.

    PASA-CERT-10 (f)  every call returns, within the deadline, an array of shape
                      B x Hq x S1 x Dv and the profile's output dtype
    PASA-CERT-11 (a)  no NaN or inf on a row with a visible key where the class reference
                      is finite
    PASA-CERT-12 (b)  max|Ob - O*| <= rtol max_c max|Or_c - O*| + floor and
                      RMSE(Ob, O*) <= rmse_rtol max_c RMSE(Or_c, O*) + floor,
                      floor = floor_ulps ulp_F(max|O*|) + max(oracle bound), on rows with a
                      visible key, Or_c the class reference in each modelled accumulation
                      order c (PASA-CERT-9)
    PASA-CERT-13 (b)  on benign cases: RMSE / RMS(O*), cosine similarity and the pass ratios
                      within the profile's absolute bounds
    PASA-CERT-14 (c)  for each metamorphic relation T with output map phi:
                      max|Ob(T x) - phi(Ob(x))| <= rtol max|Or(T x) - phi(Or(x))| + floor,
                      floor = floor_ulps ulp_F(max|phi(Or(x))|)
    PASA-CERT-15 (d)  fully masked rows exactly 0 (unless the declaration says otherwise;
                      no other clause judges them); rows with one visible key t equal v_t
                      rounded along the profile's value path (operand, GEMM output,
                      accumulator, output formats) within single_key_max_ulps ulp_F; on the
                      edge corpus the rule of PASA-CERT-12
    PASA-CERT-16 (e)  two calls on the same input give the same bits

O* is the oracle, Or the reference kernel of the declared class (PASA-CERT-8), Ob the
backend, F the output format.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pasa_ref import metrics
from pasa_ref.certify.evidence import Evidence, values
from pasa_ref.certify.thresholds import Conformance, Relative
from pasa_ref.formats import Format
from pasa_ref.profiles import Profile

__all__ = ["CLAUSES", "Clause", "Finding", "absolute_measures", "evaluate"]

Measures = dict[str, float | int | str | None]


@dataclass(frozen=True)
class Finding:
    clause: str
    severity: float
    message: str
    measures: Measures = field(default_factory=dict)

    def __post_init__(self) -> None:
        if math.isnan(self.severity):  # e.g. 0 / 0: never let NaN pass a comparison
            object.__setattr__(self, "severity", math.inf)

    @property
    def passed(self) -> bool:
        return self.severity <= 1.0


@dataclass(frozen=True)
class Clause:
    id: str
    criterion: str
    name: str
    title: str
    check: Callable[[Evidence, Conformance], Finding | None]
    min_level: int = 1


def _count_severity(count: int) -> float:
    return 0.0 if count == 0 else 1.0 + count


def _floor(magnitude: float, fmt: Format, ulps: float) -> float:
    """ulps * ulp_F(magnitude): the noise floor of a rule at the values' scale."""
    return ulps * float(metrics.ulp(np.float64(magnitude), fmt))


def _at(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


# -- (f) ------------------------------------------------------------------------------------


def contract(ev: Evidence, conf: Conformance) -> Finding:
    shape, dtype = ev.truth.output_shape, ev.profile.output.storage
    calls = [("call", ev.first), ("repeated call", ev.second)]
    calls += [(f"{r.transformed.relation} call", r.call) for r in ev.relations]
    problems = []
    for name, call in calls:
        if call is None:
            continue
        if not call.ok:
            problems.append(f"{name}: {call.failure}: {call.message}")
        elif call.output.shape != shape:
            problems.append(f"{name}: expected shape {shape}, got {call.output.shape}")
        elif call.output.dtype != dtype:
            problems.append(f"{name}: expected dtype {dtype}, got {call.output.dtype}")
    return Finding(
        "PASA-CERT-10",
        _count_severity(len(problems)),
        "; ".join(problems) or f"returned {shape} {dtype}",
        {
            "calls": sum(call is not None for _, call in calls),
            "failed_calls": len(problems),
            "seconds": ev.first.seconds,
        },
    )


# -- (a) ------------------------------------------------------------------------------------


def finite(ev: Evidence, conf: Conformance) -> Finding | None:
    """Every element on a row with a visible key is finite, except where the class reference
    (in some modelled accumulation order) is non-finite too; the oracle is finite on every
    valid input, inside the safe envelope or outside it."""
    out, t = values(ev.first, ev.truth), ev.truth
    if out is None:
        return None
    bad = ~np.isfinite(out) & t.judged_elements() & ~t.reference_nonfinite()
    count = int(bad.sum())
    message = "finite wherever the class reference is finite"
    if count:
        where = tuple(np.argwhere(bad)[0])
        message = (
            f"{count} of {out.size} elements non-finite where the class reference is finite, "
            f"first at {_at(where)}: got {out[where]}, exact {t.oracle[where]:.6g}, "
            f"reference {t.reference[where]:.6g}"
        )
    return Finding("PASA-CERT-11", _count_severity(count), message, {"nonfinite": count})


# -- (b) ------------------------------------------------------------------------------------


def _errors(out: np.ndarray, exact: np.ndarray, where: np.ndarray) -> tuple[float, float]:
    """(max |out - exact|, RMSE) over the elements `where`; (0, 0) when there are none."""
    if not where.any():
        return 0.0, 0.0
    error = np.abs(out[where] - exact[where])
    return float(error.max()), float(np.sqrt(np.mean(error**2)))


def _accuracy_rule(clause: str, ev: Evidence, rule: Relative) -> Finding | None:
    """The FlashAttention rule against the oracle, relative to the yardstick: the class
    reference in the worst of its modelled accumulation orders (PASA-CERT-9). Judged on the
    rows with a visible key, on every element where the backend is finite (a non-finite one
    is criterion (a)'s); the yardstick's errors are taken where all its orders are finite,
    and a finite backend element where the yardstick is not is held to the same bound. None
    when no element is judged."""
    out, t = values(ev.first, ev.truth), ev.truth
    if out is None:
        return None
    rows = t.judged_elements()
    judged = rows & np.isfinite(out)
    if not judged.any():
        return None
    reference_finite = rows & ~t.reference_nonfinite()
    floor = _floor(np.abs(t.oracle).max(), ev.profile.output, rule.floor_ulps) + t.oracle_bound
    max_b, rmse_b = _errors(out, t.oracle, judged)
    reference = [_errors(yardstick, t.oracle, reference_finite) for yardstick in t.yardsticks]
    max_r = max(error for error, _ in reference)
    rmse_r = max(rmse for _, rmse in reference)
    allowed_max = rule.rtol * max_r + floor
    allowed_rmse = (rule.rmse_rtol or rule.rtol) * rmse_r + floor
    severity = max(max_b / allowed_max, rmse_b / allowed_rmse)
    error = np.where(judged, np.abs(out - t.oracle), -1.0)
    where = np.unravel_index(int(error.argmax()), error.shape)
    message = (
        f"max|err| {max_b:.3g} vs allowed {allowed_max:.3g} (yardstick {max_r:.3g}, floor "
        f"{floor:.3g}), worst at {_at(where)}: got {out[where]:.6g}, exact "
        f"{t.oracle[where]:.6g}; RMSE {rmse_b:.3g} vs allowed {allowed_rmse:.3g}"
    )
    return Finding(
        clause,
        severity,
        message,
        {
            "max_abs_error": max_b,
            "reference_max_abs_error": max_r,
            "rmse": rmse_b,
            "reference_rmse": rmse_r,
            "floor": floor,
            "spec_order_max_abs_error": reference[0][0],
        },
    )


def accuracy(ev: Evidence, conf: Conformance) -> Finding | None:
    if ev.case.metadata.get("group") == "edge":
        return None  # the edge corpus is judged under (d)
    return _accuracy_rule("PASA-CERT-12", ev, conf.accuracy)


def _shortfall(measured: float, minimum: float) -> float:
    """(1 - measured) / (1 - minimum) for quantities that should be close to 1; 0 when the
    minimum is 0 (no bound)."""
    if minimum == 0:
        return 0.0
    return max(0.0, 1.0 - measured) / (1.0 - minimum)


def absolute_measures(out: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """The four quantities PASA-CERT-13 bounds; pass ratios with the guard at RMS(O*)."""
    guard = metrics.rms(exact)
    return {
        "rmse_over_rms_reference": metrics.rmse_over_rms_reference(out, exact),
        "cosine_similarity": metrics.cosine_similarity(out, exact),
        "pass_ratio_hundredth": metrics.pass_ratio(out, exact, 0.01, guard=guard),
        "pass_ratio_thousandth": metrics.pass_ratio(out, exact, 0.001, guard=guard),
    }


def recovery_amplification(ev: Evidence) -> float:
    """rho = max(1, (1 + gamma) / (1 + gamma_P)), gamma = beta / (1 - beta) of the declared pasa
    kernel and gamma_P of the profile's beta (PASA-CERT-13): how much more the recovery
    amplifies block-mean errors than at the beta the absolute bounds were calibrated for
    (PASA-BND-3, PASA-ACC-1's factor 1 + gamma); 1 for the softmax class and the profile's
    beta."""
    algorithm = ev.declaration.algorithm
    if algorithm.kind != "pasa" or algorithm.beta is None:
        return 1.0

    def amplification(beta: float) -> float:
        return 1.0 + beta / (1.0 - beta)

    return max(1.0, amplification(algorithm.beta) / amplification(ev.profile.beta))


def absolute(ev: Evidence, conf: Conformance) -> Finding | None:
    out = values(ev.first, ev.truth)
    if not ev.case.metadata.get("benign") or out is None:
        return None
    if not np.isfinite(out).all():
        return Finding("PASA-CERT-13", float("inf"), "non-finite output on a benign case")
    bounds = conf.absolute_for(ev.profile.name)
    rho = recovery_amplification(ev)
    measured = absolute_measures(out, ev.truth.oracle)
    # errors scale with rho: RMSE and the pass ratios' shortfalls by rho, 1 - cosine (second
    # order in the error) by rho^2
    ratios = {
        "rmse_over_rms_reference": measured["rmse_over_rms_reference"]
        / (rho * bounds.max_rmse_over_rms_reference),
        "cosine_similarity": _shortfall(
            measured["cosine_similarity"], bounds.min_cosine_similarity
        )
        / rho**2,
        "pass_ratio_hundredth": _shortfall(
            measured["pass_ratio_hundredth"], bounds.min_pass_ratio_hundredth
        )
        / rho,
        "pass_ratio_thousandth": _shortfall(
            measured["pass_ratio_thousandth"], bounds.min_pass_ratio_thousandth
        )
        / rho,
    }
    worst = max(ratios, key=ratios.get)
    message = ", ".join(f"{name} {value:.6g}" for name, value in measured.items())
    if rho > 1:
        message += f"; bounds scaled for the declared beta (rho {rho:.3g})"
    return Finding(
        "PASA-CERT-13",
        ratios[worst],
        f"{message} (tightest: {worst})",
        {**measured, "recovery_amplification": rho},
    )


# -- (c) ------------------------------------------------------------------------------------


def metamorphic(ev: Evidence, conf: Conformance) -> Finding | None:
    base = values(ev.first, ev.truth)
    if not ev.relations or base is None:
        return None
    rule, rows, t = conf.metamorphic, ev.truth.visible_rows, ev.truth
    results: list[tuple[float, str, str]] = []
    for evidence in ev.relations:
        relation = evidence.transformed
        expected_r = relation.expect(t.reference, rows)
        if not (np.isfinite(expected_r).all() and np.isfinite(evidence.reference).all()):
            continue
        out = values(evidence.call, t)
        if out is None:
            continue  # a failed call is judged under (f)
        expected_b = relation.expect(base, rows)
        judged = t.judged_elements()  # fully masked rows: PASA-CERT-15 alone
        if not judged.any():
            continue
        dev_b = (
            float(np.abs(out - expected_b)[judged].max())
            if np.isfinite(out[judged]).all() and np.isfinite(expected_b[judged]).all()
            else float("inf")
        )
        dev_r = float(np.abs(evidence.reference - expected_r)[judged].max())
        allowed = rule.rtol * dev_r + _floor(
            np.abs(expected_r).max(), ev.profile.output, rule.floor_ulps
        )
        message = (
            f"{relation.relation} ({relation.parameter}): deviation {dev_b:.3g} vs "
            f"allowed {allowed:.3g} (reference {dev_r:.3g})"
        )
        results.append((dev_b / allowed, relation.relation, message))
    if not results:
        return None
    severity, relation, _ = max(results)
    return Finding(
        "PASA-CERT-14",
        severity,
        "; ".join(message for *_, message in results),
        {"worst_relation": relation, "relations": len(results)},
    )


# -- (d) ------------------------------------------------------------------------------------


def edge(ev: Evidence, conf: Conformance) -> Finding | None:
    out, t = values(ev.first, ev.truth), ev.truth
    if out is None:
        return None
    parts: list[Finding] = []
    masked = ~t.visible_rows[..., 0]
    if masked.any() and ev.declaration.conventions.fully_masked_rows == "zero":
        wrong = out[masked] != 0  # NaN != 0 too
        parts.append(
            Finding(
                "PASA-CERT-15",
                _count_severity(int(wrong.sum())),
                f"{int(wrong.sum())} non-zero elements on {int(masked.sum())} fully "
                "masked rows (PASA-MASK-3)",
            )
        )
    single = t.single_key >= 0
    if single.any():
        single_part = _single_key_rule(ev, out, single, conf.single_key_max_ulps)
        parts += [] if single_part is None else [single_part]
    if ev.case.metadata.get("group") == "edge":
        accuracy_part = _accuracy_rule("PASA-CERT-15", ev, conf.accuracy)
        parts += [] if accuracy_part is None else [accuracy_part]
    if not parts:
        return None
    worst = max(parts, key=lambda finding: finding.severity)
    return Finding(
        "PASA-CERT-15", worst.severity, "; ".join(p.message for p in parts), {"checks": len(parts)}
    )


def value_path(v: np.ndarray, profile: Profile) -> np.ndarray:
    """v_t as the profile carries a value row whose softmax weight is 1 (PASA-NUM-5): rounded
    into the GEMM operand, GEMM output, accumulator and output formats in turn."""
    x = v.astype(np.float64)
    for fmt in (profile.matmul_operand, profile.matmul_output, profile.accumulator, profile.output):
        x = fmt.round(x).astype(np.float64)
    return x


def _single_key_rule(
    ev: Evidence, out: np.ndarray, single: np.ndarray, max_ulps: float
) -> Finding | None:
    """Rows that see exactly one key t must return v_t through the profile's value path
    (softmax weight 1). A non-finite element is not judged where the class reference is
    non-finite too (PASA-CERT-11)."""
    t, fmt = ev.truth, ev.profile.output
    b, h, i = np.nonzero(single)
    group = out.shape[1] // ev.case.v.shape[1]
    expected = value_path(ev.case.v[b, h // group, t.single_key[b, h, i]], ev.profile)
    got = out[b, h, i]
    judged = np.isfinite(got) | ~t.reference_nonfinite()[b, h, i]
    if not judged.any():
        return None
    with np.errstate(invalid="ignore"):
        ulps = np.where(
            np.isfinite(got), np.abs(got - expected) / metrics.ulp(expected, fmt), np.inf
        )
    ulps = np.where(judged, ulps, 0.0)
    worst = np.unravel_index(int(ulps.argmax()), ulps.shape)
    top = float(ulps[worst])
    severity = top / max_ulps
    row = (int(b[worst[0]]), int(h[worst[0]]), int(i[worst[0]]), int(worst[1]))
    return Finding(
        "PASA-CERT-15",
        severity,
        f"{len(b)} single-key rows: worst {top:.3g} ulps at {_at(row)}: got "
        f"{got[worst]:.6g}, expected v = {expected[worst]:.6g}",
    )


# -- (e) ------------------------------------------------------------------------------------


def determinism(ev: Evidence, conf: Conformance) -> Finding | None:
    if ev.second is None or ev.first.output is None or ev.second.output is None:
        return None
    a, b = ev.first.output, ev.second.output
    if a.dtype.kind == "O" or b.dtype.kind == "O":
        return None  # not numbers: judged under (f)
    if a.shape != b.shape or a.dtype != b.dtype:
        return Finding(
            "PASA-CERT-16",
            2.0,
            f"second call returned {b.shape} {b.dtype}, first {a.shape} {a.dtype}",
        )
    if a.dtype.itemsize in (1, 2, 4, 8):
        bits = np.dtype(f"u{a.dtype.itemsize}")
        differing = int(
            np.count_nonzero(
                np.ascontiguousarray(a).view(bits) != np.ascontiguousarray(b).view(bits)
            )
        )
    else:
        differing = int(a.tobytes() != b.tobytes())
    return Finding(
        "PASA-CERT-16",
        _count_severity(differing),
        f"{differing} of {a.size} elements differ bitwise between two calls",
        {"differing": differing},
    )


CLAUSES: tuple[Clause, ...] = (
    Clause(
        "PASA-CERT-10",
        "f",
        "call contract",
        "returns in time, with the right shape and dtype",
        contract,
    ),
    Clause(
        "PASA-CERT-11", "a", "finite", "finite output where the class reference is finite", finite
    ),
    Clause("PASA-CERT-12", "b", "accuracy", "accuracy relative to the class reference", accuracy),
    Clause(
        "PASA-CERT-13",
        "b",
        "absolute bounds",
        "absolute accuracy bounds on benign inputs",
        absolute,
    ),
    Clause(
        "PASA-CERT-14",
        "c",
        "metamorphic",
        "metamorphic relations PASA-MR-1..3",
        metamorphic,
        min_level=2,
    ),
    Clause(
        "PASA-CERT-15", "d", "edge semantics", "masked rows, single keys, the edge corpus", edge
    ),
    Clause(
        "PASA-CERT-16", "e", "determinism", "the same input twice gives the same bits", determinism
    ),
)


def evaluate(ev: Evidence, conf: Conformance) -> list[Finding]:
    """Every applicable clause's finding for one case."""
    return [finding for clause in CLAUSES if (finding := clause.check(ev, conf)) is not None]
