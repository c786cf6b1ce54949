"""Standard attention: scores, softmax, P V, in any precision profile (spec PASA-EQ-3).

For each query row (rows are independent, so they are processed in blocks of block_q):

    S = lambda Q K^T          (scale where the profile's scale_at says; "shift" scales S)
    S = -inf where masked     (PASA-MASK-1)
    m = rowmax(S)
    E = fl_vector(exp(fl_vector(S - m)))
    P = fl_vector(E / rowsum(E))
    O = fl_output(P V)
"""

from __future__ import annotations

import numpy as np

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
    scale_at: str | None = None,
    accumulation_chunk: int | None = None,
) -> np.ndarray:
    """softmax(scale * q k^T, masked) v in the rounding of `profile`; B x Hq x S1 x Dv.

    q: B x Hq x S1 x D, k: B x Hkv x S2 x D, v: B x Hkv x S2 x Dv, all in the profile's input
    dtype. block_q only bounds memory; it never changes the result.
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
    scale_at = tiling.check_scale_at(scale_at, prof.scale_at)
    q_scale = inputs.scale if scale_at == "q" else None
    s_scale = None if scale_at == "q" else inputs.scale
    k_t = tiling.keys_transposed(tiling.input_operand(ar, inputs.k))
    v_all = tiling.input_operand(ar, inputs.v)
    every_key = slice(0, inputs.seq_k)

    def attend(rows: slice) -> np.ndarray:
        q_tile = tiling.query_operand(ar, inputs.q[..., rows, :], q_scale)
        s = tiling.scores(ar, q_tile, k_t, s_scale)
        s = tiling.masked(s, inputs.visible(rows, every_key))
        m = ar.rowmax(s)
        m = np.where(m == -np.inf, 0, m)  # fully masked row: exp gives 0, never -inf - -inf
        e = ar.exp(ar.vector(s - m))
        p = ar.vector(e / ar.rowsum(e))
        return tiling.gemm(ar, p, prof.vector, v_all, prof.matmul_operand)

    return tiling.attend_by_query_blocks(inputs, ar, block_q, attend)


#: the kernel declaration (specs/certification.md, PASA-CERT-7): a softmax-class kernel with
#: every input the spec defines
attention.pasa_declaration = {"name": "pasa-ref naive", "algorithm": {"class": "softmax"}}
