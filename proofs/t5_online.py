"""T5: the online recurrence in the moving frame is exact attention, by induction over blocks.

For one query row, block j has true scores S_t = S~_t + gamma a_j (T4) on its visible columns
and S~_t = S_t = -inf on masked ones. Its statistics are m~ = max_t S~_t, l~ = sum_t
exp(S~_t - m~), P~V = sum_t exp(S~_t - m~) V_t. PASA-ALG-5 updates

    x = m~ + gamma (a_j - abar_j),    y = m_{j-1} + gamma (abar_{j-1} - abar_j),
    l_j = exp(y - m_j) l_{j-1} + exp(x - m_j) l~,   O_j likewise with O_{j-1} and P~V.

Invariant (PASA-EQ-1): l_j exp(m_j + gamma abar_j) = E_j := sum over blocks <= j of
sum_t exp(S_t), and O_j exp(m_j + gamma abar_j) = W_j := the matching sum of exp(S_t) V_t.

Block identity: exp(S_t) = exp(m~ + gamma a_j) exp(S~_t - m~), so the block adds
l~ exp(m~ + gamma a_j) to E and P~V exp(m~ + gamma a_j) to W. Step: multiply the update by
exp(m_j + gamma abar_j); the m_j cancel and x + gamma abar_j = m~ + gamma a_j,
y + gamma abar_j = m_{j-1} + gamma abar_{j-1}, which are the two frames being merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from proofs.core import Proof

THEOREM = "T5"
TITLE = "Online recurrence in the moving frame: invariant and exactness"
CLAUSES = (
    "PASA-ALG-4",
    "PASA-ALG-5",
    "PASA-ALG-6",
    "PASA-EQ-1",
    "PASA-BLK-2",
    "PASA-BLK-3",
    "PASA-BLK-4",
)
STATEMENT = (
    "If l_{j-1} exp(m_{j-1} + gamma abar_{j-1}) = E_{j-1} and O_{j-1} exp(m_{j-1} + gamma "
    "abar_{j-1}) = W_{j-1}, then after the update of PASA-ALG-5 l_j exp(m_j + gamma abar_j) = "
    "E_j and O_j exp(m_j + gamma abar_j) = W_j, for any m_j, any abar_{j-1}, abar_j, any "
    "gamma, any block length and any set of masked columns (including a fully masked block "
    "and the first block). By induction O_T / l_T = softmax(S) V for every row with a visible "
    "key."
)

gamma = sp.Symbol("gamma", positive=True)
m_prev, abar_prev, abar, a, mt, m = sp.symbols("m_prev abar_prev abar_j a_j mtilde m_j", real=True)
l_prev, lt = sp.symbols("l_prev ltilde", positive=True)
O_prev, pvt = sp.symbols("O_prev PVtilde", real=True)  # one component of O and of P~ V

# the masses E, W of everything before block j, by the induction hypothesis
E_prev = l_prev * sp.exp(m_prev + gamma * abar_prev)
W_prev = O_prev * sp.exp(m_prev + gamma * abar_prev)


@dataclass(frozen=True)
class Recurrence:
    """The claimed frame conversions: the block's max x and the old max y in the new frame."""

    x: sp.Expr
    y: sp.Expr


CLAIM = Recurrence(x=mt + gamma * (a - abar), y=m_prev + gamma * (abar_prev - abar))


def _mass(weight: sp.Expr, maximum: sp.Expr) -> sp.Expr:
    """weight * exp(maximum + gamma abar_j): a running statistic in absolute terms."""
    return weight * sp.exp(maximum + gamma * abar)


def _update(claim: Recurrence, old: sp.Expr, new: sp.Expr, maximum: sp.Expr) -> sp.Expr:
    """exp(y - m_j) old + exp(x - m_j) new   (PASA-ALG-5)."""
    return sp.exp(claim.y - maximum) * old + sp.exp(claim.x - maximum) * new


def _block_identity(proof: Proof) -> None:
    """The block's true sums in terms of its shifted statistics; masked columns vanish."""
    t = sp.Symbol("t", integer=True, positive=True)
    visible = sp.Symbol("v", integer=True, nonnegative=True)
    s_shifted, value = sp.IndexedBase("St", real=True), sp.IndexedBase("V", real=True)
    true_score = s_shifted[t] + gamma * a  # T4
    local = sp.exp(s_shifted[t] - mt)
    proof.equal(
        "block identity: sum_t exp(S_t) = exp(m~ + gamma a_j) l~ over the v visible columns "
        "(S_t = S~_t + gamma a_j by T4; symbolic v)",
        sp.Sum(sp.exp(true_score), (t, 1, visible)),
        sp.exp(mt + gamma * a) * sp.Sum(local, (t, 1, visible)),
    )
    proof.equal(
        "block identity, weighted: sum_t exp(S_t) V_t = exp(m~ + gamma a_j) P~V",
        sp.Sum(sp.exp(true_score) * value[t], (t, 1, visible)),
        sp.exp(mt + gamma * a) * sp.Sum(local * value[t], (t, 1, visible)),
    )
    score = sp.Symbol("s", real=True)
    vanish = tuple(sp.limit(sp.exp(score + shift), score, -sp.oo) for shift in (-mt, gamma * a))
    proof.fact(
        "masked columns (S~_t = -inf, so S_t = S~_t + gamma a_j = -inf: a_j is taken before the "
        "mask and is finite) add exp(-inf) = 0 to l~, P~V and the true sums alike",
        "lim_{s -> -inf} exp(s - m~) = lim_{s -> -inf} exp(s + gamma a_j) = 0",
        vanish == (0, 0),
        vanish,
    )


def _invariant_step(
    proof: Proof, claim: Recurrence, label: str, case: dict[sp.Symbol, sp.Expr]
) -> None:
    """Check both invariants after one update, in the situation `case` (substitutions)."""
    top = sp.Max(claim.x, claim.y).subs(case)
    for maximum, which in ((m, "any m_j"), (top, "m_j = max(x, y)")):
        for name, old, new, before, block in (
            ("l", l_prev, lt, E_prev, lt),
            ("O", O_prev, pvt, W_prev, pvt),
        ):
            after = _mass(_update(claim, old, new, maximum), maximum).subs(case)
            proof.equal(
                f"{label}, {which}: {name}_j exp(m_j + gamma abar_j) = before + block",
                after,
                (before + block * sp.exp(mt + gamma * a)).subs(case),
            )


def prove(claim: Recurrence = CLAIM) -> Proof:
    proof = Proof()
    _block_identity(proof)
    _invariant_step(proof, claim, "generic step", {})
    _invariant_step(
        proof,
        claim,
        "first block (m_0 = -inf, l_0 = O_0 = 0, abar_0 = 0)",
        {m_prev: -sp.oo, l_prev: 0, O_prev: 0, abar_prev: 0},
    )
    _invariant_step(
        proof,
        claim,
        "fully masked block (m~ = -inf, l~ = P~V = 0)",
        {mt: -sp.oo, lt: 0, pvt: 0},
    )
    no_key_yet = {m_prev: -sp.oo, l_prev: 0, mt: -sp.oo, lt: 0}
    with_zero = _update(claim, l_prev, lt, sp.Integer(0)).subs(no_key_yet)
    exponent = claim.y.subs(no_key_yet) - sp.Max(claim.x, claim.y).subs(no_key_yet)  # y - m_j
    proof.fact(
        "no visible key so far (m_{j-1} = m~ = -inf, l_{j-1} = l~ = 0): with 0 subtracted in "
        "place of m_j = -inf, l_j = 0 = the empty sum; subtracting m_j itself would give "
        "exp(-inf - (-inf)) = NaN",
        "l_j (0 subtracted) = 0, and y - m_j = nan",
        with_zero == 0 and exponent is sp.nan,
        (with_zero, exponent),
    )
    total, weighted, scale = sp.symbols("E_T W_T f_T", positive=True)
    proof.equal(
        "output: the invariants l_T f_T = E_T and O_T f_T = W_T, f_T = exp(m_T + gamma abar_T), "
        "give O_T / l_T = W_T / E_T = softmax(S) V",
        (weighted / scale) / (total / scale),
        weighted / total,
        shown="O_T / l_T = (W_T / f_T) / (E_T / f_T) = W_T / E_T",
    )
    proof.note(
        "Induction on j. Base j = 0: l_0 = O_0 = 0 and E_0 = W_0 = 0 (no block yet). Step: if "
        "the invariant holds after block j - 1 it holds after block j, as checked above with "
        "every symbol free: any m_j (exactness does not need m_j = max(x, y); the max only "
        "keeps the exponents <= 0), any abar_{j-1} and abar_j (any reference sequence: the "
        "running mean of PASA-ALG-4 is one choice), any gamma shared with T4, any block length "
        "and any set of visible columns (ragged last block in true-length mode, PASA-BLK-2, "
        "and padded columns masked after the pseudo-average, PASA-BLK-3, -4). Hence the "
        "invariant holds after every block j = 1..T for any T, and O_T / l_T = softmax(S) V for every "
        "row with at least one visible key (E_T > 0). A row with none keeps l_T = 0 and is "
        "output as 0 by PASA-MASK-3."
    )
    return proof
