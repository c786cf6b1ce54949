"""Planted bug: the raw scores Q K^T are formed first (in the GEMM output format) and then
shifted and scaled, S~ = lambda (S - beta rowmean(S)), instead of shifting and scaling the
keys with M before the product: equal in exact arithmetic, but the raw product is what PASA
exists to avoid, and it overflows fp16 for head size 128 and entries near 30: 128 x 30 x 30 =
115200 > 65504 (PASA-ALG-1, -2)."""

from tests.mutants.base import Pasa


class ScoresBeforeScaling(Pasa):
    def shifted_scores(self, ar, q_op, k_j, k_tilde, scale, placement, beta):
        operand, vector = ar.profile.matmul_operand, ar.profile.vector
        raw = ar.matmul(
            q_op, ar.gemm_operand(k_j, ar.profile.input).swapaxes(-1, -2), operand, operand
        )
        shifted = ar.vector(raw - ar.vector(ar.constant(beta, vector) * ar.rowmean(raw)))
        return ar.vector(ar.constant(scale, vector) * shifted)

    def shifted_keys(self, ar, k_j, beta, scale_m):
        return None  # the keys are not shifted: the scores are


attention = ScoresBeforeScaling()
