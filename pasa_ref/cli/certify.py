"""`pasa certify`: certify a backend against the PASA spec and write a certificate
(specs/certification.md). With no backend named, $PASA_BACKEND or the bundled reference
`pasa` kernel is certified at the default level and profile of specs/conformance.toml.
Exit status: 0 certified, 1 not certified, 2 usage error."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from rich.console import Console

from pasa_ref import profiles
from pasa_ref.cases import CaseFileError
from pasa_ref.certify import thresholds
from pasa_ref.certify.backend import BackendError, load
from pasa_ref.certify.certificate import summary_table
from pasa_ref.certify.envelope_report import envelope_report
from pasa_ref.certify.runner import backend_name, certify

#: extra regression-corpus directories, shared with `pasa gen`
corpus_directories = click.option(
    "--corpus",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Add the case files of this directory to the regression corpus.",
)

#: the certificate directory option, shared with `pasa verify`
certificate_out = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("pasa-certificate"),
    show_default=True,
    help="Directory of certificate.json, certificate.md and failures/.",
)


def importable_from_cwd() -> None:
    """Put the current directory first on sys.path, as `python -m` does (PASA-CERT-2)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def console() -> Console:
    """The terminal, or 120 columns when the output is a file or a pipe."""
    terminal = Console()
    return terminal if terminal.is_terminal else Console(width=120)


def report(outcome, console: Console) -> None:
    """Print the summary table, the failures' reproduction commands and where the files are."""
    doc = outcome.document
    console.print(summary_table(doc))
    for clause in doc["clauses"]:
        worst = clause["worst"]
        if clause["verdict"] == "FAIL" and worst is not None:
            console.print(
                f"{clause['id']} worst case {worst['case']}: {worst['message']}", markup=False
            )
            console.print(f"  reproduce: {worst.get('reproduce', '')}", markup=False)
    console.print(
        f"certificate: {outcome.out / 'certificate.json'}, {outcome.out / 'certificate.md'}",
        markup=False,
    )


@click.command("certify")
@click.argument("backend", required=False, metavar="[BACKEND]")
@click.option(
    "--profile",
    type=click.Choice(profiles.names()),
    default=None,
    help="Precision profile (default: specs/conformance.toml, fp16-full).",
)
@click.option(
    "--level",
    type=click.IntRange(1, 3),
    default=None,
    help="1 fixed corpus, 2 + adversarial and metamorphic, 3 + long and hunting.",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of levels 2 and 3.")
@certificate_out
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Seconds one backend call may take (default: specs/conformance.toml).",
)
@click.option(
    "--isolate",
    is_flag=True,
    help="Run the backend in a child process: a crash or hang fails a clause only.",
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certify on this case file only (repeatable): reproduces a failure.",
)
@corpus_directories
@click.option("--fail-fast", "-x", is_flag=True, help="Stop after the first failing case.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option(
    "--envelope-report",
    "envelope_seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="After certifying, search this long for inputs inside pasa's safe envelope on which "
    "the backend overflows ('is it PASA'); a report, never a failure.",
)
def command(
    backend,
    profile,
    level,
    seed,
    out,
    timeout,
    isolate,
    cases,
    corpus,
    fail_fast,
    quiet,
    envelope_seconds,
) -> None:
    """Certify BACKEND (package.module:function; default $PASA_BACKEND, else the bundled
    reference kernel pasa_ref.kernels.pasa:attention) against the PASA spec."""
    importable_from_cwd()
    try:
        outcome = certify(
            backend,
            profile=profile,
            level=level,
            seed=seed,
            out=out,
            timeout=timeout,
            isolate=isolate,
            cases=cases,
            corpus=corpus,
            fail_fast=fail_fast,
            progress=not quiet,
        )
    except (BackendError, CaseFileError) as error:
        raise click.UsageError(str(error)) from None
    report(outcome, console())
    if envelope_seconds is not None:
        conf = thresholds.load()
        found = envelope_report(
            load(backend_name(backend)),
            profiles.get(outcome.document["profile"]),
            outcome.document["seed"],
            envelope_seconds,
            outcome.out,
            conf,
        )
        console().print(found.text(), markup=False)
    raise click.exceptions.Exit(outcome.exit_code)
