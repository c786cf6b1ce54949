"""The hostile corpus (issue 12; specs/certification.md PASA-CERT-50..53, PASA-CASE-4): backends
and files that try to change a verdict, run code, or take the run down. Each attack has the
outcome the spec documents: the verdict unchanged (the reference still CERTIFIED, a wrong
backend still NOT CERTIFIED), nothing executed, nothing lost, or a one-line error naming the
file with exit status 2.

Backends: tests/mutants/hostile.py, tests/mutants/hostile_calls.py (attacks at call time),
tests/hostile/ (attacks at import time). Files are built here, each from a valid one.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pasa_ref import hunt, profiles, schemas
from pasa_ref.cases import Case, CaseFileError, load_output, save_output
from pasa_ref.certify import casefiles, generators, thresholds
from pasa_ref.certify.backend import BackendError, Caller
from pasa_ref.certify.declaration import DeclarationError
from pasa_ref.certify.runner import BackendSource, certify, run
from pasa_ref.cli import main
from pasa_ref.kernels import pasa

ROOT = Path(__file__).resolve().parents[1]
CALLS = "tests.mutants.hostile_calls"
REFERENCE = "tests.mutants.hostile:reference"


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> list[Path]:
    """Two cheap fp16-full cases of the edge corpus: one key, and fully masked rows."""
    directory = tmp_path_factory.mktemp("hostile-cases")
    chosen = {c.metadata["id"]: c for c in generators.edge(profiles.get("fp16-full"))}
    return [chosen[name].save(directory / name) for name in ("edge-one-key", "edge-masked-rows")]


def judged(name: str, cases: list[Path], out: Path, **options) -> dict:
    """Certify `name` on the cases; the certificate, which must say the run finished."""
    outcome = certify(name, cases=cases, out=out, **options)
    doc = json.loads((out / "certificate.json").read_text())
    assert schemas.errors(doc, schemas.schema("certificate")) == []
    assert doc["certified"] == outcome.certified
    return doc


def failing(doc: dict) -> dict[str, str]:
    """clause id -> the worst failure's message, for the failed clauses."""
    return {c["id"]: c["worst"]["message"] for c in doc["clauses"] if c["verdict"] == "FAIL"}


# -- the verdict both ways: the reference passes every path ----------------------------------


@pytest.mark.parametrize("isolate", [False, True])
def test_reference_still_certified(tmp_path, cases, isolate):
    doc = judged(REFERENCE, cases, tmp_path, isolate=isolate)
    assert doc["certified"] and doc["status"] == "finished"
    assert doc["calls"]["made"] == 4 and doc["calls"]["failed"] == 0
    assert doc["calls"]["in_fresh_child"] == (["edge-one-key"] if isolate else [])


@pytest.mark.parametrize("isolate", [False, True])
def test_protocol_scale_is_a_float_and_causal_a_bool(tmp_path, cases, isolate):
    assert judged(f"{CALLS}:strict_protocol", cases, tmp_path, isolate=isolate)["certified"]


def test_hunt_and_replay_keep_the_protocol(tmp_path, cases):
    """One loader: hunt and replay call kernels as certify does (scale a float, not None)."""
    kernel = hunt.load_kernel(f"{CALLS}:strict_protocol")
    assert hunt.evaluate(Case.load(cases[1]), kernel, "fp16-full", "nonfinite").crash is None
    result = CliRunner().invoke(main, ["replay", str(cases[1]), "--kernel",
                                       f"{CALLS}:strict_protocol", "--profile", "fp16-full"])
    assert result.exit_code == 0 and "kernel raised" not in result.output, result.output


# -- attacks through results ------------------------------------------------------------------


@pytest.mark.parametrize("isolate", [False, True])
def test_trojan_result_runs_nothing_and_is_judged_as_zeros(tmp_path, cases, isolate):
    """An ndarray subclass that pickles to code and lies in astype: the certifier keeps a
    plain copy of its data (zeros), so the all-zeros kernel fails accuracy."""
    doc = judged(f"{CALLS}:trojan", cases, tmp_path, isolate=isolate)
    assert not doc["certified"] and "PASA-CERT-15" in failing(doc)
    from pasa_ref.certify import criteria

    assert criteria.evaluate.__module__ == "pasa_ref.certify.criteria"


@pytest.mark.parametrize("isolate", [False, True])
def test_aliased_output_rewritten_later_fails_determinism(tmp_path, cases, isolate):
    doc = judged(f"{CALLS}:aliases", cases, tmp_path, isolate=isolate)
    assert "PASA-CERT-16" in failing(doc) and not doc["certified"]


def test_output_mutated_after_return_keeps_what_was_returned(tmp_path, cases):
    doc = judged(f"{CALLS}:mutates_later", cases, tmp_path)
    time.sleep(0.1)  # the backend's timers have zeroed its own arrays by now
    assert doc["certified"]


@pytest.mark.parametrize("isolate", [False, True])
def test_megabytes_of_printing_lose_nothing(tmp_path, cases, isolate, capfd):
    doc = judged(f"{CALLS}:prints_megabytes", cases, tmp_path, isolate=isolate)
    assert doc["certified"] and doc["cases"]["done"] == 2
    assert len(capfd.readouterr().out) >= 4 * (4 << 20)


def test_nan_everywhere_fails(tmp_path, cases):
    doc = judged(f"{CALLS}:nan_everywhere", cases, tmp_path)
    assert not doc["certified"] and "PASA-CERT-15" in failing(doc)


@pytest.mark.parametrize("isolate", [False, True])
def test_huge_output_is_refused_before_allocation(tmp_path, cases, isolate):
    doc = judged(f"{CALLS}:huge_output", cases[:1], tmp_path, isolate=isolate)
    message = failing(doc)["PASA-CERT-10"]
    assert ("above this call's bound" if isolate else "expected shape") in message


@pytest.mark.parametrize(("name", "isolate"), [("object_output", False), ("object_output", True),
                                               ("string_output", True)])
def test_non_numeric_results_are_not_arrays(tmp_path, cases, name, isolate):
    doc = judged(f"{CALLS}:{name}", cases[:1], tmp_path, isolate=isolate)
    assert "not-an-array" in failing(doc)["PASA-CERT-10"]


@pytest.mark.parametrize("isolate", [False, True])
def test_big_endian_output_is_judged_by_value(tmp_path, cases, isolate):
    assert judged(f"{CALLS}:big_endian", cases, tmp_path, isolate=isolate)["certified"]


# -- attacks through the process: exits, crashes, hangs, poison ------------------------------


@pytest.mark.parametrize("isolate", [False, True])
def test_keyboard_interrupt_raised_by_the_backend_is_an_exception(tmp_path, cases, isolate):
    doc = judged(f"{CALLS}:raises_keyboard_interrupt", cases[:1], tmp_path, isolate=isolate)
    assert doc["status"] == "finished" and "exception: KeyboardInterrupt" in failing(doc)[
        "PASA-CERT-10"]


def test_os_exit_at_call_is_a_crash(tmp_path, cases):
    doc = judged(f"{CALLS}:os_exit_at_call", cases[:1], tmp_path, isolate=True)
    assert "exited with status 0" in failing(doc)["PASA-CERT-10"]
    assert doc["calls"]["in_fresh_child"] == ["edge-one-key", "edge-one-key (repeat)"]


def test_sticky_error_poisons_only_its_own_child(tmp_path, cases):
    """A sticky accelerator fault on one call: under isolation the child is replaced after
    the exception, so only the calls on the refused input fail (issue 11); in a thread every
    later call of the process fails."""
    isolated = judged(f"{CALLS}:sticky_error", cases, tmp_path / "child", isolate=True)
    assert isolated["calls"]["failed"] == 2  # the one-key case, twice
    assert "edge-masked-rows" in isolated["calls"]["in_fresh_child"]
    threaded = judged(f"{CALLS}:sticky_error", cases, tmp_path / "thread")
    assert threaded["calls"]["failed"] == 4


def test_hung_call_in_a_thread_costs_its_deadline_once(tmp_path, cases):
    """A busy loop with timeout 1 s: the thread gets an asynchronous exception (it ends), and
    the later calls run in a child process, killed at its deadline (PASA-CERT-52)."""
    before = threading.active_count()
    start = time.perf_counter()
    doc = judged(f"{CALLS}:busy_loop", cases, tmp_path, timeout=1.0)
    seconds = time.perf_counter() - start
    # one call per case: a case whose first call timed out is not called again
    assert doc["status"] == "finished" and doc["calls"]["made"] == doc["calls"]["failed"] == 2
    assert "the later calls run in a child process" in failing(doc)["PASA-CERT-10"]
    assert doc["calls"]["in_fresh_child"]  # the calls after the first ran in children
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() <= before, "the abandoned busy thread still runs"
    assert seconds < 60


# -- attacks at import time ------------------------------------------------------------------


def test_backend_that_patches_the_certifier_at_import_is_never_imported(tmp_path, cases):
    doc = judged("tests.hostile.patches_certifier:attention", cases, tmp_path, isolate=True)
    assert not doc["certified"] and "tests.hostile.patches_certifier" not in sys.modules


@pytest.mark.parametrize(("module", "message"), [
    ("segfaults_at_import", "died of signal SIGSEGV while loading the backend"),
    ("os_exit_at_import", "exited with status 0 while loading the backend"),
])
def test_crash_at_import_is_a_recorded_failure(tmp_path, cases, module, message):
    result = CliRunner().invoke(main, ["certify", f"tests.hostile.{module}:attention", "--isolate",
                                       "--case", str(cases[0]), "--out", str(tmp_path), "-q"])
    assert result.exit_code == 1, result.output
    doc = json.loads((tmp_path / "certificate.json").read_text())
    assert doc["status"] == "stopped" and not doc["certified"]
    assert message in failing(doc)["PASA-CERT-10"]


def test_hang_at_import_is_a_recorded_failure(tmp_path, cases):
    prof = profiles.get("fp16-full")
    name = "tests.hostile.hangs_at_import:attention"
    with Caller(name, prof.name, timeout=5, isolate=True, startup_timeout=2) as caller:
        assert caller.unusable and "did not load the backend within 2 s" in caller.unusable
        from pasa_ref.certify.runner import replay_items

        outcome = run(replay_items(cases, prof), BackendSource(caller, prof), profile=prof,
                      level=1, seed=0, out=tmp_path, conf=thresholds.load())
    assert outcome.status == "stopped" and outcome.exit_code == 1
    assert outcome.document["cases"]["done"] == 1


@pytest.mark.parametrize("isolate", [False, True])
def test_sys_exit_at_import_is_a_usage_error_not_success(tmp_path, isolate):
    command = ["certify", "tests.hostile.exits_at_import:attention", "--out", str(tmp_path), "-q"]
    result = CliRunner().invoke(main, command + (["--isolate"] if isolate else []))
    assert result.exit_code == 2 and "SystemExit" in result.output, result.output


def test_adapter_names_without_adapters_are_a_clear_usage_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pasa_ref.adapters", None)  # as if not installed
    with pytest.raises(BackendError, match="adapters need the optional extra"):
        Caller("torch:flash", "fp16-full", timeout=1, isolate=False)


def test_declaration_travels_as_plain_data(tmp_path, cases):
    doc = judged(f"{CALLS}:declared", cases, tmp_path, isolate=True)
    assert doc["backend"]["declaration"] == {"schema": "pasa-ref/declaration/1",
                                             "algorithm": {"class": "pasa"}}
    # a declaration that is not plain data is refused like a malformed --declare file: the
    # kernel is never judged under a scope it did not declare
    with pytest.raises(DeclarationError, match="not plain JSON"):
        certify(f"{CALLS}:badly_declared", cases=cases, out=tmp_path / "bad", isolate=True)
    result = CliRunner().invoke(main, ["certify", f"{CALLS}:badly_declared", "--isolate",
                                       "--case", str(cases[0]), "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "not plain JSON" in result.output


# -- malformed case files: one line, the file named, exit 2 ----------------------------------


def _members(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def _rewritten(source: Path, target: Path, **changes) -> Path:
    """A copy of a case file with members replaced (None removes one)."""
    members = {**_members(source), **changes}
    np.savez(target, **{k: v for k, v in members.items() if v is not None})
    return target


def _cli_error(path: Path, named: Path | None = None) -> str:
    """The one error line of `pasa certify --case PATH`, which must exit 2 and name the file
    (`named`, default PATH)."""
    result = CliRunner().invoke(main, ["certify", "--case", str(path), "--out",
                                       str(path.parent / "cert"), "-q"])
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and str(named or path) in error[0], result.output
    return error[0]


def test_rank_3_array(tmp_path, cases):
    bad = _rewritten(cases[0], tmp_path / "r.npz", q=_members(cases[0])["q"][0])
    assert "member 'q': expected rank 4, got rank 3" in _cli_error(bad)


def test_truncated_zip(tmp_path, cases):
    bad = tmp_path / "t.npz"
    bad.write_bytes(cases[0].read_bytes()[: cases[0].stat().st_size // 2])
    assert "not a readable npz" in _cli_error(bad)


def test_declared_shape_of_2_to_the_41_is_refused_before_allocation(tmp_path, cases):
    bad = _rewritten(cases[0], tmp_path / "s.npz")
    header = {"descr": "<f2", "fortran_order": False, "shape": (1, 2, 1 << 20, 1 << 19)}
    raw = _npy(header, b"\0" * 64)
    _replace_member(bad, "q.npy", raw)
    start = time.perf_counter()
    error = _cli_error(bad)
    assert "member 'q'" in error and "truncated or padded" in error
    assert time.perf_counter() - start < 30


def test_size_limit_is_adjustable(tmp_path, cases, monkeypatch):
    monkeypatch.setenv("PASA_MAX_FILE_BYTES", "100")
    with pytest.raises(CaseFileError, match=r"above the limit of 100 bytes \(\$PASA_MAX_FILE"):
        Case.load(cases[0])
    monkeypatch.setenv("PASA_MAX_FILE_BYTES", "lots")
    with pytest.raises(CaseFileError, match="PASA_MAX_FILE_BYTES: expected a number of bytes"):
        Case.load(cases[0])


def test_compressed_member_that_would_inflate_is_refused(tmp_path, cases):
    """A 'zip bomb': 64 MiB of zeros deflated to a few KiB; refused unread."""
    bad = tmp_path / "z.npz"
    members = _members(cases[0])
    with zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in members.items():
            data = _npy_of(value) if name != "v" else _npy(
                {"descr": "<f2", "fortran_order": False, "shape": (1, 1, 1 << 15, 1 << 10)},
                bytes(1 << 26))
            archive.writestr(f"{name}.npy", data)
    assert bad.stat().st_size < 1 << 20
    assert "compressed or encrypted" in _cli_error(bad)


def test_string_scale(tmp_path, cases):
    bad = _rewritten(cases[0], tmp_path / "sc.npz", scale=np.array("0.5"))
    assert "member 'scale': expected dtype <f8, got <U3" in _cli_error(bad)


def test_pickled_member(tmp_path, cases):
    bad = tmp_path / "p.npz"
    members = {**_members(cases[0]), "mask": np.array([{"evil": 1}], dtype=object)}
    np.savez(bad, **members)  # numpy pickles the object array
    assert "member 'mask': expected dtype |b1, got |O" in _cli_error(bad)


def test_unexpected_member_name(tmp_path, cases):
    bad = _rewritten(cases[0], tmp_path / "m.npz")
    with zipfile.ZipFile(bad, "a") as archive:
        archive.writestr("../../evil.npy", b"")
    assert "unexpected member '../../evil.npy'" in _cli_error(bad)


def test_non_finite_input_and_mismatched_shapes(tmp_path, cases):
    q = _members(cases[0])["q"].copy()
    q.flat[0] = np.inf
    assert "expected finite values" in _cli_error(_rewritten(cases[0], tmp_path / "i.npz", q=q))
    v = np.zeros((1, 1, 7, 3), np.float16)
    assert "argument 'v'" in _cli_error(_rewritten(cases[0], tmp_path / "v.npz", v=v))


def test_broken_and_mistyped_sidecars(tmp_path, cases):
    broken = _rewritten(cases[0], tmp_path / "b.npz")
    broken.with_suffix(".json").write_text('{"label": ')
    error = _cli_error(broken, broken.with_suffix(".json"))
    assert "case metadata" in error and "not valid JSON" in error
    mistyped = _rewritten(cases[0], tmp_path / "y.npz")
    mistyped.with_suffix(".json").write_text(json.dumps({"relations_seed": "x"}))
    assert "$.relations_seed: expected integer, got str" in _cli_error(
        mistyped, mistyped.with_suffix(".json"))
    escaping = _rewritten(cases[0], tmp_path / "e.npz")
    escaping.with_suffix(".json").write_text(json.dumps({"id": "../../etc/passwd"}))
    assert "$.id" in _cli_error(escaping, escaping.with_suffix(".json"))


def test_case_option_names_the_file_it_was_given(tmp_path):
    notes = tmp_path / "notes.py"
    notes.write_text("print('hi')\n")
    result = CliRunner().invoke(main, ["certify", "--case", str(notes), "-q"])
    assert result.exit_code == 2 and "notes.py" in result.output
    assert "expected a .npz file" in result.output and "notes.npz" not in result.output


# -- pasa verify: a malformed manifest is exit 2, a malformed output a failed case -----------


@pytest.fixture
def generated(tmp_path) -> tuple[Path, Path]:
    """A level-1 plan of bf16-mixed cut to two cases, and the reference's outputs."""
    cases, outputs = tmp_path / "cases", tmp_path / "outputs"
    casefiles.generate("bf16-mixed", 1, 0, cases)
    manifest = json.loads((cases / casefiles.MANIFEST).read_text())
    manifest["cases"] = manifest["cases"][:2]
    (cases / casefiles.MANIFEST).write_text(json.dumps(manifest))
    for entry in manifest["cases"]:
        case = Case.load(cases / f"{entry['id']}.npz")
        out = pasa.attention(case.q, case.k, case.v, profile="bf16-mixed", **case.call_kwargs())
        save_output(outputs / entry["id"], out)
    return cases, outputs


def _verify(cases: Path, outputs: Path, out: Path):
    return CliRunner().invoke(main, ["verify", str(cases), str(outputs), "--out", str(out), "-q"])


def test_verify_certifies_the_reference_outputs(tmp_path, generated):
    result = _verify(*generated, tmp_path / "cert")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text[: len(text) // 2], "not valid JSON"),
    (lambda text: text.replace('"repeat": true', '"repeat": "yes"', 1),
     "$.cases[0].repeat: expected boolean"),
    (lambda text: text.replace('"id": "', '"id": "../', 1), "$.cases[0].id"),
    (lambda text: text.replace('"format": "pasa-ref-cases/1"', '"format": "other"'),
     "$.format: expected 'pasa-ref-cases/1'"),
])
def test_malformed_manifest_is_exit_2(tmp_path, generated, edit, message):
    cases, outputs = generated
    path = cases / casefiles.MANIFEST
    path.write_text(edit(json.dumps(json.loads(path.read_text()), indent=1)))
    result = _verify(cases, outputs, tmp_path / "cert")
    assert result.exit_code == 2 and message in result.output and str(path) in result.output


def test_truncated_and_pickled_outputs_are_failed_cases(tmp_path, generated):
    cases, outputs = generated
    first, second = sorted(outputs.glob("*.npz"))
    first.write_bytes(first.read_bytes()[:100])
    np.save(second.with_suffix(".tmp.npy"), np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(second, "w") as archive:
        archive.write(second.with_suffix(".tmp.npy"), "out.npy")
    result = _verify(cases, outputs, tmp_path / "cert")
    assert result.exit_code == 1, result.output
    doc = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    assert doc["status"] == "finished" and doc["cases"]["done"] == 2
    record = next(c for c in doc["clauses"] if c["id"] == "PASA-CERT-10")
    messages = " ".join(f["message"] for f in record["failures"])
    assert record["failed"] == 2 and "unreadable-output" in messages
    assert "not a readable npz" in messages and "expected dtype" in messages


def test_float32_output_for_a_bf16_case_is_measured_as_a_wrong_dtype(tmp_path, generated):
    cases, outputs = generated
    for path in outputs.glob("*.npz"):
        save_output(path, load_output(path).astype(np.float32))
    result = _verify(cases, outputs, tmp_path / "cert")
    doc = json.loads((tmp_path / "cert" / "certificate.json").read_text())
    fails = failing(doc)
    assert result.exit_code == 1 and "expected dtype bfloat16, got float32" in fails["PASA-CERT-10"]
    measured = {c["id"]: c["evaluated"] for c in doc["clauses"]}
    assert measured["PASA-CERT-15"] >= 1 and "PASA-CERT-15" not in fails  # judged, and fine
    assert load_output(next(outputs.glob("*.npz"))).dtype == np.float32


# -- code chosen by a file, corpus names -----------------------------------------------------


def test_replay_never_runs_a_kernel_named_by_the_case_file(tmp_path, cases, monkeypatch):
    marker = tmp_path / "marker"
    monkeypatch.setenv("PASA_HOSTILE_MARKER", str(marker))
    planted = _rewritten(cases[1], tmp_path / "planted.npz")
    meta = json.loads(cases[1].with_suffix(".json").read_text())
    meta.update(kernel="tests.hostile.marks_import:attention", profile="fp16-full",
                objective="nonfinite", failed=True)
    planted.with_suffix(".json").write_text(json.dumps(meta))
    result = CliRunner().invoke(main, ["replay", str(planted)])
    assert not marker.exists() and "tests.hostile.marks_import" not in sys.modules
    assert "records kernel 'tests.hostile.marks_import:attention'; running 'pasa'" in (
        result.output), result.output
    meta["threshold"] = "0.5"
    planted.with_suffix(".json").write_text(json.dumps(meta))
    result = CliRunner().invoke(main, ["replay", str(planted)])
    assert result.exit_code == 2 and "case metadata 'threshold'" in result.output


def test_corpus_names_do_not_collide(cases):
    case = Case.load(cases[0])
    other = Case.load(cases[1])
    base = hunt.HuntConfig("my_pkg.attn:forward", "fp16-full", "nonfinite", 1.0, seed=1)
    finding = hunt.Finding(case, hunt.Evaluation("nonfinite", 1.0, True, 1, 1.0, 0.0),
                           "failure", "shrunk", 0.0, 1, 1)
    variants = [
        (base, finding),
        (hunt.HuntConfig(**{**base.__dict__, "profile": "bf16-full"}), finding),
        (hunt.HuntConfig(**{**base.__dict__, "objective": "error"}), finding),
        (base, hunt.Finding(**{**finding.__dict__, "seed": 2})),
        (base, hunt.Finding(**{**finding.__dict__, "case": other})),
        (base, hunt.Finding(**{**finding.__dict__, "kind": "worst"})),
        (hunt.HuntConfig(**{**base.__dict__, "kernel": "my_pkg:attn.forward"}), finding),
        (hunt.HuntConfig(**{**base.__dict__, "kernel": "my_pkg.attn:backward"}), finding),
    ]
    stems = [hunt.case_stem(config, found) for config, found in variants]
    assert len(set(stems)) == len(stems), stems
    assert all("/" not in stem and ":" not in stem for stem in stems)


def test_hunt_rejects_a_bad_kernel_before_any_output():
    result = CliRunner().invoke(main, ["hunt", "--kernel", "no_such_module_xyz:f", "--budget",
                                       "1"])
    assert result.exit_code == 2 and "hunting" not in result.output
    assert result.output.startswith("Usage:"), result.output


# -- helpers that build .npy members by hand -------------------------------------------------


def _npy(header: dict, data: bytes) -> bytes:
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    return b"\x93NUMPY\x01\x00" + (len(text) + pad + 1).to_bytes(2, "little") + text + (
        b" " * pad) + b"\n" + data


def _npy_of(value: np.ndarray) -> bytes:
    header = {"descr": np.lib.format.dtype_to_descr(value.dtype), "fortran_order": False,
              "shape": value.shape}
    return _npy(header, np.ascontiguousarray(value).tobytes())


def _replace_member(path: Path, member: str, raw: bytes) -> None:
    with zipfile.ZipFile(path) as archive:
        kept = {i.filename: archive.read(i) for i in archive.infolist() if i.filename != member}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in kept.items():
            archive.writestr(name, data)
        archive.writestr(member, raw)


def test_hand_built_members_are_what_numpy_writes(tmp_path):
    """The helpers above write the .npy format numpy reads (so the attacks are real files)."""
    value = np.arange(6, dtype=np.float16).reshape(2, 3)
    path = tmp_path / "x.npy"
    path.write_bytes(_npy_of(value))
    np.testing.assert_array_equal(np.load(path), value)


@pytest.mark.parametrize(("name", "certified"), [("tests.mutants.base:attention", True),
                                                 ("tests.mutants.causal_top_left:attention",
                                                  False)])
def test_isolation_keeps_the_verdicts_of_an_independent_kernel_and_a_planted_bug(
    tmp_path, name, certified
):
    """Both ways through the wire: the independent step-by-step PASA passes, a realistic
    mistake (top-left causal alignment) fails, on the edge corpus's causal cases."""
    chosen = {c.metadata["id"]: c for c in generators.edge(profiles.get("fp16-full"))}
    paths = [chosen[i].save(tmp_path / i) for i in ("edge-causal-more-queries",
                                                    "edge-causal-decode")]
    doc = judged(name, paths, tmp_path / "cert", isolate=True)
    assert doc["certified"] == certified and doc["status"] == "finished"
