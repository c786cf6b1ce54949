"""Planted bug family: the key/value base offsets of a fused kernel computed with a wrong
stride. The kernel reads K and V from flat BNSD buffers at

    offset(b, h, t, d) = b * batch_stride + h * head_stride + t * D + d

with a mistake in one stride; reads past the buffer wrap around (on a GPU they read whatever
memory follows, often the next tensor: the result is wrong and can be nondeterministic).
For B = 1, or Hq = Hkv, or S1 = S2 (by the mutant) the offsets are right, so only cases
with several batches, grouped heads or S1 != S2 show the bug."""

from __future__ import annotations

import numpy as np

from tests.mutants.base import Pasa


def strided_read(x: np.ndarray, batch_stride: int, head_stride: int) -> np.ndarray:
    """x (B x H x S x D) read from its flat buffer with the given strides (wrapping)."""
    b, h, s, d = x.shape
    index = (
        np.arange(b)[:, None, None, None] * batch_stride
        + np.arange(h)[None, :, None, None] * head_stride
        + np.arange(s)[None, None, :, None] * d
        + np.arange(d)
    )
    return np.take(x.reshape(-1), index, mode="wrap")


class Strided(Pasa):
    """Subclasses give the strides from the shapes of q (B x Hq x S1 x D) and x."""

    def __call__(self, q, k, v, *, scale, causal=False, mask=None, profile="fp16-full"):
        self.seq_q, self.heads_q = q.shape[2], q.shape[1]
        return super().__call__(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)

    def strides(self, x: np.ndarray) -> tuple[int, int]:
        raise NotImplementedError

    def heads(self, x, hq):
        return super().heads(strided_read(x, *self.strides(x)), hq)
