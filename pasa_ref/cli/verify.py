"""`pasa verify`: certify output files written for `pasa gen` cases by a kernel in any
language (specs/certification.md, PASA-CERT-4). Exit status: 0 certified, 1 not certified,
2 usage error."""

from __future__ import annotations

from pathlib import Path

import click

from pasa_ref.cases import CaseFileError
from pasa_ref import display
from pasa_ref.certify import casefiles, declaration
from pasa_ref.cli.certify import certificate_out, declaration_file, report


@click.command("verify")
@click.argument("cases", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("outputs", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--repeat",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Outputs of a second run, for criterion (e) (determinism).",
)
@certificate_out
@click.option(
    "--name",
    default=None,
    help="The kernel's name in the certificate (default: the name of the OUTPUTS directory).",
)
@click.option(
    "--only",
    multiple=True,
    metavar="ID",
    help="Verify only this case (repeatable): reproduces a failure.",
)
@declaration_file
@click.option("--fail-fast", "-x", is_flag=True, help="Stop after the first failing case.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def command(cases, outputs, repeat, out, name, only, declare, fail_fast, quiet) -> None:
    """Certify OUTPUTS/<id>.npz against the cases `pasa gen` wrote to CASES (under the
    declaration `pasa gen` wrote into the manifest, unless --declare names another)."""
    try:
        outcome = casefiles.verify(
            cases,
            outputs,
            repeat=repeat,
            out=out,
            only=only,
            fail_fast=fail_fast,
            progress=not quiet,
            declaration=None if declare is None else declaration.load(declare),
            name=name,
        )
    except (CaseFileError, declaration.DeclarationError) as error:
        raise click.UsageError(str(error)) from None
    report(outcome, display.console())
    raise click.exceptions.Exit(outcome.exit_code)
