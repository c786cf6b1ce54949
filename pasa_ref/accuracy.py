"""The accuracy envelope of the reference kernels (spec PASA-ACC-1), with its constants read
from specs/conformance.toml [reference-accuracy]:

    max |O - O*| <= C * u_p * max|V| * (1 + g * R)

O* exact attention, u_p the largest unit roundoff among the profile's rounding formats, R the
largest row range max - min of the exact visible scores, g = 1 for naive and flash and
g = 1 + gamma, gamma = beta / (1 - beta), for pasa.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from pasa_ref import profiles
from pasa_ref.profiles import Profile

__all__ = ["domain", "profile_unit_roundoff", "reference_bound"]


@cache
def domain() -> dict[str, Any]:
    """The [reference-accuracy] table: `constant` and the benign domain's limits."""
    with resources.files("pasa_ref.specs").joinpath("conformance.toml").open("rb") as fh:
        return tomllib.load(fh)["reference-accuracy"]


def profile_unit_roundoff(profile: str | Profile) -> float:
    """u_p: the largest unit roundoff among the profile's rounding formats."""
    p = profiles.get(profile)
    rounding = (p.matmul_operand, p.matmul_output, p.vector, p.statistics, p.accumulator, p.output)
    return max(f.unit_roundoff for f in rounding)


def reference_bound(
    kernel: str, profile: str | Profile, v: np.ndarray, score_range: float, beta: float
) -> float:
    """C u_p max|V| (1 + g R): the largest error PASA-ACC-1 allows `kernel` in `profile`."""
    g = 1.0 + beta / (1.0 - beta) if kernel == "pasa" else 1.0
    max_v = float(np.abs(np.asarray(v, dtype=np.float64)).max())
    return domain()["constant"] * profile_unit_roundoff(profile) * max_v * (1.0 + g * score_range)
