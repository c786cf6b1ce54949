"""Case files for kernels that Python cannot call, TestFloat style (specs/certification.md,
PASA-CERT-4): `generate` writes a level's plan as case files plus a manifest, the kernel
under test writes one output file per case, and `verify` certifies those outputs exactly as
a callable backend is certified (same plan, same criteria, same certificate).

    CASES/manifest.json        profile, level, seed, spec, declaration, the plan's hash,
                               per file: id, output shape and dtype, repeat, derived_from;
                               and the planned cases outside the declared scope (not
                               written: not applicable, with the reason)
    CASES/<id>.npz, .json      a case (pasa_ref.cases, PASA-CASE-1)
    CASES/<id>-mr<n>.npz       a metamorphic transformation of case <id>
    OUTPUTS/<id>.npz           the kernel's output (PASA-CASE-2), one per manifest entry
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pasa_ref import __version__, profiles
from pasa_ref.cases import Case, CaseFileError, load_output
from pasa_ref.certify import levels, thresholds
from pasa_ref.certify.backend import Call, Request
from pasa_ref.certify.certificate import spec_identity
from pasa_ref.certify.declaration import Declaration, from_mapping
from pasa_ref.certify.levels import Item
from pasa_ref.certify.runner import Outcome, run
from pasa_ref.profiles import Profile

__all__ = ["MANIFEST", "FileSource", "generate", "verify"]

MANIFEST = "manifest.json"
FORMAT = "pasa-ref-cases/1"


def _entry(case: Case, profile: Profile, repeat: bool) -> dict[str, Any]:
    b, hq, s1, _ = case.q.shape
    return {
        "id": case.metadata["id"],
        "shape": [b, hq, s1, case.v.shape[-1]],
        "dtype": str(profile.output.storage),
        "repeat": repeat,
        "derived_from": case.metadata.get("derived_from"),
    }


def generate(
    profile: str,
    level: int,
    seed: int,
    out: str | Path,
    corpus: Sequence[str | Path] = (),
    declaration: Declaration | None = None,
) -> list[dict[str, Any]]:
    """Write the plan of (profile, level, seed, declaration) to `out`, the cases outside the
    declared scope left out (listed in the manifest as not applicable); returns the
    manifest's entries."""
    prof = profiles.get(profile)
    declaration = declaration or Declaration()
    items = levels.plan(
        level, prof, seed, thresholds.load(), [Path(p) for p in corpus], declaration
    )
    out = Path(out)
    entries, skipped = [], []
    for item in items:
        reason = declaration.applicable(item.case, prof.name)
        if reason is not None:
            skipped.append({"id": item.id, "reason": reason})
            continue
        item.case.save(out / item.id, {"repeat": item.repeat, "level": level, "seed": seed})
        entries.append(_entry(item.case, prof, item.repeat))
        for relation in item.relations:
            relation.case.save(out / str(relation.case.metadata["id"]), {"repeat": False})
            entries.append(_entry(relation.case, prof, repeat=False))
    manifest = {
        "format": FORMAT,
        "profile": prof.name,
        "level": level,
        "seed": seed,
        "declaration": declaration.mapping(),
        "plan_sha256": levels.plan_hash(items),
        "spec": spec_identity(),
        "pasa_ref": __version__,
        "cases": entries,
        "not_applicable": skipped,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return entries


class FileSource:
    """Outputs read from OUTPUTS/<id>.npz (and REPEAT/<id>.npz for the second run)."""

    def __init__(
        self, cases: Path, outputs: Path, repeat: Path | None, profile: Profile, name: str
    ) -> None:
        self.cases, self.outputs, self.repeat_dir, self.profile = cases, outputs, repeat, profile
        self.name = name

    def call(self, case_id: str, case: Case, request: Request, repeat: bool) -> Call:
        path = (self.repeat_dir if repeat else self.outputs) / f"{case_id}.npz"
        if not path.is_file():
            return Call(None, "missing-output", f"no output file {path}", 0.0)
        try:
            return Call(load_output(path, self.profile.output.storage), None, "", 0.0)
        except (CaseFileError, ValueError, OSError) as error:
            return Call(None, "unreadable-output", str(error), 0.0)

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": None,
            "file": None,
            "sha256": None,
            "cases": str(self.cases),
            "outputs": str(self.outputs),
            "repeat": None if self.repeat_dir is None else str(self.repeat_dir),
        }

    def reproduce(self, case_id: str, saved: Path) -> str:
        return f"pasa verify {self.cases} {self.outputs} --only {case_id}"


def read_manifest(cases: Path) -> dict[str, Any]:
    path = cases / MANIFEST
    if not path.is_file():
        raise CaseFileError(
            f"argument 'cases': expected a directory written by `pasa gen` "
            f"with {MANIFEST}, got none in {cases}"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise CaseFileError(f"{path}: expected format {FORMAT!r}, got {manifest.get('format')!r}")
    return manifest


def verify(
    cases: str | Path,
    outputs: str | Path,
    *,
    repeat: str | Path | None = None,
    out: str | Path = "pasa-certificate",
    only: Sequence[str] = (),
    fail_fast: bool = False,
    progress: bool = False,
    declaration: Declaration | None = None,
    name: str | None = None,
) -> Outcome:
    """Certify the output files in `outputs` for the cases `pasa gen` wrote in `cases`,
    under `declaration` (default: the one `pasa gen` wrote into the manifest); the kernel is
    called `name` (default: the name of the outputs directory)."""
    cases, outputs = Path(cases), Path(outputs)
    manifest = read_manifest(cases)
    prof = profiles.get(manifest["profile"])
    written = manifest.get("declaration")
    if declaration is None:
        declaration = (
            Declaration()
            if written is None
            else from_mapping(written, source=written.get("source", str(cases / MANIFEST)))
        )
    not_generated = [
        (entry["id"], f"not generated: {entry['reason']}")
        for entry in manifest.get("not_applicable", [])
        if not only
    ]
    entries = [entry for entry in manifest["cases"] if entry["derived_from"] is None]
    unknown = sorted(set(only) - {entry["id"] for entry in entries})
    if unknown:
        raise CaseFileError(
            f"argument 'only': expected case ids of {cases / MANIFEST}, got {unknown}"
        )
    items: list[Item] = []
    for entry in entries:
        if only and entry["id"] not in only:
            continue
        items.append(
            levels.item(
                Case.load(cases / f"{entry['id']}.npz"),
                repeat=entry["repeat"] and repeat is not None,
            )
        )
    source = FileSource(
        cases, outputs, None if repeat is None else Path(repeat), prof,
        name or outputs.resolve().name,
    )
    return run(
        items,
        source,
        profile=prof,
        level=manifest["level"],
        seed=manifest["seed"],
        out=Path(out),
        conf=thresholds.load(),
        progress=progress,
        fail_fast=fail_fast,
        declaration=declaration,
        not_generated=not_generated,
        plan_sha256=None if only else manifest.get("plan_sha256"),
    )
