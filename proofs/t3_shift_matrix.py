"""T3: the shift matrix M_n = lambda (I_n - (beta/n) J_n): eigenvalues, determinant, inverse.

With J_n = 1 1^T, 1^T 1 = n gives J_n^2 = n J_n, and P = I_n - J_n / n is the orthogonal
projector onto 1^perp (P^2 = P, P 1 = 0, trace P = n - 1). Then

    M_n 1   = lambda (1 - beta) 1      (the block mean direction, once)
    M_n P w = lambda P w               (every w: the n - 1 dimensions of 1^perp)

so R^n = span(1) (+) range(P) is an eigenbasis and

    det M_n    = lambda (1 - beta) * lambda^(n - 1) = lambda^n (1 - beta),
    M_n^{-1}   = lambda^{-1} (I_n + (gamma / n) J_n),   gamma = beta / (1 - beta),

M_n is singular iff beta = 1 (lambda > 0), its kernel then being span(1): the block mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from proofs.blocks import BLOCKS, Block, Matrix, beta, gamma, lam, n
from proofs.core import Proof

THEOREM = "T3"
TITLE = "Shift matrix: eigenvalues, determinant lambda^n (1 - beta), inverse"
CLAUSES = ("PASA-EQ-2", "PASA-ALG-1")
STATEMENT = (
    "For every block length n: M_n has eigenvalue lambda (1 - beta) on 1 and lambda on 1^perp "
    "(multiplicity n - 1); det M_n = lambda^n (1 - beta); M_n^{-1} = lambda^{-1} (I_n + "
    "(gamma/n) J_n); M_n is singular iff beta = 1. The determinant is also expanded by "
    "cofactors for n = 1..8."
)

DETERMINANT_SIZES = tuple(range(1, 9))  # n for which det M_n is also computed by cofactors


@dataclass(frozen=True)
class Claim:
    """Claimed eigenvalues (on 1 and on 1^perp), determinant (in n) and inverse (in a block)."""

    mean_eigenvalue: sp.Expr
    other_eigenvalue: sp.Expr
    determinant: sp.Expr
    inverse: Callable[[Block], Matrix]


CLAIM = Claim(
    mean_eigenvalue=lam * (1 - beta),
    other_eigenvalue=lam,
    determinant=lam**n * (1 - beta),
    inverse=lambda b: (b.I + gamma / b.n * b.J) / lam,
)


def _projector(b: Block) -> Matrix:
    """P = I_n - J_n / n, the orthogonal projector onto 1^perp."""
    return b.I - b.J / b.n


def prove(claim: Claim = CLAIM) -> Proof:
    proof = Proof()
    symbolic = BLOCKS[0]
    j = sp.Symbol("j", integer=True, positive=True)
    proof.equal(
        "lemma: (J_n^2)_ik = sum_{j=1..n} 1 * 1 = n, for symbolic n",
        sp.Sum(1, (j, 1, n)),
        n,
    )
    proof.equal_in("J_n^2 = n J_n", BLOCKS, lambda b: (b.J * b.J, b.n * b.J))
    proof.equal_in(
        "P = I - J_n/n is a projector: P^2 = P",
        BLOCKS,
        lambda b: (_projector(b) * _projector(b), _projector(b)),
    )
    proof.equal_in(
        "P 1 = 0: range(P) is 1^perp", BLOCKS, lambda b: (_projector(b) * b.ones, 0 * b.ones)
    )
    proof.equal_in(
        "every vector splits: I = P + J_n/n, so R^n = range(P) (+) span(1)",
        BLOCKS,
        lambda b: (_projector(b) + b.J / b.n, b.I),
    )
    proof.equal(
        "dim range(P) = trace P = n - 1 (rank of a projector), for symbolic n",
        sp.Trace(_projector(symbolic)).doit(),
        n - 1,
    )
    proof.equal_in(
        "eigenvalue on the mean direction: M_n 1 = claimed * 1",
        BLOCKS,
        lambda b: (b.shift() * b.ones, claim.mean_eigenvalue * b.ones),
    )
    proof.equal_in(
        "eigenvalue on 1^perp: M_n P w = claimed * P w for every w",
        BLOCKS,
        lambda b: (b.shift() * _projector(b) * b.w, claim.other_eigenvalue * _projector(b) * b.w),
    )
    proof.equal(
        "det = product of eigenvalues over the eigenbasis span(1) (+) range(P)",
        claim.mean_eigenvalue * claim.other_eigenvalue ** sp.Trace(_projector(symbolic)).doit(),
        claim.determinant,
    )
    expanded = [(lam * (sp.eye(k) - beta / k * sp.ones(k, k))).det() for k in DETERMINANT_SIZES]
    claimed = [claim.determinant.subs(n, k) for k in DETERMINANT_SIZES]
    proof.equal(
        f"det by cofactor expansion, n = {DETERMINANT_SIZES[0]}..{DETERMINANT_SIZES[-1]}",
        sp.Matrix(expanded),
        sp.Matrix(claimed),
    )
    proof.equal_in(
        "inverse: M_n * claimed inverse = I",
        BLOCKS,
        lambda b: (b.shift() * claim.inverse(b), b.I),
    )
    proof.equal_in(
        "inverse from the left: claimed inverse * M_n = I",
        BLOCKS,
        lambda b: (claim.inverse(b) * b.shift(), b.I),
    )
    roots = sp.solveset(claim.determinant, beta, sp.Reals)
    proof.fact(
        "singular iff beta = 1 (lambda > 0): the real roots of det M_n in beta",
        "solveset(det M_n = 0, beta) = {1}",
        roots == sp.FiniteSet(1),
        roots,
    )
    proof.equal_in(
        "at beta = 1 the kernel is the mean direction: M_n 1 = 0, the block mean is lost",
        BLOCKS,
        lambda b: (b.shift(fraction=sp.Integer(1)) * b.ones, 0 * b.ones),
    )
    return proof
