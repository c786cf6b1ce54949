"""Planted bug: every batch reads batch 0's keys (a batch offset missing from the K pointer;
V is offset correctly): right for B = 1 only."""

import numpy as np

from tests.mutants.base import Pasa


class BatchReadsFirstKeys(Pasa):
    def shifted_keys(self, ar, k_j, beta, scale_m):
        return super().shifted_keys(ar, np.broadcast_to(k_j[:1], k_j.shape), beta, scale_m)


attention = BatchReadsFirstKeys()
