"""FlashAttention-2: the online softmax over key blocks, in any precision profile
(spec PASA-EQ-3, Milakov & Gimelshein's online normaliser).

For a block of query rows, with m_0 = -inf, l_0 = 0, O_0 = 0, for key blocks j = 1..T:

    S_j   = lambda Q K_j^T, masked entries -inf
    m_j   = max(m_{j-1}, rowmax(S_j))
    alpha = exp(m_{j-1} - m_j)
    P_j   = exp(S_j - m_j)
    l_j   = alpha l_{j-1} + rowsum(P_j)
    O_j   = alpha O_{j-1} + P_j V_j
    O     = O_T / l_T

exp and differences round into the vector format, m and l updates into the statistics
format, O updates into the accumulator format (PASA-NUM-5).
"""

from __future__ import annotations

import numpy as np

from pasa_ref.inputs import blocks
from pasa_ref.kernels import tiling
from pasa_ref.profiles import Profile

__all__ = ["attention"]


def attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    profile: str | Profile = "fp32",
    scale: float | None = None,
    causal: bool = False,
    mask: np.ndarray | None = None,
    block_q: int | None = None,
    block_k: int | None = None,
    scale_at: str | None = None,
    accumulation_chunk: int | None = None,
) -> np.ndarray:
    """FlashAttention-2 forward pass in the rounding of `profile`; B x Hq x S1 x Dv.

    q: B x Hq x S1 x D, k: B x Hkv x S2 x D, v: B x Hkv x S2 x Dv, in the profile's input
    dtype; block_q and block_k default to the profile's tile sizes.
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
    scale_at = tiling.check_scale_at(scale_at, prof.scale_at)
    q_scale = inputs.scale if scale_at == "q" else None
    s_scale = None if scale_at == "q" else inputs.scale
    k_all = tiling.input_operand(ar, inputs.k)
    v_all = tiling.input_operand(ar, inputs.v)
    key_blocks = list(blocks(inputs.seq_k, block_k))

    def attend(rows: slice) -> np.ndarray:
        q_tile = tiling.query_operand(ar, inputs.q[..., rows, :], q_scale)
        shape = (*q_tile.shape[:-1], 1)
        m = np.full(shape, -np.inf, dtype=ar.carrier)
        ell = np.zeros(shape, dtype=ar.carrier)
        o = np.zeros((*q_tile.shape[:-1], inputs.value_dim), dtype=ar.carrier)
        for cols in key_blocks:
            k_t = tiling.keys_transposed(k_all[..., cols, :])
            s = tiling.scores(ar, q_tile, k_t, s_scale)
            s = tiling.masked(s, inputs.visible(rows, cols))
            m_new = np.maximum(m, ar.rowmax(s))
            m_ref = np.where(m_new == -np.inf, 0, m_new)  # nothing visible yet: subtract 0
            alpha = ar.exp(ar.vector(m - m_ref))
            p = ar.exp(ar.vector(s - m_ref))
            ell = ar.stat(ar.stat(alpha * ell) + ar.rowsum(p))
            pv = tiling.gemm(ar, p, prof.vector, v_all[..., cols, :], prof.matmul_operand)
            o = ar.acc(ar.acc(alpha * o) + pv)
            m = m_new
        return ar.acc(o / ell)

    return tiling.attend_by_query_blocks(inputs, ar, block_q, attend)


#: the kernel declaration (specs/certification.md, PASA-CERT-7): a softmax-class kernel with
#: every input the spec defines
attention.pasa_declaration = {"name": "pasa-ref flash", "algorithm": {"class": "softmax"}}
