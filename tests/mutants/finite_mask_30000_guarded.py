"""Planted bug: a finite additive mask, a penalty of -30000, fully masked rows guarded (see finite_mask)."""

from tests.mutants.finite_mask import FiniteMask

attention = FiniteMask(-3.0e4, guard=True)
