"""Rounding-aware choice of beta (spec PASA-BETA-1, the PASA authors' optimal_para script).

The entries of M_n are rounded into the working format F. With
    b = fl_F(beta / n),   a = fl_F(1 - beta / n) + b   (the sum in binary64)
the authors' condition is the fixed point of
    F(beta) = b n / (a (a - b n)) + (1 - a) / a,     beta <- F / (1 + F),
iterated in binary64 from a start beta_0 until |beta_new - beta| <= tol * |beta|.
"""

from __future__ import annotations

from dataclasses import dataclass

from pasa_ref import formats
from pasa_ref.formats import Format

__all__ = ["BetaSolution", "fixed_point_map", "solve"]


@dataclass(frozen=True)
class BetaSolution:
    beta: float
    iterations: int
    block_length: int
    format: str


def fixed_point_map(beta: float, n: int, fmt: Format) -> float:
    """One step beta -> F / (1 + F) of the authors' iteration for block length n in fmt."""
    b = float(fmt.round(beta / n))
    a = float(fmt.round(1.0 - beta / n)) + b
    f = b * n / (a * (a - b * n)) + (1.0 - a) / a
    return f / (1.0 + f)


def solve(
    start: float,
    n: int = 128,
    fmt: str | Format = "fp16",
    *,
    tol: float = 1e-8,
    max_iterations: int = 1000,
) -> BetaSolution:
    """Iterate the rounding-aware map from `start` until the relative change is below tol.

    Raises ValueError (naming the argument) for start outside (0, 1), n < 1, tol <= 0, and
    when the iteration has not converged after max_iterations steps.
    """
    fmt = fmt if isinstance(fmt, Format) else formats.get(fmt)
    if not 0.0 < start < 1.0:
        raise ValueError(f"argument 'start': expected a value in (0, 1), got {start}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"argument 'n': expected an integer >= 1, got {n!r}")
    if not tol > 0.0:
        raise ValueError(f"argument 'tol': expected a value > 0, got {tol}")
    beta = start
    for iteration in range(1, max_iterations + 1):
        new = fixed_point_map(beta, n, fmt)
        if not 0.0 < new < 1.0:
            raise ValueError(
                f"beta iteration left (0, 1) at step {iteration}: {new} (start {start}, n {n}, "
                f"format {fmt.name})"
            )
        if abs(new - beta) <= tol * abs(beta):
            return BetaSolution(new, iteration, n, fmt.name)
        beta = new
    raise ValueError(
        f"argument 'max_iterations': no convergence within {max_iterations} steps "
        f"(start {start}, n {n}, format {fmt.name}, last beta {beta})"
    )
