"""The theorems, how to run them, and the Markdown report (used by `pasa prove` and the tests).

Every theorem module exposes THEOREM (its id), TITLE, CLAUSES (the spec clause IDs it
supports), STATEMENT (plain text), CLAIM (the statement's checkable part) and
prove(claim) -> Proof. `run` proves each with the module's CLAIM, so replacing a module's CLAIM
by a wrong statement makes its proof fail.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

import sympy as sp

from proofs.core import Proof

__all__ = ["MODULES", "Outcome", "markdown", "run", "select", "theorems"]

MODULES = (
    "t1_shift",
    "t2_pseudo_average",
    "t3_shift_matrix",
    "t4_recovery",
    "t5_online",
    "t6_invariance",
    "t7_rounded_beta",
    "t8_bounds",
)


def theorems() -> dict[str, ModuleType]:
    """Theorem id -> module, in order."""
    modules = (importlib.import_module(f"proofs.{name}") for name in MODULES)
    return {module.THEOREM: module for module in modules}


@dataclass(frozen=True)
class Outcome:
    """One theorem's run: its metadata, its proof (None if proving raised), time, error."""

    theorem: str
    title: str
    clauses: tuple[str, ...]
    statement: str
    argument: str
    proof: Proof | None
    seconds: float
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.proof is not None and self.proof.passed


def _run_one(module: ModuleType) -> Outcome:
    start = time.perf_counter()
    proof, error = None, None
    try:
        proof = module.prove(module.CLAIM)
    except Exception as exc:  # noqa: BLE001 (a proof that crashes has failed: report it)
        error = f"{type(exc).__name__}: {exc}"
    return Outcome(
        theorem=module.THEOREM,
        title=module.TITLE,
        clauses=tuple(module.CLAUSES),
        statement=module.STATEMENT,
        argument=(module.__doc__ or "").strip(),
        proof=proof,
        seconds=time.perf_counter() - start,
        error=error,
    )


def select(ids: Iterable[str] | None = None) -> list[ModuleType]:
    """The theorem modules named by `ids` (all when None), in the order of MODULES.

    Raises KeyError naming the ids that are not theorems.
    """
    known = theorems()
    wanted = {theorem.upper() for theorem in ids} if ids else set(known)
    unknown = sorted(wanted - set(known))
    if unknown:
        raise KeyError(f"unknown theorem(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [module for theorem, module in known.items() if theorem in wanted]


def run(
    ids: Iterable[str] | None = None, on_outcome: Callable[[Outcome], None] | None = None
) -> list[Outcome]:
    """Prove the theorems `select(ids)`, in order; `on_outcome` is told each outcome as soon as
    its proof ends."""
    outcomes = []
    for module in select(ids):
        outcomes.append(_run_one(module))
        if on_outcome is not None:
            on_outcome(outcomes[-1])
    return outcomes


def _verdict(outcome: Outcome) -> str:
    if outcome.error is not None:
        return "error"
    return "proved" if outcome.passed else "FAILED"


def markdown(outcomes: Sequence[Outcome]) -> str:
    """The report: a summary table, then per theorem its statement, argument, checked steps."""
    proved = sum(outcome.passed for outcome in outcomes)
    lines = [
        "# PASA proofs",
        "",
        (
            f"{proved} of {len(outcomes)} theorems proved (sympy {sp.__version__}). Clause "
            "IDs refer to specs/pasa-spec.md. Every step is an exact symbolic check: an "
            "identity holds when lhs - rhs reduces to 0 (expansion, cancellation, "
            "J_n^2 = n J_n for matrix expressions of symbolic size); nothing is sampled."
        ),
        "",
        "| Theorem | Title | Clauses | Result | Seconds |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {o.theorem} | {o.title} | {', '.join(o.clauses)} | {_verdict(o)} | {o.seconds:.2f} |"
        for o in outcomes
    ]
    for outcome in outcomes:
        lines += _section(outcome)
    return "\n".join(lines) + "\n"


def _section(outcome: Outcome) -> list[str]:
    lines = [
        "",
        f"## {outcome.theorem}: {outcome.title}",
        "",
        (
            f"Clauses: {', '.join(outcome.clauses)}. Result: **{_verdict(outcome)}** "
            f"in {outcome.seconds:.2f} s."
        ),
        "",
        f"Statement. {outcome.statement}",
        "",
        "Argument:",
        "",
        "```text",
        outcome.argument,
        "```",
    ]
    if outcome.error is not None:
        lines += ["", f"The proof raised {outcome.error}."]
    if outcome.proof is None:
        return lines
    lines += ["", "Derivation (each step checked by sympy):", ""]
    for number, step in enumerate(outcome.proof.steps, start=1):
        mark = "holds" if step.holds else "FAILS"
        found = "lhs - rhs reduces to" if step.kind == "identity" else "sympy finds"
        lines += [
            f"{number}. {step.description}: **{mark}**",
            f"   - claim: `{step.claim}`",
            f"   - {found}: `{step.result}`",
        ]
    if outcome.proof.notes:
        lines += ["", "Notes:"]
        for note in outcome.proof.notes:
            lines += ["", note]
    return lines
