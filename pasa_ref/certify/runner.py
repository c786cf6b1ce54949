"""The certification engine: plan -> evidence -> findings -> certificate
(specs/certification.md, PASA-CERT-5..22).

    for each planned item (in plan order):
        truth     = oracle + reference kernel on the case           (evidence.truth)
        calls     = the source's outputs: first call, repeated call when planned, one call
                    per metamorphic transformation
        findings  = criteria.evaluate(evidence)
        certificate.add(findings)                                  (files rewritten)

A source is where outputs come from: `BackendSource` calls a Python backend through
backend.Caller (deadline, optional child process); pasa_ref.certify.casefiles reads output
files written by a kernel in any language. Ctrl-C stops the run after the certificate is
written as "interrupted"; any other exception writes it as "crashed" and propagates. With
fail_fast the run stops ("stopped") after the first case that fails a clause.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pasa_ref import __version__, profiles
from pasa_ref.cases import Case, CaseFileError
from pasa_ref.certify import criteria, evidence, levels, thresholds
from pasa_ref.certify.backend import DEFAULT, Backend, Call, Caller, Request, load
from pasa_ref.certify.certificate import Certificate, environment, spec_identity
from pasa_ref.certify.criteria import CLAUSES
from pasa_ref.certify.declaration import Declaration
from pasa_ref.certify.declaration import of as carried_declaration
from pasa_ref.certify.evidence import Evidence, RelationEvidence
from pasa_ref.certify.levels import Item
from pasa_ref.profiles import Profile

__all__ = ["BackendSource", "Outcome", "Source", "backend_name", "certify", "run"]

ENVIRONMENT_VARIABLE = "PASA_BACKEND"


class Source(Protocol):
    """Where outputs come from."""

    def call(self, case_id: str, case: Case, request: Request, repeat: bool) -> Call: ...

    def identity(self) -> dict[str, Any]: ...

    def reproduce(self, case_id: str, saved: Path) -> str: ...


@dataclass(frozen=True)
class Outcome:
    certified: bool
    status: str
    document: dict[str, Any]
    out: Path

    @property
    def exit_code(self) -> int:
        """0 certified, 1 not certified (PASA-CERT-20)."""
        return 0 if self.certified else 1


def backend_name(name: str | None) -> str:
    """PASA-CERT-2: the name given, else $PASA_BACKEND, else the bundled reference kernel."""
    return name or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT


class BackendSource:
    """Outputs from calling a Python backend."""

    def __init__(self, backend: Backend, caller: Caller, profile: Profile) -> None:
        self.backend, self.caller, self.profile = backend, caller, profile

    def call(self, case_id: str, case: Case, request: Request, repeat: bool) -> Call:
        return self.caller(request)

    def identity(self) -> dict[str, Any]:
        return {
            **self.backend.identity(),
            "isolated": self.caller.isolate,
            "timeout_s": self.caller.timeout,
        }

    def reproduce(self, case_id: str, saved: Path) -> str:
        isolate = " --isolate" if self.caller.isolate else ""
        return (
            f"pasa certify {self.backend.name} --profile {self.profile.name}{isolate} "
            f"--case {saved}"
        )


def gather(
    item: Item,
    source: Source,
    profile: Profile,
    declaration: Declaration = evidence.DEFAULT_DECLARATION,
) -> Evidence:
    """Everything the criteria need for one item; the yardstick is the declared class's
    reference kernel (PASA-CERT-8)."""
    truth = evidence.truth(item.case, profile, declaration)
    request = evidence.request(item.case, truth.inputs)
    first = source.call(item.id, item.case, request, repeat=False)
    second = source.call(item.id, item.case, request, repeat=True) if item.repeat else None
    relations = tuple(
        RelationEvidence(
            transformed=t,
            call=source.call(
                str(t.case.metadata["id"]), t.case, evidence.request(t.case), repeat=False
            ),
            reference=evidence.reference_output(t.case, profile, declaration),
        )
        for t in item.relations
    )
    return Evidence(item.case, profile, truth, first, second, relations, declaration)


def run(
    items: Sequence[Item],
    source: Source,
    *,
    profile: Profile,
    level: int,
    seed: int,
    out: Path,
    conf: thresholds.Conformance,
    progress: bool = False,
    fail_fast: bool = False,
    declaration: Declaration = evidence.DEFAULT_DECLARATION,
) -> Outcome:
    """Certify the outputs of `source` on `items`; the certificate goes to `out`."""
    header = {
        "profile": profile.name,
        "level": level,
        "seed": seed,
        "backend": source.identity(),
        "spec": spec_identity(),
        "pasa_ref": __version__,
        "environment": environment(),
    }
    active = {c.id for c in CLAUSES if level >= c.min_level}
    if any(item.relations for item in items):
        active.add("PASA-CERT-14")
    _clear_failures(Path(out))
    certificate = Certificate(Path(out), header, active, len(items), source.reproduce)
    status = "finished"
    try:
        with _progress(progress) as bar:
            task = bar.add_task("certify", total=len(items))
            for item in items:
                bar.update(task, description=item.id)
                findings = criteria.evaluate(gather(item, source, profile, declaration), conf)
                certificate.add(item.id, item.case, findings)
                bar.advance(task)
                if fail_fast and not all(finding.passed for finding in findings):
                    status = "stopped"
                    break
    except KeyboardInterrupt:
        status = "interrupted"
    except BaseException:
        certificate.finish("crashed")
        raise
    certificate.finish(status)
    document = certificate.document()
    return Outcome(document["certified"], status, document, Path(out))


def _clear_failures(out: Path) -> None:
    """Remove the failing cases a previous run saved in out/failures (only those files)."""
    for path in (out / "failures").glob("PASA-CERT-*"):
        if path.suffix in (".npz", ".json"):
            path.unlink()


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<32}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def replay_items(paths: Iterable[Path], profile: Profile) -> list[Item]:
    """Items for case files given one by one (reproduction): used exactly as stored, so their
    dtype must be the profile's input dtype; every one is called twice and checked under its
    metamorphic relations, if it has any."""
    items = []
    for path in paths:
        case = Case.load(path)
        if case.dtype != profile.input.storage:
            raise CaseFileError(
                f"argument 'case': expected a case in {profile.name}'s input dtype "
                f"{profile.input.storage}, got {case.dtype} in {path}"
            )
        if "id" not in case.metadata:
            case = levels.tagged(case, Path(path).stem, "replay")
        items.append(levels.item(case, repeat=True))
    return items


def certify(
    backend: str | Backend | None = None,
    *,
    profile: str | None = None,
    level: int | None = None,
    seed: int | None = None,
    out: str | Path = "pasa-certificate",
    timeout: float | None = None,
    isolate: bool = False,
    cases: Sequence[str | Path] = (),
    corpus: Sequence[str | Path] = (),
    fail_fast: bool = False,
    progress: bool = False,
    declared: Declaration | None = None,
) -> Outcome:
    """Certify a backend (a name `package.module:function`, a loaded Backend, or None for
    $PASA_BACKEND or the bundled reference kernel) against the spec.

    profile, level, seed and timeout default to specs/conformance.toml [certification];
    `cases` replaces the level's plan by these case files; `corpus` adds regression case
    directories to level 1; `declared` is the kernel's declaration (default: the one the
    callable carries, else pasa with the profile's parameters). Returns the Outcome; the
    certificate is in `out`.
    """
    conf = thresholds.load()
    prof = profiles.get(profile or conf.default_profile)
    level = conf.default_level if level is None else level
    seed = conf.default_seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"argument 'seed': expected an integer >= 0, got {seed!r}")
    resolved = backend if isinstance(backend, Backend) else load(backend_name(backend))
    if declared is None:
        declared = carried_declaration(resolved.function) or evidence.DEFAULT_DECLARATION
    items = (
        replay_items([Path(p) for p in cases], prof)
        if cases
        else levels.plan(level, prof, seed, conf, [Path(p) for p in corpus], declared, resolved)
    )
    with Caller(resolved, prof.name, timeout=timeout or conf.timeout_s, isolate=isolate) as caller:
        return run(
            items,
            BackendSource(resolved, caller, prof),
            profile=prof,
            level=level,
            seed=seed,
            out=Path(out),
            conf=conf,
            progress=progress,
            fail_fast=fail_fast,
            declaration=declared,
        )
