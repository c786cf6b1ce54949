"""T7: rounding-aware beta. What recovery is exact for the rounded M, and what the authors' fixed
point makes exact instead.

Rounding the entries of M_n (lambda_M = 1) gives diagonal d = fl(1 - beta/n) and off-diagonal
-b, b = fl(beta/n). With the authors' a = d + b (PASA-BETA-1):

    M_r = d I - b (J - I) = a (I - (beta_eff/n) J),   beta_eff = n b / a,
    M_r 1 = (a - n b) 1                                (row sum d - (n - 1) b).

Exact recovery for M_r: S~ + g rowmean(S~) 1^T = a S_raw (the scores at the effective scale a)
holds for all S_raw iff g = gamma_eff = beta_eff / (1 - beta_eff) = n b / (a - n b).

The authors' F = b n / (a (a - b n)) + (1 - a) / a equals 1 / (a - n b) - 1, so their fixed point
beta = F / (1 + F) means 1 - beta = a - n b, the row sum of M_r: T2 made exact for M_r. With
g = F the recovered scores are S_raw + (a - 1)(S_raw - mu 1^T): the row mean mu is exact and
the deviations from it are scaled by a. The two factors differ by

    F - gamma_eff = (1 - a) / (a - n b),      F/(1+F) - beta_eff = (1 - a)(1 - beta_eff),

zero iff a = 1, and the recovered scores differ by the block constant (1 - a) mu_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from proofs.blocks import BLOCKS, Block, Matrix, lam, n
from proofs.core import Proof, matrix_coefficients, show

THEOREM = "T7"
TITLE = "Rounding-aware beta: exact recovery for the rounded M vs the authors' fixed point"
CLAUSES = ("PASA-BETA-1", "PASA-BETA-2", "PASA-BETA-3", "PASA-NUM-6", "PASA-ALG-1", "PASA-ALG-3")
STATEMENT = (
    "For rounded entries d (diagonal) and -b (off-diagonal), a = d + b: M_r = a (I - "
    "(beta_eff/n) J) with beta_eff = n b / a; S~ + g rowmean(S~) 1^T = a S_raw for all S_raw iff "
    "g = gamma_eff = n b / (a - n b). The authors' F of PASA-BETA-1 equals 1/(a - n b) - 1, "
    "F/(1+F) = 1 - (a - n b); F - gamma_eff = (1 - a)/(a - n b) and F/(1+F) - beta_eff = "
    "(1 - a)(1 - beta_eff): they agree iff a = 1. With g = F the recovered scores are "
    "S_raw + (a - 1)(S_raw - mu 1^T) (row mean exact)."
)

d, b = sp.symbols("d b", positive=True)  # rounded diagonal, minus the rounded off-diagonal
a = d + b  # the authors' a = fl(1 - beta/n) + fl(beta/n)
beta_eff = n * b / a
gamma_eff = beta_eff / (1 - beta_eff)
authors_F = b * n / (a * (a - b * n)) + (1 - a) / a  # PASA-BETA-1, lambda_M = 1


@dataclass(frozen=True)
class Claim:
    """The claimed exact recovery factor for M_r and the claimed gap F - gamma_eff."""

    recovery_factor: sp.Expr
    authors_gap: sp.Expr


CLAIM = Claim(recovery_factor=n * b / (d + b - n * b), authors_gap=(1 - a) / (a - n * b))


def _rounded(blk: Block) -> Matrix:
    """M_r = d I - b (J - I)."""
    return d * blk.I - b * (blk.J - blk.I)


def _recovered(blk: Block, factor: sp.Expr) -> Matrix:
    """S~ + factor rowmean(S~) 1^T with S~ = S_raw M_r."""
    return blk.recover(blk.S_raw * _rounded(blk), factor.subs(n, blk.n))


def _deviation(blk: Block) -> Matrix:
    """S_raw - rowmean(S_raw) 1^T."""
    return blk.S_raw - blk.rowmean(blk.S_raw) * blk.ones.T


def prove(claim: Claim = CLAIM) -> Proof:
    proof = Proof()
    g = sp.Symbol("g")
    proof.equal_in(
        "the rounded M is a scaled shift matrix: d I - b (J - I) = a (I - (beta_eff/n) J)",
        BLOCKS,
        lambda blk: (_rounded(blk), blk.shift(scale=a, fraction=beta_eff.subs(n, blk.n))),
    )
    proof.equal_in(
        "its row sum: M_r 1 = (a - n b) 1 = (d - (n - 1) b) 1",
        BLOCKS,
        lambda blk: (_rounded(blk) * blk.ones, (a - blk.n * b) * blk.ones),
    )
    proof.equal(
        "the claimed recovery factor is beta_eff / (1 - beta_eff)",
        claim.recovery_factor,
        gamma_eff,
    )
    proof.equal_in(
        "exact recovery for M_r: S~ + g rowmean(S~) 1^T = a S_raw",
        BLOCKS,
        lambda blk: (_recovered(blk, claim.recovery_factor), a * blk.S_raw),
    )
    conditions = list(matrix_coefficients(_recovered(BLOCKS[0], g) - a * BLOCKS[0].S_raw).values())
    solutions = sp.solve(conditions, g, dict=True)
    proof.fact(
        "that factor is unique: S~ + g rowmean(S~) 1^T - a S_raw = c(g) S_raw J_n and exactly "
        "one g makes every coefficient vanish",
        f"solve({show(conditions)}, g) = [{{g: {claim.recovery_factor}}}]",
        len(solutions) == 1 and sp.cancel(solutions[0][g] - claim.recovery_factor) == 0,
        solutions,
    )
    proof.equal(
        "the authors' F (PASA-BETA-1) in closed form: F = 1/(a - n b) - 1",
        authors_F,
        1 / (a - n * b) - 1,
    )
    proof.equal(
        "their update F/(1+F) = 1 - (a - n b): at the fixed point 1 - beta is the row sum of "
        "M_r, i.e. T2 holds exactly for M_r",
        authors_F / (1 + authors_F),
        1 - (a - n * b),
    )
    proof.equal_in(
        "with g = F the recovered row mean is exact: rowmean(S~ + F rowmean(S~) 1^T) = "
        "rowmean(S_raw)",
        BLOCKS,
        lambda blk: (blk.rowmean(_recovered(blk, authors_F)), blk.rowmean(blk.S_raw)),
    )
    proof.equal_in(
        "with g = F: S~ + F rowmean(S~) 1^T = S_raw + (a - 1)(S_raw - rowmean(S_raw) 1^T)",
        BLOCKS,
        lambda blk: (_recovered(blk, authors_F), blk.S_raw + (a - 1) * _deviation(blk)),
    )
    proof.equal(
        "where they differ: F - gamma_eff = claimed gap",
        authors_F - gamma_eff,
        claim.authors_gap,
    )
    proof.equal(
        "in beta: F/(1+F) - beta_eff = (1 - a)(1 - beta_eff)",
        authors_F / (1 + authors_F) - beta_eff,
        (1 - a) * (1 - beta_eff),
    )
    roots = sp.solve(authors_F - gamma_eff, d)
    proof.fact(
        "they agree iff a = d + b = 1",
        "solve(F - gamma_eff = 0, d) = [1 - b]",
        roots == [1 - b],
        roots,
    )
    proof.equal_in(
        "by how much the recovered scores differ: a block constant (1 - a) rowmean(S_raw)",
        BLOCKS,
        lambda blk: (
            _recovered(blk, authors_F) - _recovered(blk, gamma_eff),
            (1 - a) * blk.rowmean(blk.S_raw) * blk.ones.T,
        ),
    )
    proof.equal_in(
        "with the scale folded into M (entries of lambda M_n rounded): the mean-exact factor "
        "is g = lambda/(a - n b) - 1, PASA-BETA-1 being lambda = 1",
        BLOCKS,
        lambda blk: (
            blk.rowmean(_recovered(blk, lam / (a - n * b) - 1)),
            lam * blk.rowmean(blk.S_raw),
        ),
    )
    proof.note(
        "Reading. gamma_eff recovers a S_raw: every score carries the relative scale error "
        "a - 1. F recovers S_raw + (a - 1)(S_raw - mu_j 1^T): the error is proportional to the "
        "deviation from the block mean, smaller when scores have a large common bias (PASA's "
        "target), but the two recoveries differ by (1 - a) mu_j, which changes from block to "
        "block and therefore changes the softmax weights between blocks (T6: only a constant "
        "per row is harmless). Neither recovers S_raw exactly unless a = 1."
    )
    proof.note(_fp16_illustration())
    return proof


def _fp16_iteration(start: float, size: int) -> float:
    """PASA-BETA-1 in binary64 with fp16 entries (numpy.float16 rounds to nearest even)."""
    evaluate_F = sp.lambdify((b, d, n), authors_F)
    current = start
    while True:
        F = evaluate_F(
            float(np.float16(current / size)), float(np.float16(1 - current / size)), size
        )
        updated = F / (1 + F)
        if abs(updated - current) / current < 1e-8:
            return updated
        current = updated


def _fp16_illustration(size: int = 128) -> str:
    """Numbers (an illustration, not part of the proof) for fp16 and the authors' starts."""
    lines = [
        (
            f"Illustration in fp16, n = {size} (numbers, not proof): the fixed point beta* of "
            "PASA-BETA-1 and, at beta*, d = fl(1 - beta*/n), b = fl(beta*/n), a = d + b; the "
            "last column is the difference (1 - a) mu_j of the two recovered scores for a "
            "block mean mu_j = 100."
        ),
        "",
        "| start | beta* | 1 - a | beta_eff | F - gamma_eff | F/(1+F) - beta_eff | (1 - a) 100 |",
        "|---|---|---|---|---|---|---|",
    ]
    for start in (1 - 2**-4, 1 - 2**-5, 1 - 2**-6):
        fixed = _fp16_iteration(start, size)
        values = {
            b: float(np.float16(fixed / size)),
            d: float(np.float16(1.0 - fixed / size)),
            n: size,
        }
        gap = float((authors_F - gamma_eff).subs(values))
        beta_gap = float((authors_F / (1 + authors_F) - beta_eff).subs(values))
        one_minus_a = float((1 - a).subs(values))
        lines.append(
            f"| {start:.6f} | {fixed:.7f} | {one_minus_a:.3e} | "
            f"{float(beta_eff.subs(values)):.7f} | {gap:.6f} | {beta_gap:.3e} | "
            f"{100 * one_minus_a:.4f} |"
        )
    return "\n".join(lines)
