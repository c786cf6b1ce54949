"""`pasa certify`, `pasa gen` / `pasa verify` and the pytest plugin (specs/certification.md).

What is covered here, and what only by benchmarks/certify_bench.py (for time):
- the main job: `pasa certify` with no backend certifies the bundled kernel at level 1 in
  fp16-full (the full plan) and exits 0;
- the reference kernel in every profile on the level-1 edge corpus and benign cases (the
  full level 1 and level 2 in every profile: `certify_bench.py --profiles --level 1|2`);
- the independent implementation tests/mutants/base.py certified on the same subset;
- every planted bug of tests/mutants rejected at level 1 (with --fail-fast; the full table
  with clauses and seconds: `certify_bench.py --mutants`);
- every hostile behaviour recorded as a failure of the clause concerned, the run finishing;
- incremental certificates (Ctrl-C, kill -9), the schema, determinism of the plan, case
  files, metamorphic relations, usage errors and the pytest plugin.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pasa_ref import profiles
from pasa_ref.cases import Case, save_output
from pasa_ref.certify import casefiles, generators, levels, relations, thresholds
from pasa_ref.certify.backend import DEFAULT, BackendError, Caller, load
from pasa_ref.certify.levels import Item
from pasa_ref.certify.runner import BackendSource, Outcome, certify, run
from pasa_ref.cli import main
from pasa_ref.kernels import pasa
from pasa_ref.schemas import errors as schema_errors
from tests.mutants import CATALOGUE, backend

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "specs" / "certificate.schema.json").read_text())


def certificate(out: Path) -> dict:
    doc = json.loads((out / "certificate.json").read_text())
    assert schema_errors(doc, SCHEMA) == []
    return doc


def verdicts(outcome: Outcome) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in outcome.document["clauses"]}


def failed_clauses(outcome: Outcome) -> set[str]:
    return {clause for clause, verdict in verdicts(outcome).items() if verdict == "FAIL"}


def certify_items(
    name: str,
    profile: str,
    items: list[Item],
    out: Path,
    *,
    isolate=False,
    timeout=60.0,
    fail_fast=False,
    declaration=None,
) -> Outcome:
    """Certify a backend on chosen items (a subset of a level's plan)."""
    prof = profiles.get(profile)
    with Caller(name, profile, timeout=timeout, isolate=isolate) as caller:
        return run(
            items,
            BackendSource(caller, prof),
            profile=prof,
            level=1,
            seed=0,
            out=out,
            conf=thresholds.load(),
            fail_fast=fail_fast,
            declaration=declaration,
        )


def edge_and_benign(profile: str) -> list[Item]:
    prof = profiles.get(profile)
    return [
        levels.item(case, repeat=True) for case in generators.edge(prof) + generators.benign(prof)
    ]


@pytest.fixture(scope="module")
def small_cases(tmp_path_factory) -> list[Path]:
    """Two cheap fp16 cases: one key (single-key rows) and masked rows (fully masked rows)."""
    directory = tmp_path_factory.mktemp("cases")
    prof = profiles.get("fp16-full")
    chosen = {c.metadata["id"]: c for c in generators.edge(prof)}
    return [chosen[name].save(directory / name) for name in ("edge-one-key", "edge-masked-rows")]


# -- the main job and the reference ---------------------------------------------------------


def test_main_job_certifies_the_bundled_kernel_at_level_1(tmp_path, monkeypatch):
    monkeypatch.delenv("PASA_BACKEND", raising=False)
    result = CliRunner().invoke(main, ["certify", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "CERTIFIED" in result.output and "NOT CERTIFIED" not in result.output
    doc = certificate(tmp_path)
    assert doc["complete"] and doc["certified"] and doc["status"] == "finished"
    assert doc["backend"]["name"] == DEFAULT and doc["profile"] == "fp16-full"
    assert doc["level"] == 1 and doc["cases"]["done"] == doc["cases"]["planned"] >= 54
    assert {c["id"]: c["verdict"] for c in doc["clauses"]}["PASA-CERT-14"] == "NOT RUN"
    assert "CERTIFIED" in (tmp_path / "certificate.md").read_text()


@pytest.mark.parametrize("profile", profiles.names())
def test_reference_certified_in_every_profile_on_edge_and_benign_cases(tmp_path, profile):
    outcome = certify_items(DEFAULT, profile, edge_and_benign(profile), tmp_path)
    assert outcome.certified, outcome.document["clauses"]


@pytest.mark.parametrize("profile", ["fp16-full", "bf16-mixed"])
def test_independent_implementation_certified(tmp_path, profile):
    outcome = certify_items(
        "tests.mutants.base:attention", profile, edge_and_benign(profile), tmp_path
    )
    assert outcome.certified, outcome.document["clauses"]


# -- planted bugs ---------------------------------------------------------------------------


@pytest.mark.parametrize("mutant", sorted(CATALOGUE))
def test_planted_bug_rejected_at_level_1(tmp_path, mutant):
    outcome = certify(
        backend(mutant), profile=CATALOGUE[mutant], level=1, fail_fast=True, out=tmp_path
    )
    assert not outcome.certified and outcome.status == "stopped"
    assert outcome.exit_code == 1
    for clause in outcome.document["clauses"]:
        if clause["verdict"] == "FAIL":
            assert Path(clause["worst"]["file"]).is_file()
            assert clause["worst"]["reproduce"].startswith(f"pasa certify {backend(mutant)}")


def test_reproduction_command_reproduces_the_failure(tmp_path, monkeypatch):
    name = "tests.mutants.gqa_head_mapping:attention"
    first = certify(name, level=1, fail_fast=True, out=tmp_path / "run")
    clause = min(failed_clauses(first))
    command = next(c for c in first.document["clauses"] if c["id"] == clause)["worst"]["reproduce"]
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, [*command.split()[1:], "--out", str(tmp_path / "re"), "-q"])
    assert result.exit_code == 1, result.output
    assert clause in {
        c["id"] for c in certificate(tmp_path / "re")["clauses"] if c["verdict"] == "FAIL"
    }


# -- hostile backends -----------------------------------------------------------------------

HOSTILE = [
    ("raises", False, "PASA-CERT-10", "RuntimeError: kernel launch failed"),
    ("exits", False, "PASA-CERT-10", "SystemExit"),
    ("hangs", False, "PASA-CERT-10", "timeout"),
    ("hangs", True, "PASA-CERT-10", "the child process was killed"),
    ("aborts", True, "PASA-CERT-10", "SIGABRT"),
    ("segfaults", True, "PASA-CERT-10", "SIGSEGV"),
    ("wrong_shape", False, "PASA-CERT-10", "expected shape"),
    ("wrong_dtype", False, "PASA-CERT-10", "expected dtype float16, got float32"),
    ("not_an_array", True, "PASA-CERT-10", "not-an-array"),
    ("nan_output", False, "PASA-CERT-11", "non-finite where the class reference is finite"),
    ("flaky", False, "PASA-CERT-10", "MemoryError"),
]


@pytest.mark.parametrize(("name", "isolate", "clause", "message"), HOSTILE)
def test_hostile_backend_fails_its_clause_and_the_run_goes_on(
    tmp_path, small_cases, name, isolate, clause, message
):
    outcome = certify(
        f"tests.mutants.hostile:{name}",
        cases=small_cases,
        isolate=isolate,
        timeout=1.0 if name == "hangs" else None,
        out=tmp_path,
    )
    doc = certificate(tmp_path)
    assert outcome.status == "finished" and doc["complete"] and not doc["certified"]
    assert doc["cases"]["done"] == len(small_cases)
    record = next(c for c in doc["clauses"] if c["id"] == clause)
    assert record["verdict"] == "FAIL" and record["failed"] == len(small_cases)
    assert message in record["worst"]["message"]


@pytest.mark.parametrize(
    ("name", "isolate"), [("dlpack", False), ("mutates_inputs", False), ("mutates_inputs", True)]
)
def test_well_behaved_odd_backends_are_certified(tmp_path, small_cases, name, isolate):
    outcome = certify(
        f"tests.mutants.hostile:{name}", cases=small_cases, isolate=isolate, out=tmp_path
    )
    assert outcome.certified


def test_ctrl_c_leaves_a_valid_incomplete_certificate(tmp_path, small_cases):
    # Ctrl-C raises KeyboardInterrupt only where SIGINT has Python's default handler; a runner
    # such as tox may start the tests with SIGINT ignored, so install it for this test.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        outcome = certify("tests.mutants.hostile:interrupts", cases=small_cases, out=tmp_path)
    finally:
        signal.signal(signal.SIGINT, previous)
    doc = certificate(tmp_path)
    assert outcome.status == "interrupted" and outcome.exit_code == 1
    assert not doc["complete"] and not doc["certified"] and doc["status"] == "interrupted"
    assert "INCOMPLETE" in (tmp_path / "certificate.md").read_text()


def test_killed_run_leaves_a_valid_partial_certificate(tmp_path, small_cases):
    script = (
        f"from pasa_ref.certify import certify\n"
        f"certify('tests.mutants.hostile:slow', cases={[str(p) for p in small_cases] * 5},"
        f" out={str(tmp_path)!r})\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            path = tmp_path / "certificate.json"
            if path.is_file() and json.loads(path.read_text())["cases"]["done"] >= 1:
                break
            time.sleep(0.2)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    doc = certificate(tmp_path)
    assert not doc["complete"] and doc["status"] == "running"
    assert 1 <= doc["cases"]["done"] < doc["cases"]["planned"]


# -- plans, relations, thresholds -----------------------------------------------------------


def _fingerprint(items: list[Item]) -> list[tuple]:
    return [
        (
            i.id,
            i.repeat,
            i.case.q.tobytes(),
            i.case.k.tobytes(),
            i.case.v.tobytes(),
            i.case.causal,
            None if i.case.mask is None else i.case.mask.tobytes(),
            [t.case.k.tobytes() + t.case.v.tobytes() for t in i.relations],
        )
        for i in items
    ]


def test_same_seed_same_plan_and_level_1_is_seed_independent():
    prof, conf = profiles.get("fp16-full"), thresholds.load()
    first = _fingerprint(levels.plan(2, prof, 7, conf))
    assert first == _fingerprint(levels.plan(2, prof, 7, conf))
    other = _fingerprint(levels.plan(2, prof, 8, conf))
    level_1 = len(levels.plan(1, prof, 7, conf))
    assert first[:level_1] == other[:level_1] and first[level_1:] != other[level_1:]
    assert len(first) == (
        level_1
        + conf.levels.adversarial_cases
        + conf.levels.correlated_cases
        + generators.BATCH_DRAWN
        + conf.levels.metamorphic_bases
    )


@pytest.mark.parametrize("profile", ["fp16-full", "bf16-full"])
def test_metamorphic_transformations_are_exact(profile):
    prof = profiles.get(profile)
    for index in range(4):
        base = generators.metamorphic_base(prof, index, seed=index)
        transformed = relations.transforms(base)
        assert [t.relation for t in transformed] == list(relations.RELATIONS)
        for t in transformed:
            assert t.case.dtype == base.dtype and t.case.metadata["derived_from"] == base.label


def test_inexact_transformations_are_not_used():
    big = np.full((1, 1, 2, 8), 1023.5, dtype=np.float16)  # 1023.5 + c, c > 0, rounds in fp16
    case = Case(big, big, big, metadata={"id": "x", "relations_seed": 1})
    assert [t.relation for t in relations.transforms(case)] == ["PASA-MR-3"]


def test_malformed_thresholds_are_named():
    document = {"certification": {"default_profile": "fp16-full"}}
    with pytest.raises(
        thresholds.ThresholdError, match=r"expected a table \[certification.levels\]"
    ):
        thresholds.parse(document)


def test_reference_honours_the_metamorphic_relations(tmp_path):
    prof = profiles.get("fp16-full")
    items = [levels.item(generators.metamorphic_base(prof, i, 0), repeat=False) for i in range(2)]
    outcome = certify_items(DEFAULT, "fp16-full", items, tmp_path)
    assert verdicts(outcome)["PASA-CERT-14"] == "PASS" and outcome.certified


# -- case files -----------------------------------------------------------------------------


def _write_outputs(cases: Path, outputs: Path, ids: list[str], dtype=None) -> None:
    for case_id in ids:
        case = Case.load(cases / f"{case_id}.npz")
        out = pasa.attention(case.q, case.k, case.v, profile="fp16-full", **case.call_kwargs())
        save_output(outputs / case_id, out if dtype is None else out.astype(dtype))


def test_gen_then_verify(tmp_path):
    runner = CliRunner()
    cases, outputs, again = tmp_path / "cases", tmp_path / "out", tmp_path / "again"
    result = runner.invoke(
        main, ["gen", "--profile", "fp16-full", "--level", "1", "-o", str(cases)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((cases / "manifest.json").read_text())
    assert manifest["profile"] == "fp16-full" and len(manifest["cases"]) >= 54
    ids = ["edge-one-key", "edge-masked-rows", "edge-causal-more-queries"]
    _write_outputs(cases, outputs, ids)
    _write_outputs(cases, again, ids)
    only = [arg for case_id in ids for arg in ("--only", case_id)]
    result = runner.invoke(
        main,
        [
            "verify",
            str(cases),
            str(outputs),
            "--repeat",
            str(again),
            "--out",
            str(tmp_path / "cert"),
            "-q",
            *only,
        ],
    )
    assert result.exit_code == 0, result.output
    doc = certificate(tmp_path / "cert")
    assert doc["certified"] and doc["cases"]["done"] == 3
    assert {c["id"]: c["verdict"] for c in doc["clauses"]}["PASA-CERT-16"] == "PASS"

    (outputs / "edge-one-key.npz").unlink()
    _write_outputs(cases, outputs, ["edge-masked-rows"], dtype=np.float32)
    result = runner.invoke(
        main, ["verify", str(cases), str(outputs), "--out", str(tmp_path / "bad"), "-q", *only]
    )
    assert result.exit_code == 1
    record = next(c for c in certificate(tmp_path / "bad")["clauses"] if c["id"] == "PASA-CERT-10")
    messages = " ".join(f["message"] for f in record["failures"])
    assert "missing-output" in messages and "expected dtype float16, got float32" in messages
    assert record["worst"]["reproduce"].startswith(f"pasa verify {cases} {outputs} --only ")


def test_verify_checks_metamorphic_relations_from_files(tmp_path):
    cases, outputs = tmp_path / "cases", tmp_path / "out"
    entries = casefiles.generate("fp16-full", 2, 0, cases)
    derived = [e["id"] for e in entries if e["derived_from"] == "metamorphic-0"]
    assert len(derived) == 3
    _write_outputs(cases, outputs, ["metamorphic-0", *derived])
    outcome = casefiles.verify(cases, outputs, only=["metamorphic-0"], out=tmp_path / "cert")
    assert outcome.certified and verdicts(outcome)["PASA-CERT-14"] == "PASS"


# -- usage errors, identity, the plugin -----------------------------------------------------


def test_usage_errors_exit_2(tmp_path, small_cases):
    runner = CliRunner()
    result = runner.invoke(main, ["certify", "no_such_module:fn", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "cannot import module 'no_such_module'" in result.output
    result = runner.invoke(main, ["certify", "pasa_ref.kernels.pasa", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "expected 'package.module:function'" in result.output
    result = runner.invoke(
        main,
        [
            "certify",
            "--profile",
            "bf16-full",
            "--case",
            str(small_cases[0]),
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "expected a case in bf16-full's input dtype" in result.output
    with pytest.raises(BackendError, match="has no attribute 'nothing'"):
        load("pasa_ref.kernels.pasa:nothing")


def test_backend_identity_and_environment_variable(tmp_path, small_cases, monkeypatch):
    identity = load(DEFAULT).identity.to_json()
    assert identity["receives_profile"] and identity["version"] and len(identity["sha256"]) == 64
    monkeypatch.setenv("PASA_BACKEND", "tests.mutants.hostile:raises")
    outcome = certify(cases=small_cases, out=tmp_path)
    assert outcome.document["backend"]["name"] == "tests.mutants.hostile:raises"
    assert not outcome.certified


@pytest.mark.parametrize(("name", "status"), [(DEFAULT, 0), (backend("gqa_head_mapping"), 1)])
def test_pytest_plugin_runs_the_certification_inside_a_test_run(
    tmp_path, small_cases, name, status
):
    (tmp_path / "test_user.py").write_text("def test_users_own():\n    pass\n")
    gqa = next(
        c for c in generators.edge(profiles.get("fp16-full")) if c.label == "edge-ragged-causal"
    )  # Hq = 4, Hkv = 2: the head mapping matters
    case_args = [
        arg
        for path in [*small_cases, gqa.save(tmp_path / "gqa")]
        for arg in ("--pasa-case", str(path))
    ]
    env = {k: v for k, v in os.environ.items() if k != "PASA_BACKEND"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--pasa-backend",
            name,
            "--pasa-out",
            str(tmp_path / "cert"),
            *case_args,
            str(tmp_path / "test_user.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == status, result.stdout + result.stderr
    assert f"pasa-ref certify: backend {name}" in result.stdout
    assert "profile fp16-full, level 1, seed 0" in result.stdout
    assert "test_users_own" in result.stdout or "test_user.py ." in result.stdout
    assert ("1 failed" in result.stdout) == (status == 1)
    certificate(tmp_path / "cert")
