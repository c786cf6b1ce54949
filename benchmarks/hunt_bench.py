"""Time to first failure of `pasa hunt` (hypothesis with targeting) against plain generation from
the same strategies (hypothesis without hypothesis.target and without its targeting phase),
measured in one run on the same machine, several seeds each.

    python benchmarks/hunt_bench.py [--budget 30] [--seeds 3]
        [--scenario KERNEL:PROFILE:OBJECTIVE[:DISTRIBUTION+DISTRIBUTION...]] ...

A run that finds nothing within the budget counts as the budget (so medians are lower bounds
for the slower mode). Shrinking is off: only the search is timed. Prints one line per scenario
and a geometric-mean ratio targeted / untargeted over the scenarios.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics

from pasa_ref.hunt import HuntConfig, hunt

DEFAULT_SCENARIOS = (
    "naive:fp16-full:nonfinite",
    "flash:fp16-full:nonfinite",
    "pasa:fp16-full:nonfinite",
    "flash:fp16-full:envelope",
    "pasa:fp16-full:error:normal",
    "pasa:bf16-in-fp16:error:normal",
)


def time_to_failure(scenario: str, seed: int, budget: float, targeting: bool,
                    max_seq: int) -> float | None:
    """Seconds until the first failure of one hunt (None when none within the budget)."""
    kernel, profile, objective, *rest = scenario.split(":")
    distributions = rest[0].split("+") if rest else None
    config = HuntConfig(kernel, profile, objective, budget, seed=seed, max_seq=max_seq,
                        distributions=distributions, targeting=targeting, shrink=False)
    return hunt(config).first_failure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--max-seq", type=int, default=256)
    parser.add_argument("--scenario", action="append", default=None)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}; budget {args.budget:g} s, seeds 0..{args.seeds - 1}, "
          f"max-seq {args.max_seq}")
    ratios = []
    for scenario in args.scenario or DEFAULT_SCENARIOS:
        medians = {}
        for targeting in (True, False):
            times = [time_to_failure(scenario, seed, args.budget, targeting, args.max_seq)
                     for seed in range(args.seeds)]
            found = sum(t is not None for t in times)
            medians[targeting] = statistics.median(args.budget if t is None else t for t in times)
            shown = " ".join("-" if t is None else f"{t:.2f}" for t in times)
            mode = "targeted  " if targeting else "untargeted"
            print(f"{scenario} {mode}: found {found}/{args.seeds}, seconds [{shown}], "
                  f"median {medians[targeting]:.2f}", flush=True)
        ratios.append(max(medians[True], 1e-3) / max(medians[False], 1e-3))
    mean = math.exp(statistics.fmean(math.log(r) for r in ratios))
    print(f"hunt: time-to-first-failure ratio targeted / untargeted = {mean:.3g} "
          f"(geometric mean over {len(ratios)} scenarios)")


if __name__ == "__main__":
    main()
