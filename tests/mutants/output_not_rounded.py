"""Planted bug: the output is returned in the carrier (float32) without the final rounding
into the profile's output format (PASA-ALG-6, PASA-IO-1)."""

import numpy as np

from tests.mutants.base import Pasa


class OutputNotRounded(Pasa):
    def finish(self, ar, out, inputs):
        return np.where(inputs.ungroup(inputs.has_visible_key()), out, 0).astype(ar.carrier)


attention = OutputNotRounded()
