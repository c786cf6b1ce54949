"""The certification engine: plan -> evidence -> findings -> certificate
(specs/certification.md, PASA-CERT-5..22).

    for each planned item (in plan order):
        scope     = outside the declared scope: not applicable, listed with its reason,
                    never called (PASA-CERT-7)                     (Declaration.applicable)
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
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pasa_ref import __version__, blas, display, profiles
from pasa_ref.cases import Case, CaseFileError
from pasa_ref.certify import criteria, declaration, evidence, levels, thresholds
from pasa_ref.certify.backend import (
    ADAPTER_PREFIXES,
    DEFAULT,
    Backend,
    Call,
    Caller,
    Identity,
    Request,
)
from pasa_ref.certify.certificate import Certificate, environment, spec_identity
from pasa_ref.certify.criteria import CLAUSES
from pasa_ref.certify.declaration import Declaration
from pasa_ref.certify.evidence import Evidence, RelationEvidence
from pasa_ref.certify.levels import Item
from pasa_ref.profiles import Profile

__all__ = ["BackendSource", "Outcome", "Source", "backend_name", "certify", "run"]

ENVIRONMENT_VARIABLE = "PASA_BACKEND"
LabelledCall = tuple[str, Call]


class Source(Protocol):
    """Where outputs come from. `unusable` is None, or why no call can be made (the run
    stops after the case at hand)."""

    unusable: str | None

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
    """Outputs from calling a Python backend through a Caller (in-process or isolated; the
    identity comes from wherever the backend was loaded)."""

    def __init__(self, caller: Caller, profile: Profile) -> None:
        self.caller, self.profile = caller, profile

    @property
    def unusable(self) -> str | None:
        return self.caller.unusable

    def call(self, case_id: str, case: Case, request: Request, repeat: bool) -> Call:
        return self.caller(request)

    def identity(self) -> dict[str, Any]:
        return {
            **self.caller.identity.to_json(),
            "isolated": self.caller.isolate,
            "timeout_s": self.caller.timeout,
        }

    def reproduce(self, case_id: str, saved: Path) -> str:
        isolate = " --isolate" if self.caller.isolate else ""
        device = os.environ.get("PASA_DEVICE")
        on_device = (
            f" --device {shlex.quote(device)}"
            if device and self.caller.name.partition(":")[0] in ADAPTER_PREFIXES
            else ""
        )
        return (
            f"pasa certify {shlex.quote(self.caller.name)} --profile {self.profile.name}"
            f"{on_device}{isolate} --case {shlex.quote(str(saved))}"
        )


def gather(
    item: Item, source: Source, profile: Profile, declaration: Declaration | None = None
) -> tuple[Evidence, list[LabelledCall]]:
    """Everything the criteria need for one item, the yardstick being the declared class's
    reference kernel (PASA-CERT-8; the declaration travels with the evidence: the criteria
    judge the declared class and conventions), and its calls labelled for the certificate.
    pasa-ref's own numerics run with pasa_ref.blas.THREADS BLAS threads (the calls do not)."""
    declaration = declaration or Declaration()
    with blas.limited():
        truth = evidence.truth(item.case, profile, declaration)
        references = [
            evidence.reference_output(t.case, profile, declaration) for t in item.relations
        ]
    request = evidence.request(item.case, truth.inputs)
    first = source.call(item.id, item.case, request, repeat=False)
    # a case whose first call timed out has failed PASA-CERT-10: its repeat would only cost
    # a second deadline (PASA-CERT-52)
    repeat = item.repeat and first.failure != "timeout"
    second = source.call(item.id, item.case, request, repeat=True) if repeat else None
    relations = tuple(
        RelationEvidence(
            transformed=t,
            call=source.call(
                str(t.case.metadata["id"]), t.case, evidence.request(t.case), repeat=False
            ),
            reference=reference,
        )
        for t, reference in zip(item.relations, references, strict=True)
    )
    calls = [(item.id, first)] + ([(f"{item.id} (repeat)", second)] if second else [])
    calls += [(str(r.transformed.case.metadata["id"]), r.call) for r in relations]
    return Evidence(item.case, profile, truth, first, second, relations, declaration), calls


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
    declaration: Declaration | None = None,
    not_generated: Sequence[tuple[str, str]] = (),
    plan_sha256: str | None = None,
    origins: Sequence[dict[str, Any]] | None = None,
) -> Outcome:
    """Certify the outputs of `source` on `items`; the certificate goes to `out`. `origins`:
    for case files given one by one (a case run), where each came from (`case_origin`);
    None for a level's plan.

    An item outside the declared scope (Declaration.applicable) is not applicable: counted
    and listed with its reason, never called (PASA-CERT-7). `not_generated` lists (id,
    reason) of planned cases that were never written (pasa verify: `pasa gen` left them
    out); `plan_sha256` is the plan's hash when it is not that of `items` (the same)."""
    declaration = declaration or Declaration()
    header = {
        "profile": profile.name,
        "level": level,
        "seed": seed,
        "run": (
            {"kind": "level"} if origins is None else {"kind": "cases", "cases": list(origins)}
        ),
        "declaration": declaration.mapping(),
        "scope": declaration.scope_text(),
        "exceptions": declaration.conventions.exceptions(),
        "plan": {
            "sha256": plan_sha256 or levels.plan_hash(items),
            "cases": len(items) + len(not_generated),
        },
        "backend": source.identity(),
        "spec": spec_identity(),
        "pasa_ref": __version__,
        "environment": environment(),
    }
    active = {c.id for c in CLAUSES if level >= c.min_level}
    if any(item.relations for item in items):
        active.add("PASA-CERT-14")
    _clear_failures(Path(out))
    certificate = Certificate(
        Path(out),
        header,
        active,
        len(items) + len(not_generated),
        _reproduction(source, declaration),
    )
    for case_id, reason in not_generated:
        certificate.not_applicable(case_id, reason)
    status = "finished"
    try:
        with display.progress("certify", len(items), quiet=not progress) as shown:
            for item in items:
                shown.update(note=item.id)
                reason = declaration.applicable(item.case, profile.name)
                if reason is not None:
                    certificate.not_applicable(item.id, reason)
                    shown.advance()
                    continue
                gathered, calls = gather(item, source, profile, declaration)
                with blas.limited():
                    findings = criteria.evaluate(gathered, conf)
                certificate.add(item.id, item.case, findings, calls)
                shown.advance()
                failed = not all(finding.passed for finding in findings)
                if (fail_fast and failed) or source.unusable is not None:
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


def _reproduction(source: Source, declared: Declaration) -> Callable[[str, Path], str]:
    """The source's reproduction command, with `--declare FILE` when the declaration was
    read from a file."""

    def reproduce(case_id: str, saved: Path) -> str:
        command = source.reproduce(case_id, saved)
        return command if declared.file is None else f"{command} --declare {declared.file}"

    return reproduce


def _clear_failures(out: Path) -> None:
    """Remove the failing cases a previous run saved in out/failures (only those files)."""
    for path in (out / "failures").glob("PASA-CERT-*"):
        if path.suffix in (".npz", ".json"):
            path.unlink()


#: the metadata that says where a case came from: a level's plan (group, level, seed, written
#: by `pasa gen` and by saved failures) or a search (kernel, objective, seed: `pasa hunt`)
ORIGIN_KEYS = ("group", "level", "kernel", "objective", "seed")


def case_origin(path: Path) -> dict[str, Any]:
    """Where a case file given with --case came from, as its own metadata records it: its
    file, id (else the file's stem) and ORIGIN_KEYS (None where it records none)."""
    meta = Case.load(path).metadata
    return {
        "file": str(path),
        "id": meta.get("id", path.stem),
        **{key: meta.get(key) for key in ORIGIN_KEYS},
    }


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


def declared_by(given: Declaration | None, identity: Identity) -> Declaration:
    """PASA-CERT-7: the declaration given (`--declare`), else the one the backend carries as
    `pasa_declaration` (its identity's plain mapping, read wherever the backend was loaded:
    in the child process when isolated), else the default Declaration()."""
    if given is None and identity.declaration_error is not None:
        raise declaration.DeclarationError(
            f"backend {identity.name!r}: {identity.declaration_error}"
        )
    return declaration.resolve(given, identity.declaration)


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
    declare: str | Path | Declaration | Mapping[str, Any] | None = None,
) -> Outcome:
    """Certify a backend (a name `package.module:function`, a loaded Backend, or None for
    $PASA_BACKEND or the bundled reference kernel) against the spec.

    profile, level, seed and timeout default to specs/conformance.toml [certification];
    `cases` replaces the level's plan by these case files; `corpus` adds regression case
    directories to level 1; `declare` is the kernel's declaration (a TOML file, a mapping
    or a Declaration; default: the callable's `pasa_declaration`, else the default
    declaration), PASA-CERT-7. Returns the Outcome; the certificate is in `out`.
    """
    conf = thresholds.load()
    prof = profiles.get(profile or conf.default_profile)
    level = conf.default_level if level is None else level
    seed = conf.default_seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"argument 'seed': expected an integer >= 0, got {seed!r}")
    given = None if declare is None else declaration.resolve(declare)  # a bad file: before any call
    named = backend if isinstance(backend, Backend) else backend_name(backend)
    with Caller(named, prof.name, timeout=timeout or conf.timeout_s, isolate=isolate) as caller:
        declared = declared_by(given, caller.identity)
        items = (
            replay_items([Path(p) for p in cases], prof)
            if cases
            else levels.plan(
                level, prof, seed, conf, [Path(p) for p in corpus], declared, caller
            )
        )
        origins = [case_origin(Path(p)) for p in cases] if cases else None
        return run(
            items,
            BackendSource(caller, prof),
            profile=prof,
            level=level,
            seed=seed,
            out=Path(out),
            conf=conf,
            progress=progress,
            fail_fast=fail_fast,
            declaration=declared,
            origins=origins,
        )
