"""`pasa gen`: write a certification level's cases as files for a kernel in any language
(specs/certification.md, PASA-CERT-4)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pasa_ref import profiles
from pasa_ref.certify import casefiles, declaration, thresholds
from pasa_ref.cli.certify import corpus_directories, declaration_file


@click.command("gen")
@click.option(
    "--profile",
    type=click.Choice(profiles.names()),
    default=None,
    help="Precision profile (default: specs/conformance.toml, fp16-full).",
)
@click.option("--level", type=click.IntRange(1, 3), default=None, help="Certification level.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Seed of levels 2 and 3.")
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for the case files and manifest.json.",
)
@corpus_directories
@declaration_file
def command(profile, level, seed, out, corpus, declare) -> None:
    """Write the cases of a level: OUT/<id>.npz (+ .json) and OUT/manifest.json. The kernel
    under test writes OUTPUTS/<id>.npz (member `out`) for every manifest entry; then run
    `pasa verify OUT OUTPUTS`. With --declare only the cases inside the declared scope are
    written (the others are listed in the manifest as not applicable)."""
    conf = thresholds.load()
    try:
        declared = None if declare is None else declaration.load(declare)
    except declaration.DeclarationError as error:
        raise click.UsageError(str(error)) from None
    entries = casefiles.generate(
        profile or conf.default_profile,
        conf.default_level if level is None else level,
        conf.default_seed if seed is None else seed,
        out,
        corpus,
        declared,
    )
    manifest = json.loads((out / casefiles.MANIFEST).read_text(encoding="utf-8"))
    click.echo(
        f"{len(entries)} case files and {casefiles.MANIFEST} written to {out} "
        f"({len(manifest['not_applicable'])} planned cases not applicable); "
        f"plan sha256 {manifest['plan_sha256']}"
    )
