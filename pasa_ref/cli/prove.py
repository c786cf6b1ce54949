"""`pasa prove`: check the spec's theorems with sympy (proofs/), print a table, write a report.
Each theorem's result is shown as its proof ends (pasa_ref.display; nothing with -q)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from pasa_ref import display
from proofs import registry


def _result(outcome: registry.Outcome) -> Text:
    return Text("proved", "green") if outcome.passed else Text("FAILED", "bold red")


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
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def command(report_path: Path | None, theorem_ids: tuple[str, ...], quiet: bool) -> None:
    """Prove that PASA's shifting and recovery are exactly attention (exit 1 if a proof fails)."""
    ids = theorem_ids or None
    try:
        selected = registry.select(ids)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--theorem") from exc
    with display.progress("prove", len(selected), unit="theorems", quiet=quiet, every=1) as shown:

        def proved(outcome: registry.Outcome) -> None:
            shown.advance(note=f"{outcome.theorem} {_result(outcome).plain} ({outcome.title})")

        outcomes = registry.run(ids, on_outcome=proved)

    console = display.console()
    display.print_table(
        console,
        Text("PASA proofs (sympy)", "bold"),
        ("Theorem", "Clauses", "Result", "Seconds"),
        [
            (
                f"{outcome.theorem} {outcome.title}",
                ", ".join(outcome.clauses),
                _result(outcome),
                f"{outcome.seconds:.2f}",
            )
            for outcome in outcomes
        ],
        right=("Seconds",),
        wrap=("Theorem", "Clauses"),
    )

    for outcome in outcomes:
        if outcome.passed:
            continue
        if outcome.error is not None:
            display.line(console, f"{outcome.theorem}: {outcome.error}")
        for step in outcome.proof.steps if outcome.proof else ():
            if not step.holds:
                display.line(console, f"{outcome.theorem} fails: {step.description}")
                display.line(console, f"    residual / found: {step.result}")

    if report_path is not None:
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(registry.markdown(outcomes), encoding="utf-8")
        display.line(console, f"report written to {report_path}")

    if not all(outcome.passed for outcome in outcomes):
        raise click.exceptions.Exit(1)
