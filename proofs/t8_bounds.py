"""T8: score bounds, the resonance case, and the price of gamma.

Bound. By T1's key form, S~_it = lambda q_i . w_t with w_t = k_t - beta kbar. Lagrange's identity

    |q|^2 |w|^2 - (q . w)^2 = 1/2 sum_i sum_j (q_i w_j - q_j w_i)^2 >= 0

(symbolic head size D) gives |S~_it| <= lambda |q_i| |k_t - beta kbar|, with equality iff w_t is
parallel to q_i (every term of the sum vanishes).

Resonance. For q_d = A sin(omega d + phi), k_d = B sin(omega d + phi + delta):
q_i k_j - q_j k_i = A B sin(delta) sin(omega (i - j)), so the Lagrange defect is
1/2 A^2 B^2 sin(delta)^2 sum_{i,j} sin(omega (i - j))^2: |q . k| reaches its maximum |q| |k| iff
sin(delta) = 0, i.e. phase coincidence (delta = 0) or a 180-degree shift (delta = pi).

Price of gamma. An error e in the block mean a_j enters the recovered exponent as
S~_t + gamma (a_j + e) = S_t + gamma e: the block's weight is multiplied by
exp(gamma e) = 1 + gamma e + O(e^2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from proofs.blocks import BLOCKS, Block, D, Matrix, beta, gamma, lam
from proofs.core import Proof, show

THEOREM = "T8"
TITLE = "Score bounds, resonance, and the gamma amplification of block-mean errors"
CLAUSES = ("PASA-BND-1", "PASA-BND-2", "PASA-BND-3")
STATEMENT = (
    "|S~_it| <= lambda |q_i| |k_t - beta kbar| (Cauchy-Schwarz via Lagrange's identity, "
    "symbolic D; also expanded for D = 1..6); for q_d = A sin(omega d + phi), "
    "k_d = B sin(omega d + phi + delta), |q . k| = |q| |k| iff delta in {0, pi} (mod 2 pi, "
    "omega not a multiple of pi); an error e in a block mean shifts the recovered exponent by "
    "exactly gamma e, so the block weight changes by the factor 1 + gamma e + O(e^2)."
)

LAGRANGE_SIZES = tuple(range(1, 7))  # head sizes D for which the identity is also expanded

i, j = sp.symbols("i j", integer=True, positive=True)
amp_q, amp_k = sp.symbols("A B", positive=True)
omega, phi, delta = sp.symbols("omega phi delta", real=True)


@dataclass(frozen=True)
class Claim:
    """The vector w_t with S~_it = lambda q_i . w_t (built in a block, one row per key), the
    set of phase shifts delta in [0, 2 pi) where |q . k| = |q| |k|, and the factor by which a
    block-mean error is amplified in the exponent."""

    shifted_keys: Callable[[Block], Matrix]
    resonant_phases: sp.Set
    amplification: sp.Expr


CLAIM = Claim(
    shifted_keys=lambda blk: blk.K - beta * blk.ones * blk.keymean().T,
    resonant_phases=sp.FiniteSet(0, sp.pi),
    amplification=gamma,
)


def _separate(expr: sp.Expr) -> sp.Expr:
    """Distribute every finite sum over products: sum_{i,j} c f(i) g(j) = c (sum_i f)(sum_j g).

    Applied to the terms of the expanded expression; a factor that involves two summation
    indices stays in a joint sum. Each single sum is written with the dummy i, so that equal
    sums compare equal.
    """

    def split(term: sp.Sum) -> sp.Expr:
        factors = sp.Mul.make_args(term.function)
        indices = [limit[0] for limit in term.limits]
        free = [f for f in factors if not any(f.has(index) for index in indices)]
        mixed = [f for f in factors if sum(f.has(index) for index in indices) > 1]
        if mixed:
            return sp.Mul(*free) * sp.Sum(
                sp.Mul(*(f for f in factors if f not in free)), *term.limits
            )
        result = sp.Mul(*free)
        for index, low, high in term.limits:
            own = sp.Mul(*(f for f in factors if f.has(index)))
            result *= sp.Sum(own.subs(index, i), (i, low, high))
        return result

    return sp.expand(expr).replace(lambda e: isinstance(e, sp.Sum), split)


def _lagrange(x: sp.IndexedBase, y: sp.IndexedBase) -> tuple[sp.Expr, sp.Expr]:
    """(1/2 sum_{i,j} (x_i y_j - x_j y_i)^2, |x|^2 |y|^2 - (x . y)^2) for symbolic D."""
    pairs = sp.Sum((x[i] * y[j] - x[j] * y[i]) ** 2, (i, 1, D), (j, 1, D)) / 2
    norms = sp.Sum(x[i] ** 2, (i, 1, D)) * sp.Sum(y[i] ** 2, (i, 1, D))
    return pairs, norms - sp.Sum(x[i] * y[i], (i, 1, D)) ** 2


def _lagrange_defect(size: int) -> sp.Expr:
    """1/2 sum_{i,j} (q_i w_j - q_j w_i)^2 - |q|^2 |w|^2 + (q . w)^2 for D = size, expanded."""
    qs = sp.symbols(f"q1:{size + 1}", real=True)
    ws = sp.symbols(f"w1:{size + 1}", real=True)
    pairs = sum((qs[r] * ws[c] - qs[c] * ws[r]) ** 2 for r in range(size) for c in range(size))
    dot = sum(x * y for x, y in zip(qs, ws, strict=True))
    return pairs / 2 - sum(x**2 for x in qs) * sum(x**2 for x in ws) + dot**2


def _bound(proof: Proof, claim: Claim) -> None:
    proof.equal_in(
        "by T1, S~ = Q K~^T = lambda Q W^T with rows w_t of W the claimed vectors",
        BLOCKS,
        lambda blk: (blk.Q * (blk.shift().T * blk.K).T, lam * blk.Q * claim.shifted_keys(blk).T),
    )
    q, w = sp.IndexedBase("q", real=True), sp.IndexedBase("w", real=True)
    pairs, defect = _lagrange(q, w)
    proof.equal(
        "Lagrange's identity for symbolic D, the double sum distributed over products "
        "(sum_{i,j} f(i) g(j) = (sum_i f)(sum_j g))",
        _separate(pairs),
        defect,
        shown=f"{show(pairs)} = {show(defect)}",
    )
    proof.equal(
        f"Lagrange's identity expanded for D = {LAGRANGE_SIZES[0]}..{LAGRANGE_SIZES[-1]}",
        sp.Matrix([_lagrange_defect(size) for size in LAGRANGE_SIZES]),
        sp.zeros(len(LAGRANGE_SIZES), 1),
        shown="1/2 sum_{i,j} (q_i w_j - q_j w_i)^2 - |q|^2 |w|^2 + (q.w)^2 = 0",
    )
    square = (q[i] * w[j] - q[j] * w[i]) ** 2
    proof.fact(
        "each term of the Lagrange sum is the square of a real, so (q.w)^2 <= |q|^2 |w|^2 and "
        "|S~_it| = lambda |q_i . w_t| <= lambda |q_i| |w_t|",
        f"is_nonnegative({square})",
        square.is_nonnegative is True,
        square.is_nonnegative,
    )


def _resonance(proof: Proof, claim: Claim) -> None:
    def q(x: sp.Expr) -> sp.Expr:
        return amp_q * sp.sin(omega * x + phi)

    def k(x: sp.Expr) -> sp.Expr:
        return amp_k * sp.sin(omega * x + phi + delta)

    pair = amp_q * amp_k * sp.sin(delta) * sp.sin(omega * (i - j))
    proof.equal(
        "sinusoids: q_i k_j - q_j k_i = A B sin(delta) sin(omega (i - j))",
        q(i) * k(j) - q(j) * k(i),
        pair,
    )
    defect = sp.Sum(pair**2, (i, 1, D), (j, 1, D)) / 2
    constant = amp_q**2 * amp_k**2 * sp.Sum(sp.sin(omega * (i - j)) ** 2, (i, 1, D), (j, 1, D))
    proof.equal(
        "with it in Lagrange's identity (w = k), the Cauchy-Schwarz defect |q|^2 |k|^2 - "
        "(q.k)^2 = 1/2 sum_{i,j} (q_i k_j - q_j k_i)^2 is sin(delta)^2 C, C = A^2 B^2 / 2 "
        "sum_{i,j} sin(omega (i - j))^2 >= 0 (C > 0 unless omega is a multiple of pi, where q "
        "and k are parallel for every delta)",
        _separate(defect),
        sp.sin(delta) ** 2 * constant / 2,
        shown=f"{show(defect)} = sin(delta)**2 * {show(constant / 2)}",
    )
    phases = sp.solveset(sp.sin(delta) ** 2, delta, sp.Interval.Ropen(0, 2 * sp.pi))
    proof.fact(
        "|q.k| = |q| |k| (the maximum for given norms) iff sin(delta) = 0 on [0, 2 pi)",
        f"solveset(sin(delta)^2 = 0, delta, [0, 2 pi)) = {claim.resonant_phases}",
        phases == claim.resonant_phases,
        phases,
    )
    for phase, sign in ((0, 1), (sp.pi, -1)):
        proof.equal(
            f"at delta = {phase}: k is parallel to q (the equality case)",
            k(i).subs(delta, phase),
            sign * amp_k / amp_q * q(i),
            shown=f"B sin(omega i + phi + {phase}) = {'' if sign > 0 else '-'}(B/A) q_i",
        )


def _gamma_price(proof: Proof, claim: Claim) -> None:
    shifted, a, e = sp.symbols("Stilde_t a_j e", real=True)
    true_score = shifted + gamma * a  # T4
    proof.equal(
        "an error e in the block mean: S~_t + gamma (a_j + e) - S_t = claimed factor * e, exactly",
        shifted + gamma * (a + e) - true_score,
        claim.amplification * e,
    )
    weight = sp.exp(shifted + gamma * (a + e))
    proof.equal(
        "the block's log-weight moves at rate d/de log exp(S~_t + gamma (a_j + e)) = factor",
        sp.diff(sp.log(weight), e),
        claim.amplification,
    )
    ratio = sp.exp(sp.expand(sp.log(weight) - true_score))  # weight / exp(S_t)
    proof.equal(
        "to first order the block's weight is multiplied by 1 + factor * e",
        sp.series(ratio, e, 0, 2).removeO(),
        1 + claim.amplification * e,
        shown=f"series({show(ratio)}, e, 0, 2) = 1 + {show(claim.amplification)} * e",
    )
    values = ", ".join(
        f"{value} -> {float(gamma.subs(beta, sp.nsimplify(value))):.4g}"
        for value in ("0.9375", "0.96875", "0.9689939", "0.984497")
    )
    proof.note(f"gamma = beta/(1 - beta) for the authors' betas: {values}.")


def prove(claim: Claim = CLAIM) -> Proof:
    proof = Proof()
    _bound(proof, claim)
    _resonance(proof, claim)
    _gamma_price(proof, claim)
    return proof
