"""Planted bug: a finite additive mask, the authors' penalty, fully masked rows guarded (see finite_mask)."""

from tests.mutants.finite_mask import FiniteMask

attention = FiniteMask(-65504.0, guard=True)
