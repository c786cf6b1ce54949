"""Planted bug: the mask is applied before the pseudo-average, with the format's most
negative finite number as the fill value (masked_fill(finfo.min)), so a partially masked
block's a_j is dominated by the fill and the recovered shift is wrong (PASA-ALG-3: the mean
is taken before the mask, over all n_j columns)."""

import numpy as np

from tests.mutants.base import Pasa


class MaskBeforeMean(Pasa):
    def pseudo_average(self, ar, s, visible, block_k):
        if visible is None:
            return ar.rowmean(s)
        fill = -ar.profile.vector.max_finite
        return ar.rowmean(np.where(visible, s, fill).astype(s.dtype))


attention = MaskBeforeMean()
