"""What the commands show (issue 15): plain progress lines off a terminal and nothing with -q
(pasa_ref.display), summaries that rich never wraps or cuts, the names and labels in the
certificate of `pasa verify` and of a `--case` run, `pasa prove` theorem by theorem, envelope
explanations whose printed relations are true, spec citations that resolve inside the
repository, and the tox environments."""

from __future__ import annotations

import configparser
import io
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.text import Text

from pasa_ref import display, envelope, formats, profiles
from pasa_ref.cases import Case, save_output
from pasa_ref.certify import generators, levels, thresholds
from pasa_ref.certify.backend import Caller, load
from pasa_ref.certify.runner import BackendSource, run
from pasa_ref.cli import main
from pasa_ref.envelope import Check
from pasa_ref.kernels import pasa
from tests.test_certify import SCHEMA, certificate, schema_errors

ROOT = Path(__file__).resolve().parents[1]
PROGRESS_LINE = re.compile(r"^\[ *\d+\.\d s\] (?P<label>[\w-]+): (?P<done>[\d.]+)/(?P<total>[\d.]+) ")
BAR_GLYPHS = ("━", "╸", "╺")


def off_by_half(q, k, v, *, scale=None, causal=False, mask=None):
    """A kernel with one realistic mistake: its output is 1.5 times pasa's (a wrong final
    normalisation)."""
    out = pasa.attention(q, k, v, scale=scale, causal=causal, mask=mask, profile="fp16-full")
    return (out.astype(np.float32) * 1.5).astype(out.dtype)


def tiny_case(path: Path, metadata: dict) -> Path:
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 4, 8)).astype(np.float16) for _ in range(3))
    return Case(q, k, v, label=str(metadata.get("id", "tiny")), metadata=metadata).save(path)


def progress_lines(text: str) -> list[re.Match]:
    matches = [PROGRESS_LINE.match(line) for line in text.splitlines()]
    assert all(matches), text
    return matches


# -- pasa_ref.display -----------------------------------------------------------------------


def test_plain_progress_lines_off_a_terminal():
    stream = io.StringIO()
    with display.progress("work", 8, stream=stream) as shown:
        for index in range(8):
            shown.advance(note=f"item-{index}")
    lines = progress_lines(stream.getvalue())
    # one at the start, one per quarter of the total (2 units), the last one printed once
    assert [(m["done"], m["total"]) for m in lines] == [("0", "8"), ("2", "8"), ("4", "8"),
                                                         ("6", "8"), ("8", "8")]
    assert stream.getvalue().splitlines()[-1].endswith("8/8 cases; item-7")
    assert not any(glyph in stream.getvalue() for glyph in BAR_GLYPHS)


def test_plain_progress_lines_every_few_seconds():
    now = [0.0]
    stream = io.StringIO()
    lines = display._Lines("hunt", 1000, "s", stream, every=1000, clock=lambda: now[0])
    for second in range(1, 31):
        now[0] = float(second)
        lines.update(float(second), note=f"{second} cases")
    lines.close()
    seconds = [float(m["done"]) for m in progress_lines(stream.getvalue())]
    assert seconds == [0, display.LINE_SECONDS, 2 * display.LINE_SECONDS, 30]


def test_quiet_shows_nothing():
    stream = io.StringIO()
    with display.progress("work", 3, quiet=True, stream=stream) as shown:
        for _ in range(3):
            shown.advance(note="x")
    assert stream.getvalue() == ""


@pytest.mark.parametrize("columns, bar", [(100, True), (display.BAR_MIN_COLUMNS - 12, False)])
def test_a_bar_only_on_a_terminal_wide_enough(monkeypatch, columns, bar):
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: a terminal
    monkeypatch.setenv("COLUMNS", str(columns))
    stream = io.StringIO()
    with display.progress("work", 4, stream=stream) as shown:
        for _ in range(4):
            shown.advance(note="a note")
    assert any(glyph in stream.getvalue() for glyph in BAR_GLYPHS) == bar
    if not bar:
        assert progress_lines(stream.getvalue())[-1]["done"] == "4"


def test_a_table_too_wide_becomes_lines_with_whole_cells():
    header = ("clause", "verdict", "cases", "worst case", "severity")
    rows = [("PASA-CERT-12", Text("PASS", "green"), "12345", "grid-uniform-mean30-amp20", "0.5")]
    for width, table in ((200, True), (40, False)):
        out = Console(file=io.StringIO(), width=width)
        display.print_table(out, "TITLE 55/55 cases in 3.6 s", header, rows, right=("cases",))
        text = out.file.getvalue()
        assert text.splitlines()[0] == "TITLE 55/55 cases in 3.6 s"
        assert ("┃" in text) == table and "…" not in text
        flat = " ".join(text.split())  # the lines as read, wherever rich broke them
        assert all(cell in flat for cell in ("PASA-CERT-12", "12345", "grid-uniform-mean30-amp20"))


# -- pasa certify --case and pasa verify: labels and names --------------------------------


def test_a_case_run_is_labelled_by_its_cases_origin(tmp_path):
    file = tiny_case(
        tmp_path / "from-level-3",
        {"id": "hunt-pasa-error-0", "group": "hunt", "level": 3, "seed": 5},
    )
    runner = CliRunner()
    result = runner.invoke(main, ["certify", "--case", str(file), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    title = result.stdout.splitlines()[0]
    assert "case run of 1 file: hunt-pasa-error-0 (group hunt, level 3, seed 5)" in title
    assert re.fullmatch(r"CERTIFIED  .* 1/1 cases in \d+\.\d s", title), title
    assert "level 1, seed" not in title and "None" not in title
    doc = certificate(tmp_path / "c")
    assert doc["run"] == {
        "kind": "cases",
        "cases": [{"file": str(file), "id": "hunt-pasa-error-0", "group": "hunt", "level": 3,
                   "kernel": None, "objective": None, "seed": 5}],
    }
    assert schema_errors(doc, SCHEMA) == []
    assert "case run of 1 file: hunt-pasa-error-0" in (tmp_path / "c" / "certificate.md").read_text()
    # plain progress on stderr, no bar; -q: none
    assert [m["done"] for m in progress_lines(result.stderr)] == ["0", "1"]
    quiet = runner.invoke(main, ["certify", "--case", str(file), "-q", "--out", str(tmp_path / "q")])
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_a_failure_records_its_level_and_a_case_run_of_it_says_so(tmp_path):
    """Run both ways: the reference passes, the kernel off by half fails, and the failure file
    it leaves records the level and seed of the plan; certifying that file alone says where it
    came from."""
    prof = profiles.get("fp16-full")
    items = [levels.item(case, repeat=False) for case in generators.benign(prof)[:1]]
    outcomes = {}
    for name in ("pasa_ref.kernels.pasa:attention", "tests.test_cli_display:off_by_half"):
        loaded = load(name)
        with Caller(loaded, prof.name, timeout=60.0, isolate=False) as caller:
            outcomes[name] = run(items, BackendSource(loaded, caller, prof), profile=prof,
                                 level=2, seed=7, out=tmp_path / name, conf=thresholds.load())
    assert outcomes["pasa_ref.kernels.pasa:attention"].certified
    failing = outcomes["tests.test_cli_display:off_by_half"]
    assert not failing.certified and failing.document["run"] == {"kind": "level"}
    saved = sorted((failing.out / "failures").glob("*.npz"))
    assert saved
    meta = Case.load(saved[0]).metadata
    assert (meta["id"], meta["group"], meta["level"], meta["seed"]) == (items[0].id, "benign", 2, 7)
    result = CliRunner().invoke(main, ["certify", "tests.test_cli_display:off_by_half", "--case",
                                       str(saved[0]), "-q", "--out", str(tmp_path / "again")])
    assert result.exit_code == 1
    title = result.stdout.splitlines()[0]
    assert title.startswith("NOT CERTIFIED  tests.test_cli_display:off_by_half")
    assert f"case run of 1 file: {items[0].id} (group benign, level 2, seed 7)" in title


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Path, str]:
    """`pasa gen` level 1 and the reference kernel's output for one of its cases."""
    root = tmp_path_factory.mktemp("verify")
    cases, outputs = root / "cases", root / "kernel-outputs"
    result = CliRunner().invoke(main, ["gen", "--level", "1", "-o", str(cases)])
    assert result.exit_code == 0, result.output
    case_id = "edge-one-key"
    case = Case.load(cases / f"{case_id}.npz")
    out = pasa.attention(case.q, case.k, case.v, profile="fp16-full", **case.call_kwargs())
    save_output(outputs / case_id, out)
    return cases, outputs, case_id


@pytest.mark.parametrize("name", [None, "my ascend kernel"])
def test_verify_names_the_kernel(tmp_path, generated, name):
    cases, outputs, case_id = generated
    options = [] if name is None else ["--name", name]
    result = CliRunner().invoke(main, ["verify", str(cases), str(outputs), "--only", case_id,
                                       "-q", "--out", str(tmp_path), *options])
    assert result.exit_code == 0, result.output
    expected = name or "kernel-outputs"
    title = result.stdout.splitlines()[0]
    assert title.startswith(f"CERTIFIED  {expected}, profile fp16-full, level 1, seed 0: 1/1 ")
    assert certificate(tmp_path)["backend"]["name"] == expected
    assert "None" not in title and "None" not in (tmp_path / "certificate.md").read_text()
    # pasa gen records where each case comes from: a case run of it says so
    assert Case.load(cases / f"{case_id}.npz").metadata["level"] == 1


# -- pasa prove, pasa hunt, pasa reproduce --------------------------------------------------


def test_prove_shows_each_theorem_as_its_proof_ends():
    result = CliRunner().invoke(main, ["prove", "-t", "T2", "-t", "T5"])
    assert result.exit_code == 0, result.output
    lines = progress_lines(result.stderr)
    assert [(m["done"], m["total"]) for m in lines] == [("0", "2"), ("1", "2"), ("2", "2")]
    assert "T2 proved" in result.stderr.splitlines()[1]
    assert "T5 proved" in result.stderr.splitlines()[2]
    output = result.output  # stdout and stderr in the order written
    assert output.index("T2 proved") < output.index("T5 proved") < output.index("PASA proofs")


def test_hunt_and_reproduce_show_plain_progress_off_a_terminal(tmp_path):
    runner = CliRunner()
    hunted = runner.invoke(main, ["hunt", "--budget", "1", "--seed", "1", "--max-seq", "16",
                                  "--corpus", str(tmp_path / "corpus")])
    assert hunted.exit_code in (0, 1), hunted.output
    assert {m["label"] for m in progress_lines(hunted.stderr)} == {"hunt"}
    assert not any(glyph in hunted.output for glyph in BAR_GLYPHS)
    quiet = runner.invoke(main, ["hunt", "--budget", "0.5", "--seed", "1", "--max-seq", "16",
                                 "-q", "--corpus", str(tmp_path / "corpus2")])
    assert quiet.exit_code in (0, 1) and quiet.stderr == ""
    reproduced = runner.invoke(main, ["reproduce", "fa3", "--quick", "--out", str(tmp_path)])
    assert reproduced.exit_code == 0, reproduced.output
    lines = [line for line in reproduced.stderr.splitlines() if PROGRESS_LINE.match(line)]
    assert lines[0].endswith("fa3: 0/6 kernel runs") and " 6/6 kernel runs" in lines[-1]
    assert not any(glyph in reproduced.output for glyph in BAR_GLYPHS)


# -- pasa replay --explain: true relations ----------------------------------------------------


RELATION = re.compile(r"bound (?P<bound>\S+) (?P<op><|>=) (?P<theta>[^\s,]+), the overflow "
                      r"threshold of (?P<fmt>\w+)(?P<rest>.*)$")


def _checked_lines(output: str) -> list[tuple[str, re.Match]]:
    """(mark, relation) of every check line of `pasa replay --explain`."""
    found = []
    for line in output.splitlines():
        if line.startswith(("  ok ", "  FAIL ")):
            match = RELATION.search(line)
            assert match, line
            found.append((line.split()[0], match))
    return found


@pytest.mark.parametrize("value", [60000.0, 0.5])
def test_explain_prints_relations_that_hold(tmp_path, value):
    q = np.full((1, 1, 4, 128), value, np.float16)
    v = np.ones((1, 1, 4, 128), np.float16)
    file = Case(q, q.copy(), v, label="constant").save(tmp_path / "constant")
    result = CliRunner().invoke(main, ["replay", str(file), "--kernel", "pasa", "--profile",
                                       "fp16-full", "--explain"])
    checks = _checked_lines(result.output)
    assert checks, result.output
    for mark, match in checks:
        bound, theta = float(match["bound"]), float(match["theta"])
        exact = envelope.overflow_threshold(formats.get(match["fmt"]))
        assert theta == pytest.approx(exact, rel=1e-5)
        if mark == "ok":
            assert match["op"] == "<" and bound < theta and match["rest"] == ""
        else:
            assert mark == "FAIL" and match["op"] == ">=" and bound >= theta
            assert match["rest"] == ": overflow possible"
    assert any(mark == "FAIL" for mark, _ in checks) == (value > 1000)


def test_a_bound_in_the_slack_is_not_printed_as_below_or_above():
    theta = 65520.0
    for bound in (theta * (1 - 2.0**-31), theta * (1 - 2.0**-40)):
        check = Check("PASA-ENV-5", "scores", "fp16", bound, theta, "")
        text = envelope.relation(check)
        assert not check.holds and "within a factor 1 + 2^-30 of 65520" in text
        assert "overflow possible" in text and " < " not in text and ">=" not in text
    below = envelope.relation(Check("PASA-ENV-5", "scores", "fp16", 65519.9, theta, ""))
    shown = re.match(r"bound (\S+) < (\S+),", below)
    assert shown and float(shown[1]) < float(shown[2])


# -- citations and tox --------------------------------------------------------------------


def test_the_spec_cites_sources_that_are_in_the_repository():
    texts = [
        path for pattern in ("*.md", "*.py", "*.toml", "*.json", "*.ini")
        for path in ROOT.rglob(pattern)
        if not {".git", ".tox", "build"} & set(path.relative_to(ROOT).parts)
        and ".egg-info" not in str(path) and path.name != Path(__file__).name
    ]
    citing = [str(p) for p in texts if re.search(r"primer", p.read_text(errors="ignore"), re.I)]
    assert citing == []
    sources = (ROOT / "specs" / "sources.md").read_text()
    for cited in ("2503.01873", "chenglong92/PASA", "PASA_Torch", "PASA_Verification.py",
                  "2407.08608", "issue 1231", "msprobe", "Blanchard"):
        assert cited in sources
    spec = " ".join((ROOT / "specs" / name).read_text() for name in
                    ("pasa-spec.md", "certification.md", "oracle-and-metrics.md",
                     "strategies-and-hunting.md"))
    defined = set(re.findall(r"\*\*(PASA-[A-Z]+-\d+)\*\*", spec))
    assert set(re.findall(r"PASA-[A-Z]+-\d+", sources)) <= defined
    assert "sources.md" in (ROOT / "specs" / "pasa-spec.md").read_text()


def test_tox_has_a_parallel_environment_and_prints_the_slowest_tests():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    assert "--durations=15" in tox["testenv"]["commands"]
    parallel = [name for name in tox.sections() if "-n auto" in tox[name].get("commands", "")]
    assert parallel and "xdist" in tox[parallel[0]]["description"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["test"]
    assert any(re.fullmatch(r"pytest-xdist>=[\d.]+", extra) for extra in extras)
