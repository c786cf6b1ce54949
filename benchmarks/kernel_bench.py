"""Speed and memory of the reference `pasa` kernel in fp16-full against plain float32 numpy
attention on the same inputs, measured in one run (issue 2's target: ratio <= 3, peak
memory <= 2 GB). Usage: python benchmarks/kernel_bench.py [--seq 4096] [--heads 8]
[--dim 128] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import time
import tracemalloc

import numpy as np

from pasa_ref.kernels import pasa


def float32_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The baseline: softmax(q k^T / sqrt(D)) v, all in float32, whole score matrix at once."""
    s = (q @ np.swapaxes(k, -1, -2)) * np.float32(1.0 / np.sqrt(q.shape[-1]))
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return s @ v


def seconds(fn, *args, **kwargs) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def peak_bytes(fn, *args, **kwargs) -> int:
    """Peak memory traced by tracemalloc (numpy reports its buffers to it) during one call;
    measured in a separate call because tracing slows allocation-heavy code down."""
    tracemalloc.start()
    fn(*args, **kwargs)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--seq", type=int, default=4096)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.batch, args.heads, args.seq, args.dim)
    q16, k16, v16 = (rng.standard_normal(shape).astype(np.float16) for _ in range(3))
    q32, k32, v32 = (x.astype(np.float32) for x in (q16, k16, v16))
    base, ours = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        base.append(seconds(float32_attention, q32, k32, v32))
        ours.append(seconds(pasa.attention, q16, k16, v16, profile="fp16-full"))
    base_s, ours_s = min(base), min(ours)
    base_peak = peak_bytes(float32_attention, q32, k32, v32)
    peak = peak_bytes(pasa.attention, q16, k16, v16, profile="fp16-full")
    print(f"machine: {platform.machine()} {platform.processor() or ''}, numpy {np.__version__}")
    print(f"shape B x H x S x D = {shape}, best of {args.repeats}")
    print(f"float32 numpy attention: {base_s:8.3f} s   peak {base_peak / 2**30:.2f} GiB")
    print(f"pasa fp16-full:          {ours_s:8.3f} s   peak {peak / 2**30:.2f} GiB")
    print(f"time ratio pasa / float32 = {ours_s / base_s:.2f}   (target <= 3)")
    print(f"pasa peak memory = {peak / 2**30:.3f} GiB   (target <= 2 GB)")


if __name__ == "__main__":
    main()
