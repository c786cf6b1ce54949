"""The exact (mpmath) path of the oracle: ground truth for attention (spec PASA-ORC-3).

Every binary input is a dyadic rational, so for one query row q with visible keys t in V
(n = |V| >= 1), scale lambda (a binary64 number, used exactly) and P = ceil(digits log2 10):

    C_t = q . k_t                         exact, in Python integers
    d_t = lambda (C_t - max_u C_u)        exact dyadic, d_t <= 0, d_t = 0 at the maximum
    W_t = round(2^P exp(d_t))             mpmath exp at P + 20 bits, rounded to an integer;
                                          W_t = 0 when d_t < -(P + 3) ln 2
    o'  = sum_t W_t v_t / sum_t W_t       an exact rational
    x   = o' rounded to nearest binary64  (CPython's int / int is correctly rounded)

Then |W_t 2^-P - exp(d_t)| <= 2^-P and sum_t W_t 2^-P >= 1, hence
|o' - o| <= 2 n 2^-P max_t |v_t| for the exact attention output o, and the returned bound

    bound = |x - o'| + 2 n 2^-P max_{t in V} |v_t|      (computed exactly, rounded up)

satisfies |x - o| <= bound <= ulp(x)/2 + 2 n 2^-P max |v_t|. The one assumption is that
mpmath's exp at p bits has a relative error below 2^(10 - p) (it works with 14 guard bits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from operator import mul

import mpmath
import numpy as np

from pasa_ref.inputs import AttentionInputs

__all__ = ["attention", "precision_bits", "rows"]

_GUARD_BITS = 20


def precision_bits(digits: int) -> int:
    """P = ceil(digits * log2(10)): the fixed-point bits of the weights."""
    return math.ceil(digits * math.log2(10))


def attention(inputs: AttentionInputs, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """(output, bound) in the grouped view B x Hkv x G x S1 x Dv; rows without a visible key
    are 0 with bound 0 (PASA-MASK-3)."""
    index = np.nonzero(inputs.has_visible_key()[..., 0])
    out = np.zeros((*inputs.q.shape[:4], inputs.value_dim))
    bound = np.zeros_like(out)
    out[index], bound[index] = rows(inputs, index, digits)
    return out, bound


def rows(
    inputs: AttentionInputs, index: Sequence[np.ndarray], digits: int
) -> tuple[np.ndarray, np.ndarray]:
    """(output, bound), each n x Dv, for the rows (b, h, g, i) = index; every row must have a
    visible key."""
    bits = precision_bits(digits)
    ctx = mpmath.MPContext()
    ctx.prec = bits + _GUARD_BITS
    cutoff = -(bits + 3) * ctx.ln2
    heads: dict[tuple[int, int], _Head] = {}
    queries: dict[tuple[int, int, int], _Dyadic] = {}
    n = len(index[0])
    out = np.zeros((n, inputs.value_dim))
    bound = np.zeros_like(out)
    scale_man, scale_den = Fraction(inputs.scale).as_integer_ratio()
    scale_exp = 1 - scale_den.bit_length()  # scale_den is a power of two
    for r, (b, h, g, i) in enumerate(zip(*(np.asarray(ix).tolist() for ix in index))):
        if (b, h) not in heads:
            heads[b, h] = _Head(_dyadic(inputs.k[b, h, 0]), _dyadic(inputs.v[b, h, 0].T))
        if (b, h, g) not in queries:
            queries[b, h, g] = _dyadic(inputs.q[b, h, g])
        head, query = heads[b, h], queries[b, h, g]
        keys, columns, vmax = head.visible(_visible_columns(inputs, b, h, g, i))
        scores = [sum(map(mul, query.ints[i], key)) for key in keys]
        top = max(scores)
        unit = scale_exp + query.exponent + head.keys.exponent
        weights = [_weight(scale_man * (c - top), unit, ctx, bits, cutoff) for c in scores]
        out[r], bound[r] = _weighted_mean(weights, columns, vmax, head.values.exponent, bits)
    return out, bound


class _Dyadic:
    """A float64 matrix as Python integers times one power of two: x = ints * 2^exponent."""

    def __init__(self, ints: list[list[int]], exponent: int) -> None:
        self.ints = ints
        self.exponent = exponent


class _Head:
    """Keys (S2 rows) and values (Dv columns) of one (batch, kv head), exactly."""

    def __init__(self, keys: _Dyadic, values: _Dyadic) -> None:
        self.keys = keys
        self.values = values
        self.vmax = [max(map(abs, column)) for column in values.ints]

    def visible(self, cols: list[int] | None) -> tuple[list[list[int]], list[list[int]], list[int]]:
        """(key rows, value columns, max |v| per column) over the keys `cols` (None: all)."""
        if cols is None:
            return self.keys.ints, self.values.ints, self.vmax
        columns = [[column[t] for t in cols] for column in self.values.ints]
        return [self.keys.ints[t] for t in cols], columns, [max(map(abs, c)) for c in columns]


def _dyadic(x: np.ndarray) -> _Dyadic:
    """Exact conversion of a 2-D binary array. With x = f 2^e (frexp), m = f 2^53 is an integer;
    trailing zero bits of m are moved into the exponent to keep the integers short."""
    mant, expo = np.frexp(np.asarray(x, dtype=np.float64))
    m = (mant * 2.0**53).astype(np.int64)
    e = expo.astype(np.int64) - 53
    nonzero = m != 0
    low = np.where(nonzero, np.abs(m) & -np.abs(m), 1)
    trailing = np.frexp(low.astype(np.float64))[1].astype(np.int64) - 1
    m >>= trailing
    e += trailing
    e0 = int(e[nonzero].min()) if nonzero.any() else 0
    shift = np.where(nonzero, e - e0, 0)
    ints = [
        [a << s for a, s in zip(m_row, s_row)] for m_row, s_row in zip(m.tolist(), shift.tolist())
    ]
    return _Dyadic(ints, e0)


def _visible_columns(inputs: AttentionInputs, b: int, h: int, g: int, i: int) -> list[int] | None:
    """The keys row i of head (b, h, g) sees; None when it sees all."""
    tile = inputs.visible(slice(i, i + 1), slice(0, inputs.seq_k))
    if tile is None:
        return None
    full = np.broadcast_to(tile, (*inputs.q.shape[:3], 1, inputs.seq_k))
    return np.flatnonzero(full[b, h, g, 0]).tolist()


def _weight(man: int, exp: int, ctx: mpmath.MPContext, bits: int, cutoff: mpmath.mpf) -> int:
    """round(2^bits exp(man 2^exp)) for man <= 0, with absolute error below 1 (PASA-ORC-3)."""
    if man == 0:
        return 1 << bits
    d = ctx.mpf((man, exp))
    if d < cutoff:
        return 0
    y = ctx.exp(d)
    y_man, shift = int(y.man), int(y.exp) + bits
    if shift >= 0:
        return y_man << shift
    return (y_man + (1 << (-shift - 1))) >> -shift


def _weighted_mean(
    weights: list[int], columns: list[list[int]], vmax: list[int], exponent: int, bits: int
) -> tuple[list[float], list[float]]:
    """x_c = binary64 nearest to o'_c = sum W_t v_tc / sum W_t and its bound (module doc);
    v_tc = columns[c][t] 2^exponent, vmax[c] = max_t |columns[c][t]|."""
    total = sum(weights)
    n = len(weights)
    out, bound = [], []
    for column, top in zip(columns, vmax):
        a, den = _scaled(sum(map(mul, weights, column)), total, exponent)  # o' = a / den
        x = a / den
        xn, xd = x.as_integer_ratio()
        vn, vd = _scaled(2 * n * top, 1, exponent)
        err = Fraction(abs(xn * den - a * xd), xd * den) + Fraction(vn, vd << bits)
        out.append(x)
        bound.append(_round_up(err))
    return out, bound


def _scaled(num: int, den: int, exponent: int) -> tuple[int, int]:
    """(a, b) with a / b = num 2^exponent / den, a and b integers."""
    if exponent >= 0:
        return num << exponent, den
    return num, den << -exponent


def _round_up(x: Fraction) -> float:
    """The smallest binary64 number >= x (x >= 0)."""
    f = float(x)
    return f if Fraction(f) >= x else math.nextafter(f, math.inf)
