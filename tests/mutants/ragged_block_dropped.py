"""Planted bug: the number of key blocks is S2 // block_k, so the ragged last block (and every
key of a sequence shorter than one block) is never visited (PASA-NOT-2, PASA-BLK-2)."""

from tests.mutants.base import Pasa


class RaggedBlockDropped(Pasa):
    def key_blocks(self, s2, n):
        return [slice(start, start + n) for start in range(0, s2 // n * n, n)]


attention = RaggedBlockDropped()
