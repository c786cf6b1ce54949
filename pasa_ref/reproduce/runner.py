"""The run loop shared by every `pasa reproduce` experiment.

An experiment is a list of independent points (one input draw each) and a pure function from a
point to its result rows (one per kernel call). The loop computes the points in order, in this
process or in `jobs` worker processes, appends each row to OUT/<name>.csv as it comes, reports
it to a progress callback, and stops cleanly on Ctrl-C (KeyboardInterrupt), keeping what was
found. Then OUT/<name>.md is written from the rows found (tables, with the command, the wall
time and whether the run completed), and, for complete runs, the figures under OUT/img/.

Workers are spawned with one BLAS thread each (OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = 1 in
their environment), so that `jobs` workers use about `jobs` cores; the rows and their order do
not depend on `jobs`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from pasa_ref.reproduce import tables
from pasa_ref.reproduce.plots import PlotsUnavailable

__all__ = ["Experiment", "Outcome", "run"]


class Experiment(Protocol):
    """What `run` needs from an experiment (paper, fa3, frontier)."""

    name: str  # file stem of the outputs
    title: str
    row_type: type  # a dataclass: the CSV columns

    def count(self) -> int:
        """How many rows a complete run yields."""

    def points(self) -> Sequence[Any]:
        """The independent units of work (picklable), in run order."""

    def point_rows(self, point: Any) -> Iterable[Any]:
        """The result rows of one point, one kernel call each, as they are computed."""

    def facts(self) -> list[tuple[str, str]]:
        """What was run (sizes, seeds, settings), for the document's header."""

    def sections(self, rows: Sequence[Any]) -> list[str]:
        """Markdown sections (tables) from the rows found; rows may be a prefix of a run."""

    def plot(self, rows: Sequence[Any], directory: Path) -> list[Path]:
        """Draw the figures of a complete run into `directory`; the paths written."""


@dataclass
class Outcome:
    """What a run left: its rows, wall time, whether every row was computed (complete),
    whether Ctrl-C stopped anything (interrupted: the rows or the figures), the files written
    and why figures are missing (None when they were drawn)."""

    rows: list[Any]
    seconds: float
    complete: bool
    interrupted: bool
    files: list[Path] = field(default_factory=list)
    plots_skipped: str | None = None


def run(
    experiment: Experiment,
    out: Path,
    *,
    command: str,
    jobs: int = 1,
    on_row: Callable[[Any], None] = lambda row: None,
) -> Outcome:
    """Run `experiment`, writing OUT/<name>.csv row by row, then OUT/<name>.md and figures.
    `command` is the command line that regenerates the outputs (shown in the document);
    jobs >= 1 is the number of worker processes (1: run in this process)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"argument 'jobs': expected an integer >= 1, got {jobs!r}")
    csv_path = out / f"{experiment.name}.csv"
    rows: list[Any] = []
    start = time.perf_counter()
    complete = True
    with tables.CsvLog(csv_path, experiment.row_type) as log:
        try:
            for row in _rows(experiment, jobs):
                log.write(row)
                rows.append(row)
                on_row(row)
        except KeyboardInterrupt:
            complete = False
    outcome = Outcome(
        rows=rows,
        seconds=time.perf_counter() - start,
        complete=complete,
        interrupted=not complete,
    )
    outcome.files.append(csv_path)
    if complete:
        try:
            outcome.files += experiment.plot(rows, out / "img")
        except PlotsUnavailable as exc:
            outcome.plots_skipped = str(exc)
        except KeyboardInterrupt:
            outcome.interrupted = True
            outcome.plots_skipped = "drawing them was interrupted (Ctrl-C)"
    else:
        outcome.plots_skipped = "the run was interrupted; figures are drawn from complete runs"
    md_path = out / f"{experiment.name}.md"
    md_path.write_text(_document(experiment, outcome, command, md_path.parent), encoding="utf-8")
    outcome.files.append(md_path)
    return outcome


def _rows(experiment: Experiment, jobs: int) -> Iterator[Any]:
    points = experiment.points()
    if jobs == 1:
        for point in points:
            yield from experiment.point_rows(point)
        return
    with _single_threaded_blas():
        pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_ignore_sigint)
    with pool:  # leaving the block (done, error or Ctrl-C) terminates the workers
        for rows in pool.imap(partial(_listed, experiment), points):
            yield from rows


def _listed(experiment: Experiment, point: Any) -> list[Any]:
    """The rows of one point as a list (what a worker sends back)."""
    return list(experiment.point_rows(point))


class _single_threaded_blas:
    """Set OPENBLAS_NUM_THREADS and OMP_NUM_THREADS to 1 while worker processes start (they
    inherit the environment); restore them afterwards."""

    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")

    def __enter__(self) -> None:
        self.saved = {name: os.environ.get(name) for name in self.names}
        os.environ.update({name: "1" for name in self.names})

    def __exit__(self, *exc: object) -> None:
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which terminates them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _document(experiment: Experiment, outcome: Outcome, command: str, where: Path) -> str:
    status = (
        "complete"
        if outcome.complete
        else f"INTERRUPTED after {len(outcome.rows)} of {experiment.count()} kernel runs"
    )
    facts = [
        ("command", f"`{command}`"),
        ("status", status),
        ("wall time", f"{outcome.seconds:.1f} s"),
        *experiment.facts(),
    ]
    sections = experiment.sections(outcome.rows)
    figures = [p for p in outcome.files if p.suffix == ".png"]
    if figures:
        sections.append(
            "## Figures\n\n"
            + "\n\n".join(f"![{p.stem}]({p.relative_to(where).as_posix()})" for p in figures)
        )
    if outcome.plots_skipped:
        sections.append(f"Figures not drawn: {outcome.plots_skipped}.")
    return tables.document(experiment.title, facts, sections)
