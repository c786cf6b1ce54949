"""`pasa hunt` and `pasa replay` (specs/strategies-and-hunting.md, PASA-HUNT-1 .. 7): the
objectives, a short hunt that finds, shrinks and writes a case, Ctrl-C keeping what was found,
and the regression corpus.

tests/corpus holds shrunk cases found by `pasa hunt` (the acceptance runs of issue 5) and two
made by hand at the boundary of pasa's envelope; each .json records kernel, profile,
objective and verdict, and test_corpus_cases_keep_their_verdict replays every one of them.
"""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pasa_ref import hunt
from pasa_ref.cases import Case
from pasa_ref.cli import main

CORPUS = Path(__file__).parent / "corpus"
CORPUS_CASES = sorted(CORPUS.glob("*.npz"))


def constant_case(q: float, k: float, v: float = 1.0, d: int = 1, keys: int = 1) -> Case:
    return Case(np.full((1, 1, 1, d), q, np.float16), np.full((1, 1, keys, d), k, np.float16),
                np.full((1, 1, keys, d), v, np.float16))


PASA = hunt.load_kernel("pasa")
NAIVE = hunt.load_kernel("naive")


def test_nonfinite_objective():
    """PASA-HUNT-2: q k = 65536 overflows naive's fp16 scores; pasa shifts them first."""
    case = constant_case(256.0, 256.0)
    failed = hunt.evaluate(case, NAIVE, "fp16-full", "nonfinite")
    assert failed.failed and failed.nonfinite == 1 and failed.value == 1.0
    assert failed.pressure >= 1.0 and "non-finite" in failed.verdict
    passed = hunt.evaluate(case, PASA, "fp16-full", "nonfinite")
    assert not passed.failed and passed.pressure < 1.0 and passed.verdict == "finite output"


def test_error_objective():
    """PASA-HUNT-3: e = max|O - O*| / max|V|; a non-finite output is e = inf, failing any
    threshold."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 1, 8, 16)).astype(np.float16) for _ in range(3))
    judged = hunt.evaluate(Case(q, k, v), PASA, "fp16-full", "error", threshold=0.5)
    assert 0 < judged.value < 0.01 and not judged.failed and "below" in judged.verdict
    assert hunt.evaluate(Case(q, k, v), PASA, "fp16-full", "error", threshold=1e-9).failed
    broken = hunt.evaluate(constant_case(256.0, 256.0), NAIVE, "fp16-full", "error",
                           threshold=math.inf)
    assert broken.failed and math.isinf(broken.value)


def test_envelope_objective():
    """PASA-HUNT-4: only cases inside pasa's envelope count; there naive may fail."""
    inside = hunt.evaluate(constant_case(256.0, 256.0), NAIVE, "fp16-full", "envelope")
    assert inside.failed and 0 < inside.pressure < 1
    outside = hunt.evaluate(constant_case(2000.0, 2000.0), NAIVE, "fp16-full", "envelope")
    assert not outside.failed and outside.nonfinite == -1 and "outside" in outside.verdict


def crashing_kernel(q, k, v, *, scale, causal, mask):
    raise RuntimeError("no kernel here")


def test_kernels_from_outside_and_their_crashes():
    """PASA-HUNT-1: MODULE:FUNCTION through the certify loader; an exception is a finding."""
    outside = hunt.load_kernel("pasa_ref.kernels.naive:attention")
    assert outside.takes_profile and outside.reference == "flash"
    crash = hunt.evaluate(constant_case(1.0, 1.0), hunt.load_kernel(f"{__name__}:crashing_kernel"),
                          "fp16-full", "nonfinite")
    assert crash.failed and "RuntimeError: no kernel here" in crash.verdict
    for bad in ("nope", "no_such_module_xyz:f", f"{__name__}:missing"):
        with pytest.raises(hunt.HuntError, match="kernel"):
            hunt.load_kernel(bad)


def test_bad_configuration_names_the_argument():
    for field, value in (("objective", "speed"), ("budget", 0), ("threshold", -1.0)):
        config = hunt.HuntConfig("pasa", "fp16-full", "nonfinite", 1.0)
        with pytest.raises(hunt.HuntError, match=field):
            hunt.HuntConfig(**{**config.__dict__, field: value}).checked()


class Recorder(hunt.Observer):
    def __init__(self, stop_at: str | None = None) -> None:
        self.findings: list[hunt.Finding] = []
        self.examples = 0
        self.stop_at = stop_at

    def on_example(self, result, evaluation):
        self.examples += 1

    def on_finding(self, finding):
        self.findings.append(finding)
        if finding.status == self.stop_at:
            raise KeyboardInterrupt


def test_a_hunt_finds_shrinks_and_writes_a_case(tmp_path):
    """PASA-HUNT-5, -6: naive in fp16-full overflows within seconds; the shrunk case is one
    query and one key, written with its metadata and readable without pickles."""
    config = hunt.HuntConfig("naive", "fp16-full", "nonfinite", budget=60, seed=3,
                             max_seq=64).checked()
    writer, recorder = hunt.CorpusWriter(tmp_path, config), Recorder()
    result = hunt.hunt(config, [writer, recorder])
    assert result.first_failure is not None and result.first_failure < result.elapsed
    final = result.findings[-1]
    assert final.status == "shrunk" and final.kind == "failure"
    assert recorder.findings[0].status == "found"
    assert final.case.q.shape[2] == final.case.k.shape[2] == 1
    case = Case.load(writer.written)
    np.testing.assert_array_equal(case.q, final.case.q)
    meta = json.loads(writer.written.with_suffix(".json").read_text())
    for key in ("kernel", "profile", "objective", "objective_value", "oracle", "seed", "shapes",
                "pasa_ref_version", "label", "distribution", "envelope"):
        assert key in meta, key
    assert meta["failed"] and meta["status"] == "shrunk" and meta["oracle"]["nonfinite"]["total"]
    assert recorder.examples == result.examples


def test_ctrl_c_keeps_the_latest_case(tmp_path):
    """PASA-HUNT-6: a KeyboardInterrupt while shrinking ends the hunt; the file on disk is the
    latest failing case, marked interrupted."""
    config = hunt.HuntConfig("naive", "fp16-full", "nonfinite", budget=60, seed=3,
                             max_seq=64).checked()
    writer = hunt.CorpusWriter(tmp_path, config)
    result = hunt.hunt(config, [writer, Recorder(stop_at="shrinking")])
    assert result.interrupted
    assert [f.status for f in result.findings] == ["interrupted"]
    meta = json.loads(writer.written.with_suffix(".json").read_text())
    assert meta["status"] == "interrupted" and meta["failed"]


def test_untargeted_hunts_run_and_stop_at_the_budget():
    """--no-target, and a search that finds nothing: pasa is finite inside its envelope."""
    config = hunt.HuntConfig("pasa", "fp16-full", "envelope", budget=3, seed=0, max_seq=32,
                             targeting=False)
    result = hunt.hunt(config)
    assert not result.findings and result.examples > 0 and result.elapsed < 30


def test_the_cli_hunts_and_replays(tmp_path):
    """PASA-HUNT-1 and -7 end to end: exit status 1 on a failure, a replay line, and the
    replay reproducing the verdict."""
    runner = CliRunner()
    hunted = runner.invoke(main, ["hunt", "--kernel", "flash", "--profile", "fp16-full",
                                  "--budget", "60", "--seed", "3", "--max-seq", "64",
                                  "--corpus", str(tmp_path)])
    assert hunted.exit_code == 1, hunted.output
    replay_line = [line for line in hunted.output.splitlines() if line.startswith("replay: ")]
    command = shlex.split(replay_line[-1].removeprefix("replay: "))
    assert command[:2] == ["pasa", "replay"] and command[3:] == ["--kernel", "flash",
                                                                 "--profile", "fp16-full"]
    replayed = runner.invoke(main, command[1:])
    assert replayed.exit_code == 1 and "same verdict" in replayed.output, replayed.output
    with_pasa = runner.invoke(main, ["replay", command[2], "--explain"])  # the bundled pasa
    assert "records kernel 'flash'; running 'pasa'" in with_pasa.output
    assert "PASA-ENV" in with_pasa.output


@pytest.mark.parametrize("path", CORPUS_CASES, ids=[p.stem for p in CORPUS_CASES])
def test_corpus_cases_keep_their_verdict(path):
    """PASA-HUNT-7: every corpus case, judged as recorded, gives the recorded verdict (an
    expected failure stays a failure until the kernel or the spec changes on purpose)."""
    case = Case.load(path)
    record = hunt.recorded(case)
    judged = hunt.evaluate(case, hunt.load_kernel(record.kernel), record.profile,
                           record.objective, record.threshold)
    assert judged.failed == record.failed, judged.verdict
    assert path.stat().st_size < 200_000


def test_pasa_stays_finite_on_every_corpus_case_inside_its_envelope():
    """PASA-ENV-1 on the corpus: wherever pasa's envelope holds, pasa's output is finite."""
    inside = 0
    for path in CORPUS_CASES:
        case = Case.load(path)
        profile = hunt.recorded(case).profile
        judged = hunt.evaluate(case, PASA, profile, "envelope")
        assert not judged.failed, path.name
        inside += judged.nonfinite == 0
    assert inside >= 2
