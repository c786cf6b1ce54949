"""Planted bug: GQA heads expanded with tile instead of repeat, so query head h reads
key/value head h % Hkv instead of h // G (PASA-IO-2)."""

import numpy as np

from tests.mutants.base import Pasa


class GqaHeadMapping(Pasa):
    def heads(self, x, hq):
        return np.tile(x, (1, hq // x.shape[1], 1, 1))


attention = GqaHeadMapping()
