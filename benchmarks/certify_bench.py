"""Certification benchmarks (issue 6), one mode per run:

    python benchmarks/certify_bench.py               level 1 and level 2 of the bundled pasa
                                                     kernel in fp16-full: seconds, verdicts,
                                                     and the ratio to the targets 60 s and
                                                     600 s (read by run_all.py)
    python benchmarks/certify_bench.py --profiles [--level 1]
                                                     the reference kernel in every profile
    python benchmarks/certify_bench.py --mutants [--max-level 2] [--full]
                                                     the planted-bug table: mutant, level that
                                                     caught it, clauses, seconds to reject
                                                     (--full: every failing clause of the
                                                     level, with severities)
    python benchmarks/certify_bench.py --classes [--max-level 2]
                                                     the yardstick of the declared class
                                                     (PASA-CERT-8): naive and flash declared
                                                     softmax in fp16-mixed and bf16-mixed, the
                                                     reference PASA run as the authors run it
                                                     (beta 0.984497, their padding) declared so
                                                     and not; verdict, cases, seconds, the
                                                     largest severity per level
    python benchmarks/certify_bench.py --calibrate [--seeds 5]
                                                     PASA-CERT-13's absolute bounds against the
                                                     reference kernel's worst values on the
                                                     benign cases of several seeds

Certificates go to a temporary directory. Run from the repository root (the mutants are
imported as tests.mutants.<name>).
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pasa_ref import oracle, profiles
from pasa_ref.certify import certify, criteria, declaration, evidence, generators, thresholds
from pasa_ref.certify.backend import Backend, load
from pasa_ref.kernels import pasa
from tests.mutants import CATALOGUE, backend

TARGETS = {1: 60.0, 2: 600.0}


def _machine() -> str:
    return f"{platform.machine()} {platform.processor() or ''}, numpy {np.__version__}"


def timings(out: Path) -> None:
    print(f"machine: {_machine()}")
    for level, target in TARGETS.items():
        start = time.perf_counter()
        outcome = certify(profile="fp16-full", level=level, out=out / f"level{level}")
        seconds = time.perf_counter() - start
        print(
            f"level {level}, fp16-full, bundled pasa kernel: {seconds:7.1f} s for "
            f"{outcome.document['cases']['done']} cases, certified = {outcome.certified}; "
            f"time ratio {seconds / target:.3f} of {target:g} s (target <= 1)"
        )


def every_profile(out: Path, level: int) -> None:
    print(f"machine: {_machine()}")
    print("| profile | certified | cases | seconds | largest severity (clause) |")
    print("|---|---|---|---|---|")
    for name in profiles.names():
        start = time.perf_counter()
        outcome = certify(profile=name, level=level, out=out / name)
        worst = max(
            (c for c in outcome.document["clauses"] if c["worst"]),
            key=lambda c: float(c["worst"]["severity"]),
        )
        print(
            f"| {name} | {outcome.certified} | {outcome.document['cases']['done']} | "
            f"{time.perf_counter() - start:.1f} | {float(worst['worst']['severity']):.3f} "
            f"({worst['id']}) |",
            flush=True,
        )


SOFTMAX = {"algorithm": {"class": "softmax"}}
AUTHORS = {"algorithm": {"class": "pasa", "beta": 0.984497, "ragged": "authors"}}


def authors_pasa(q, k, v, *, scale, causal, mask, profile):
    """The reference pasa kernel run as the authors' code runs it (beta 0.984497 at their
    HEAD, their padding of the ragged key block, PASA-BLK-4)."""
    return pasa.attention(
        q, k, v, profile=profile, scale=scale, causal=causal, mask=mask, beta=0.984497,
        ragged="authors",
    )  # fmt: skip


def classes(out: Path, max_level: int) -> None:
    print(f"machine: {_machine()}")
    authors = Backend("authors_pasa (beta 0.984497, ragged authors)", authors_pasa, None, None,
                      None, takes_profile=True)  # fmt: skip
    runs = [
        (load(f"pasa_ref.kernels.{name}:attention"), "softmax", SOFTMAX, profile)
        for profile in ("fp16-mixed", "bf16-mixed")
        for name in ("naive", "flash")
    ]
    runs += [
        (authors, label, table, profile)
        for profile in ("fp16-full", "fp16-mixed")
        for label, table in (("pasa as the authors", AUTHORS), ("none (profile's pasa)", {}))
    ]
    print("| backend | declared | profile | level | certified | cases | seconds | "
          "largest severity (clause) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for kernel, label, table, profile in runs:
        for level in range(1, max_level + 1):
            start = time.perf_counter()
            outcome = certify(
                kernel, profile=profile, level=level, out=out / f"{profile}-{level}",
                declare=declaration.from_mapping(table),
            )  # fmt: skip
            judged = [c for c in outcome.document["clauses"] if c["worst"]]
            worst = max(judged, key=lambda c: float(c["worst"]["severity"]))
            print(
                f"| {kernel.name} | {label} | {profile} | {level} | {outcome.certified} | "
                f"{outcome.document['cases']['done']} | {time.perf_counter() - start:.1f} | "
                f"{float(worst['worst']['severity']):.3f} ({worst['id']}) |",
                flush=True,
            )


def _failed(outcome) -> list[dict]:
    return [c for c in outcome.document["clauses"] if c["verdict"] == "FAIL"]


def mutants(out: Path, max_level: int, full: bool) -> None:
    """Each mutant at level 1, 2, ... with --fail-fast until it is rejected: the level, the
    first failing case, its failing clauses and the seconds to the rejection. With `full`,
    the whole level is run again without --fail-fast: every clause that fails, on how many
    of the cases it judged, and the largest severity (measured / allowed) of its failures."""
    print(f"machine: {_machine()}")
    extra = " all failing clauses at that level: failed/judged (largest severity) | seconds |"
    print(
        "| mutant | profile | level that caught it | first failing case | clauses | seconds |"
        + (extra if full else "")
    )
    print("|---|---|---|---|---|---|" + ("---|---|" if full else ""))
    for name, profile in CATALOGUE.items():
        row = f"| {name} | {profile} | not caught at level <= {max_level} | | | |"
        for level in range(1, max_level + 1):
            start = time.perf_counter()
            outcome = certify(
                backend(name),
                profile=profile,
                level=level,
                fail_fast=True,
                out=out / f"{name}-{level}",
            )
            seconds = time.perf_counter() - start
            if not outcome.certified:
                failed = _failed(outcome)
                cases = sorted({c["worst"]["case"] for c in failed})
                row = (
                    f"| {name} | {profile} | {level} | {', '.join(cases)} | "
                    f"{', '.join(c['id'] for c in failed)} | {seconds:.1f} |"
                )
                if full:
                    row += _full_run(name, profile, level, out / f"{name}-{level}-full")
                break
        print(row, flush=True)


def _full_run(name: str, profile: str, level: int, out: Path) -> str:
    start = time.perf_counter()
    outcome = certify(backend(name), profile=profile, level=level, out=out)
    seconds = time.perf_counter() - start
    cells = [
        f"{c['id']} {c['failed']}/{c['evaluated']} (max {float(c['worst']['severity']):.3g})"
        for c in _failed(outcome)
    ]
    return f" {'; '.join(cells)} | {seconds:.1f} |"


def calibrate(seeds: int) -> None:
    """The reference kernel's worst value of each PASA-CERT-13 quantity over the benign cases
    of `seeds` seeds, the configured bound, and the margin: allowed / worst shortfall (the
    spec asks for at least 2)."""
    conf = thresholds.load()
    print(f"benign cases of seeds 0..{seeds - 1}")
    print("| profile | quantity | worst of the reference | bound | margin |")
    print("|---|---|---|---|---|")
    for name in profiles.names():
        prof, bounds = profiles.get(name), conf.absolute_for(name)
        worst: dict[str, float] = {}
        for seed in range(seeds):
            for case in generators.benign(prof, seed):
                exact = oracle.attention(case.q, case.k, case.v, **case.call_kwargs()).output
                measured = criteria.absolute_measures(evidence.reference_output(case, prof), exact)
                for key, value in measured.items():
                    pick = max if key == "rmse_over_rms_reference" else min
                    worst[key] = pick(worst.get(key, value), value)
        for key, value in worst.items():
            if key == "rmse_over_rms_reference":
                bound = bounds.max_rmse_over_rms_reference
                margin = bound / value if value > 0 else math.inf
            else:
                bound = getattr(bounds, f"min_{key}")
                no_bound = bound == 0  # PASA-CERT-13: a minimum of 0 is no bound
                margin = (1 - bound) / (1 - value) if value < 1 and not no_bound else math.inf
            flag = "" if margin >= 2 else "  TOO TIGHT"
            print(f"| {name} | {key} | {value:.7g} | {bound:g} | {margin:.3g}{flag} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--profiles", action="store_true")
    mode.add_argument("--mutants", action="store_true")
    mode.add_argument("--calibrate", action="store_true")
    mode.add_argument("--classes", action="store_true")
    parser.add_argument("--level", type=int, default=1)
    parser.add_argument("--max-level", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--full",
        action="store_true",
        help="with --mutants: also run the whole level without --fail-fast",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.profiles:
            every_profile(Path(tmp), args.level)
        elif args.mutants:
            mutants(Path(tmp), args.max_level, args.full)
        elif args.calibrate:
            calibrate(args.seeds)
        elif args.classes:
            classes(Path(tmp), args.max_level)
        else:
            timings(Path(tmp))


if __name__ == "__main__":
    main()
