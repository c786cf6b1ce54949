"""Planted bug: fully masked rows are not special-cased, so O / l = 0 / 0 gives NaN where the
spec says 0 (PASA-MASK-3)."""

from tests.mutants.base import Pasa


class NanOnMaskedRows(Pasa):
    def finish(self, ar, out, inputs):
        return ar.output(out)


attention = NanOnMaskedRows()
