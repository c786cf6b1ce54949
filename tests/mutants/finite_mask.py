"""Planted bug family: the mask is a finite additive penalty (masked_fill with a large negative
number, the PASA authors' -65504) instead of -inf (PASA-MASK-1), and the block weights are
exp(S~ - m~) with no special case for a block whose maximum is -inf (a finite mask "cannot"
produce one). Two ways it goes wrong:

  - a hidden score more than |penalty| above the visible ones still wins the softmax;
  - in fp16 a shifted score below -16 plus -65504 rounds to -inf, so a key block that is
    entirely masked has m~ = -inf and exp(-inf - (-inf)) = NaN on rows that do see keys.

`guard`: whether fully masked rows are still set to 0 at the end (the check most kernels
have); without it they return the mean of the masked values. The catalogue's modules
finite_mask_* instantiate this class with one penalty each."""

from __future__ import annotations

import numpy as np

from tests.mutants.base import Pasa


class FiniteMask(Pasa):
    def __init__(self, penalty: float, *, guard: bool) -> None:
        self.penalty, self.guard = penalty, guard

    def masked_scores(self, ar, s, visible):
        if visible is None:
            return s
        penalty = ar.constant(self.penalty, ar.profile.vector)
        return np.where(visible, s, ar.vector(s + penalty)).astype(s.dtype, copy=False)

    def block_weights(self, ar, s, m_local):
        return ar.exp(ar.vector(s - m_local))

    def finish(self, ar, out, inputs):
        return super().finish(ar, out, inputs) if self.guard else ar.output(out)
