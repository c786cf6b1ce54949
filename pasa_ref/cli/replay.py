"""`pasa replay FILE`: rerun a kernel on a case file, compare it with the oracle, print the
verdict and the metrics (spec specs/strategies-and-hunting.md, PASA-HUNT-7).

The kernel is the one named by --kernel, else the bundled `pasa`: never one named by the case
file (a file from someone else must not choose code to run). Profile, objective and threshold
default to what the case's .json recorded (pasa hunt writes them; they are data, checked
here); options override them. The exit status is 1 when the case fails its objective now, 0
when it passes (a fixed kernel turns a hunted case into a passing regression), 2 for a usage
error or a malformed case file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from pasa_ref import envelope, metrics, oracle, profiles
from pasa_ref.cases import Case, CaseFileError
from pasa_ref.certify.backend import importable_from_cwd
from pasa_ref.hunt import OBJECTIVES, HuntError, KernelFailed, evaluate, load_kernel

DEFAULT_KERNEL = "pasa"

_SHOWN_METRICS = (
    "max_abs_error", "max_rel_error", "max_ulp_error", "rmse", "rmse_over_rms_v",
    "cosine_similarity", "pass_ratio_0.01", "pass_ratio_0.001", "reference_bound_max_ulps",
)


@click.command("replay")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kernel", default=DEFAULT_KERNEL, show_default=True,
              help="naive, flash, pasa, MODULE:FUNCTION or an adapter name. Never taken from "
                   "the case file.")
@click.option("--profile", default=None, type=click.Choice(profiles.names()),
              help="Precision profile. Default: the recorded profile.")
@click.option("--objective", default=None, type=click.Choice(OBJECTIVES),
              help="Objective to judge by. Default: the recorded one, else error.")
@click.option("--threshold", default=None, type=click.FloatRange(min=0, min_open=True),
              help="error objective threshold. Default: the recorded one, else 0.01.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds the kernel call may take (default: specs/conformance.toml).")
@click.option("--isolate", is_flag=True, help="Run the kernel in a child process.")
@click.option("--explain", is_flag=True, help="Print every check of pasa's safe envelope.")
def command(file: Path, kernel: str, profile: str | None, objective: str | None,
            threshold: float | None, timeout: float | None, isolate: bool,
            explain: bool) -> None:
    """Rerun a kernel on a case file and compare it with the oracle (exit 1 if it fails)."""
    importable_from_cwd()
    try:
        case = Case.load(file)
    except CaseFileError as error:
        raise click.BadParameter(str(error), param_hint="FILE") from None
    meta = case.metadata
    profile = profile or _recorded(meta, "profile", lambda x: x in profiles.names(),
                                   f"one of {profiles.names()}")
    if profile is None:
        raise click.UsageError("--profile: the case records none; expected it as an option")
    objective = objective or _recorded(meta, "objective", lambda x: x in OBJECTIVES,
                                       f"one of {list(OBJECTIVES)}") or "error"
    threshold = threshold or _recorded(
        meta, "threshold", lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
        and x > 0, "a number > 0") or 0.01
    try:
        with load_kernel(kernel, timeout=timeout, isolate=isolate) as kernel_under_test:
            evaluation = evaluate(case, kernel_under_test, profile, objective, threshold)
            out = kernel_under_test(case, profile) if evaluation.crash is None else None
    except HuntError as error:
        raise click.UsageError(str(error)) from None
    except KernelFailed:
        out = None
    console = Console()

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    shapes = case.shapes()
    say(f"case {file}: {case.label or '(no label)'}")
    say("  " + ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in shapes.items())
        + f", dtype {case.dtype}, causal {case.causal}, scale "
        + ("1/sqrt(D)" if case.scale is None else f"{case.scale:g}"))
    recorded_kernel = meta.get("kernel")
    if isinstance(recorded_kernel, str) and recorded_kernel != kernel:
        say(f"the case records kernel {recorded_kernel[:200]!r}; running {kernel!r} (a case "
            "file never chooses the kernel: name it with --kernel)")
    say(f"{kernel} in {profile}, objective {objective}: {evaluation.verdict}")
    if isinstance(meta.get("failed"), bool) and recorded_kernel == kernel:
        same = meta["failed"] == evaluation.failed
        say(f"recorded: {str(meta.get('verdict', '?'))[:500]} -> "
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


def _recorded(meta: dict[str, Any], key: str, valid: Any, expected: str) -> Any:
    """meta[key] when the case records it (None when not); a recorded value that is not
    `valid` is a usage error naming the key."""
    value = meta.get(key)
    if value is None:
        return None
    if not valid(value):
        raise click.UsageError(f"case metadata {key!r}: expected {expected}, got {str(value)[:80]!r}")
    return value
