"""Planted bug: the recovered shift uses gamma = beta instead of beta / (1 - beta), so a block
whose mean differs from the running average is weighted by exp((beta - gamma)(a_j - abar_j))
too much or too little (PASA-ALG-3, -5)."""

from tests.mutants.base import Pasa


class WrongRecoveryFactor(Pasa):
    def recovery_factor(self, beta: float) -> float:
        return beta


attention = WrongRecoveryFactor()
