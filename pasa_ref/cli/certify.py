"""`pasa certify`: certify a backend against the PASA spec and write a certificate
(specs/certification.md). With no backend named, $PASA_BACKEND or the bundled reference
`pasa` kernel is certified at the default level and profile of specs/conformance.toml.
Exit status: 0 certified, 1 not certified, 2 usage error."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console

from pasa_ref import display, profiles
from pasa_ref.cases import CaseFileError
from pasa_ref.certify import thresholds
from pasa_ref.certify.backend import BackendError, Caller, importable_from_cwd
from pasa_ref.certify.certificate import SUMMARY_HEADER, scope_line, summary_rows, summary_title
from pasa_ref.certify.declaration import DeclarationError
from pasa_ref.certify.envelope_report import envelope_report
from pasa_ref.certify.runner import backend_name, certify

#: extra regression-corpus directories, shared with `pasa gen`
corpus_directories = click.option(
    "--corpus",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Add the case files of this directory to the regression corpus.",
)

#: the kernel's declaration (PASA-CERT-7), shared with `pasa gen` and `pasa verify`
declaration_file = click.option(
    "--declare",
    "declare",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The kernel's declaration (TOML, specs/declaration.schema.json): its algorithm "
    "class, the inputs it supports, its conventions. Default: the backend's "
    "pasa_declaration attribute, else the spec's default.",
)

#: the certificate directory option, shared with `pasa verify`
certificate_out = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("pasa-certificate"),
    show_default=True,
    help="Directory of certificate.json, certificate.md and failures/.",
)




def report(outcome, console: Console) -> None:
    """Print the summary table, the failures' reproduction commands and where the files are."""
    doc = outcome.document
    display.print_table(
        console,
        summary_title(doc),
        SUMMARY_HEADER,
        summary_rows(doc),
        right=("cases", "failed", "severity"),
        wrap=("worst case",),
    )
    na = doc["cases"]["not_applicable"]
    display.line(console, scope_line(doc) + (f"; {na} case(s) not applicable" if na else ""))
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
    help="Seconds one backend call may take (default: specs/conformance.toml). A hung call "
    "costs this once: it fails, and the later calls run in a child process.",
)
@click.option(
    "--isolate",
    is_flag=True,
    help="Run the backend in a child process, never imported here: a crash, hang or hostile "
    "result fails a clause only.",
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Certify on this case file only (repeatable): reproduces a failure.",
)
@corpus_directories
@declaration_file
@click.option("--fail-fast", "-x", is_flag=True, help="Stop after the first failing case.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
@click.option(
    "--device",
    type=click.STRING,
    default=None,
    help="Device of an adapter backend: cpu, cuda or cuda:N (sets $PASA_DEVICE; default cpu).",
)
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
    backend, profile, level, seed, out, timeout, isolate, cases, corpus, declare, fail_fast,
    quiet, device, envelope_seconds
) -> None:
    """Certify BACKEND (package.module:function, naive|flash|pasa, or an adapter such as
    torch:flash; default $PASA_BACKEND, else the bundled reference kernel
    pasa_ref.kernels.pasa:attention) against the PASA spec.

    \b
    Framework kernels are named through adapters (pasa_ref.adapters), each with the
    declaration it discovers by probing the backend on the device:
      torch:math, torch:flash, torch:efficient, torch:cudnn
                               torch SDPA with that backend forced   pasa-ref[torch]
      torch-fn:pkg.mod:function  a torch function with SDPA's arguments
      jax:xla, jax:cudnn       jax.nn.dot_product_attention           pasa-ref[jax]
      dlpack:pkg.mod:function  a PASA-CERT-1 function over DLPack arrays
    e.g. pasa certify torch:flash --device cuda --profile fp16-mixed"""
    importable_from_cwd()
    if device is not None:
        os.environ["PASA_DEVICE"] = device
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
            declare=declare,
        )
    except (BackendError, CaseFileError, DeclarationError) as error:
        raise click.UsageError(str(error)) from None
    report(outcome, display.console())
    if envelope_seconds is not None:
        conf = thresholds.load()
        document = outcome.document
        with Caller(backend_name(backend), document["profile"],
                    timeout=timeout or conf.timeout_s, isolate=isolate) as caller:
            found = envelope_report(caller, profiles.get(document["profile"]), document["seed"],
                                    envelope_seconds, outcome.out, conf)
        display.line(display.console(), found.text())
    raise click.exceptions.Exit(outcome.exit_code)
