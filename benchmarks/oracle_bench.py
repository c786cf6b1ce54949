"""Oracle benchmark (issue 3, spec PASA-ORC-10): the mpmath path's cost per head, the fast path's
time as a multiple of float64 numpy attention on the same inputs (both measured in this run,
interleaved, best of --repeats), and the fast path on one 16384-key head with its peak memory.

    PYTHONPATH=. python benchmarks/oracle_bench.py [--repeats 2] [--skip-long]

Inputs are fp16 N(0, 1) arrays from a fixed seed. Timings depend on the machine's load: the
load average is printed with them.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

from pasa_ref import oracle


def float64_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(D)) v in plain float64 numpy (no mask, Hq = Hkv), in place where
    possible: the baseline of the ratio."""
    q, k, v = (x.astype(np.float64) for x in (q, k, v))
    s = q @ k.swapaxes(-1, -2)
    s *= 1.0 / math.sqrt(q.shape[-1])
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    out = s @ v
    out /= s.sum(axis=-1, keepdims=True)
    return out


def inputs(batch: int, heads: int, seq: int, dim: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(0)
    return tuple(rng.standard_normal((batch, heads, seq, dim)).astype(np.float16) for _ in "qkv")


def seconds(fn: Callable[..., object], *args: object, **kwargs: object) -> tuple[float, object]:
    """(wall time of fn(*args, **kwargs) in seconds, its result)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def bench_mpmath() -> None:
    for seq, dim in ((64, 64), (256, 128)):
        q, k, v = inputs(1, 1, seq, dim)
        t, result = seconds(oracle.attention, q, k, v, method="mpmath")
        print(
            f"mpmath path, one head, S={seq}, D={dim}: {t:.2f} s (max bound {result.max_bound:.2e})"
        )


def bench_ratio(repeats: int) -> None:
    q, k, v = inputs(1, 8, 4096, 128)
    base, fast = math.inf, math.inf
    for _ in range(repeats):
        t, reference = seconds(float64_attention, q, k, v)
        base = min(base, t)
        t, result = seconds(oracle.attention, q, k, v, method="fast")
        fast = min(fast, t)
    gap = float(np.abs(result.output - reference).max())
    print(
        f"fast path, B=1, H=8, S=4096, D=128: {fast:.2f} s; float64 numpy attention "
        f"{base:.2f} s; ratio {fast / base:.2f} (limit 20); |fast - float64| <= {gap:.1e}, "
        f"max bound {result.max_bound:.2e}"
    )


def bench_long() -> None:
    q, k, v = inputs(1, 1, 16384, 128)
    t, result = seconds(oracle.attention, q, k, v, method="fast")
    tracemalloc.start()
    oracle.attention(q, k, v, method="fast")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(
        f"fast path, one head, S=16384, D=128: {t:.2f} s; peak traced memory "
        f"{peak / 2**20:.0f} MiB (process max RSS {rss:.0f} MiB); "
        f"max bound {result.max_bound:.2e}, exact rows {result.exact_rows}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="best of N for the ratio")
    parser.add_argument("--skip-long", action="store_true", help="skip the S=16384 head")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if not args.skip_long:  # first, so that the process's max RSS is this case's
        bench_long()
    bench_mpmath()
    bench_ratio(args.repeats)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
