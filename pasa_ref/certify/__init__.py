"""Certification of attention backends against the PASA spec (specs/certification.md,
clauses PASA-CERT-n).

One module, one job:

    backend.py      load `package.module:function`, call it with a timeout, optionally in a
                    child process (PASA-CERT-1..3)
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
"""

from __future__ import annotations

from pasa_ref.certify.backend import Backend, BackendError, load
from pasa_ref.certify.runner import Outcome, certify

__all__ = ["Backend", "BackendError", "Outcome", "certify", "load"]
