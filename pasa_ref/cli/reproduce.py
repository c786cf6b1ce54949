"""`pasa reproduce {paper,fa3,frontier}`: rerun a published benchmark on the reference kernels.

Every subcommand writes OUT/<name>.csv row by row, then OUT/<name>.md (tables, the command and
its wall time) and figures under OUT/img/ (matplotlib, an optional extra). The progress of the
kernel runs is shown on stderr (pasa_ref.display: a bar on a terminal, plain lines otherwise,
nothing with -q); Ctrl-C stops the run and keeps the rows found so far (exit status 130).
--quick runs a small corner of each benchmark in seconds (what the test suite runs).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pasa_ref import display
from pasa_ref.reproduce import fa3, frontier, paper, runner

EXIT_INTERRUPTED = 130


@click.group("reproduce")
def command() -> None:
    """Rerun published attention benchmarks (PASA paper, FlashAttention-3) and the overflow
    frontier on the reference kernels; write CSV, Markdown and PNG results."""


def _shared_options(fn: Callable[..., None]) -> Callable[..., None]:
    fn = click.option("--quiet", "-q", is_flag=True, help="No progress display.")(fn)
    fn = click.option(
        "--jobs",
        "-j",
        type=click.IntRange(min=1),
        default=1,
        show_default=True,
        help="Worker processes (one BLAS thread each); results do not depend on it.",
    )(fn)
    fn = click.option(
        "--seed",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help="Seed of the input draws (each grid point's draw depends only on it and the point).",
    )(fn)
    fn = click.option(
        "--quick",
        is_flag=True,
        help="A small corner of the benchmark that runs in seconds (what the tests run).",
    )(fn)
    return click.option(
        "--out",
        type=click.Path(file_okay=False, dir_okay=True, writable=True, path_type=Path),
        default=Path("reproduce-results"),
        show_default=True,
        help="Directory for <name>.csv, <name>.md and img/*.png (created if missing).",
    )(fn)


@command.command("paper")
@_shared_options
def paper_command(out: Path, quick: bool, seed: int, jobs: int, quiet: bool) -> None:
    """The PASA paper's random benchmark: uniform and hybrid inputs, mean_val x Am grid,
    naive/flash/pasa (the suite's default) and pasa-authors (beta 0.984497, the authors'
    padding) in fp16-full, fp16-mixed, bf16-in-fp16; RMSE and RMSE/RMS(V)."""
    _execute(paper.Paper(paper.config(quick, seed)), out, quick, seed, jobs, quiet)


@command.command("fa3")
@_shared_options
def fa3_command(out: Path, quick: bool, seed: int, jobs: int, quiet: bool) -> None:
    """FlashAttention-3's Table 3 fp16 rows beside our naive and flash kernels."""
    _execute(fa3.Fa3(fa3.config(quick, seed)), out, quick, seed, jobs, quiet)


@command.command("frontier")
@_shared_options
def frontier_command(out: Path, quick: bool, seed: int, jobs: int, quiet: bool) -> None:
    """Where each kernel and profile first overflows: bias x amplitude, and key length
    512..16384, on the paper's distributions."""
    _execute(frontier.Frontier(frontier.config(quick, seed)), out, quick, seed, jobs, quiet)


def _execute(
    experiment: runner.Experiment, out: Path, quick: bool, seed: int, jobs: int, quiet: bool
) -> None:
    command_line = " ".join(
        ["pasa reproduce", experiment.name, "--out", str(out)]
        + (["--quick"] if quick else [])
        + ([f"--seed {seed}"] if seed else [])
        + ([f"--jobs {jobs}"] if jobs > 1 else [])
    )
    console = display.console(stderr=True)
    with display.progress(
        experiment.name, experiment.count(), unit="kernel runs", quiet=quiet
    ) as progress:

        def advance(row: Any) -> None:
            progress.advance(note=_describe(row))

        outcome = runner.run(experiment, out, command=command_line, jobs=jobs, on_row=advance)
    status = "complete" if outcome.complete else "interrupted: the rows found are kept"
    console.print(
        f"{experiment.name}: {status}, {len(outcome.rows)} kernel runs in {outcome.seconds:.1f} s"
        f" ({jobs} job{'s' if jobs > 1 else ''})",
        markup=False,
    )
    for path in outcome.files:
        console.print(f"  wrote {path}", markup=False)
    if outcome.plots_skipped:
        console.print(f"  figures not drawn: {outcome.plots_skipped}", markup=False)
    if outcome.interrupted:
        raise click.exceptions.Exit(EXIT_INTERRUPTED)


def _describe(row: Any) -> str:
    """The last kernel run, for the progress line: its kernel, profile and grid point."""
    point = [
        f"{name}={getattr(row, name):g}"
        for name in ("mean_val", "amplitude", "seq_len", "seq_k")
        if hasattr(row, name)
    ]
    where = [row.distribution] if hasattr(row, "distribution") else []
    return " ".join([row.kernel, row.profile, *where, *point])
