"""Run every benchmark of the project and print one table of ratios with the machine description.

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--timeout SECONDS] [--markdown FILE]

Each benchmark is a script in this folder, run as its own process with this Python (one that
crashes or hangs cannot take the others down): kernels (kernel_bench.py), oracle
(oracle_bench.py), certify (certify_bench.py), hunt (hunt_bench.py). A script that is not there
is reported as missing, one that exits non-zero as failed, one that runs past --timeout as
timed out; the others still run. The exit status is 1 when a benchmark failed or timed out
(a missing one is not an error: it may not be written yet), else 0.

Ratios are read from what a script prints. A line (or ';'-separated part of a line) with the
word "ratio" gives one ratio: the number right after "ratio", else the first number after the
next "="; a "(target <= N)" or "(limit N)" after it is its limit, and the verdict is "ok" when
value <= limit. The measure is named by the text before the number, prefixed by the line's
subject (its text before the first ":") when it does not already start with it. A script that
prints no such line is reported as "no ratio" with its last line. --quick passes each script the
arguments that make it small (listed in BENCHMARKS). The table is printed as Markdown, so that
it can be pasted into the README as it is.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_AFTER_RATIO = re.compile(rf"\bratio\s+({NUMBER})(?![\w.])", re.IGNORECASE)
_AFTER_EQUALS = re.compile(rf"\bratio\b[^=]*?=\s*({NUMBER})", re.IGNORECASE)
_LIMIT = re.compile(rf"\((?:target|limit)\s*(?:<=|≤)?\s*({NUMBER})[^)]*\)", re.IGNORECASE)


@dataclass(frozen=True)
class Benchmark:
    """A benchmark script of this folder; quick: its arguments for --quick."""

    name: str
    script: str
    quick: tuple[str, ...] = ()


BENCHMARKS = (
    Benchmark("kernels", "kernel_bench.py", ("--repeats", "1")),
    Benchmark("oracle", "oracle_bench.py", ("--skip-long", "--repeats", "1")),
    Benchmark("certify", "certify_bench.py"),  # no small mode: levels 1 and 2 in both modes
    Benchmark("hunt", "hunt_bench.py", ("--budget", "5", "--seeds", "1")),
)


@dataclass(frozen=True)
class Ratio:
    measure: str
    value: float
    limit: float | None

    @property
    def verdict(self) -> str:
        if self.limit is None:
            return ""
        return "ok" if self.value <= self.limit else "OVER LIMIT"


@dataclass(frozen=True)
class Result:
    """What one benchmark gave: its ratios, or why there are none (status)."""

    benchmark: Benchmark
    status: str  # "ran", "missing", "failed (exit N)", "timed out after S s", "no ratio"
    seconds: float
    ratios: tuple[Ratio, ...] = ()
    detail: str = ""


def parse_ratios(output: str) -> list[Ratio]:
    """Every ratio in a script's output (see the module docstring)."""
    ratios = []
    for line in output.splitlines():
        subject = line.split(":", 1)[0].strip() if ":" in line else ""
        for part in line.split(";"):
            match = _AFTER_RATIO.search(part) or _AFTER_EQUALS.search(part)
            if match is None:
                continue
            limit = _LIMIT.search(part, match.end())
            name = part[: match.start(1)].rstrip(" =").strip()
            if subject and not name.startswith(subject):
                name = f"{subject}: {name}"
            ratios.append(
                Ratio(name, float(match.group(1)), float(limit.group(1)) if limit else None)
            )
    return ratios


def run_benchmark(
    benchmark: Benchmark, *, quick: bool, timeout: float, folder: Path = HERE
) -> Result:
    """Run one benchmark script and read its ratios."""
    script = folder / benchmark.script
    if not script.is_file():
        return Result(benchmark, "missing", 0.0, detail=f"{script.name} not found")
    command = [sys.executable, str(script), *(benchmark.quick if quick else ())]
    paths = [str(ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, check=False, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
        )
    except subprocess.TimeoutExpired:
        return Result(benchmark, f"timed out after {timeout:g} s", time.perf_counter() - start)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return Result(benchmark, f"failed (exit {done.returncode})", seconds, detail=tail[0])
    ratios = tuple(parse_ratios(done.stdout))
    if not ratios:
        last = done.stdout.strip().splitlines()[-1:] or [""]
        return Result(benchmark, "no ratio", seconds, detail=last[0])
    return Result(benchmark, "ran", seconds, ratios)


def machine() -> list[tuple[str, str]]:
    """What the numbers were measured on."""
    return [
        ("platform", platform.platform()),
        ("cpu", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("memory", _memory()),
        ("python", platform.python_version()),
        ("numpy", f"{np.__version__} ({_blas()})"),
        ("load average (1 min) at start", f"{os.getloadavg()[0]:.2f}"),
    ]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory() -> str:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{pages * size / 2**30:.1f} GiB"


def _blas() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):
        return "BLAS unknown"


def table(results: list[Result]) -> str:
    """One Markdown table: a row per ratio, or per benchmark without ratios."""
    lines = [
        "| benchmark | measure | ratio | limit | verdict | seconds |",
        "|:---|:---|---:|---:|:---|---:|",
    ]
    for r in results:
        seconds = f"{r.seconds:.1f}" if r.seconds else ""
        if not r.ratios:
            lines.append(f"| {r.benchmark.name} | {r.detail} |  |  | {r.status} | {seconds} |")
        for ratio in r.ratios:
            limit = "" if ratio.limit is None else f"{ratio.limit:g}"
            lines.append(
                f"| {r.benchmark.name} | {ratio.measure} | {ratio.value:.2f} | {limit} "
                f"| {ratio.verdict} | {seconds} |"
            )
    return "\n".join(lines)


def report(results: list[Result], facts: list[tuple[str, str]], command: str) -> str:
    head = [f"Command: `{command}`", ""] + [f"- {name}: {value}" for name, value in facts]
    return "\n".join(head) + "\n\n" + table(results) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (see BENCHMARKS)")
    names = [b.name for b in BENCHMARKS]
    parser.add_argument(
        "--only",
        nargs="+",
        choices=names,
        metavar="NAME",
        help=f"run only these benchmarks, among {names}",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds allowed to each benchmark (default 1800)",
    )
    parser.add_argument("--markdown", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error(f"argument --timeout: expected a number of seconds > 0, got {args.timeout:g}")
    facts = machine()
    chosen = [b for b in BENCHMARKS if args.only is None or b.name in args.only]
    results = []
    for benchmark in chosen:
        print(f"running {benchmark.name} ({benchmark.script}) ...", file=sys.stderr, flush=True)
        results.append(run_benchmark(benchmark, quick=args.quick, timeout=args.timeout))
    command = "python benchmarks/run_all.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = report(results, facts, command.strip())
    print(text)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    broken = [r for r in results if r.status.startswith(("failed", "timed out"))]
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
