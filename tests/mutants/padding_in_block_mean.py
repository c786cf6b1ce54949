"""Planted bug: the pseudo-average of the ragged last block divides by the tile width
block_k instead of its n_T real columns, as if the zero padding of the tile were part of the
block: a_T = (n_T / block_k) (1 - beta) mu_T, and the recovered shift gamma a_T is wrong
(PASA-ALG-3, PASA-BLK-2)."""

from tests.mutants.base import Pasa


class PaddingInBlockMean(Pasa):
    def pseudo_average(self, ar, s, visible, block_k):
        width = ar.constant(1.0 / block_k, ar.profile.vector)
        return ar.rowsum(ar.vector(s * width))


attention = PaddingInBlockMean()
