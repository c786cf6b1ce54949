"""Planted bug: the running maximum is not converted into the new frame,
y = m_{j-1} instead of m_{j-1} + gamma (abar_{j-1} - abar_j), so the earlier blocks are
weighted as if the reference shift had not moved (PASA-ALG-5)."""

from tests.mutants.base import Pasa


class MissingFrameConversion(Pasa):
    def frames(self, ar, gamma, m_local, m, a, abar, abar_new):
        x, _ = super().frames(ar, gamma, m_local, m, a, abar, abar_new)
        return x, m


attention = MissingFrameConversion()
