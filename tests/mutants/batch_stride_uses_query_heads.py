"""Planted bug: the K/V batch stride is Hq S2 D instead of Hkv S2 D (the query's head count
used for the key buffer): batch b > 0 reads the wrong keys and values, only with GQA/MQA
and B >= 2 (see strided)."""

from tests.mutants.strided import Strided


class BatchStrideUsesQueryHeads(Strided):
    def strides(self, x):
        _, _, s, d = x.shape
        return self.heads_q * s * d, s * d


attention = BatchStrideUsesQueryHeads()
