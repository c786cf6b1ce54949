"""Planted bug: the block's local maximum is put in the frame of the running average before
block j was folded in, x = m~_j + gamma (a_j - abar_{j-1}), while the running maximum is moved
to abar_j: an off-by-one in the running average's index, so the two maxima are in different
frames (PASA-ALG-4, -5)."""

from tests.mutants.base import Pasa


class OffByOneRunningAverage(Pasa):
    def frames(self, ar, gamma, m_local, m, a, abar, abar_new):
        _, y = super().frames(ar, gamma, m_local, m, a, abar, abar_new)
        x = ar.stat(m_local + ar.stat(gamma * ar.stat(a - abar)))
        return x, y


attention = OffByOneRunningAverage()
