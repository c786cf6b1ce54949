"""T1: the shift identity. One GEMM with M_n removes a fraction beta of each row's block mean.

With M_n = lambda (I_n - (beta/n) J_n) and J_n = 1 1^T:

    S_raw M_n = lambda S_raw - (lambda beta / n) (S_raw 1) 1^T
              = lambda (S_raw - beta rowmean(S_raw) 1^T)                  (row form)
    M_n^T K   = lambda (K - (beta / n) 1 (1^T K)) = lambda (K - beta 1 kbar^T)   (key form)

so shifting the keys once per block (K~ = M_n^T K) is per-block key-mean smoothing, and the
scores computed from the shifted keys are Q K~^T = (Q K^T) M_n = S - beta mu 1^T.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from proofs.blocks import BLOCKS, Block, Matrix, beta, lam
from proofs.core import Proof

THEOREM = "T1"
TITLE = "Shift identity and per-block key-mean smoothing"
CLAUSES = ("PASA-ALG-1", "PASA-ALG-2")
STATEMENT = (
    "For every block length n, with M_n = lambda (I_n - (beta/n) J_n): "
    "S_raw M_n = lambda (S_raw - beta rowmean(S_raw) 1^T) and "
    "M_n^T K = lambda (K - beta 1 kbar^T), kbar = K^T 1 / n; hence the scores of the shifted "
    "keys are S~ = Q (M_n^T K)^T = S - beta mu 1^T with S = lambda Q K^T, mu = rowmean(S)."
)


@dataclass(frozen=True)
class Claim:
    """The claimed right-hand sides of the row form and the key form, built in a block."""

    row_form: Callable[[Block], Matrix]
    key_form: Callable[[Block], Matrix]


CLAIM = Claim(
    row_form=lambda b: lam * (b.S_raw - beta * b.rowmean(b.S_raw) * b.ones.T),
    key_form=lambda b: lam * (b.K - beta * b.ones * b.keymean().T),
)


def _true_scores_shifted(b: Block) -> Matrix:
    """S - beta mu 1^T with S = lambda Q K^T."""
    scores = lam * b.Q * b.K.T
    return scores - beta * b.rowmean(scores) * b.ones.T


def prove(claim: Claim = CLAIM) -> Proof:
    proof = Proof()
    proof.equal_in(
        "M_n is symmetric (J_n^T = J_n), so shifting keys and shifting scores use one matrix",
        BLOCKS,
        lambda b: (b.shift().T, b.shift()),
    )
    proof.equal_in(
        "row form: S_raw M_n, J_n = 1 1^T",
        BLOCKS,
        lambda b: (b.S_raw * b.shift(), claim.row_form(b)),
    )
    proof.equal_in(
        "key form: M_n^T K subtracts beta times the block's mean key",
        BLOCKS,
        lambda b: (b.shift().T * b.K, claim.key_form(b)),
    )
    proof.equal_in(
        "scores of the shifted keys are the shifted scores: Q K~^T = (Q K^T) M_n",
        BLOCKS,
        lambda b: (b.Q * (b.shift().T * b.K).T, (b.Q * b.K.T) * b.shift()),
    )
    proof.equal_in(
        "with the key form: Q K~^T = S - beta mu 1^T, S = lambda Q K^T, mu = rowmean(S)",
        BLOCKS,
        lambda b: (b.Q * claim.key_form(b).T, _true_scores_shifted(b)),
    )
    proof.note(
        "beta = 1 subtracts the whole mean key of the block (SageAttention's smoothing uses the "
        "global key mean); PASA keeps beta < 1 so that the removed part stays recoverable "
        "(T3, T4)."
    )
    return proof
