"""`pasa reproduce` and benchmarks/run_all.py: every command runs in --quick mode and leaves
well-formed outputs (CSV columns, Markdown tables, non-finite outputs marked, PNGs when
matplotlib is installed); the pieces behave at their edges."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from pasa_ref.cli import main
from pasa_ref.reproduce import distributions, fa3, frontier, paper, plots, runner, tables
from pasa_ref.strategies import Shape

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
try:
    import matplotlib.figure  # noqa: F401  (the optional extra that draws the figures)

    HAS_MATPLOTLIB = True
except ImportError:
    HAS_MATPLOTLIB = False


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(main, ["reproduce", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _columns(row_type: type) -> list[str]:
    return [f.name for f in dataclasses.fields(row_type)]


def _check_figures(markdown: str, out: Path, names: list[str]) -> None:
    if not HAS_MATPLOTLIB:
        assert "Figures not drawn" in markdown and "pasa-ref[plots]" in markdown
        return
    for name in names:
        png = out / "img" / name
        assert png.read_bytes()[:8] == PNG_SIGNATURE, png
        assert f"](img/{name})" in markdown


def _table_lines(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


@pytest.fixture(scope="module")
def paper_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("paper")
    _invoke("paper", "--quick", "--out", str(out))
    return out


def test_paper_quick_csv(paper_out: Path) -> None:
    columns, rows = _csv(paper_out / "paper.csv")
    assert columns == _columns(paper.Row)
    assert len(rows) == paper.Paper(paper.config(quick=True)).count()
    overflowed = [r for r in rows if int(r["nonfinite"]) > 0]
    finite = [r for r in rows if int(r["nonfinite"]) == 0]
    assert overflowed and finite  # naive fp16-full overflows at mean_val 30; fp16-mixed does not
    assert all(r["rmse"] == "" and r["rmse_over_rms_v"] == "" for r in overflowed)
    assert all(float(r["rmse"]) >= 0 and float(r["rmse_over_rms_v"]) >= 0 for r in finite)
    assert {(r["kernel"], r["profile"]) for r in overflowed} >= {("naive", "fp16-full")}
    assert not [r for r in overflowed if r["kernel"] == "pasa"]


def test_paper_quick_markdown_and_figures(paper_out: Path) -> None:
    text = (paper_out / "paper.md").read_text()
    assert "`pasa reproduce paper --out" in text and "status: complete" in text
    lines = _table_lines(text)
    assert "| kernel / profile |" in lines[0] and lines[1].startswith("|:---|---:")
    assert any("NaN/inf (100%)" in line for line in lines)
    assert "## uniform: RMSE / RMS(V)" in text and "## hybrid: RMSE" in text
    assert "| pasa-authors fp16-full |" in text and "pasa-authors runs PASA as the authors'" in text
    kernels = paper.KERNELS + paper.AUTHORS_KERNELS
    names = [f"paper-{k}-{p}.png" for k in kernels for p in paper.PROFILES]
    _check_figures(text, paper_out, names + ["paper-uniform.png", "paper-hybrid.png"])


def test_fa3_quick(tmp_path: Path) -> None:
    _invoke("fa3", "--quick", "--out", str(tmp_path))
    columns, rows = _csv(tmp_path / "fa3.csv")
    assert columns == _columns(fa3.Row)
    assert len(rows) == len(fa3.SETTINGS)
    published = {(r["kernel"], r["profile"]): r for r in rows if r["published_rmse"]}
    assert float(published["naive", "fp16-full"]["published_rmse"]) == 3.2e-4
    assert float(published["flash", "fp16-mixed"]["published_rmse"]) == 1.9e-4
    for r in published.values():
        assert float(r["ratio"]) == pytest.approx(float(r["rmse"]) / float(r["published_rmse"]))
        assert float(r["ratio_unrounded"]) == pytest.approx(
            float(r["rmse_unrounded"]) / float(r["published_rmse"])
        )
    text = (tmp_path / "fa3.md").read_text()
    assert "| baseline fp16 | 3.2e-04 | naive fp16-full |" in text
    assert "| FlashAttention-2 fp16 | 1.9e-04 | flash fp16-mixed |" in text
    assert "S1=S2 in {256}, D=128" in text
    assert "## RMSE against exact attention of the unrounded inputs" in text


def test_frontier_quick(tmp_path: Path) -> None:
    _invoke("frontier", "--quick", "--out", str(tmp_path))
    columns, rows = _csv(tmp_path / "frontier.csv")
    assert columns == _columns(frontier.Row)
    assert len(rows) == frontier.Frontier(frontier.config(quick=True)).count()
    assert {r["sweep"] for r in rows} == {"bias", "length"}
    text = (tmp_path / "frontier.md").read_text()
    naive = [line for line in _table_lines(text) if line.startswith("| naive fp16-full |")]
    assert naive[0] == "| naive fp16-full | 30 | 30 |"  # D mean^2 = 115200 > 65504 at 30
    mixed = [line for line in _table_lines(text) if line.startswith("| naive fp16-mixed |")]
    assert mixed[0] == "| naive fp16-mixed | none | none |"
    names = [f"frontier-{s}-{d}.png" for s in frontier.SWEEPS for d in distributions.DISTRIBUTIONS]
    _check_figures(text, tmp_path, names)


def test_bad_options_name_the_option(tmp_path: Path) -> None:
    runner_ = CliRunner()
    result = runner_.invoke(main, ["reproduce", "paper", "--quick", "--seed", "-1"])
    assert result.exit_code == 2 and "'--seed'" in result.output and "x>=0" in result.output
    result = runner_.invoke(main, ["reproduce", "fa3", "--quick", "--jobs", "0"])
    assert result.exit_code == 2 and "'--jobs'" in result.output
    a_file = tmp_path / "file"
    a_file.write_text("")
    result = runner_.invoke(main, ["reproduce", "frontier", "--quick", "--out", str(a_file)])
    assert result.exit_code == 2 and "'--out'" in result.output and "is a file" in result.output


# distributions ------------------------------------------------------------------------------

SMALL = Shape(1, 2, 1, 40, 50, 16)


def test_draws_are_deterministic_and_depend_on_the_point() -> None:
    a = distributions.qkv("uniform", SMALL, 10.0, 5.0, seed=3)
    b = distributions.qkv("uniform", SMALL, 10.0, 5.0, seed=3)
    c = distributions.qkv("uniform", SMALL, 10.0, 5.0, seed=4)
    d = distributions.qkv("uniform", SMALL, 20.0, 5.0, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0] + 10.0, d[0])
    assert [x.shape for x in a] == [SMALL.q, SMALL.k, SMALL.v]


def test_uniform_and_hybrid_laws() -> None:
    q, _, _ = distributions.qkv("uniform", Shape(1, 1, 1, 1000, 1, 64), 30.0, 0.5, seed=0)
    assert q.min() >= 29.5 and q.max() < 30.5 and abs(q.mean() - 30.0) < 0.01
    rng = np.random.default_rng(0)
    x = distributions.draw("hybrid", rng, (1_000_000,), 10.0, 100.0)
    outliers = np.abs(x - 10.0) > 6.0  # N(10, 1) alone passes 6 sigma about 2 in 10^9
    assert 0.0007 < outliers.mean() < 0.0013  # Bernoulli(0.001) times N(0, 100^2)
    assert abs(np.median(x) - 10.0) < 0.01


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: distributions.qkv("normal", SMALL, 0.0, 1.0, 0), "'distribution'"),
        (lambda: distributions.qkv("uniform", SMALL, 0.0, -1.0, 0), "'amplitude'"),
        (lambda: distributions.qkv("uniform", SMALL, 0.0, 1.0, -2), "'seed'"),
        (lambda: Shape(1, 3, 2, 4, 4, 8), "'heads_kv'"),
        (lambda: Shape(1, 1, 1, 0, 4, 8), "'seq_q'"),
    ],
)
def test_bad_arguments_are_named(call, argument: str) -> None:
    with pytest.raises(ValueError, match=argument):
        call()


# tables -------------------------------------------------------------------------------------


def test_cells_mark_nonfinite_outputs() -> None:
    assert tables.metric_cell(3.21e-4, 0.0) == "3.2e-04"
    assert tables.metric_cell(None, 1.0) == "NaN/inf (100%)"
    assert tables.metric_cell(None, 0.0004) == "NaN/inf (<0.1%)"
    assert tables.metric_cell(None, 0.99999) == "NaN/inf (>99.9%)"
    assert tables.metric_cell(None, 0.25) == "NaN/inf (25%)"


def test_markdown_table_checks_row_lengths() -> None:
    assert tables.markdown_table(["a", "b"], [["1", "2"]]).splitlines() == [
        "| a | b |",
        "|:---|---:|",
        "| 1 | 2 |",
    ]
    with pytest.raises(ValueError, match="expected 2 cells per row, got 1 in row 0"):
        tables.markdown_table(["a", "b"], [["1"]])


# runner -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    point: int
    kernel: str
    profile: str
    value: float | None


class _Toy:
    """A stand-in experiment: `points` points of two rows each; Ctrl-C at row `stop_at`."""

    name = "toy"
    title = "Toy"
    row_type = _Row

    def __init__(self, points: int, stop_at: int | None = None) -> None:
        self.n, self.stop_at = points, stop_at

    def count(self) -> int:
        return 2 * self.n

    def points(self) -> list[int]:
        return list(range(self.n))

    def point_rows(self, point: int) -> Iterator[_Row]:
        for i in range(2):
            if self.stop_at is not None and 2 * point + i == self.stop_at:
                raise KeyboardInterrupt
            yield _Row(point, "naive", "fp16-full", None if i else point / 2)

    def facts(self) -> list[tuple[str, str]]:
        return [("size", str(self.n))]

    def sections(self, rows) -> list[str]:
        return [f"{len(rows)} rows"]

    def plot(self, rows, directory: Path) -> list[Path]:
        plots._figure_class()
        return []


def test_interrupted_run_keeps_its_rows(tmp_path: Path) -> None:
    outcome = runner.run(_Toy(5, stop_at=3), tmp_path, command="toy")
    assert not outcome.complete and outcome.interrupted and len(outcome.rows) == 3
    _, rows = _csv(tmp_path / "toy.csv")
    assert [r["point"] for r in rows] == ["0", "0", "1"] and rows[1]["value"] == ""
    text = (tmp_path / "toy.md").read_text()
    assert "INTERRUPTED after 3 of 10 kernel runs" in text and "3 rows" in text


def test_interrupted_figures_keep_the_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self, rows, directory):
        raise KeyboardInterrupt

    monkeypatch.setattr(_Toy, "plot", interrupted)
    outcome = runner.run(_Toy(2), tmp_path, command="toy")
    assert outcome.complete and outcome.interrupted and len(outcome.rows) == 4
    text = (tmp_path / "toy.md").read_text()
    assert "status: complete" in text and "drawing them was interrupted" in text


def test_missing_matplotlib_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import now raises ImportError
    outcome = runner.run(_Toy(1), tmp_path, command="toy")
    assert outcome.complete and "pip install 'pasa-ref[plots]'" in outcome.plots_skipped
    assert "Figures not drawn" in (tmp_path / "toy.md").read_text()


def test_jobs_do_not_change_the_rows(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        frontier.config(quick=True),
        distributions=("uniform",),
        biases=(0.0, 30.0),
        amplitudes=(0.5,),
        seq_lens=(128,),
        length_mean_vals=(30.0,),
    )
    serial = runner.run(frontier.Frontier(cfg), tmp_path / "serial", command="-")
    parallel = runner.run(frontier.Frontier(cfg), tmp_path / "parallel", command="-", jobs=2)
    strip = [dataclasses.replace(r, seconds=0.0) for r in serial.rows]
    assert strip == [dataclasses.replace(r, seconds=0.0) for r in parallel.rows]
    with pytest.raises(ValueError, match="argument 'jobs': expected an integer >= 1, got 0"):
        runner.run(frontier.Frontier(cfg), tmp_path, command="-", jobs=0)


# benchmarks/run_all.py ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_all():
    name = "benchmarks_run_all"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


def test_run_all_reads_the_ratio_lines_of_the_benchmarks(run_all) -> None:
    output = (
        "time ratio pasa / float32 = 2.10   (target <= 3)\n"
        "pasa peak memory = 0.512 GiB   (target <= 2 GB)\n"
        "fast path, B=1, H=8, S=4096, D=128: 9.1 s; float64 numpy attention 0.4 s; "
        "ratio 22.75 (limit 20); |fast - float64| <= 1.0e-13\n"
        "level 1, fp16-full, bundled pasa kernel:    12.3 s for 40 cases, certified = True; "
        "time ratio 0.205 of 60 s (target <= 1)\n"
        "hunt: time-to-first-failure ratio targeted / untargeted = 0.42 (geometric mean over 6)\n"
    )
    ratios = run_all.parse_ratios(output)
    assert [(r.measure, r.value, r.limit, r.verdict) for r in ratios] == [
        ("time ratio pasa / float32", 2.10, 3.0, "ok"),
        ("fast path, B=1, H=8, S=4096, D=128: ratio", 22.75, 20.0, "OVER LIMIT"),
        ("level 1, fp16-full, bundled pasa kernel: time ratio", 0.205, 1.0, "ok"),
        ("hunt: time-to-first-failure ratio targeted / untargeted", 0.42, None, ""),
    ]


def test_run_all_reports_missing_and_failing_scripts(run_all, tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("print('speed ratio = 1.5 (target <= 2)')\n")
    (tmp_path / "bad.py").write_text("raise SystemExit('boom')\n")
    (tmp_path / "mute.py").write_text("print('done')\n")
    results = [
        run_all.run_benchmark(
            run_all.Benchmark(name, f"{name}.py"), quick=False, timeout=60, folder=tmp_path
        )
        for name in ("good", "bad", "mute", "absent")
    ]
    assert [r.status for r in results] == ["ran", "failed (exit 1)", "no ratio", "missing"]
    table = run_all.table(results)
    assert "| good | speed ratio | 1.50 | 2 | ok |" in table
    assert "| bad | boom |  |  | failed (exit 1) |" in table
    assert "| absent | absent.py not found |  |  | missing |" in table
