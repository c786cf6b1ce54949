"""Planted bug: key blocks are visited in the order they become ready (here: a random order
per call, as with work stealing over split-K partitions). PASA is exact in any order, so the
results agree to rounding, but two calls on the same input differ in their last bits
(criterion (e))."""

import numpy as np

from tests.mutants.base import Pasa


class NondeterministicBlocks(Pasa):
    def block_order(self, key_blocks):
        return [key_blocks[i] for i in np.random.default_rng().permutation(len(key_blocks))]


attention = NondeterministicBlocks()
