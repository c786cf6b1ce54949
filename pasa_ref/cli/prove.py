"""`pasa prove`: check the spec's theorems with sympy (proofs/), print a table, write a report."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from proofs import registry


@click.command("prove")
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the Markdown report (statements, derivation steps, results) to this path.",
)
@click.option(
    "--theorem",
    "-t",
    "theorem_ids",
    multiple=True,
    metavar="ID",
    help="Prove only this theorem (T1..T8); repeat for several. Default: all.",
)
def command(report_path: Path | None, theorem_ids: tuple[str, ...]) -> None:
    """Prove that PASA's shifting and recovery are exactly attention (exit 1 if a proof fails)."""
    try:
        outcomes = registry.run(theorem_ids or None)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--theorem") from exc

    table = Table(title="PASA proofs (sympy)")
    for column, justify in (
        ("Theorem", "left"),
        ("Clauses", "left"),
        ("Result", "left"),
        ("Seconds", "right"),
    ):
        table.add_column(column, justify=justify)
    for outcome in outcomes:
        result = "[green]proved[/]" if outcome.passed else "[bold red]FAILED[/]"
        table.add_row(
            f"{outcome.theorem} {outcome.title}",
            ", ".join(outcome.clauses),
            result,
            f"{outcome.seconds:.2f}",
        )
    console = Console()
    console.print(table)

    for outcome in outcomes:
        if outcome.passed:
            continue
        if outcome.error is not None:
            console.print(f"{outcome.theorem}: {outcome.error}", markup=False)
        for step in outcome.proof.steps if outcome.proof else ():
            if not step.holds:
                console.print(f"{outcome.theorem} fails: {step.description}", markup=False)
                console.print(f"    residual / found: {step.result}", markup=False)

    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(registry.markdown(outcomes), encoding="utf-8")
        console.print(f"report written to {report_path}", markup=False)

    if not all(outcome.passed for outcome in outcomes):
        raise click.exceptions.Exit(1)
