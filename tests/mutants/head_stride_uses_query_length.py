"""Planted bug: the K/V head stride is S1 D instead of S2 D (the query length used for the
key buffer): kv head h > 0 reads from the wrong place when S1 != S2 (see strided)."""

from tests.mutants.strided import Strided


class HeadStrideUsesQueryLength(Strided):
    def strides(self, x):
        _, h, s, d = x.shape
        return h * s * d, self.seq_q * d


attention = HeadStrideUsesQueryLength()
