"""The sympy proofs of proofs/: each theorem proves, each fails on a wrong statement, and
`pasa prove` reports both (exit 0 / exit 1)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import ModuleType

import pytest
import sympy as sp
from click.testing import CliRunner

from pasa_ref.cli.prove import command
from proofs import registry
from proofs import t1_shift as t1
from proofs import t2_pseudo_average as t2
from proofs import t3_shift_matrix as t3
from proofs import t4_recovery as t4
from proofs import t5_online as t5
from proofs import t6_invariance as t6
from proofs import t7_rounded_beta as t7
from proofs import t8_bounds as t8
from proofs.blocks import beta, gamma, lam, n

SPEC = Path(__file__).resolve().parents[1] / "specs" / "pasa-spec.md"
THEOREMS = registry.theorems()

# (theorem, what is wrong, the wrong claim): each must make its theorem's proof fail
WRONG_STATEMENTS = [
    (
        t1,
        "row form subtracts beta/n of the mean",
        replace(
            t1.CLAIM,
            row_form=lambda b: lam * (b.S_raw - beta / b.n * b.rowmean(b.S_raw) * b.ones.T),
        ),
    ),
    (
        t1,
        "key form without the scale",
        replace(t1.CLAIM, key_form=lambda b: b.K - beta * b.ones * b.keymean().T),
    ),
    (t2, "pseudo-average factor 1 - beta/n", 1 - beta / n),
    (
        t3,
        "determinant lambda^n (1 - beta)^n",
        replace(t3.CLAIM, determinant=lam**n * (1 - beta) ** n),
    ),
    (
        t3,
        "inverse with -gamma/n",
        replace(t3.CLAIM, inverse=lambda b: (b.I - gamma / b.n * b.J) / lam),
    ),
    (
        t3,
        "eigenvalue lambda (1 - beta/n) on 1",
        replace(t3.CLAIM, mean_eigenvalue=lam * (1 - beta / n)),
    ),
    (t4, "recovery factor beta/(1 + beta)", beta / (1 + beta)),
    (t4, "recovery factor 1/(1 - beta)", 1 / (1 - beta)),
    (t5, "old max not converted to the new frame", replace(t5.CLAIM, y=t5.m_prev)),
    (t5, "local max without the shift a_j - abar_j", replace(t5.CLAIM, x=t5.mt + t5.gamma * t5.a)),
    (t6, "shifting values leaves the output unchanged", replace(t6.CLAIM, value_shift=t6.O)),
    (
        t6,
        "scaling values by c scales the output by c^2",
        replace(t6.CLAIM, value_scale=t6.c**2 * t6.O),
    ),
    (t6, "shifting keys shifts the output", replace(t6.CLAIM, key_shift=t6.O + t6.c)),
    (
        t7,
        "rounded recovery factor beta_eff/(1 + beta_eff)",
        replace(t7.CLAIM, recovery_factor=t7.beta_eff / (1 + t7.beta_eff)),
    ),
    (t7, "the authors' F equals gamma_eff", replace(t7.CLAIM, authors_gap=sp.Integer(0))),
    (t8, "bound with the unshifted key", replace(t8.CLAIM, shifted_keys=lambda b: b.K)),
    (t8, "resonance only at phase 0", replace(t8.CLAIM, resonant_phases=sp.FiniteSet(0))),
    (t8, "block-mean error amplified by beta", replace(t8.CLAIM, amplification=beta)),
]


@pytest.mark.parametrize("theorem", list(THEOREMS))
def test_theorem_proves(theorem: str) -> None:
    module = THEOREMS[theorem]
    proof = module.prove(module.CLAIM)
    assert [step.description for step in proof.steps if not step.holds] == []
    assert proof.passed


@pytest.mark.parametrize(
    ("module", "wrong", "claim"),
    WRONG_STATEMENTS,
    ids=[f"{module.THEOREM}: {wrong}" for module, wrong, _ in WRONG_STATEMENTS],
)
def test_wrong_statement_fails(module: ModuleType, wrong: str, claim: object) -> None:
    proof = module.prove(claim)
    assert not proof.passed
    assert any(not step.holds for step in proof.steps)


def test_every_theorem_has_a_meta_test() -> None:
    assert {module.THEOREM for module, _, _ in WRONG_STATEMENTS} == set(THEOREMS)


def test_clauses_exist_and_cover_the_spec_citations() -> None:
    spec = SPEC.read_text(encoding="utf-8")
    clauses = dict(
        re.findall(r"\*\*(PASA-[A-Z]+-\d+)\*\*(.*?)(?=\n- \*\*|\n## |\Z)", spec, re.DOTALL)
    )
    for theorem, module in THEOREMS.items():
        assert module.CLAUSES, theorem
        assert set(module.CLAUSES) <= set(clauses), theorem
        assert module.TITLE and module.STATEMENT, theorem
    for clause, text in clauses.items():
        for cited in re.findall(r"[Pp]roof (T\d)", text):
            assert clause in THEOREMS[cited].CLAUSES, (clause, cited)


def test_pasa_prove_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "out" / "proofs.md"
    result = CliRunner().invoke(command, ["--report", str(report)])
    assert result.exit_code == 0, result.output
    text = report.read_text(encoding="utf-8")
    assert f"{len(THEOREMS)} of {len(THEOREMS)} theorems proved" in text
    for theorem, module in THEOREMS.items():
        assert f"## {theorem}: {module.TITLE}" in text
        assert theorem in result.output
    assert "FAILS" not in text and "Derivation" in text


def test_pasa_prove_exits_1_on_a_wrong_statement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(t4, "CLAIM", beta / (1 + beta))
    report = tmp_path / "proofs.md"
    result = CliRunner().invoke(command, ["--theorem", "T4", "-t", "t2", "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "T4 fails" in result.output
    text = report.read_text(encoding="utf-8")
    assert "1 of 2 theorems proved" in text and "FAILS" in text


def test_a_crashing_proof_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(claim: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(t2, "prove", crash)
    (outcome,) = registry.run(["T2"])
    assert not outcome.passed and outcome.error == "ZeroDivisionError: boom"
    assert "The proof raised ZeroDivisionError: boom." in registry.markdown([outcome])


def test_unknown_theorem_is_a_usage_error() -> None:
    result = CliRunner().invoke(command, ["--theorem", "T9"])
    assert result.exit_code == 2
    assert "T9" in result.output
