"""The certificate: per-clause records, written as certificate.json (specs/
certificate.schema.json) and certificate.md after every case (specs/certification.md,
PASA-CERT-20..22).

The files are replaced atomically (write to a temporary file, then rename), and the JSON
says "complete": false until the run finishes, so a crash or Ctrl-C leaves a valid partial
certificate marked incomplete. For each clause the record keeps the number of cases
evaluated and failed, the first failures (one line each, TestFloat style), and the worst
case: for a failure it is saved under failures/<clause>.npz (the case-file format of
pasa_ref.cases) with a one-line reproduction command.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from rich.table import Table

from pasa_ref.cases import Case
from pasa_ref.certify.criteria import CLAUSES, Clause, Finding

__all__ = [
    "SCHEMA",
    "SPEC_FILES",
    "Certificate",
    "environment",
    "markdown",
    "spec_identity",
    "summary_table",
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
        self.status = "running"
        self.reproduce = reproduce
        self.records = {c.id: ClauseRecord(c, active=c.id in active) for c in CLAUSES}
        self.calls: dict[str, Any] = {
            "made": 0, "failed": 0, "kernel_seconds": 0.0, "in_fresh_child": []
        }
        self.started = _now()
        self._clock = time.perf_counter()
        (self.out / "failures").mkdir(parents=True, exist_ok=True)
        self.write()

    def add(
        self, case_id: str, case: Case, findings: list[Finding], calls: Sequence[Any] = ()
    ) -> None:
        """Record a case's findings; `calls` are its (label, backend.Call) pairs, counted
        for the kernel's own time and for the calls that ran in a fresh child process."""
        for finding in findings:
            self._record(case_id, case, finding)
        for label, call in calls:
            self.calls["made"] += 1
            self.calls["failed"] += not call.ok
            self.calls["kernel_seconds"] += call.seconds
            if call.fresh_child:
                self.calls["in_fresh_child"].append(label)
        self.done += 1
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
                },
            )
            record.worst["file"] = str(saved)
            record.worst["reproduce"] = self.reproduce(case_id, saved)

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
        elapsed = time.perf_counter() - self._clock
        return _json_safe(
            {
                "schema": SCHEMA,
                "complete": complete,
                "status": self.status,
                "certified": self.certified() if complete else False,
                **self.header,
                "cases": {"planned": self.planned, "done": self.done},
                "started": self.started,
                "updated": _now(),
                "elapsed_s": round(elapsed, 3),
                "calls": {
                    **self.calls,
                    "kernel_seconds": round(self.calls["kernel_seconds"], 3),
                    "suite_seconds": round(elapsed - self.calls["kernel_seconds"], 3),
                },
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
    verdict = (
        ("CERTIFIED" if doc["certified"] else "NOT CERTIFIED")
        if doc["complete"]
        else f"INCOMPLETE ({doc['status']}): not a certificate of conformance"
    )
    lines = [
        f"# PASA certificate: {verdict}",
        "",
        (
            f"- backend: `{backend['name']}` version {backend.get('version')}, "
            f"sha256 {backend.get('sha256')}"
        ),
        f"- profile: {doc['profile']}, level {doc['level']}, seed {doc['seed']}",
        f"- spec: {spec['version']}, sha256 {spec['sha256']}; pasa-ref {doc['pasa_ref']}",
        (
            f"- cases: {doc['cases']['done']} of {doc['cases']['planned']}, "
            f"{doc['elapsed_s']:.1f} s, {doc['started']} .. {doc['updated']}"
        ),
        _calls_line(doc.get("calls")),
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


def _calls_line(calls: dict[str, Any] | None) -> str:
    if not calls:
        return "- calls: not recorded"
    fresh = calls["in_fresh_child"]
    listed = ", ".join(fresh[:LISTED_FAILURES]) + (" ..." if len(fresh) > LISTED_FAILURES else "")
    return (
        f"- calls: {calls['made']} ({calls['failed']} failed), kernel {calls['kernel_seconds']:.2f}"
        f" s, suite {calls['suite_seconds']:.2f} s; in a fresh child process: {len(fresh)}"
        + (f" ({listed})" if fresh else "")
    )


def _severity_text(worst: dict[str, Any] | None) -> str:
    severity = (worst or {}).get("severity")
    if severity is None:
        return ""
    return severity if isinstance(severity, str) else f"{severity:.3g}"


def summary_table(doc: dict[str, Any]) -> Table:
    """The per-clause summary for the terminal (rich)."""
    backend = doc["backend"]
    if not doc["complete"]:
        title = f"[bold yellow]INCOMPLETE ({doc['status']})"
    else:
        title = "[bold green]CERTIFIED" if doc["certified"] else "[bold red]NOT CERTIFIED"
    table = Table(
        title=f"{title}[/]  {backend['name']} ({backend.get('version')}), profile "
        f"{doc['profile']}, level {doc['level']}, seed {doc['seed']}: "
        f"{doc['cases']['done']}/{doc['cases']['planned']} cases, "
        f"{doc['elapsed_s']:.1f} s"
    )
    for column in ("clause", "criterion", "verdict", "cases", "failed", "worst case", "severity"):
        table.add_column(
            column,
            no_wrap=column != "worst case",
            justify="right" if column in ("cases", "failed", "severity") else "left",
        )
    colours = {"PASS": "green", "FAIL": "bold red", "N/A": "dim", "NOT RUN": "dim"}
    for clause in doc["clauses"]:
        worst = clause["worst"] or {}
        table.add_row(
            clause["id"],
            f"({clause['criterion']}) {clause['name']}",
            f"[{colours[clause['verdict']]}]{clause['verdict']}[/]",
            str(clause["evaluated"]),
            str(clause["failed"]),
            worst.get("case", ""),
            _severity_text(worst),
        )
    return table
