"""Planted bug: causal masking aligned top-left (key t visible to query i iff t <= i, the
convention of FlashAttention before 2.1) instead of bottom-right (t <= i + S2 - S1); the two
agree only when S1 = S2 (PASA-MASK-2)."""

from dataclasses import replace

import numpy as np

from tests.mutants.base import Pasa


class CausalTopLeft(Pasa):
    def visibility(self, inputs, cols):
        if not inputs.causal:
            return super().visibility(inputs, cols)
        rows = np.arange(inputs.seq_q)[:, None]
        top_left = np.arange(cols.start, cols.stop)[None, :] <= rows
        explicit = super().visibility(replace(inputs, causal=False), cols)
        return top_left if explicit is None else explicit & top_left


attention = CausalTopLeft()
