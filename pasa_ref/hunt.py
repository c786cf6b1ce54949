"""The search engine behind `pasa hunt` (spec specs/strategies-and-hunting.md, PASA-HUNT-1 ..
PASA-HUNT-7): hypothesis generates cases from `pasa_ref.strategies`, an objective judges the
kernel on each, hypothesis.target drives the objective's guide upward and hypothesis shrinks the
first failing case. Reporting (progress bars, printing) lives elsewhere: the engine tells an
`Observer` what happens, and `CorpusWriter` is the observer that writes case files.

Objectives (PASA-HUNT-2 .. PASA-HUNT-4), each giving a value (larger is worse), a verdict and a
guide for hypothesis.target:

    nonfinite  fails when an output element is NaN or infinite. Guide: log2 of the envelope
               pressure of the kernel (PASA-ENV-1; flash's envelope for kernels from outside).
    error      value e = max |O - O*| / max |V| (O* the oracle, method "fast"; inf when O has a
               non-finite element); fails when e >= threshold (default 0.01). Guide: log2 e.
    envelope   fails when the case is inside pasa's safe envelope and the kernel's output is not
               finite: for pasa, a counterexample to PASA-ENV-1; for the baselines, a problem
               pasa provably survives and they do not. Value: the pressure p of inside cases
               (0 outside). Guide: log2 min(p, 1/p), largest at the envelope's boundary.
    class      the kernel against the reference of its algorithm class (the yardstick, a
               callable of the config giving one or more reference outputs Or):
               r = max |O - O*| / (max_r max |Or - O*| + ulp_F(max|O*|)) on the rows with a
               visible key (O* the oracle, method "fast"; inf when O is non-finite where every
               Or is finite); fails when r > threshold (level 3 uses rtol of PASA-CERT-12).
               Guide: log2 r.

Search (PASA-HUNT-5): rounds of max_examples = 50, 100, 200, ... (hypothesis starts targeting
half-way through a round), round r seeded with seed + r, sharing one in-memory example database
so that each round starts by replaying the pareto front of the targets of the last. The first
failure is shrunk by hypothesis; every failing case met while shrinking is reported at once, so
that a budget that runs out or a Ctrl-C keeps the smallest so far. For "error", when nothing
failed, the last fifth of the budget shrinks the worst case seen, keeping its error >= 90% of
the worst: the worst case's choice sequence is saved in the database and replayed with the
threshold lowered.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, seed, settings
from hypothesis import target as hypothesis_target
from hypothesis.control import current_build_context
from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes
from hypothesis.errors import HypothesisWarning

from pasa_ref import __version__, blas, envelope, metrics, oracle, profiles, strategies
from pasa_ref.cases import Case
from pasa_ref.certify import evidence, thresholds
from pasa_ref.certify.backend import BackendError, Caller
from pasa_ref.inputs import validate
from pasa_ref.kernels import KERNELS

__all__ = [
    "DEFAULT_THRESHOLD",
    "OBJECTIVES",
    "CorpusWriter",
    "Evaluation",
    "Finding",
    "HuntConfig",
    "HuntError",
    "HuntResult",
    "KernelFailed",
    "KernelUnderTest",
    "Observer",
    "Recorded",
    "evaluate",
    "hunt",
    "load_kernel",
    "recorded",
    "relative_error",
    "save_case",
]

OBJECTIVES = ("nonfinite", "error", "envelope", "class")
DEFAULT_THRESHOLD = 0.01  # error objective: max |O - O*| >= 1% of max |V|
FIRST_ROUND = 50  # max_examples of the first round; it doubles every round
WORST_ROUND = 1_000  # its reuse phase may replay up to 10% of this many saved cases
WORST_SHARE = 0.9  # the shrunk worst case keeps >= 90% of the worst error
WORST_PHASE = 0.2  # share of the budget kept for shrinking the worst case
_GUIDE_LIMIT = 1e6


class HuntError(ValueError):
    """A hunt was configured wrongly; the message names the argument."""


class KernelUnderTest:
    """A kernel called through pasa_ref.certify.backend, the one loader of certify, hunt and
    replay (PASA-CERT-1..3): the protocol fn(q, k, v, *, scale, causal, mask) with scale a
    binary64 float, profile= when it takes one, a deadline per call and optional isolation.
    `reference` names the reference kernel whose envelope guides the nonfinite search. Close
    it (or use it as a context manager) to stop an isolated kernel's child process."""

    def __init__(self, name: str, caller: Caller, reference: str) -> None:
        self.name, self.caller, self.reference = name, caller, reference

    @property
    def takes_profile(self) -> bool:
        return self.caller.identity.receives_profile

    def __enter__(self) -> KernelUnderTest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.caller.close()

    def __call__(self, case: Case, profile: str) -> np.ndarray:
        """The kernel's output for `case`, as an array of its own dtype; raises KernelFailed
        when the call fails (exception, timeout, crash, not an array, wrong shape)."""
        call = self.caller(evidence.request(case), profile=profile)
        if not call.ok:
            raise KernelFailed(f"{call.failure}: {call.message}")
        out = call.output
        expected = (case.q.shape[0], case.q.shape[1], case.q.shape[2], case.v.shape[3])
        if out.shape != expected:
            raise KernelFailed(
                f"kernel {self.name!r}: expected an output of shape B x Hq x S1 x Dv = "
                f"{expected}, got {out.shape}"
            )
        return out


class KernelFailed(Exception):
    """A call of the kernel under test failed; the message says how (a finding, not an error
    of the hunt)."""


def load_kernel(spec: str, *, timeout: float | None = None, isolate: bool = False) -> KernelUnderTest:
    """A reference kernel ("naive", "flash", "pasa"), "package.module:function" or an adapter
    name, loaded by pasa_ref.certify.backend (PASA-CERT-1, -2); timeout defaults to
    specs/conformance.toml's timeout_s."""
    deadline = thresholds.load().timeout_s if timeout is None else timeout
    try:
        caller = Caller(spec, profiles.names()[0], timeout=deadline, isolate=isolate)
    except BackendError as error:
        raise HuntError(str(error).replace("'backend'", "'kernel'")) from None
    return KernelUnderTest(spec, caller, spec if spec in KERNELS else "flash")


@dataclass(frozen=True)
class Evaluation:
    """One case judged by one objective (PASA-HUNT-2 .. 4)."""

    objective: str
    value: float  # larger is worse; inf for a non-finite output under "error"
    failed: bool
    nonfinite: int  # non-finite output elements (-1: not computed, the case is outside)
    pressure: float  # envelope pressure used by the objective
    guide: float  # what hypothesis.target maximises
    crash: str | None = None  # the kernel raised this

    @property
    def verdict(self) -> str:
        if self.crash:
            return f"kernel raised {self.crash}"
        if self.objective == "error":
            shown = "non-finite output" if math.isinf(self.value) else f"error {self.value:.4g}"
            return f"{shown} ({'above' if self.failed else 'below'} the threshold)"
        if self.objective == "class":
            shown = (
                "non-finite where the class reference is finite" if math.isinf(self.value)
                else f"{self.value:.4g} times the class reference's error"
            )
            return f"{shown} ({'above' if self.failed else 'within'} the threshold)"
        if self.objective == "envelope":
            if self.nonfinite < 0:
                return f"outside pasa's envelope (pressure {self.pressure:.3g})"
            state = "non-finite" if self.failed else "finite"
            return f"{state} output inside pasa's envelope (pressure {self.pressure:.3g})"
        return f"{self.nonfinite} non-finite output element(s)" if self.failed else "finite output"


def _log2(x: float) -> float:
    """log2 x clipped to +-_GUIDE_LIMIT (hypothesis.target needs a finite float)."""
    if not x > 0:
        return -_GUIDE_LIMIT
    return float(np.clip(math.log2(x), -_GUIDE_LIMIT, _GUIDE_LIMIT))


def _count_nonfinite(out: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isfinite(out.astype(np.float64))))


def relative_error(out: np.ndarray, reference: np.ndarray, v: np.ndarray) -> float:
    """max |O - O*| / max |V| (inf when O has a non-finite element); V = 0 counts as the
    smallest subnormal of its format so that the ratio stays defined."""
    o = out.astype(np.float64)
    if not np.isfinite(o).all():
        return math.inf
    scale = max(float(np.abs(v.astype(np.float64)).max()), 2.0**-1074)
    return float(np.abs(o - reference).max()) / scale


#: the reference outputs of the objective "class" for a case in a profile
Yardstick = Callable[[Case, str], Sequence[np.ndarray]]


def evaluate(
    case: Case, kernel: KernelUnderTest, profile: str, objective: str,
    threshold: float = DEFAULT_THRESHOLD, yardstick: Yardstick | None = None,
) -> Evaluation:
    """Judge `kernel` on `case` by `objective` (PASA-HUNT-2 .. 4); `yardstick` (the class
    reference's output for a case in a profile) is the objective "class"'s reference."""
    if objective == "envelope":
        report = envelope.checks(case, profile, "pasa")
        p = report.pressure
        guide = _log2(min(p, 1.0 / p) if p > 0 else 0.0)
        if not report.inside:
            return Evaluation(objective, 0.0, False, -1, p, guide)
        bad, crash = _nonfinite_elements(kernel, case, profile)
        return Evaluation(objective, p, bad > 0 or crash is not None, bad, p, guide, crash)
    if objective == "nonfinite":
        p = envelope.pressure(case, profile, kernel.reference)
        bad, crash = _nonfinite_elements(kernel, case, profile)
        failed = bad > 0 or crash is not None
        return Evaluation(objective, float(bad), failed, bad, p, _log2(p), crash)
    if objective == "error":
        out, crash = _run(kernel, case, profile)
        if crash is not None:
            return Evaluation(objective, math.inf, True, 0, math.nan, _GUIDE_LIMIT, crash)
        reference = oracle.attention(case.q, case.k, case.v, method="fast", **case.call_kwargs())
        e = relative_error(out, reference.output, case.v)
        return Evaluation(objective, e, e >= threshold, _count_nonfinite(out), math.nan, _log2(e))
    if objective == "class":
        if yardstick is None:
            raise HuntError("objective 'class': expected a yardstick (the class reference)")
        out, crash = _run(kernel, case, profile)
        if crash is not None:
            return Evaluation(objective, math.inf, True, 0, math.nan, _GUIDE_LIMIT, crash)
        with np.errstate(all="ignore"):
            r = class_ratio(out, yardstick(case, profile), case, profile)
        return Evaluation(objective, r, r > threshold, _count_nonfinite(out), math.nan, _log2(r))
    raise HuntError(f"argument 'objective': expected one of {OBJECTIVES}, got {objective!r}")


def class_ratio(
    out: np.ndarray, references: Sequence[np.ndarray], case: Case, profile: str
) -> float:
    """max |O - O*| / (max_r max |Or - O*| + ulp_F(max |O*|)) over the rows with a visible
    key and the elements where every Or is finite; inf when O is non-finite there (the
    objective "class"). F is the profile's output format."""
    exact = oracle.attention(case.q, case.k, case.v, method="fast", **case.call_kwargs()).output
    o, rs = out.astype(np.float64), [r.astype(np.float64) for r in references]
    inputs = validate(case.q, case.k, case.v, **case.call_kwargs())
    rows = inputs.ungroup(inputs.has_visible_key())
    judged = np.broadcast_to(rows, o.shape) & np.all([np.isfinite(r) for r in rs], axis=0)
    if not judged.any():
        return 0.0
    if not np.isfinite(o[judged]).all():
        return math.inf
    reference_error = max(float(np.abs(r - exact)[judged].max()) for r in rs)
    floor = float(metrics.ulp(np.float64(np.abs(exact).max()), profiles.get(profile).output))
    return float(np.abs(o - exact)[judged].max()) / (reference_error + floor)


def _nonfinite_elements(
    kernel: KernelUnderTest, case: Case, profile: str
) -> tuple[int, str | None]:
    """(number of non-finite output elements, crash message or None)."""
    out, crash = _run(kernel, case, profile)
    return (0, crash) if crash is not None else (_count_nonfinite(out), None)


def _run(kernel: KernelUnderTest, case: Case, profile: str) -> tuple[np.ndarray, str | None]:
    """The kernel's output, or (empty, "TypeName: message") when it raises. numpy's overflow
    warnings are off: overflow is what the hunt looks for."""
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return kernel(case, profile), None
    except KernelFailed as error:  # a failed call of the kernel under test is a finding
        return np.zeros(0), str(error)


@dataclass(frozen=True)
class HuntConfig:
    """What to hunt for (PASA-HUNT-1). budget: seconds of wall time for search and shrinking;
    seed: None picks one (recorded in the result); inside_envelope: judge only cases inside
    pasa's safe envelope (hypothesis rejects the others); targeting: False gives plain generation
    (no hypothesis.target, no targeting phase) for comparisons; shrink: False stops at the
    first failure as found."""

    kernel: str
    profile: str
    objective: str
    budget: float
    max_seq: int = 256
    max_dim: int = 128
    max_pairs: int = strategies.DEFAULT_MAX_PAIRS
    seed: int | None = None
    threshold: float = DEFAULT_THRESHOLD
    distributions: Sequence[str] | None = None
    masks: Sequence[str] | None = None
    inside_envelope: bool = False
    targeting: bool = True
    shrink: bool = True
    shrink_worst: bool = True
    timeout: float | None = None  # seconds per kernel call (None: conformance.toml timeout_s)
    isolate: bool = False  # run the kernel in a child process (PASA-CERT-3)
    yardstick: Yardstick | None = None  # the objective "class"'s reference

    def checked(self) -> HuntConfig:
        """The configuration with its seed chosen, after checking every field."""
        profiles.get(self.profile)
        if self.objective not in OBJECTIVES:
            raise HuntError(
                f"argument 'objective': expected one of {OBJECTIVES}, got {self.objective!r}"
            )
        if not (isinstance(self.budget, (int, float)) and self.budget > 0):
            raise HuntError(f"argument 'budget': expected seconds > 0, got {self.budget!r}")
        if self.objective == "class" and self.yardstick is None:
            raise HuntError(
                "argument 'objective': 'class' needs a yardstick, the reference outputs of the "
                "kernel's class (HuntConfig.yardstick; `pasa certify --level 3` sets it)"
            )
        if not (isinstance(self.threshold, (int, float)) and self.threshold > 0):
            raise HuntError(f"argument 'threshold': expected a number > 0, got {self.threshold!r}")
        if self.timeout is not None and not (
            isinstance(self.timeout, (int, float)) and self.timeout > 0
        ):
            raise HuntError(f"argument 'timeout': expected seconds > 0, got {self.timeout!r}")
        chosen = self.seed if self.seed is not None else int.from_bytes(os.urandom(4), "little")
        return replace(self, seed=chosen)


@dataclass(frozen=True)
class Finding:
    """A failing case. kind: "failure" (fails the objective) or "worst" (the worst case of a
    search without failure, failing a threshold lowered to 90% of its value). status: "found"
    (first met), "shrinking" (a smaller failing case met while shrinking), "shrunk" (hypothesis
    finished) or "interrupted" (Ctrl-C or the budget stopped the shrinking)."""

    case: Case
    evaluation: Evaluation
    kind: str
    status: str
    elapsed: float
    examples: int
    seed: int

    @property
    def final(self) -> bool:
        return self.status in ("shrunk", "interrupted")


@dataclass
class HuntResult:
    """What a hunt did: the final findings, counts and times (seconds since the start; elapsed
    grows as the hunt runs)."""

    config: HuntConfig
    findings: list[Finding] = field(default_factory=list)
    examples: int = 0
    elapsed: float = 0.0
    first_failure: float | None = None
    best: Finding | None = None
    interrupted: bool = False


class Observer:
    """Told what the engine does; subclass and override what you need (no-ops here)."""

    def on_example(self, result: HuntResult, evaluation: Evaluation) -> None:
        """After every judged case."""

    def on_finding(self, finding: Finding) -> None:
        """On every failing case (status says which stage), at once."""


class _OutOfTime(BaseException):
    """Raised inside the test body when the budget is spent: hypothesis lets BaseException
    through without shrinking, which ends the round."""


class _Failed(Exception):
    """Raised inside the test body on a failing case, so that hypothesis shrinks it."""

    def __init__(self, case: Case, evaluation: Evaluation) -> None:
        super().__init__(evaluation.verdict)
        self.case = case
        self.evaluation = evaluation


class _Database(InMemoryExampleDatabase):
    """The in-memory example database of a hunt; remembers the test's primary key (the first
    key hypothesis fetches, in its reuse phase)."""

    def __init__(self) -> None:
        super().__init__()
        self.primary: bytes | None = None

    def fetch(self, key: bytes):
        if self.primary is None:
            self.primary = key
        return super().fetch(key)


def _current_choices() -> bytes | None:
    """The choice sequence of the running example, so that it can be replayed; None where
    hypothesis's internals (BuildContext.data.choices) have moved."""
    try:
        return choices_to_bytes(current_build_context().data.choices)
    except AttributeError:
        return None


class _Engine:
    """One hunt: the rounds, the shrinking and the bookkeeping (PASA-HUNT-5)."""

    def __init__(self, config: HuntConfig, observers: Sequence[Observer],
                 kernel: KernelUnderTest) -> None:
        self.config = config
        self.kernel = kernel
        self.observers = observers
        self.result = HuntResult(config)
        self.database = _Database()
        self.best_choices: bytes | None = None
        self.strategy = strategies.cases(
            config.profile, max_seq=config.max_seq, max_dim=config.max_dim,
            distributions=config.distributions, masks=config.masks, max_pairs=config.max_pairs,
        )
        self.start = time.monotonic()
        self.threshold = config.threshold
        self.kind = "failure"
        self.latest: Finding | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def run(self) -> HuntResult:
        shrinks_worst = (self.config.objective == "error" and self.config.shrink_worst
                         and self.config.shrink)
        search_end = self.config.budget * ((1.0 - WORST_PHASE) if shrinks_worst else 1.0)
        try:
            index = 0
            while not self.result.findings and self.elapsed() < search_end:
                self._round(index, FIRST_ROUND * 2 ** min(index, 10), search_end)
                index += 1
            if shrinks_worst and not self.result.findings and self.result.best is not None:
                # the reuse phase replays the worst case first, from the secondary corpus (one
                # in the primary corpus would count as shrunk already), else the pareto front
                # of the targets; with the threshold at 90% of its value it fails and shrinks
                if self.best_choices is not None and self.database.primary is not None:
                    self.database.save(self.database.primary + b".secondary", self.best_choices)
                self.threshold = WORST_SHARE * self.result.best.evaluation.value
                self.kind = "worst"
                self.latest = None
                self._round(index, WORST_ROUND, self.config.budget)
        except KeyboardInterrupt:
            self.result.interrupted = True
            self._keep_latest()
        self.result.elapsed = self.elapsed()
        return self.result

    def _round(self, index: int, examples: int, deadline: float) -> None:
        try:
            with warnings.catch_warnings():  # e.g. the repr of a large falsifying example
                warnings.simplefilter("ignore", HypothesisWarning)
                self._test(index, examples, deadline)()
        except _Failed as failure:
            self._report(failure.case, failure.evaluation, "shrunk")
        except _OutOfTime:
            self._keep_latest()

    def _test(self, index: int, examples: int, deadline: float):
        phases = [Phase.reuse, Phase.generate]
        if self.config.targeting:
            phases.append(Phase.target)
        if self.config.shrink:
            phases.append(Phase.shrink)

        # @seed below @settings: @seed alone would switch the example database off
        @settings(
            database=self.database, max_examples=examples, deadline=None, phases=phases,
            suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
            derandomize=False, verbosity=Verbosity.quiet, print_blob=False,
        )
        @seed(self.config.seed + index)
        @given(self.strategy)
        def hunt_test(case: Case) -> None:
            # the search stops at `deadline`; shrinking a failure may use the whole budget
            if self.elapsed() >= (deadline if self.latest is None else self.config.budget):
                raise _OutOfTime
            if self.config.inside_envelope and not envelope.within(case, self.config.profile):
                reject()
            evaluation = evaluate(case, self.kernel, self.config.profile, self.config.objective,
                                  self.threshold, self.config.yardstick)
            self._count(case, evaluation)
            if self.config.targeting:
                hypothesis_target(evaluation.guide, label=f"{self.config.objective} guide")
            if evaluation.failed:
                self._report(case, evaluation, "found" if self.latest is None else "shrinking")
                raise _Failed(case, evaluation)

        return hunt_test

    def _count(self, case: Case, evaluation: Evaluation) -> None:
        self.result.examples += 1
        self.result.elapsed = self.elapsed()
        best = self.result.best
        if self.kind == "failure" and (best is None or evaluation.value > best.evaluation.value):
            self.result.best = self._finding(case, evaluation, "found")
            self.best_choices = _current_choices()
        for observer in self.observers:
            observer.on_example(self.result, evaluation)

    def _finding(self, case: Case, evaluation: Evaluation, status: str) -> Finding:
        return Finding(case, evaluation, self.kind, status, self.elapsed(), self.result.examples,
                       self.config.seed)

    def _report(self, case: Case, evaluation: Evaluation, status: str) -> None:
        if self.kind == "worst":  # judged by the lowered threshold; recorded by the real one
            evaluation = replace(evaluation, failed=evaluation.value >= self.config.threshold)
        finding = self._finding(case, evaluation, status)
        if self.kind == "failure" and self.result.first_failure is None:
            self.result.first_failure = finding.elapsed
        self.latest = finding
        if finding.final:
            self.result.findings.append(finding)
        for observer in self.observers:
            observer.on_finding(finding)

    def _keep_latest(self) -> None:
        """The budget or Ctrl-C stopped the shrinking: the latest failing case is the result."""
        if self.latest is not None and not self.latest.final:
            self._report(self.latest.case, self.latest.evaluation, "interrupted")


def hunt(
    config: HuntConfig, observers: Sequence[Observer] = (), kernel: KernelUnderTest | None = None
) -> HuntResult:
    """Search for a failing case of config.kernel in config.profile within config.budget
    seconds; shrink it; tell `observers` about every step (PASA-HUNT-1 .. 7). `kernel`: the
    loaded config.kernel (default: loaded here, and closed at the end). pasa-ref's own
    numerics run with pasa_ref.blas.THREADS BLAS threads."""
    checked = config.checked()
    with blas.limited():
        if kernel is not None:
            return _Engine(checked, observers, kernel).run()
        with open_kernel(checked) as loaded:
            return _Engine(checked, observers, loaded).run()


def open_kernel(config: HuntConfig) -> KernelUnderTest:
    """config.kernel loaded with the config's deadline and isolation."""
    return load_kernel(config.kernel, timeout=config.timeout, isolate=config.isolate)


@dataclass(frozen=True)
class Recorded:
    """What a case file's metadata says about how it was judged (written by `save_case`)."""

    kernel: str
    profile: str
    objective: str
    threshold: float
    failed: bool


def recorded(case: Case) -> Recorded:
    """The recorded kernel, profile, objective, threshold and verdict of a hunted case."""
    meta = case.metadata
    missing = [key for key in ("kernel", "profile", "objective", "failed") if key not in meta]
    if missing:
        raise HuntError(f"case metadata: expected the fields {missing} (written by pasa hunt)")
    threshold = meta.get("threshold")
    return Recorded(meta["kernel"], meta["profile"], meta["objective"],
                    DEFAULT_THRESHOLD if threshold is None else float(threshold),
                    bool(meta["failed"]))


def case_stem(config: HuntConfig, finding: Finding) -> str:
    """File stem of a hunt's case (PASA-HUNT-6): KERNEL-PROFILE-OBJECTIVE-SEED[-worst]-HASH,
    the kernel's name with every run of characters outside [A-Za-z0-9_.-] made "_", and HASH
    the first 12 hex digits of the sha256 of the kernel's full name and the case's content,
    so that no two kernels, profiles, objectives, seeds or cases share a file."""
    kernel = re.sub(r"[^A-Za-z0-9_.-]+", "_", config.kernel)
    kind = "-worst" if finding.kind == "worst" else ""
    return (f"{kernel}-{config.profile}-{config.objective}-{finding.seed}{kind}-"
            f"{content_hash(config.kernel, finding.case)}")


def content_hash(kernel: str, case: Case) -> str:
    """12 hex digits of sha256(kernel name, dtype, shapes, q, k, v, causal, scale, mask)."""
    digest = hashlib.sha256(kernel.encode("utf-8"))
    for x in (case.q, case.k, case.v, case.mask):
        if x is not None:
            digest.update(f"{x.dtype.str}{x.shape}".encode())
            digest.update(np.ascontiguousarray(x).tobytes())
    digest.update(f"causal={case.causal} scale={case.scale!r} mask={case.mask is not None}".encode())
    return digest.hexdigest()[:12]


def save_case(path: Path, finding: Finding, config: HuntConfig, *, with_oracle: bool) -> Path:
    """Write the finding's case as PATH.npz + PATH.json (PASA-HUNT-6): kernel, profile,
    objective and its value, verdict, seed, shapes, the envelope's verdict, the oracle summary
    (None when with_oracle is False) and the pasa-ref version."""
    case, evaluation = finding.case, finding.evaluation
    report = envelope.checks(case, config.profile, "pasa")
    metadata = {
        "pasa_ref_version": __version__,
        "kernel": config.kernel,
        "profile": config.profile,
        "objective": config.objective,
        "objective_value": evaluation.value,
        "threshold": config.threshold if config.objective == "error" else None,
        "failed": evaluation.failed,
        "verdict": evaluation.verdict,
        "kind": finding.kind,
        "status": finding.status,
        "seed": finding.seed,
        "found_after_s": round(finding.elapsed, 3),
        "examples": finding.examples,
        "envelope": {"kernel": "pasa", "inside": report.inside, "pressure": report.pressure,
                     "binding": f"{report.binding.clause} {report.binding.quantity}"},
        "oracle": _oracle_summary(case, config) if with_oracle else None,
    }
    return case.save(path, metadata)


def _oracle_summary(case: Case, config: HuntConfig) -> dict[str, Any] | str:
    """metrics.summary of the kernel's output against the oracle ("auto" method)."""
    with open_kernel(config) as kernel:
        out, crash = _run(kernel, case, config.profile)
    if crash is not None:
        return crash
    reference = oracle.attention(case.q, case.k, case.v, **case.call_kwargs())
    return metrics.summary(out, reference.output, v=case.v, reference_bound=reference.bound)


class CorpusWriter(Observer):
    """Writes every finding to DIR/<stem>.npz + .json as soon as it is reported. The oracle
    summary is computed for shrunk cases only: the first failing case can be large and
    extreme (where the oracle falls back to its exact path, which takes seconds to minutes),
    and an interrupted hunt should stop at once; `pasa replay` computes it on demand."""

    def __init__(self, directory: str | Path, config: HuntConfig) -> None:
        self.directory = Path(directory)
        self.config = config
        self.written: Path | None = None
        self._kept: dict[str, Path] = {}  # per kind of finding, the file written last

    def on_finding(self, finding: Finding) -> None:
        """Write the finding; a smaller case met while shrinking replaces the one before it
        (its name holds the content hash, so the earlier file is removed)."""
        path = self.directory / case_stem(self.config, finding)
        self.written = save_case(path, finding, self.config,
                                 with_oracle=finding.status == "shrunk")
        earlier = self._kept.get(finding.kind)
        if earlier is not None and earlier != self.written:
            for stale in (earlier, earlier.with_suffix(".json")):
                stale.unlink(missing_ok=True)
        self._kept[finding.kind] = self.written
