"""Planted bug: a finite additive mask, the authors' penalty, no guard for fully masked rows (see finite_mask)."""

from tests.mutants.finite_mask import FiniteMask

attention = FiniteMask(-65504.0, guard=False)
