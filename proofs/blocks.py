"""The proofs' shared vocabulary: PASA's scalars and one key block, symbolic or concrete in size.

Notation as in the spec (PASA-NOT): lambda = scale (lambda_M when folded into M), beta the
shift fraction, gamma = beta / (1 - beta); a block has n keys seen by m query rows, head size D.
J_n = 1 1^T is the n x n all-ones matrix, so 1^T 1 = n and J_n^2 = n J_n; rowmean(X) = X 1 / n.

A `Block` carries the matrices of one block either as matrix symbols of symbolic size m, n, D
(the proof for every n) or as explicit matrices with one symbol per entry for a concrete n (the
same identity expanded entry by entry: a check of the symbolic rewriting itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.matrices.expressions import Identity, MatrixExpr, MatrixSymbol, OneMatrix

__all__ = ["BLOCKS", "CONCRETE_SIZES", "Block", "D", "beta", "gamma", "lam", "m", "n"]

lam = sp.Symbol("lambda", positive=True)
beta = sp.Symbol("beta", positive=True)
gamma = beta / (1 - beta)
m, n, D = sp.symbols("m n D", integer=True, positive=True)

CONCRETE_SIZES = (1, 2, 3, 4)  # block lengths n checked entry by entry (m = D = 2)

Matrix = MatrixExpr | sp.MatrixBase


@dataclass(frozen=True)
class Block:
    """One key block: S_raw = Q K^T (m x n) as a free matrix, Q (m x D), K (n x D), a free
    n-column w, and I_n, J_n, 1."""

    label: str
    n: sp.Expr
    I: Matrix
    J: Matrix
    ones: Matrix
    S_raw: Matrix
    Q: Matrix
    K: Matrix
    w: Matrix

    @classmethod
    def symbolic(cls) -> Block:
        ones = OneMatrix(n, 1)
        return cls(
            label="symbolic n",
            n=n,
            I=Identity(n),
            J=ones * ones.T,
            ones=ones,
            S_raw=MatrixSymbol("S", m, n),
            Q=MatrixSymbol("Q", m, D),
            K=MatrixSymbol("K", n, D),
            w=MatrixSymbol("w", n, 1),
        )

    @classmethod
    def concrete(cls, size: int, rows: int = 2, head: int = 2) -> Block:
        def entries(name: str, r: int, c: int) -> sp.Matrix:
            return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))

        return cls(
            label=f"n = {size}",
            n=sp.Integer(size),
            I=sp.eye(size),
            J=sp.ones(size, size),
            ones=sp.ones(size, 1),
            S_raw=entries("s", rows, size),
            Q=entries("q", rows, head),
            K=entries("k", size, head),
            w=entries("w", size, 1),
        )

    def shift(self, scale: sp.Expr = lam, fraction: sp.Expr = beta) -> Matrix:
        """M_n = scale (I_n - (fraction / n) J_n)   (PASA-ALG-1)."""
        return scale * (self.I - fraction / self.n * self.J)

    def rowmean(self, X: Matrix) -> Matrix:
        """rowmean(X) = X 1 / n, a column (PASA-NOT-3)."""
        return X * self.ones / self.n

    def recover(self, shifted: Matrix, factor: sp.Expr) -> Matrix:
        """S~ + factor rowmean(S~) 1^T: the recovery of T4 (factor gamma) and T7."""
        return shifted + factor * self.rowmean(shifted) * self.ones.T

    def keymean(self) -> Matrix:
        """kbar = K^T 1 / n, the mean key of the block (a D-column)."""
        return self.K.T * self.ones / self.n


BLOCKS: tuple[Block, ...] = (Block.symbolic(), *(Block.concrete(k) for k in CONCRETE_SIZES))
