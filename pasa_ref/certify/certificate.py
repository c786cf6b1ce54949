"""The certificate: per-clause records, written as certificate.json (specs/
certificate.schema.json) and certificate.md after every case (specs/certification.md,
PASA-CERT-20..22).

The files are replaced atomically (write to a temporary file, then rename), and the JSON
says "complete": false until the run finishes, so a crash or Ctrl-C leaves a valid partial
certificate marked incomplete. For each clause the record keeps the number of cases
evaluated and failed, the first failures (one line each, TestFloat style), and the worst
case: for a failure it is saved under failures/<clause>.npz (the case-file format of
pasa_ref.cases) with a one-line reproduction command. Cases outside the kernel's declared
scope are listed under `not_applicable` with their reason (never called); the declared
departures from the spec under `exceptions` (a certified kernel with exceptions is
"CERTIFIED WITH EXCEPTIONS"), PASA-CERT-7.

Reporting only: nothing here decides a verdict except by the rule "a clause fails iff one of
its findings has severity > 1", and `certified` = complete, no clause failed, and the call
contract (PASA-CERT-10) evaluated at least once.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from rich.text import Text

from pasa_ref.cases import Case
from pasa_ref.certify.criteria import CLAUSES, Clause, Finding

__all__ = [
    "SCHEMA",
    "SPEC_FILES",
    "Certificate",
    "environment",
    "markdown",
    "run_text",
    "scope_line",
    "spec_identity",
    "summary_rows",
    "summary_title",
]

SCHEMA = "pasa-ref-certificate/1"
SPEC_FILES = ("pasa-spec.md", "certification.md", "conformance.toml", "profiles.toml")
LISTED_FAILURES = 20
STATUSES = ("running", "finished", "stopped", "interrupted", "crashed")


def spec_identity() -> dict[str, Any]:
    """The spec's version (from the title of pasa-spec.md) and the sha256 of SPEC_FILES read
    from the installed pasa_ref.specs, concatenated in that order."""
    digest = hashlib.sha256()
    specs = resources.files("pasa_ref.specs")
    for name in SPEC_FILES:
        digest.update(specs.joinpath(name).read_bytes())
    title = specs.joinpath("pasa-spec.md").read_text(encoding="utf-8").splitlines()[0]
    version = re.search(r"\bv\d+(\.\d+)*\b", title)
    return {
        "version": version.group(0) if version else title,
        "sha256": digest.hexdigest(),
        "files": list(SPEC_FILES),
    }


def environment() -> dict[str, Any]:
    def version(distribution: str) -> str | None:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "numpy": version("numpy"),
        "ml_dtypes": version("ml_dtypes"),
        "hypothesis": version("hypothesis"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _json_safe(value: Any) -> Any:
    """Non-finite floats become the strings "inf", "-inf", "nan" (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


@dataclass
class ClauseRecord:
    clause: Clause
    active: bool
    evaluated: int = 0
    failed: int = 0
    worst: dict[str, Any] | None = None
    failures: list[dict[str, str]] = field(default_factory=list)

    def verdict(self) -> str:
        if not self.active:
            return "NOT RUN"
        if self.failed:
            return "FAIL"
        return "PASS" if self.evaluated else "N/A"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.clause.id,
            "criterion": self.clause.criterion,
            "name": self.clause.name,
            "title": self.clause.title,
            "verdict": self.verdict(),
            "evaluated": self.evaluated,
            "failed": self.failed,
            "worst": self.worst,
            "failures": self.failures,
        }


class Certificate:
    """Collects findings case by case and rewrites the certificate files after each."""

    def __init__(
        self,
        out: Path,
        header: dict[str, Any],
        active: set[str],
        planned: int,
        reproduce: Callable[[str, Path], str],
    ) -> None:
        self.out = Path(out)
        self.header = header
        self.planned = planned
        self.done = 0
        self.skipped: list[dict[str, str]] = []
        self.status = "running"
        self.reproduce = reproduce
        self.records = {c.id: ClauseRecord(c, active=c.id in active) for c in CLAUSES}
        self.started = _now()
        self._clock = time.perf_counter()
        (self.out / "failures").mkdir(parents=True, exist_ok=True)
        self.write()

    def add(self, case_id: str, case: Case, findings: list[Finding]) -> None:
        for finding in findings:
            self._record(case_id, case, finding)
        self.done += 1
        self.write()

    def not_applicable(self, case_id: str, reason: str) -> None:
        """A planned case outside the declared scope: listed, never called (PASA-CERT-7)."""
        self.skipped.append({"case": case_id, "reason": reason})
        self.write()

    def _record(self, case_id: str, case: Case, finding: Finding) -> None:
        record = self.records[finding.clause]
        record.evaluated += 1
        if not finding.passed:
            record.failed += 1
            if len(record.failures) < LISTED_FAILURES:
                record.failures.append({"case": case_id, "message": finding.message})
        if record.worst is not None and finding.severity <= record.worst["severity"]:
            return  # a failure has severity > 1 >= any pass: the worst is a failure if any
        record.worst = {
            "case": case_id,
            "severity": finding.severity,
            "failed": not finding.passed,
            "message": finding.message,
            "measures": finding.measures,
        }
        if not finding.passed:
            saved = case.save(
                self.out / "failures" / finding.clause,
                {
                    "clause": finding.clause,
                    "severity": finding.severity,
                    "message": finding.message,
                    "certified_against": self.header.get("profile"),
                    **self._origin(),
                },
            )
            record.worst["file"] = str(saved)
            record.worst["reproduce"] = self.reproduce(case_id, saved)

    def _origin(self) -> dict[str, Any]:
        """The level and seed of a level's plan, for the metadata of a saved failure (a case
        run keeps the origin its case files record)."""
        if self.header.get("run", {"kind": "level"})["kind"] != "level":
            return {}
        return {"level": self.header.get("level"), "seed": self.header.get("seed")}

    def certified(self) -> bool:
        verdicts = [record.verdict() for record in self.records.values()]
        return (
            self.status == "finished"
            and "FAIL" not in verdicts
            and self.records["PASA-CERT-10"].evaluated > 0
        )

    def finish(self, status: str) -> None:
        if status not in STATUSES[1:]:
            raise ValueError(f"argument 'status': expected one of {STATUSES[1:]}, got {status!r}")
        self.status = status
        self.write()

    def document(self) -> dict[str, Any]:
        complete = self.status == "finished"
        return _json_safe(
            {
                "schema": SCHEMA,
                "complete": complete,
                "status": self.status,
                "certified": self.certified() if complete else False,
                **self.header,
                "cases": {
                    "planned": self.planned,
                    "done": self.done,
                    "not_applicable": len(self.skipped),
                },
                "not_applicable": self.skipped,
                "started": self.started,
                "updated": _now(),
                "elapsed_s": round(time.perf_counter() - self._clock, 3),
                "clauses": [record.to_json() for record in self.records.values()],
            }
        )

    def write(self) -> None:
        doc = self.document()
        _atomic_write(self.out / "certificate.json", json.dumps(doc, indent=2) + "\n")
        _atomic_write(self.out / "certificate.md", markdown(doc))


def _atomic_write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def markdown(doc: dict[str, Any]) -> str:
    """certificate.md from the JSON document."""
    backend, spec = doc["backend"], doc["spec"]
    verdict = verdict_text(doc)[0]
    if not doc["complete"]:
        verdict += ": not a certificate of conformance"
    lines = [
        f"# PASA certificate: {verdict}",
        "",
        scope_line(doc),
        "",
        f"- backend: `{backend['name']}`"
        + "".join(f", {key} {backend[key]}" for key in ("version", "sha256") if backend.get(key)),
        f"- profile: {doc['profile']}, {run_text(doc)}",
        f"- spec: {spec['version']}, sha256 {spec['sha256']}; pasa-ref {doc['pasa_ref']}",
        (
            f"- cases: {doc['cases']['done']} of {doc['cases']['planned']} judged, "
            f"{doc['cases']['not_applicable']} not applicable, "
            f"{doc['elapsed_s']:.1f} s, {doc['started']} .. {doc['updated']}"
        ),
        f"- plan: sha256 {doc['plan']['sha256']}",
        f"- declaration: {json.dumps(doc['declaration'], sort_keys=True)}",
        "- environment: " + ", ".join(f"{k} {v}" for k, v in doc["environment"].items()),
        "",
        "| clause | criterion | verdict | evaluated | failed | worst case | severity |",
        "|---|---|---|---|---|---|---|",
    ]
    for clause in doc["clauses"]:
        worst = clause["worst"] or {}
        lines.append(
            f"| {clause['id']} | ({clause['criterion']}) {clause['name']}: {clause['title']} | "
            f"**{clause['verdict']}** | {clause['evaluated']} | {clause['failed']} | "
            f"{worst.get('case', '')} | {_severity_text(clause['worst'])} |"
        )
    lines += ["", "Severity: measured / allowed; a case fails a clause when it exceeds 1.", ""]
    if doc["exceptions"]:
        lines += ["## Declared exceptions to the spec", ""]
        lines += [f"- {exception}" for exception in doc["exceptions"]] + [""]
    if doc["not_applicable"]:
        lines += [
            f"## Not applicable: {len(doc['not_applicable'])} case(s) outside the declared "
            "scope (never called)",
            "",
        ]
        lines += [f"- `{skip['case']}`: {skip['reason']}" for skip in doc["not_applicable"]]
        lines.append("")
    for clause in doc["clauses"]:
        worst = clause["worst"]
        if clause["verdict"] != "FAIL" or worst is None:
            continue
        lines += [
            f"## {clause['id']} failed on {clause['failed']} case(s)",
            "",
            f"Worst: `{worst['case']}`: {worst['message']}",
            "",
            f"Saved: `{worst.get('file')}`. Reproduce:",
            "",
            "```",
            worst.get("reproduce", ""),
            "```",
            "",
        ]
        lines += [f"- `{failure['case']}`: {failure['message']}" for failure in clause["failures"]]
        lines.append("")
    return "\n".join(lines)


def scope_line(doc: dict[str, Any]) -> str:
    """The scope in words (PASA-CERT-7): what the certificate certifies, or would; the
    declared exceptions to the spec end it."""
    lead = "Certified for" if doc["certified"] else "Declared scope:"
    return f"{lead} {doc['profile']}, {doc['scope']}"


def _severity_text(worst: dict[str, Any] | None) -> str:
    severity = (worst or {}).get("severity")
    if severity is None:
        return ""
    return severity if isinstance(severity, str) else f"{severity:.3g}"


def _backend_text(backend: dict[str, Any]) -> str:
    """The backend's name, with its version when it has one."""
    version = backend.get("version")
    return backend["name"] if version is None else f"{backend['name']} {version}"


def _origin_text(origin: dict[str, Any]) -> str:
    """Where a case file of a case run came from, as its metadata records it."""
    parts = [f"{key} {value}" for key, value in origin.items() if key not in ("file", "id")
             and value is not None]
    return f"{origin['id']} ({', '.join(parts)})" if parts else str(origin["id"])


def run_text(doc: dict[str, Any], shown: int = 3) -> str:
    """What was run: `level L, seed S` for a level's plan; for case files given one by one,
    `case run of N file(s): <id> (group G, level L, seed S); ...` (the origins their metadata
    records, the first `shown` of them) and the level whose clauses were checked."""
    run = doc.get("run", {"kind": "level"})
    if run["kind"] == "level":
        return f"level {doc['level']}, seed {doc['seed']}"
    origins = [_origin_text(origin) for origin in run["cases"]]
    more = len(origins) - shown
    listed = "; ".join(origins[:shown]) + (f"; {more} more" if more > 0 else "")
    files = "file" if len(origins) == 1 else "files"
    return f"case run of {len(origins)} {files}: {listed}; clauses of level {doc['level']}"


def verdict_text(doc: dict[str, Any]) -> tuple[str, str]:
    """The verdict word(s) and their terminal style."""
    if not doc["complete"]:
        return f"INCOMPLETE ({doc['status']})", "bold yellow"
    if not doc["certified"]:
        return "NOT CERTIFIED", "bold red"
    return ("CERTIFIED WITH EXCEPTIONS" if doc["exceptions"] else "CERTIFIED"), "bold green"


def summary_title(doc: dict[str, Any]) -> Text:
    """The summary's first line: verdict, backend, profile, what was run, cases and time."""
    verdict, style = verdict_text(doc)
    return Text.assemble(
        (verdict, style),
        f"  {_backend_text(doc['backend'])}, profile {doc['profile']}, {run_text(doc)}: "
        f"{doc['cases']['done']}/{doc['cases']['planned']} cases in {doc['elapsed_s']:.1f} s",
    )


SUMMARY_HEADER = ("clause", "criterion", "verdict", "cases", "failed", "worst case", "severity")


def summary_rows(doc: dict[str, Any]) -> list[tuple[str | Text, ...]]:
    """One row per clause under SUMMARY_HEADER; the verdict carries its terminal style."""
    colours = {"PASS": "green", "FAIL": "bold red", "N/A": "dim", "NOT RUN": "dim"}
    rows = []
    for clause in doc["clauses"]:
        worst = clause["worst"] or {}
        rows.append(
            (
                clause["id"],
                f"({clause['criterion']}) {clause['name']}",
                Text(clause["verdict"], style=colours[clause["verdict"]]),
                str(clause["evaluated"]),
                str(clause["failed"]),
                worst.get("case", ""),
                _severity_text(worst),
            )
        )
    return rows
