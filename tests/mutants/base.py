"""A second PASA forward pass, written step by step from spec section 5 (PASA-ALG-1..6) so
that each planted bug of this catalogue overrides exactly one step.

It reuses pasa_ref's machinery, not its kernel: the profile's rounding points
(pasa_ref.arithmetic), the one definition of masks (pasa_ref.inputs) and the shift matrix
(pasa_ref.kernels.pasa.shift_matrix). Layout: k and v are expanded to the Hq query heads
(`heads`), and every query row is processed at once; key blocks j = 1..T:

    K~_j   = M_{n_j}^T K_j                                  shifted_keys
    S~_j   = Q K~_j^T (scaled where the profile says)       shifted_scores
    a_j    = rowmean(S~_j), before the mask                 pseudo_average
    abar_j = a_j (1/j) + abar_{j-1} ((j-1)/j)               running_average
    x = m~_j + gamma (a_j - abar_j),  y = m_{j-1} + gamma (abar_{j-1} - abar_j)   frames
    m_j = max(x, y)                                         new_max
    l_j, O_j rescaled by exp(y - m_j), exp(x - m_j)
    O = O_T / l_T, fully masked rows 0, rounded into the output format          finish

The unmodified class is a correct backend: tests/test_certify.py certifies it, which shows
that the rules accept an independent implementation, not only the reference itself.
"""

from __future__ import annotations

import numpy as np

from pasa_ref import formats, profiles
from pasa_ref.arithmetic import Arithmetic
from pasa_ref.inputs import AttentionInputs, blocks, validate
from pasa_ref.kernels import tiling
from pasa_ref.kernels.pasa import shift_matrix
from pasa_ref.profiles import Profile

FP64 = formats.get("fp64")


class Pasa:
    """fn(q, k, v, *, scale, causal, mask, profile): the certification backend protocol."""

    def __call__(
        self,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        *,
        scale: float,
        causal: bool = False,
        mask: np.ndarray | None = None,
        profile: str = "fp16-full",
    ) -> np.ndarray:
        prof = self.profile(profile)
        ar = Arithmetic(prof)
        inputs = validate(
            q, k, v, scale=scale, causal=causal, mask=mask, dtypes=[prof.input.storage]
        )
        hq, s2 = q.shape[1], k.shape[2]
        placement = self.scale_placement(prof)
        q_op = tiling.query_operand(ar, q, inputs.scale if placement == "q" else None)
        keys = self.heads(ar.from_input(k), hq)
        values = self.heads(tiling.input_operand(ar, v), hq)
        gamma = ar.constant(self.recovery_factor(prof.beta), prof.statistics)
        shape = (*q.shape[:3], 1)
        m = np.full(shape, -np.inf, ar.carrier)
        ell, abar = np.zeros(shape, ar.carrier), np.zeros(shape, ar.carrier)
        o = np.zeros((*q.shape[:3], v.shape[-1]), ar.carrier)
        with ar.ieee():
            for j, cols in enumerate(self.block_order(self.key_blocks(s2, prof.block_k)), 1):
                k_tilde = self.shifted_keys(
                    ar, keys[..., cols, :], prof.beta, inputs.scale if placement == "shift" else 1.0
                )
                s = self.shifted_scores(
                    ar, q_op, keys[..., cols, :], k_tilde, inputs.scale, placement, prof.beta
                )
                visible = self.visibility(inputs, cols)
                a = self.pseudo_average(ar, s, visible, prof.block_k)
                s = self.masked_scores(ar, s, visible)
                abar_new = self.running_average(ar, a, abar, j)
                m_local = ar.rowmax(s)
                p = self.block_weights(ar, s, m_local)
                x, y = self.frames(ar, gamma, m_local, m, a, abar, abar_new)
                m_new = self.new_max(x, y, j)
                m_ref = np.where(m_new == -np.inf, 0, m_new)
                c_x, c_y = ar.exp(ar.vector(x - m_ref)), ar.exp(ar.vector(y - m_ref))
                ell = ar.stat(ar.stat(c_y * ell) + ar.stat(c_x * ar.rowsum(p)))
                pv = ar.matmul(p, values[..., cols, :], prof.vector, prof.matmul_operand)
                o = ar.acc(ar.acc(c_y * o) + ar.acc(c_x * pv))
                m, abar = m_new, abar_new
            out = ar.acc(o / ell)
        return self.finish(ar, out, inputs)

    # -- the steps ------------------------------------------------------------------------

    def profile(self, name: str) -> Profile:
        return profiles.get(name)

    def scale_placement(self, prof: Profile) -> str:
        return prof.scale_at

    def recovery_factor(self, beta: float) -> float:
        """gamma = beta / (1 - beta) (PASA-ALG-3)."""
        return beta / (1.0 - beta)

    def heads(self, x: np.ndarray, hq: int) -> np.ndarray:
        """B x Hkv x S x D -> B x Hq x S x D: query head h reads head h // G (PASA-IO-2)."""
        return np.repeat(x, hq // x.shape[1], axis=1)

    def key_blocks(self, s2: int, n: int) -> list[slice]:
        return list(blocks(s2, n))

    def block_order(self, key_blocks: list[slice]) -> list[slice]:
        return key_blocks

    def visibility(self, inputs: AttentionInputs, cols: slice) -> np.ndarray | None:
        """B x Hq x S1 x n_j booleans from pasa_ref.inputs (PASA-MASK-1, -2), None if all."""
        tile = inputs.visible(slice(0, inputs.seq_q), cols)
        if tile is None:
            return None
        b, hkv, g, s1, _ = inputs.q.shape
        full = np.broadcast_to(tile, (b, hkv, g, s1, cols.stop - cols.start))
        return full.reshape(b, hkv * g, s1, -1)

    def shifted_keys(
        self, ar: Arithmetic, k_j: np.ndarray, beta: float, scale_m: float
    ) -> np.ndarray:
        """K~_j = M_{n_j}^T K_j, as a GEMM operand (PASA-ALG-1)."""
        m_n = shift_matrix(k_j.shape[-2], beta, scale_m)
        k_tilde = ar.matmul(m_n.T, k_j, FP64, ar.profile.input)
        return ar.gemm_operand(k_tilde, ar.profile.matmul_output)

    def shifted_scores(
        self,
        ar: Arithmetic,
        q_op: np.ndarray,
        k_j: np.ndarray,
        k_tilde: np.ndarray,
        scale: float,
        placement: str,
        beta: float,
    ) -> np.ndarray:
        """S~_j = Q K~_j^T, scaled after the GEMM when the profile says "scores" (PASA-ALG-2)."""
        operand = ar.profile.matmul_operand
        s = ar.matmul(q_op, np.swapaxes(k_tilde, -1, -2), operand, operand)
        if placement != "scores":
            return s
        return ar.vector(ar.constant(scale, ar.profile.vector) * s)

    def pseudo_average(
        self, ar: Arithmetic, s: np.ndarray, visible: np.ndarray | None, block_k: int
    ) -> np.ndarray:
        """a_j = rowmean(S~_j) over the block's n_j columns, masked ones included (PASA-ALG-3)."""
        return ar.rowmean(s)

    def masked_scores(
        self, ar: Arithmetic, s: np.ndarray, visible: np.ndarray | None
    ) -> np.ndarray:
        """Invisible scores set to -inf (PASA-MASK-1)."""
        return tiling.masked(s, visible)

    def block_weights(self, ar: Arithmetic, s: np.ndarray, m_local: np.ndarray) -> np.ndarray:
        """P~ = exp(S~ - m~); a block with nothing visible (m~ = -inf) subtracts 0."""
        return ar.exp(ar.vector(s - np.where(m_local == -np.inf, 0, m_local)))

    def running_average(
        self, ar: Arithmetic, a: np.ndarray, abar: np.ndarray, j: int
    ) -> np.ndarray:
        stats = ar.profile.statistics
        return ar.stat(
            ar.stat(a * ar.constant(1.0 / j, stats))
            + ar.stat(abar * ar.constant((j - 1) / j, stats))
        )

    def frames(
        self,
        ar: Arithmetic,
        gamma: np.ndarray,
        m_local: np.ndarray,
        m: np.ndarray,
        a: np.ndarray,
        abar: np.ndarray,
        abar_new: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """x and y: the block's and the running maximum in the new frame (PASA-ALG-5). A
        maximum of -inf (no visible key yet, or none in the block) holds no mass and stays
        -inf, even where gamma times the frame offset overflows (-inf + inf would be NaN)."""
        x = ar.stat(m_local + ar.stat(gamma * ar.stat(a - abar_new)))
        y = ar.stat(m + ar.stat(gamma * ar.stat(abar - abar_new)))
        return np.where(m_local == -np.inf, m_local, x), np.where(m == -np.inf, m, y)

    def new_max(self, x: np.ndarray, y: np.ndarray, j: int) -> np.ndarray:
        return np.maximum(x, y)

    def finish(self, ar: Arithmetic, out: np.ndarray, inputs: AttentionInputs) -> np.ndarray:
        """Fully masked rows 0 (PASA-MASK-3), then the output format (PASA-ALG-6)."""
        return ar.output(np.where(inputs.ungroup(inputs.has_visible_key()), out, 0))


attention = Pasa()
