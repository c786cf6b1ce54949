"""The fast path of the oracle: exact scores, a binary64 softmax relative to a reference key,
and a bound on every output element (spec PASA-ORC-4 .. PASA-ORC-9).

For one query row i with visible keys V (n = S2 >= |V|), exact scores s_t = lambda q.k_t and a
visible reference key r:

1. Split (PASA-ORC-5). q = 2^e_i (sum_a Q_a + R_q), k_t = 2^f (sum_b K_b + R_k) with slices of
   beta bits (`split`); the level-L part of the score,
   C_L[t] = sum_{a+b=L} Q_a . K_b[t], is exact in binary64, and so is
   Delta_L[t] = C_L[t] - C_L[r].
2. Exponent (PASA-ORC-6). dhat_t = fl(lambda_i fl(Delta_(N-1) + ... + Delta_0)) with
   lambda_i = lambda 2^(e_i + f); |dhat_t - d_t| <= 2.01 u |d_t| + eta_i for d_t = s_t - s_r.
3. Softmax (PASA-ORC-7). w_t = exp(dhat_t), l = sum w_t, O = sum w_t v_t in key blocks of
   KEY_BLOCK (BLAS GEMM, then a running sum), x = O / l.
4. Bound (PASA-ORC-8). |x_c - o_c| <= F_i Vmax_c + (S2 + 1) 2^-1073 with
   F_i = 2.0002 (E_exp + eta_i + 2.01 u (ln S2 + 2 tau_i) + 2 S2 2^-1074) + 2.01 g + 1.01 u,
   g = gamma_(KEY_BLOCK + T), tau_i >= max_t d_t, Vmax_c = max_t |v_tc|.

The reference key is the argmax of a binary64 estimate of the scores; a row whose maximum
dhat exceeds 1 takes its argmax as the new reference (at most MAX_REFINEMENTS times). Rows
whose bound's preconditions still fail (eta_i > 2^-21, tau_i > 1 or a non-finite sum) are
computed by the exact path (PASA-ORC-9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pasa_ref.inputs import AttentionInputs, blocks
from pasa_ref.oracle import exact
from pasa_ref.oracle.split import Split, row_exponents, slice_bits, split

__all__ = ["EXP_REL_ERROR", "KEY_BLOCK", "attention"]

U = 2.0**-53
# Assumption PASA-ORC-7: numpy's binary64 exp has relative error <= EXP_REL_ERROR (4 ulps)
# wherever the result is normal; tests/test_oracle.py measures it against mpmath.
EXP_REL_ERROR = 2.0**-50
KEY_BLOCK = 512
TILE_ELEMENTS = 2**21
MAX_SLICES = 8
MAX_REFINEMENTS = 3
ETA_LIMIT = 2.0**-21
TAU_LIMIT = 1.0


def attention(inputs: AttentionInputs, digits: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(output, bound, number of rows sent to the exact path), output and bound in the grouped
    view B x Hkv x G x S1 x Dv."""
    ops = _operands(inputs)
    visible = inputs.has_visible_key()[..., 0]
    reference = _select_reference(inputs, ops)
    for _ in range(MAX_REFINEMENTS + 1):
        acc = _accumulate(inputs, ops, _reference_levels(ops, reference))
        stray = visible & ~(acc.top <= TAU_LIMIT)
        if not stray.any():
            break
        reference = np.where(stray, acc.top_index, reference)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        tau = np.maximum(0.0, (acc.top + ops.eta) / (1 - 2.01 * U))
        out = acc.weighted / acc.total[..., None]
    valid = visible & (tau <= TAU_LIMIT) & (ops.eta <= ETA_LIMIT) & np.isfinite(out).all(axis=-1)
    factor = _bound_factor(inputs, ops.eta, np.where(valid, tau, 0.0))
    vmax = np.abs(ops.v).max(axis=-2)[:, :, None, None, :]  # B x Hkv x 1 x 1 x Dv
    bound = factor[..., None] * vmax * (1 + 2.0**-40) + (inputs.seq_k + 1) * 2.0**-1073
    out = np.where(valid[..., None], out, 0.0)
    bound = np.where(valid[..., None], bound, 0.0)
    fallback = np.nonzero(visible & ~valid)
    if len(fallback[0]):
        out[fallback], bound[fallback] = exact.rows(inputs, fallback, digits)
    return out, bound, len(fallback[0])


def gamma(n: int) -> float:
    """gamma_n = n u / (1 - n u) (Higham), 0 for n <= 0."""
    return max(n, 0) * U / (1 - max(n, 0) * U)


def _bound_factor(inputs: AttentionInputs, eta: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """F_i of PASA-ORC-8."""
    n = inputs.seq_k
    key_block = min(KEY_BLOCK, n)
    g = gamma(key_block + math.ceil(n / key_block))
    weights = EXP_REL_ERROR + eta + 2.01 * U * (math.log(n) + 2 * tau) + 2 * n * 2.0**-1074
    return 2.0002 * weights + 2.01 * g + 1.01 * U


@dataclass(frozen=True)
class _Operands:
    """Normalised inputs, level operands and per-row constants of one oracle call."""

    q_norm: np.ndarray  # B x Hkv x G x S1 x D, fl(q 2^-e_i)
    k_norm: np.ndarray  # B x Hkv x S2 x D, fl(k 2^-f)
    v: np.ndarray  # B x Hkv x S2 x Dv
    q_split: Split
    k_split: Split
    pairs: tuple[tuple[tuple[int, int], ...], ...]  # level L -> slice pairs (a, b), a + b = L
    q_levels: tuple[np.ndarray, ...]  # level L: [Q_a for (a, b)] concatenated along D
    k_levels: tuple[np.ndarray, ...]  # level L: [K_b for (a, b)] concatenated along D
    mantissa: float  # lambda = mantissa 2^e_lambda, 1/2 <= mantissa < 1
    exponent: np.ndarray  # B x Hkv x G x S1: e_i + f + e_lambda, so lambda_i = mantissa 2^exponent
    direct: bool  # every lambda_i is a normal binary64 number
    eta: np.ndarray  # B x Hkv x G x S1, eta_i of PASA-ORC-6

    def scaled(self, x: np.ndarray, rows: slice) -> np.ndarray:
        """fl(lambda_i x) in place, x a tile of the rows `rows` (trailing column axis): one
        multiplication by lambda_i when it is normal, else fl(mantissa x) scaled by
        2^exponent (one rounding, up to underflow)."""
        e = self.tile(self.exponent, rows)[..., None]
        if self.direct:
            x *= np.ldexp(self.mantissa, e)
            return x
        x *= self.mantissa
        return np.ldexp(x, e, out=x)

    @staticmethod
    def tile(x: np.ndarray, rows: slice) -> np.ndarray:
        """B x Hkv x G x S1 (x X)  ->  B x Hkv x (G r) (x X) for the query rows `rows`."""
        part = x[:, :, :, rows]
        return part.reshape(part.shape[0], part.shape[1], -1, *part.shape[4:])


def _operands(inputs: AttentionInputs) -> _Operands:
    q = inputs.q.astype(np.float64)
    k = inputs.k[:, :, 0].astype(np.float64)
    d = inputs.head_dim
    beta = slice_bits(MAX_SLICES * d)
    q_exp = row_exponents(q, (-1,))  # B x Hkv x G x S1 x 1
    k_exp = row_exponents(k, (-2, -1))  # B x Hkv x 1 x 1
    qs = split(q, q_exp, beta, MAX_SLICES)
    ks = split(k, k_exp, beta, MAX_SLICES)
    n_levels = len(qs.slices) + len(ks.slices) - 1
    pairs = tuple(
        tuple((a, level - a) for a in range(len(qs.slices)) if 0 <= level - a < len(ks.slices))
        for level in range(n_levels)
    )
    mantissa, scale_exp = np.frexp(inputs.scale)
    exponent = q_exp[..., 0] + k_exp[:, :, :, 0, None] + int(scale_exp)  # B x Hkv x G x S1
    with np.errstate(over="ignore", under="ignore"):
        multiplier = np.ldexp(mantissa, exponent)
        direct = bool(np.all(np.isfinite(multiplier) & (multiplier >= 2.0**-1022)))
        # eta = 1.01 lambda_i (level + residual error), rounded up (PASA-ORC-6)
        error_man, error_exp = np.frexp(_level_error(qs, ks, pairs) + _residual_error(qs, ks, d))
        eta = np.ldexp(1.01 * mantissa * error_man, exponent + error_exp) + 2.0**-1073
    return _Operands(
        q_norm=qs.normalized,
        k_norm=ks.normalized,
        v=inputs.v[:, :, 0].astype(np.float64),
        q_split=qs,
        k_split=ks,
        pairs=pairs,
        q_levels=tuple(np.concatenate([qs.slices[a] for a, _ in p], axis=-1) for p in pairs),
        k_levels=tuple(np.concatenate([ks.slices[b] for _, b in p], axis=-1) for p in pairs),
        mantissa=float(mantissa),
        exponent=exponent,
        direct=direct,
        eta=eta,
    )


def _level_error(
    qs: Split, ks: Split, pairs: tuple[tuple[tuple[int, int], ...], ...]
) -> np.ndarray:
    """gamma_(N-2) * 2 sum_(L >= 1) sum_(a+b=L) ||Q_a,i||_1 max|K_b|: the error of summing the
    exact level differences, largest level last (PASA-ORC-6)."""
    q_norm1 = [np.abs(s).sum(axis=-1) for s in qs.slices]  # B x Hkv x G x S1
    k_max = [np.abs(s).max(axis=(-2, -1))[:, :, None, None] for s in ks.slices]
    low = sum(
        (q_norm1[a] * k_max[b] for level in pairs[1:] for a, b in level),
        start=np.zeros_like(q_norm1[0]),
    )
    return gamma(len(pairs) - 2) * 2 * low


def _residual_error(qs: Split, ks: Split, d: int) -> np.ndarray:
    """2 (rho_q,i + (D + rho_q,i) rho_k): the score difference lost to the split's remainders,
    rho_q,i = ||R_q,i||_1 and rho_k = max |R_k| (PASA-ORC-5)."""
    rho_q = qs.residual.sum(axis=-1)
    rho_k = ks.residual.max(axis=(-2, -1))[:, :, None, None]
    return 2 * (rho_q + (d + rho_q) * rho_k)


def _rows_per_tile(inputs: AttentionInputs) -> int:
    per_row = inputs.batch * inputs.heads * min(KEY_BLOCK, inputs.seq_k)
    return max(1, min(inputs.seq_q, TILE_ELEMENTS // per_row))


def _hidden(inputs: AttentionInputs, rows: slice, cols: slice) -> np.ndarray | None | bool:
    """Masked entries of a tile as B x Hkv x (G r) x c booleans; None when none is masked,
    True when all are."""
    tile = inputs.visible(rows, cols)
    if tile is None:
        return None
    b, hkv, g = inputs.q.shape[:3]
    shape = (b, hkv, g, rows.stop - rows.start, cols.stop - cols.start)
    hidden = ~np.broadcast_to(tile, shape).reshape(b, hkv, -1, shape[-1])
    if hidden.all():
        return True
    return hidden if hidden.any() else None


def _tiles(inputs: AttentionInputs):
    """(rows, [(cols, hidden), ...]) for every query block, fully masked tiles left out."""
    for rows in blocks(inputs.seq_q, _rows_per_tile(inputs)):
        cols = []
        for c in blocks(inputs.seq_k, KEY_BLOCK):
            hidden = _hidden(inputs, rows, c)
            if hidden is not True:
                cols.append((c, hidden))
        yield rows, cols


def _select_reference(inputs: AttentionInputs, ops: _Operands) -> np.ndarray:
    """Per row, the visible key with the largest binary64 estimate q' . k'_t of its score (the
    normalisation 2^(e_i + f) lambda > 0 is the same along a row); 0 for masked rows."""
    index = np.zeros(inputs.q.shape[:4], dtype=np.int64)
    k_t = ops.k_norm.swapaxes(-1, -2)
    for rows, cols in _tiles(inputs):
        q = _Operands.tile(ops.q_norm, rows)
        top = np.full(q.shape[:3], -np.inf)
        arg = np.zeros(q.shape[:3], dtype=np.int64)
        for c, hidden in cols:
            est = np.matmul(q, k_t[..., c])
            if hidden is not None:
                est[hidden] = -np.inf
            _update_max(est, c.start, top, arg)
        index[..., rows] = arg.reshape(index[..., rows].shape)
    return index


def _update_max(x: np.ndarray, offset: int, top: np.ndarray, arg: np.ndarray) -> None:
    """Fold the row maxima of x (and their column + offset) into top and arg, in place."""
    j = x.argmax(axis=-1)
    m = np.take_along_axis(x, j[..., None], axis=-1)[..., 0]
    better = m > top
    top[better] = m[better]
    arg[better] = j[better] + offset


def _reference_levels(ops: _Operands, reference: np.ndarray) -> tuple[np.ndarray, ...]:
    """C_L[r_i] for every row i and level L, exact (PASA-ORC-5); B x Hkv x G x S1 each."""
    shape = reference.shape
    flat = reference.reshape(shape[0], shape[1], -1, 1)
    keys = [np.take_along_axis(s, flat, axis=2).reshape(*shape, -1) for s in ops.k_split.slices]
    return tuple(
        sum(
            (np.einsum("...d,...d->...", ops.q_split.slices[a], keys[b]) for a, b in level),
            start=np.zeros(shape),
        )
        for level in ops.pairs
    )


@dataclass(frozen=True)
class _Sums:
    total: np.ndarray  # B x Hkv x G x S1: l
    weighted: np.ndarray  # B x Hkv x G x S1 x Dv: O
    top: np.ndarray  # B x Hkv x G x S1: max_t dhat_t (-inf on masked rows)
    top_index: np.ndarray  # B x Hkv x G x S1: its key


def _accumulate(
    inputs: AttentionInputs, ops: _Operands, references: tuple[np.ndarray, ...]
) -> _Sums:
    """l, O and max dhat for every row, relative to the reference keys (PASA-ORC-6, 7)."""
    grid = inputs.q.shape[:4]
    total = np.zeros(grid)
    weighted = np.zeros((*grid, inputs.value_dim))
    top = np.full(grid, -np.inf)
    top_index = np.zeros(grid, dtype=np.int64)
    # [K_L | 1]^T: with [Q_L | -C_L[r]] one GEMM gives Delta_L = C_L - C_L[r], still exact
    k_levels_t = [
        np.concatenate([k, np.ones((*k.shape[:-1], 1))], axis=-1).swapaxes(-1, -2)
        for k in ops.k_levels
    ]
    buffers = _Buffers()
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for rows, cols in _tiles(inputs):
            q_levels = [
                np.concatenate([_Operands.tile(q, rows), -_Operands.tile(r, rows)[..., None]], -1)
                for q, r in zip(ops.q_levels, references)
            ]
            l_tile = np.zeros(q_levels[0].shape[:3])
            o_tile = np.zeros((*l_tile.shape, inputs.value_dim))
            m_tile = np.full(l_tile.shape, -np.inf)
            a_tile = np.zeros(l_tile.shape, dtype=np.int64)
            for c, hidden in cols:
                d = _exponents(q_levels, k_levels_t, c, buffers)
                ops.scaled(d, rows)
                if hidden is not None:
                    d[hidden] = -np.inf
                _update_max(d, c.start, m_tile, a_tile)
                np.exp(d, out=d)
                l_tile += d.sum(axis=-1)
                o_tile += np.matmul(d, ops.v[:, :, c])
            for whole, part in ((total, l_tile), (top, m_tile), (top_index, a_tile)):
                whole[..., rows] = part.reshape(whole[..., rows].shape)
            weighted[..., rows, :] = o_tile.reshape(weighted[..., rows, :].shape)
    return _Sums(total=total, weighted=weighted, top=top, top_index=top_index)


class _Buffers:
    """Reusable tile-sized scratch arrays (allocating them per tile costs page faults)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        key = (name, shape)
        if key not in self._arrays:
            self._arrays[key] = np.empty(shape)
        return self._arrays[key]


def _exponents(
    q_levels: list[np.ndarray], k_levels_t: list[np.ndarray], cols: slice, buffers: _Buffers
) -> np.ndarray:
    """fl(Delta_(N-1) + ... + Delta_0), each Delta_L exact, summed from the highest level down
    (PASA-ORC-6)."""
    shape = (*q_levels[0].shape[:-1], cols.stop - cols.start)
    d = buffers.get("d", shape)
    scratch = buffers.get("scratch", shape) if len(q_levels) > 1 else None
    top = len(q_levels) - 1
    np.matmul(q_levels[top], k_levels_t[top][..., cols], out=d)
    for level in reversed(range(top)):
        np.matmul(q_levels[level], k_levels_t[level][..., cols], out=scratch)
        d += scratch
    return d
