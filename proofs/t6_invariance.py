"""T6: softmax shift invariance and the metamorphic relations the certifier uses.

For one query row with scores s_t, t = 1..n, and values v_t (one component), attention is
O = sum_t exp(s_t) v_t / sum_t exp(s_t). For a constant c (free of t):

    exp(s_i + c) / sum_t exp(s_t + c) = exp(s_i) / sum_t exp(s_t)        (shift invariance)

MR-1: keys k_t + u give scores lambda q.(k_t + u) = s_t + lambda q.u, a constant shift: O is
unchanged. MR-2: values v_t + c give O + c, because the weights sum to 1. MR-3: values c v_t
give c O. All for symbolic n and head size D (one component of v, c and O).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from proofs.blocks import D, lam, n
from proofs.core import Proof

THEOREM = "T6"
TITLE = "Softmax shift invariance and the metamorphic relations"
CLAUSES = ("PASA-MR-1", "PASA-MR-2", "PASA-MR-3", "PASA-ALG-5")
STATEMENT = (
    "For symbolic n and D: softmax(s + c 1) = softmax(s); with O = softmax(S) V, adding one "
    "vector c to every key leaves O unchanged, adding c to every value row gives O + c, and "
    "multiplying V by a scalar c gives c O."
)

t, d, i = sp.symbols("t d i", integer=True, positive=True)
c = sp.Symbol("c", real=True)
O = sp.Symbol("O", real=True)  # the output before the transformation
q, k, v = (sp.IndexedBase(name, real=True) for name in ("q", "k", "v"))
u = sp.IndexedBase("u", real=True)  # the constant vector added to every key


@dataclass(frozen=True)
class Relations:
    """The claimed output after each transformation, as an expression in O and c."""

    key_shift: sp.Expr
    value_shift: sp.Expr
    value_scale: sp.Expr


CLAIM = Relations(key_shift=O, value_shift=O + c, value_scale=c * O)


def _score(key: sp.Expr) -> sp.Expr:
    """lambda q . key, key a D-vector indexed by d."""
    return lam * sp.Sum(q[d] * key, (d, 1, D))


def _attention(score: sp.Expr, value: sp.Expr) -> sp.Expr:
    """sum_t exp(score_t) value_t / sum_t exp(score_t), score and value indexed by t."""
    return sp.Sum(sp.exp(score) * value, (t, 1, n)) / sp.Sum(sp.exp(score), (t, 1, n))


def prove(claim: Relations = CLAIM) -> Proof:
    proof = Proof()
    s = sp.IndexedBase("s", real=True)
    proof.equal(
        "shift invariance: a constant c added to every score of a row cancels (symbolic n)",
        sp.exp(s[i] + c) / sp.Sum(sp.exp(s[t] + c), (t, 1, n)),
        sp.exp(s[i]) / sp.Sum(sp.exp(s[t]), (t, 1, n)),
    )
    shift = _score(k[t, d] + u[d]) - _score(k[t, d])
    proof.equal(
        "MR-1: shifting every key by u shifts row i's scores by lambda q.u (symbolic D)",
        shift,
        _score(u[d]),
    )
    proof.fact(
        "MR-1: that shift is the same for every key t",
        "t is not a free symbol of lambda q.u",
        t not in _score(u[d]).free_symbols,
        sorted(map(str, _score(u[d]).free_symbols)),
    )
    output = _attention(_score(k[t, d]), v[t])
    proof.equal(
        "MR-1: output with keys k_t + u = claimed (symbolic n, D)",
        _attention(_score(k[t, d] + u[d]), v[t]),
        claim.key_shift.subs(O, output),
    )
    proof.equal(
        "MR-2: output with values v_t + c = claimed (the weights sum to 1)",
        _attention(_score(k[t, d]), v[t] + c),
        claim.value_shift.subs(O, output),
    )
    proof.equal(
        "MR-3: output with values c v_t = claimed",
        _attention(_score(k[t, d]), c * v[t]),
        claim.value_scale.subs(O, output),
    )
    proof.note(
        "Shift invariance is also why PASA-ALG-5 may subtract any m_j (T5) and why a per-row "
        "constant error in the scores is harmless while a per-block one is not (T7, T8). A "
        "fully masked row is 0 by PASA-MASK-3 and stays 0 under MR-2: the relations are for "
        "rows with a visible key."
    )
    return proof
