"""PASA: Online Pseudo-average Shifting Attention, step by step as spec section 5 states it.

For a block of query rows Q, with m_0 = -inf, l_0 = 0, O_0 = 0, abar_0 = 0, and key blocks
j = 1..T of length n_j:

    PASA-ALG-1  K~_j  = M_{n_j}^T K_j,   M_n = lambda_M (I_n - (beta/n) J_n)   (once per block)
    PASA-ALG-2  S~_j  = Q K~_j^T  (= S_j - beta rowmean(S_j) 1^T)
    PASA-ALG-3  a_j   = rowmean(S~_j)  (before the mask; = (1 - beta) rowmean(S_j))
    PASA-ALG-4  abar_j = a_j (1/j) + abar_{j-1} ((j-1)/j)
    PASA-ALG-5  m~ = rowmax(S~_j), P~ = exp(S~_j - m~), l~ = rowsum(P~)
                x = m~ + gamma (a_j - abar_j),  y = m_{j-1} + gamma (abar_{j-1} - abar_j)
                m_j = max(x, y)
                l_j = exp(y - m_j) l_{j-1} + exp(x - m_j) l~
                O_j = exp(y - m_j) O_{j-1} + exp(x - m_j) P~ V_j
    PASA-ALG-6  O = O_T / l_T

gamma = beta / (1 - beta). Invariant (PASA-EQ-1): l_j exp(m_j + gamma abar_j) is the sum of
exp(S) over blocks 1..j, so O equals softmax(S) V in exact arithmetic.
"""

from __future__ import annotations

import numpy as np

from pasa_ref import formats
from pasa_ref.arithmetic import Arithmetic
from pasa_ref.inputs import AttentionInputs, InputError, blocks
from pasa_ref.kernels import tiling
from pasa_ref.profiles import Profile

__all__ = ["RAGGED_MODES", "attention", "shift_matrix"]

RAGGED_MODES = ("true-length", "pad", "authors")


def shift_matrix(n: int, beta: float, scale: float = 1.0) -> np.ndarray:
    """M_n = scale (I_n - (beta/n) J_n) in binary64 (PASA-ALG-1): diagonal
    scale (1 - beta/n), off-diagonal -scale beta/n."""
    return scale * (np.eye(n) - (beta / n) * np.ones((n, n)))


def _check_beta(beta: float | None, default: float) -> float:
    if beta is None:
        return default
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating)):
        raise InputError(f"argument 'beta': expected a float in (0, 1), got {beta!r}")
    if not 0.0 < beta < 1.0:
        raise InputError(
            f"argument 'beta': expected a value in the open interval (0, 1), got {beta}"
        )
    return float(beta)


def _check_ragged(ragged: str) -> str:
    if ragged not in RAGGED_MODES:
        raise InputError(f"argument 'ragged': expected one of {RAGGED_MODES}, got {ragged!r}")
    return ragged


def _padding(x: np.ndarray, block_k: int, ragged: str) -> np.ndarray:
    """The rows appended to x (... x S2 x D, keys or values) to fill its ragged last block up
    to block_k rows, P = block_k - n_T of them (PASA-BLK-3, PASA-BLK-4):

        "pad"      the last row, P times
        "authors"  S2 >= block_k: the last P rows, x[S2 - P : S2] (the authors' code appends
                   them again, so they may reach back into the previous block);
                   S2 < block_k: P rows of zeros
    """
    s2 = x.shape[-2]
    missing = -s2 % block_k
    if ragged == "pad":
        return np.repeat(x[..., -1:, :], missing, axis=-2)
    if s2 >= block_k:
        return x[..., s2 - missing :, :]
    return np.zeros((*x.shape[:-2], missing, x.shape[-1]), dtype=x.dtype)


def _padded_block(x: np.ndarray, cols: slice, block_k: int, ragged: str) -> np.ndarray:
    """Rows `cols` of x; the ragged last block filled up to block_k rows unless ragged is
    "true-length" (PASA-BLK-2..4)."""
    x_j = x[..., cols, :]
    if ragged == "true-length" or x_j.shape[-2] == block_k:
        return x_j
    return np.concatenate([x_j, _padding(x, block_k, ragged)], axis=-2)


def _shifted_key_blocks(
    ar: Arithmetic, k: np.ndarray, block_k: int, beta: float, scale_m: float, ragged: str
) -> list[tuple[slice, np.ndarray, int]]:
    """(columns, K~_j^T, n_j) for every key block: K~_j = M_n^T K_j (PASA-ALG-1).

    Ragged last block: "true-length" shifts it with M_{n_T} (PASA-BLK-2); "pad" and
    "authors" fill it up to block_k rows (PASA-BLK-3, -4: `_padding`) and shift with
    M_{block_k}, and n_j is then block_k (the padded columns are masked after the
    pseudo-average)."""
    shifted = []
    for cols in blocks(k.shape[-2], block_k):
        k_j = _padded_block(k, cols, block_k, ragged)
        m_n = shift_matrix(k_j.shape[-2], beta, scale_m)
        k_tilde = ar.matmul(m_n.T, k_j, formats.get("fp64"), ar.profile.input)
        k_tilde_operand = ar.gemm_operand(k_tilde, ar.profile.matmul_output)
        shifted.append((cols, tiling.keys_transposed(k_tilde_operand), k_j.shape[-2]))
    return shifted


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    profile: str | Profile = "fp16-full",
    scale: float | None = None,
    causal: bool = False,
    mask: np.ndarray | None = None,
    block_q: int | None = None,
    block_k: int | None = None,
    beta: float | None = None,
    ragged: str = "true-length",
    scale_at: str | None = None,
    accumulation_chunk: int | None = None,
) -> np.ndarray:
    """PASA forward pass in the rounding of `profile`; returns B x Hq x S1 x Dv.

    q: B x Hq x S1 x D, k: B x Hkv x S2 x D, v: B x Hkv x S2 x Dv, in the profile's input
    dtype. beta in (0, 1) (default: the profile's); ragged: "true-length" (PASA-BLK-2),
    "pad" (PASA-BLK-3) or "authors" (PASA-BLK-4).
    accumulation_chunk: None for the spec's GEMM model (PASA-NUM-3), else the partial sums
    are rounded after every that many products (pasa_ref.arithmetic.Arithmetic).
    """
    inputs, ar = tiling.prepare(
        q,
        k,
        v,
        profile=profile,
        scale=scale,
        causal=causal,
        mask=mask,
        accumulation_chunk=accumulation_chunk,
    )
    prof = ar.profile
    block_q = tiling.check_block("block_q", block_q, prof.block_q)
    block_k = tiling.check_block("block_k", block_k, prof.block_k)
    beta = _check_beta(beta, prof.beta)
    ragged = _check_ragged(ragged)
    scale_at = tiling.check_scale_at(scale_at, prof.scale_at)
    q_scale = inputs.scale if scale_at == "q" else None
    s_scale = inputs.scale if scale_at == "scores" else None
    m_scale = inputs.scale if scale_at == "shift" else 1.0
    gamma = ar.constant(beta / (1.0 - beta), prof.statistics)
    v_all = tiling.input_operand(ar, inputs.v)
    s_format = prof.vector if s_scale is not None else prof.matmul_output  # S~'s format
    with ar.ieee():
        key_blocks = _shifted_key_blocks(
            ar, ar.from_input(inputs.k), block_k, beta, m_scale, ragged
        )

    def attend(rows: slice) -> np.ndarray:
        q_tile = tiling.query_operand(ar, inputs.q[..., rows, :], q_scale)
        shape = (*q_tile.shape[:-1], 1)
        m = np.full(shape, -np.inf, dtype=ar.carrier)
        ell = np.zeros(shape, dtype=ar.carrier)
        abar = np.zeros(shape, dtype=ar.carrier)
        o = np.zeros((*q_tile.shape[:-1], inputs.value_dim), dtype=ar.carrier)
        for j, (cols, k_tilde_t, n_j) in enumerate(key_blocks, start=1):
            s_tilde = tiling.scores(ar, q_tile, k_tilde_t, s_scale)  # PASA-ALG-2
            a = ar.rowmean(s_tilde, s_format)  # PASA-ALG-3: before the mask, all n_j columns
            s_tilde = tiling.masked(s_tilde, _visible(inputs, rows, cols, n_j))
            abar_new = ar.stat(  # PASA-ALG-4
                ar.stat(a * ar.constant(1.0 / j, prof.statistics))
                + ar.stat(abar * ar.constant((j - 1) / j, prof.statistics))
            )
            m_local = ar.rowmax(s_tilde)  # PASA-ALG-5
            p = ar.exp(ar.vector(s_tilde - np.where(m_local == -np.inf, 0, m_local)))
            ell_local = ar.rowsum(p)
            x = _in_new_frame(ar, m_local, gamma, a, abar_new)
            y = _in_new_frame(ar, m, gamma, abar, abar_new)
            m_new = np.maximum(x, y)
            m_ref = np.where(m_new == -np.inf, 0, m_new)  # nothing visible yet: subtract 0
            c_x = ar.exp(ar.vector(x - m_ref))
            c_y = ar.exp(ar.vector(y - m_ref))
            ell = ar.stat(ar.stat(c_y * ell) + ar.stat(c_x * ell_local))
            pv = tiling.gemm(
                ar,
                p,
                prof.vector,
                _padded_block(v_all, cols, block_k, ragged),
                prof.matmul_operand,
            )
            o = ar.acc(ar.acc(c_y * o) + ar.acc(c_x * pv))
            m, abar = m_new, abar_new
        return ar.acc(o / ell)  # PASA-ALG-6

    return tiling.attend_by_query_blocks(inputs, ar, block_q, attend)


def _in_new_frame(
    ar: Arithmetic, maximum: np.ndarray, gamma: np.ndarray, reference: np.ndarray, new: np.ndarray
) -> np.ndarray:
    """A row maximum taken relative to `reference`, moved to the frame of `new` (PASA-ALG-5):
    fl(maximum + fl(gamma fl(reference - new))). A maximum of -inf (nothing visible yet, or a
    fully masked block) stays -inf: that frame holds no mass, and its conversion must not
    turn an overflowing gamma (reference - new) into -inf + inf = NaN."""
    moved = ar.stat(maximum + ar.stat(gamma * ar.stat(reference - new)))
    return np.where(maximum == -np.inf, -np.inf, moved).astype(ar.carrier, copy=False)


def _visible(inputs: AttentionInputs, rows: slice, cols: slice, n_j: int) -> np.ndarray | None:
    """The tile's visibility, with padded columns (PASA-BLK-3, -4) invisible."""
    tile = inputs.visible(rows, cols)
    n_real = cols.stop - cols.start
    if n_j == n_real:
        return tile
    real = np.arange(n_j) < n_real
    if tile is None:
        return real
    return np.concatenate(
        [
            np.broadcast_to(tile, (*tile.shape[:-1], n_real)),
            np.zeros((*tile.shape[:-1], n_j - n_real), dtype=bool),
        ],
        axis=-1,
    )


#: the kernel declaration (specs/certification.md, PASA-CERT-7): the pasa class with the
#: profile's parameters (beta, blocks; ragged "true-length"), every input the spec defines
attention.pasa_declaration = {"name": "pasa-ref pasa", "algorithm": {"class": "pasa"}}
