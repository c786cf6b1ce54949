"""T4: recovery. The scores are the shifted scores plus gamma times their pseudo-average.

T1 removes beta mu from every entry of a row; T2 leaves a = (1 - beta) mu. Hence
beta mu = gamma a with gamma = beta / (1 - beta), the only factor that does so, and

    S = S~ + gamma rowmean(S~) 1^T            (exactly, for every block length n).

This is the "global recovering" of the paper: the shift is never undone entry by entry, it is
carried as the scalar gamma a_j into the exponent (T5).
"""

from __future__ import annotations

import sympy as sp

from proofs.blocks import BLOCKS, gamma, lam
from proofs.core import Proof, matrix_coefficients, show

THEOREM = "T4"
TITLE = "Recovery: S = S~ + beta/(1 - beta) rowmean(S~) 1^T"
CLAUSES = ("PASA-ALG-3", "PASA-EQ-1")
STATEMENT = (
    "For every block length n and beta != 1: S = S~ + gamma rowmean(S~) 1^T with "
    "gamma = beta / (1 - beta), S = lambda S_raw, S~ = S_raw M_n; gamma is the only factor "
    "for which this holds for all S_raw."
)

CLAIM: sp.Expr = gamma  # the claimed recovery factor


def prove(claim: sp.Expr = CLAIM) -> Proof:
    proof = Proof()
    factor = sp.Symbol("g")
    block = BLOCKS[0]  # symbolic n
    shifted = block.S_raw * block.shift()
    residual = block.recover(shifted, factor) - lam * block.S_raw
    conditions = list(matrix_coefficients(residual).values())
    solutions = sp.solve(conditions, factor, dict=True)
    proof.fact(
        "S~ + g rowmean(S~) 1^T - lambda S_raw = c(g) S_raw J_n: exactly one g makes every "
        "coefficient vanish",
        f"solve({show(conditions)}, g) = [{{g: {claim}}}]",
        len(solutions) == 1 and sp.cancel(solutions[0][factor] - claim) == 0,
        solutions,
    )
    proof.equal_in(
        "S~ + g rowmean(S~) 1^T = lambda S_raw with g the claimed factor",
        BLOCKS,
        lambda b: (b.recover(b.S_raw * b.shift(), claim), lam * b.S_raw),
    )
    proof.note(
        "gamma = 15 for beta = 0.9375 and 31 for beta = 0.96875; beta = 1 leaves no factor "
        "(a = 0, T2) and M_n singular (T3)."
    )
    return proof
