"""`pasa hunt`: search for inputs that make a kernel overflow or lose accuracy, shrink the first
one, keep it as a case file (spec specs/strategies-and-hunting.md, PASA-HUNT-1 .. 7).

This module only reports: the search is pasa_ref.hunt, which tells the observers below what
happens; CorpusWriter writes every finding at once, so Ctrl-C keeps everything found so far.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import click
from rich.console import Console

from pasa_ref import display, profiles, strategies
from pasa_ref.hunt import (
    DEFAULT_THRESHOLD,
    OBJECTIVES,
    CorpusWriter,
    Evaluation,
    Finding,
    HuntConfig,
    HuntError,
    HuntResult,
    Observer,
    hunt,
)


class _ProgressReport(Observer):
    """Progress over the budget (pasa_ref.display), noting the number of cases, the worst
    objective value and the shrinking; one printed line per finding stage."""

    def __init__(self, console: Console, progress: display.Progress, writer: CorpusWriter):
        self.console = console
        self.progress = progress
        self.writer = writer
        self.status = ""

    def on_example(self, result: HuntResult, evaluation: Evaluation) -> None:
        best = result.best.evaluation.value if result.best else math.nan
        self.progress.update(
            min(result.config.budget, result.elapsed),
            note=f"{result.examples} cases, worst {best:.4g}" + self.status,
        )

    def on_finding(self, finding: Finding) -> None:
        if finding.status == "shrinking":
            self.status = f", shrinking: {_size(finding)}"
            return
        self.console.print(
            f"[{finding.elapsed:6.1f} s] {finding.kind} {finding.status}: "
            f"{finding.evaluation.verdict}; {finding.case.label}; {_size(finding)} -> "
            f"{self.writer.written}", markup=False, highlight=False, soft_wrap=True,
        )


def _size(finding: Finding) -> str:
    shapes = finding.case.shapes()
    return "q {} k {} v {}".format(*("x".join(map(str, shapes[n])) for n in "qkv"))


@click.command("hunt")
@click.option("--kernel", default="pasa", show_default=True,
              help="naive, flash, pasa, or MODULE:FUNCTION (called as fn(q, k, v, *, scale, "
                   "causal, mask); profile= too when it takes it).")
@click.option("--profile", default="fp16-full", show_default=True,
              type=click.Choice(profiles.names()), help="Precision profile (specs/profiles.toml).")
@click.option("--objective", default="nonfinite", show_default=True, type=click.Choice(OBJECTIVES),
              help="nonfinite: NaN/inf output; error: max|O - O*| / max|V| >= --threshold; "
                   "envelope: non-finite output inside pasa's safe envelope.")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), default=120.0,
              show_default=True, help="Seconds of wall time for searching and shrinking.")
@click.option("--max-seq", type=click.IntRange(min=1), default=256, show_default=True,
              help="Largest S1 and S2.")
@click.option("--max-dim", type=click.IntRange(min=1), default=128, show_default=True,
              help="Largest head size D (and Dv).")
@click.option("--max-pairs", type=click.IntRange(min=1), default=strategies.DEFAULT_MAX_PAIRS,
              show_default=True, help="Largest B * Hq * S1 * S2 of one case (its cost).")
@click.option("--corpus", type=click.Path(file_okay=False, path_type=Path),
              default=Path("pasa-corpus"), show_default=True,
              help="Folder for the case files (.npz + .json).")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the search (default: random, printed).")
@click.option("--threshold", type=click.FloatRange(min=0, min_open=True),
              default=DEFAULT_THRESHOLD, show_default=True,
              help="error objective: fail at max|O - O*| / max|V| >= this (inf: only non-finite).")
@click.option("--distribution", "distributions", multiple=True,
              type=click.Choice(list(strategies.DISTRIBUTIONS)),
              help="Draw values only from this distribution; repeat for several. Default: all.")
@click.option("--mask", "masks", multiple=True, type=click.Choice(strategies.MASKS),
              help="Use only this kind of mask; repeat for several. Default: all.")
@click.option("--inside-envelope", is_flag=True,
              help="Judge only cases inside pasa's safe envelope (PASA-ENV-1); reject others.")
@click.option("--no-target", "untargeted", is_flag=True,
              help="Plain generation: no hypothesis.target (for comparisons).")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def command(kernel: str, profile: str, objective: str, budget: float, max_seq: int, max_dim: int,
            max_pairs: int, corpus: Path, seed: int | None, threshold: float,
            distributions: tuple[str, ...], masks: tuple[str, ...], inside_envelope: bool,
            untargeted: bool, quiet: bool) -> None:
    """Search for a failing case, shrink it, write it to the corpus (exit 1 if one was found)."""
    try:
        config = HuntConfig(
            kernel=kernel, profile=profile, objective=objective, budget=budget, max_seq=max_seq,
            max_dim=max_dim, max_pairs=max_pairs, seed=seed, threshold=threshold,
            distributions=distributions or None, masks=masks or None,
            inside_envelope=inside_envelope, targeting=not untargeted,
        ).checked()
        console = display.console()
        console.print(
            f"hunting {objective} of {kernel} in {profile}: budget {budget:g} s, max-seq "
            f"{max_seq}, seed {config.seed}, corpus {corpus}"
            + (", only inside pasa's envelope" if inside_envelope else ""),
            markup=False, highlight=False, soft_wrap=True,
        )
        writer = CorpusWriter(corpus, config)
        with display.progress("hunt", budget, unit="s", quiet=quiet) as progress:
            result = hunt(config, [writer, _ProgressReport(console, progress, writer)])
    except HuntError as error:
        raise click.UsageError(str(error)) from None
    _summarise(console, result, writer)
    if any(f.kind == "failure" for f in result.findings):
        raise click.exceptions.Exit(1)


def _summarise(console: Console, result: HuntResult, writer: CorpusWriter) -> None:
    first = "-" if result.first_failure is None else f"{result.first_failure:.1f} s"
    worst = "-" if result.best is None else result.best.evaluation.verdict
    state = " (interrupted)" if result.interrupted else ""
    console.print(
        f"{result.examples} cases in {result.elapsed:.1f} s{state}; first failure after {first}; "
        f"worst seen: {worst}", markup=False, highlight=False, soft_wrap=True,
    )
    for finding in result.findings:
        console.print(
            f"{finding.kind} ({finding.status}): {finding.evaluation.verdict}\n"
            f"  case: {finding.case.label}; {_size(finding)}"
            + ("; causal" if finding.case.causal else ""),
            markup=False, highlight=False, soft_wrap=True,
        )
    if writer.written is not None:
        console.print(f"replay: pasa replay {shlex.quote(str(writer.written))}", markup=False,
                      highlight=False, soft_wrap=True)
    elif not result.findings:
        console.print("nothing failed within the budget", markup=False, highlight=False,
                      soft_wrap=True)
