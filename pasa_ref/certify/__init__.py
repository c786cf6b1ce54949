"""Certification of attention backends against the PASA spec (specs/certification.md,
clauses PASA-CERT-n).

One module, one job:

    backend.py      name, load and call a backend with a deadline, optionally in a child
                    process (PASA-CERT-1..3, -50..52); the loader of certify, hunt and replay
    wire.py         what an isolated backend's child may send back: bytes, never pickles
    thresholds.py   the numbers of specs/conformance.toml [certification] (nothing normative
                    lives only in code)
    generators.py   deterministic input recipes: the paper's grid, benign, edge and
                    metamorphic-base cases
    levels.py       which cases each level runs, deterministic from the seed (PASA-CERT-5)
    relations.py    the metamorphic transformations PASA-MR-1..3
    evidence.py     what one case yields: the backend's outputs, the oracle, the reference
    criteria.py     the clauses (a)..(f) as pure functions of the evidence (PASA-CERT-10..16)
    certificate.py  the certificate: per-clause records, JSON and Markdown, written after
                    every case (PASA-CERT-20..22)
    runner.py       the engine: plan -> evidence -> findings -> certificate, with progress
    casefiles.py    `pasa gen` / `pasa verify` for kernels Python cannot call (PASA-CERT-4)

The names below are imported on first use, so that `pasa_ref.certify.backend` alone (what an
isolated backend's child process loads) stays light and pasa_ref.hunt can use it.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Backend", "BackendError", "Outcome", "certify", "load"]

_HOMES = {
    "Backend": "backend",
    "BackendError": "backend",
    "load": "backend",
    "Outcome": "runner",
    "certify": "runner",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
