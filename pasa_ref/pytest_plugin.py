"""pytest plugin: certify a backend inside your own test run (specs/certification.md,
PASA-CERT-30). Registered as the `pytest11` entry point `pasa_ref`; before that, load it
with `pytest -p pasa_ref.pytest_plugin`.

    pytest --pasa-backend my_pkg.attn:forward --pasa-profile fp16-full --pasa-level 2 \
           --pasa-declare my_kernel.toml

adds one test item per clause, `pasa-certify::PASA-CERT-n`. The first item to run performs
the certification (once per session, certificate written to --pasa-out); each item then
passes, fails with its clause's worst case and reproduction command, or is skipped when its
clause is N/A or NOT RUN. The report header names the backend, its version, the profile,
level and seed, and the declared scope (--pasa-declare FILE, else the backend's
pasa_declaration, else the default; PASA-CERT-7). With no backend named (option or $PASA_BACKEND) nothing is added.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pasa_ref.certify import backend as backends
from pasa_ref.certify import declaration, thresholds
from pasa_ref.certify.criteria import CLAUSES, Clause
from pasa_ref.certify.runner import ENVIRONMENT_VARIABLE, Outcome, certify

_OUTCOME = pytest.StashKey[Outcome]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pasa", "PASA certification (pasa-ref, specs/certification.md)")
    group.addoption(
        "--pasa-backend",
        default=None,
        metavar="MODULE:FUNCTION",
        help=f"certify this backend (default: ${ENVIRONMENT_VARIABLE}); nothing "
        "is added when neither is set",
    )
    group.addoption("--pasa-profile", default=None, help="precision profile (default fp16-full)")
    group.addoption(
        "--pasa-level",
        type=int,
        default=None,
        choices=(1, 2, 3),
        help="certification level (default 1)",
    )
    group.addoption("--pasa-seed", type=int, default=None, help="seed of levels 2 and 3")
    group.addoption("--pasa-out", default="pasa-certificate", help="certificate directory")
    group.addoption("--pasa-timeout", type=float, default=None, help="seconds per call")
    group.addoption(
        "--pasa-isolate", action="store_true", help="run the backend in a child process"
    )
    group.addoption(
        "--pasa-declare",
        default=None,
        metavar="FILE",
        help="the backend's declaration, a TOML file (default: its pasa_declaration "
        "attribute, else the spec's default)",
    )
    group.addoption(
        "--pasa-case",
        action="append",
        default=[],
        metavar="FILE",
        help="certify on this case file only (repeatable)",
    )


def _backend_name(config: pytest.Config) -> str | None:
    return config.getoption("--pasa-backend") or os.environ.get(ENVIRONMENT_VARIABLE)


def _settings(config: pytest.Config) -> tuple[str, int, int]:
    conf = thresholds.load()
    level, seed = config.getoption("--pasa-level"), config.getoption("--pasa-seed")
    return (
        config.getoption("--pasa-profile") or conf.default_profile,
        conf.default_level if level is None else level,
        conf.default_seed if seed is None else seed,
    )


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    name = _backend_name(config)
    if not name:
        return None
    profile, level, seed = _settings(config)
    try:
        loaded = backends.load(name)
        declared = declaration.resolve(config.getoption("--pasa-declare"), loaded.function)
    except (backends.BackendError, declaration.DeclarationError) as error:
        return [f"pasa-ref certify: {error}"]
    return [
        (
            f"pasa-ref certify: backend {name} (version {loaded.version}), profile {profile}, "
            f"level {level}, seed {seed}"
        ),
        f"pasa-ref certify: declared scope ({declared.source}): {declared.scope_text()}",
    ]


class CertificationCollector(pytest.Collector):
    """The parent of the clause items (pytest needs one)."""

    def collect(self) -> list[pytest.Item]:
        return [ClauseItem.from_parent(self, name=clause.id, clause=clause) for clause in CLAUSES]


class ClauseFailed(Exception):
    """A clause failed; the message carries the worst case and its reproduction."""


class ClauseItem(pytest.Item):
    def __init__(self, *, clause: Clause, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clause = clause

    def runtest(self) -> None:
        outcome = _certification(self.config)
        record = next(c for c in outcome.document["clauses"] if c["id"] == self.clause.id)
        if record["verdict"] in ("N/A", "NOT RUN"):
            pytest.skip(
                f"{self.clause.id} {record['verdict']} at level {outcome.document['level']}"
            )
        if not outcome.document["complete"]:
            raise ClauseFailed(
                f"certification {outcome.status}: the certificate in {outcome.out} is incomplete"
            )
        if record["verdict"] == "FAIL":
            worst = record["worst"]
            raise ClauseFailed(
                f"{self.clause.id} ({self.clause.criterion}) {self.clause.name}: failed on "
                f"{record['failed']} of {record['evaluated']} cases\n"
                f"worst case {worst['case']}: {worst['message']}\n"
                f"reproduce: {worst.get('reproduce', '')}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, ClauseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.clause.id} ({self.clause.criterion}) {self.clause.name}"


def _certification(config: pytest.Config) -> Outcome:
    """Run the certification once per session (the first clause item triggers it)."""
    if _OUTCOME not in config.stash:
        profile, level, seed = _settings(config)
        config.stash[_OUTCOME] = certify(
            _backend_name(config),
            profile=profile,
            level=level,
            seed=seed,
            out=config.getoption("--pasa-out"),
            timeout=config.getoption("--pasa-timeout"),
            isolate=config.getoption("--pasa-isolate"),
            cases=config.getoption("--pasa-case"),
            declare=config.getoption("--pasa-declare"),
        )
    return config.stash[_OUTCOME]


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not _backend_name(config):
        return
    collector = CertificationCollector.from_parent(
        session, name="pasa-certify", nodeid="pasa-certify"
    )
    items.extend(collector.collect())


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if _OUTCOME in config.stash:
        outcome = config.stash[_OUTCOME]
        doc = outcome.document
        verdict = "CERTIFIED" if outcome.certified else "NOT CERTIFIED"
        if outcome.certified and doc["exceptions"]:
            verdict += " WITH EXCEPTIONS"
        terminalreporter.write_line(
            f"pasa-ref certify: {verdict} ({doc['scope']}); "
            f"{doc['cases']['not_applicable']} case(s) not applicable; "
            f"certificate in {outcome.out / 'certificate.json'}"
        )
