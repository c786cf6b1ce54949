"""The input distributions of the published benchmarks, as deterministic numpy generators.

Every entry of q, k and v is drawn independently, in binary64 (each kernel's inputs are this
draw rounded to nearest into the profile's input format):

    uniform(mean_val, Am):  x = (U - 0.5) 2 Am + mean_val,            U ~ Uniform[0, 1)
    hybrid(mean_val, Am):   x = N(mean_val, 1) + N(0, Am^2) Bernoulli(0.001)

as in the PASA authors' verification script (chenglong92/PASA, `gendata`: Am is the half-width
of the uniform law and the standard deviation of the rare outliers of the hybrid law).
FlashAttention-3's error benchmark (arXiv 2407.08608, Table 3) draws N(0, 1) + N(0, 100)
Bernoulli(0.001), i.e. hybrid(0, 10).

A draw is a pure function of (distribution, shape, mean_val, Am, seed): the generator is seeded
with all of them, so a grid point gives the same inputs whatever else is run with it.
"""

from __future__ import annotations

import numpy as np

from pasa_ref.strategies import Shape

__all__ = ["DISTRIBUTIONS", "OUTLIER_PROBABILITY", "draw", "qkv"]

DISTRIBUTIONS = ("uniform", "hybrid")
OUTLIER_PROBABILITY = 0.001


def draw(
    distribution: str,
    rng: np.random.Generator,
    shape: tuple[int, ...],
    mean_val: float,
    amplitude: float,
) -> np.ndarray:
    """One binary64 array of `shape` from `distribution` (see the module docstring)."""
    if distribution == "uniform":
        return (rng.random(shape) - 0.5) * 2.0 * amplitude + mean_val
    if distribution == "hybrid":
        base = rng.normal(mean_val, 1.0, shape)
        outliers = rng.normal(0.0, amplitude, shape)
        return base + outliers * (rng.random(shape) < OUTLIER_PROBABILITY)
    raise _unknown(distribution)


def qkv(
    distribution: str, shape: Shape, mean_val: float, amplitude: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """q, k, v in binary64, seeded by (seed, distribution, shape, mean_val, Am)."""
    if not amplitude >= 0:
        raise ValueError(f"argument 'amplitude': expected a number >= 0, got {amplitude!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"argument 'seed': expected an integer >= 0, got {seed!r}")
    if distribution not in DISTRIBUTIONS:
        raise _unknown(distribution)
    key = [
        seed,
        DISTRIBUTIONS.index(distribution),
        *shape.q,
        *shape.k,
        *np.float64([mean_val, amplitude]).view(np.uint64).tolist(),
    ]
    rng = np.random.default_rng(key)
    return (
        draw(distribution, rng, shape.q, mean_val, amplitude),
        draw(distribution, rng, shape.k, mean_val, amplitude),
        draw(distribution, rng, shape.v, mean_val, amplitude),
    )


def _unknown(distribution: str) -> ValueError:
    return ValueError(
        f"argument 'distribution': expected one of {DISTRIBUTIONS}, got {distribution!r}"
    )
