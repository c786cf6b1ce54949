"""`pasa replay FILE`: rerun a kernel on a case file, compare it with the oracle, print the
verdict and the metrics (spec specs/strategies-and-hunting.md, PASA-HUNT-7).

Kernel, profile, objective and threshold default to what the case's .json recorded (pasa hunt
writes them); options override them. The exit status is 1 when the case fails its objective
now, 0 when it passes: a fixed kernel turns a hunted case into a passing regression.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from pasa_ref import envelope, metrics, oracle, profiles
from pasa_ref.cases import Case, CaseFileError
from pasa_ref.hunt import OBJECTIVES, HuntError, evaluate, load_kernel

_SHOWN_METRICS = (
    "max_abs_error", "max_rel_error", "max_ulp_error", "rmse", "rmse_over_rms_v",
    "cosine_similarity", "pass_ratio_0.01", "pass_ratio_0.001", "reference_bound_max_ulps",
)


@click.command("replay")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kernel", default=None,
              help="naive, flash, pasa or MODULE:FUNCTION. Default: the recorded kernel.")
@click.option("--profile", default=None, type=click.Choice(profiles.names()),
              help="Precision profile. Default: the recorded profile.")
@click.option("--objective", default=None, type=click.Choice(OBJECTIVES),
              help="Objective to judge by. Default: the recorded one, else error.")
@click.option("--threshold", default=None, type=click.FloatRange(min=0, min_open=True),
              help="error objective threshold. Default: the recorded one, else 0.01.")
@click.option("--explain", is_flag=True, help="Print every check of pasa's safe envelope.")
def command(file: Path, kernel: str | None, profile: str | None, objective: str | None,
            threshold: float | None, explain: bool) -> None:
    """Rerun a kernel on a case file and compare it with the oracle (exit 1 if it fails)."""
    try:
        case = Case.load(file)
    except CaseFileError as error:
        raise click.BadParameter(str(error), param_hint="FILE") from None
    meta = case.metadata
    kernel = kernel or meta.get("kernel")
    profile = profile or meta.get("profile")
    if kernel is None or profile is None:
        missing = "--kernel" if kernel is None else "--profile"
        raise click.UsageError(f"{missing}: the case records none; expected it as an option")
    objective = objective or meta.get("objective") or "error"
    recorded_threshold = meta.get("threshold")
    threshold = threshold or (recorded_threshold if recorded_threshold is not None else 0.01)
    try:
        kernel_under_test = load_kernel(kernel)
        evaluation = evaluate(case, kernel_under_test, profile, objective, threshold)
        out = kernel_under_test(case, profile) if evaluation.crash is None else None
    except HuntError as error:
        raise click.UsageError(str(error)) from None

    console = Console()

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    shapes = case.shapes()
    say(f"case {file}: {case.label or '(no label)'}")
    say("  " + ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in shapes.items())
        + f", dtype {case.dtype}, causal {case.causal}, scale "
        + ("1/sqrt(D)" if case.scale is None else f"{case.scale:g}"))
    say(f"{kernel} in {profile}, objective {objective}: {evaluation.verdict}")
    if "failed" in meta:
        same = bool(meta["failed"]) == evaluation.failed
        say(f"recorded: {meta.get('verdict', '?')} -> "
            + ("same verdict" if same else "VERDICT CHANGED"))
    if out is not None:
        reference = oracle.attention(case.q, case.k, case.v, **case.call_kwargs())
        summary = metrics.summary(out, reference.output, v=case.v, reference_bound=reference.bound)
        console.print(_metrics_table(summary, reference.method))
    report = envelope.checks(case, profile, "pasa")
    if explain:
        say(envelope.explain(case, profile, "pasa"))
    else:
        binding = report.binding
        say(f"pasa's safe envelope in {profile}: {'inside' if report.inside else 'outside'}, "
            f"pressure {report.pressure:.3g} ({binding.clause} {binding.quantity})")
    if evaluation.failed:
        raise click.exceptions.Exit(1)


def _metrics_table(summary: dict[str, object], method: str) -> Table:
    table = Table(title=f"against the oracle ({method})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    nonfinite = summary["nonfinite"]
    table.add_row("non-finite elements", str(nonfinite["total"]))  # type: ignore[index]
    for name in _SHOWN_METRICS:
        value = summary.get(name)
        table.add_row(name, "-" if value is None else f"{value:.6g}")
    return table
