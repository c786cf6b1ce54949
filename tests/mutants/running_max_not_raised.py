"""Planted bug: after the first block the running maximum is only carried into the new frame
(m_j = y), never raised to a later block's larger local maximum x; exp(x - m_j) > 1 then
grows the sums, and overflows the fp16 statistics once a later block's scores are about 11
above the first block's (PASA-ALG-5)."""

from tests.mutants.base import Pasa


class RunningMaxNotRaised(Pasa):
    def new_max(self, x, y, j):
        return x if j == 1 else y


attention = RunningMaxNotRaised()
