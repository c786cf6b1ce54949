"""Planted bug, certified in fp16-mixed: the GEMMs accumulate in fp16 where the profile says
fp32 (an MMA instruction with a half-precision accumulator): every partial sum of the key
shift, the scores and P V is rounded to fp16 (PASA-NUM-3, -5)."""

from dataclasses import replace

from pasa_ref import formats
from tests.mutants.base import Pasa


class Fp16Accumulation(Pasa):
    def profile(self, name):
        return replace(super().profile(name), matmul_accumulate=formats.get("fp16"))


attention = Fp16Accumulation()
