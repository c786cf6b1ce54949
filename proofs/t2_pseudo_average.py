"""T2: the pseudo-average. The shifted block keeps the fraction 1 - beta of its row mean.

From T1, S~ = S_raw M_n with S = lambda S_raw, and M_n 1 = lambda (1 - beta) 1 (J_n 1 = n 1):

    rowmean(S~) = S_raw M_n 1 / n = lambda (1 - beta) S_raw 1 / n = (1 - beta) rowmean(S).

The row mean is over all n columns of the block, before any mask (PASA-ALG-3), so the identity
needs no assumption on which keys are visible.
"""

from __future__ import annotations

import sympy as sp

from proofs.blocks import BLOCKS, beta, lam
from proofs.core import Proof

THEOREM = "T2"
TITLE = "Pseudo-average: rowmean(S~) = (1 - beta) rowmean(S)"
CLAUSES = ("PASA-ALG-3",)
STATEMENT = (
    "For every block length n: a = rowmean(S~) = (1 - beta) mu with mu = rowmean(S), "
    "S = lambda S_raw, S~ = S_raw M_n; the mean is over all n columns, before the mask."
)

CLAIM: sp.Expr = 1 - beta  # the claimed ratio a / mu


def prove(claim: sp.Expr = CLAIM) -> Proof:
    proof = Proof()
    proof.equal_in(
        "1 is an eigenvector of M_n: M_n 1 = lambda (1 - beta) 1, since J_n 1 = n 1",
        BLOCKS,
        lambda b: (b.shift() * b.ones, lam * claim * b.ones),
    )
    proof.equal_in(
        "rowmean(S_raw M_n) = (1 - beta) rowmean(lambda S_raw)",
        BLOCKS,
        lambda b: (b.rowmean(b.S_raw * b.shift()), claim * b.rowmean(lam * b.S_raw)),
    )
    proof.note(
        "With beta = 1 the pseudo-average is 0 whatever the scores: the removed mean leaves no "
        "trace, which is why T3 requires beta != 1 and T4 divides by 1 - beta."
    )
    return proof
