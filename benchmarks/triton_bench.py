"""The Triton PASA kernel against torch SDPA on one NVIDIA GPU: speed, then accuracy.

    python benchmarks/triton_bench.py --out DIR [--no-tune] [--sizes S ...]

First the tile configs of pasa (CANDIDATES) are timed at S = 4096 and the fastest of each
(variant, causal) is kept for the rest of the run (--no-tune: the kernel's defaults).

Speed: forward TFLOP/s (4 B H S^2 D flops, half of it causal) of pasa (mixed and full
variants) and torch SDPA's flash, efficient and cuDNN backends, fp16, B = 4, H = 16, D = 128,
S in {1024, 4096, 16384}, causal and not; triton.testing.do_bench medians after its warm-up,
every ratio printed. Accuracy: the PASA paper's grid (pasa_ref.reproduce.distributions,
uniform and hybrid, mean_val x Am, B = 1, Hq = 28, Hkv = 4, S = 1407, D = 128), RMSE and
RMSE / RMS(V) against float64 attention computed on the GPU, for both pasa variants, the four
SDPA backends (flash, efficient, cuDNN, math) and a naive kernel that forms Q K^T in fp16
(the paper's baseline), whose scores overflow at mean_val 30.

Writes DIR/triton_tune.csv, DIR/triton_speed.csv, DIR/triton_accuracy.csv and DIR/triton_bench.md.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import triton
from torch.nn.attention import SDPBackend, sdpa_kernel

from pasa_ref.gpu import triton_pasa
from pasa_ref.reproduce import distributions
from pasa_ref.strategies import Shape

SIZES = (1024, 4096, 16384)
BATCH, HEADS, HEAD_DIM = 4, 16, 128
SDPA = {
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "math": SDPBackend.MATH,
}
PAPER_SHAPE = Shape(1, 28, 4, 1407, 1407, 128)
MEAN_VALS = (0.0, 10.0, 20.0, 30.0)
AMPLITUDES = (0.5, 5.0, 10.0, 20.0)

Attention = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, bool], torch.Tensor]


#: (BLOCK_M, num_warps, num_stages) of pasa by (variant, causal), set by tune(); None: the
#: kernel's defaults
TUNED: dict[tuple[str, bool], tuple[int, int, int]] = {}
CANDIDATES = {
    "mixed": [(128, 8, 2), (128, 8, 3), (64, 4, 3)],
    "full": [(64, 4, 3), (128, 8, 2), (128, 8, 3)],
}


def pasa(variant: str, config: tuple[int, int, int] | None = None) -> Attention:
    def run(q, k, v, causal):
        chosen = config or TUNED.get((variant, causal))
        return triton_pasa.pasa_attention(q, k, v, variant=variant, causal=causal, config=chosen)

    return run


def sdpa(backend: str) -> Attention:
    def run(q, k, v, causal):
        group = q.shape[1] // k.shape[1]
        if group > 1:  # GQA as repeated heads: every backend accepts it, same numerics
            k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        with sdpa_kernel(SDPA[backend]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return run


def naive_fp16(q, k, v, causal):
    """The paper's baseline: S = fl16(Q K^T), then the scale, softmax in fp32, P V
    (non-causal only)."""
    if causal:
        raise ValueError("argument 'causal': the naive baseline is non-causal only")
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = (q @ k.transpose(-1, -2)).float() / math.sqrt(q.shape[-1])
    return (torch.softmax(s, -1).half() @ v).half()


KERNELS: dict[str, Attention] = {
    "pasa-mixed": pasa("mixed"),
    "pasa-full": pasa("full"),
    **{f"sdpa-{name}": sdpa(name) for name in ("flash", "efficient", "cudnn")},
}


def flops(s: int, causal: bool) -> float:
    total = 4.0 * BATCH * HEADS * s * s * HEAD_DIM
    return total / 2 if causal else total


def inputs(s: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator(device="cuda").manual_seed(seed)
    return tuple(
        torch.randn((BATCH, HEADS, s, HEAD_DIM), generator=gen, device="cuda",
                    dtype=torch.float16)
        for _ in range(3)
    )


def milliseconds(fn: Attention, q, k, v, causal: bool) -> float:
    fn(q, k, v, causal)  # compile outside the timing
    torch.cuda.synchronize()
    return triton.testing.do_bench(lambda: fn(q, k, v, causal), warmup=50, rep=300,
                                   return_mode="median")


def speed(sizes: tuple[int, ...]) -> list[dict]:
    rows = []
    for s, causal in itertools.product(sizes, (False, True)):
        q, k, v = inputs(s)
        for name, fn in KERNELS.items():
            try:
                ms = milliseconds(fn, q, k, v, causal)
            except Exception as error:  # noqa: BLE001 - a backend that refuses the shape
                print(f"{name} S={s} causal={causal}: {type(error).__name__}: {error}")
                ms = float("nan")
            rows.append(dict(kernel=name, seq=s, causal=causal, ms=ms,
                             tflops=flops(s, causal) / ms / 1e9))
            print(f"S={s:6d} causal={causal!s:5} {name:15s} {ms:9.3f} ms "
                  f"{rows[-1]['tflops']:7.1f} TFLOP/s", flush=True)
        del q, k, v
    return rows


def ratios(rows: list[dict]) -> list[tuple[int, bool, str, str, float]]:
    """pasa-* TFLOP/s over each sdpa-* TFLOP/s, per (S, causal)."""
    by = {(r["seq"], r["causal"], r["kernel"]): r["tflops"] for r in rows}
    out = []
    for (s, causal, name), value in by.items():
        if name.startswith("pasa"):
            for base in ("sdpa-flash", "sdpa-efficient", "sdpa-cudnn"):
                out.append((s, causal, name, base, value / by[(s, causal, base)]))
    return out


def tune(s: int = 4096) -> list[dict]:
    """Time every candidate config of both variants at S = s, causal and not; keep the
    fastest in TUNED (query tiles never change results, PASA-BLK-1)."""
    q, k, v = inputs(s)
    rows = []
    for variant, configs in CANDIDATES.items():
        for causal in (False, True):
            best = None
            for config in configs:
                try:
                    ms = milliseconds(pasa(variant, config), q, k, v, causal)
                except Exception as error:  # noqa: BLE001 - out of resources: say which
                    print(f"tune {variant} {config} causal={causal}: {type(error).__name__}: "
                          f"{str(error)[:100]}")
                    continue
                rows.append(dict(variant=variant, causal=causal, config=str(config), ms=ms,
                                 tflops=flops(s, causal) / ms / 1e9))
                print(f"tune {variant:5s} {config} causal={causal!s:5} {ms:8.3f} ms "
                      f"{rows[-1]['tflops']:7.1f} TFLOP/s", flush=True)
                if best is None or ms < best[0]:
                    best = (ms, config)
            if best is not None:
                TUNED[(variant, causal)] = best[1]
    print(f"tuned configs: {TUNED}")
    return rows


def float64_attention(q, k, v) -> torch.Tensor:
    group = q.shape[1] // k.shape[1]
    q, k, v = (x.double() for x in (q, k, v))
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    return torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]), -1) @ v


def accuracy() -> list[dict]:
    kernels = {
        "pasa-mixed": pasa("mixed"),
        "pasa-full": pasa("full"),
        **{f"sdpa-{name}": sdpa(name) for name in SDPA},
        "naive-fp16": naive_fp16,
    }
    rows = []
    for dist, mean_val, am in itertools.product(distributions.DISTRIBUTIONS, MEAN_VALS,
                                                AMPLITUDES):
        q, k, v = (
            torch.from_numpy(x.astype(np.float16)).cuda()
            for x in distributions.qkv(dist, PAPER_SHAPE, mean_val, am, seed=0)
        )
        exact = float64_attention(q, k, v)
        rms_v = float(v.double().pow(2).mean().sqrt())
        for name, fn in kernels.items():
            try:
                out = fn(q, k, v, False).double()
            except Exception as error:  # noqa: BLE001 - a backend that refuses the shape
                print(f"{name} {dist} {mean_val} {am}: {type(error).__name__}: {error}")
                continue
            nonfinite = int((~torch.isfinite(out)).sum()) / out.numel()
            rmse = float((out - exact).pow(2).mean().sqrt()) if nonfinite == 0 else float("nan")
            rows.append(dict(distribution=dist, mean_val=mean_val, amplitude=am, kernel=name,
                             rmse=rmse, rmse_over_rms_v=rmse / rms_v, nonfinite=nonfinite))
        print(f"accuracy {dist} mean {mean_val} Am {am}: " + ", ".join(
            f"{r['kernel']} {r['rmse_over_rms_v']:.2e}" if r["nonfinite"] == 0
            else f"{r['kernel']} nonfinite {r['nonfinite']:.1%}"
            for r in rows[-len(kernels):]), flush=True)
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def markdown(speed_rows: list[dict], accuracy_rows: list[dict], command: str) -> str:
    device = torch.cuda.get_device_name()
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {device}, torch {torch.__version__}, "
        f"triton {triton.__version__}, Python {platform.python_version()}; command: `{command}`.",
        "",
        "Forward TFLOP/s (fp16, B = 4, H = 16, D = 128; do_bench median):",
        "",
        "| S | causal | " + " | ".join(KERNELS) + " | mixed / flash | mixed / cudnn |",
        "|---|---|" + "---|" * (len(KERNELS) + 2),
    ]
    by = {(r["seq"], r["causal"], r["kernel"]): r["tflops"] for r in speed_rows}
    for s, causal in sorted({(r["seq"], r["causal"]) for r in speed_rows}):
        cells = [f"{by[(s, causal, name)]:.0f}" for name in KERNELS]
        mixed = by[(s, causal, "pasa-mixed")]
        lines.append(f"| {s} | {causal} | " + " | ".join(cells) + f" | "
                     f"{mixed / by[(s, causal, 'sdpa-flash')]:.2f} | "
                     f"{mixed / by[(s, causal, 'sdpa-cudnn')]:.2f} |")
    kernels = list(dict.fromkeys(r["kernel"] for r in accuracy_rows))
    lines += [
        "",
        "RMSE / RMS(V) against float64 attention on the GPU (paper grid, B = 1, Hq = 28, "
        "Hkv = 4, S = 1407, D = 128; NaN/inf share where not finite):",
        "",
        "| distribution | mean_val | Am | " + " | ".join(kernels) + " |",
        "|---|---|---|" + "---|" * len(kernels),
    ]
    acc = {(r["distribution"], r["mean_val"], r["amplitude"], r["kernel"]): r
           for r in accuracy_rows}
    for dist, mean_val, am in sorted({k[:3] for k in acc}):
        cells = []
        for name in kernels:
            r = acc.get((dist, mean_val, am, name))
            cells.append("n/a" if r is None else f"{r['rmse_over_rms_v']:.2e}"
                         if r["nonfinite"] == 0 else f"non-finite {r['nonfinite']:.0%}")
        lines.append(f"| {dist} | {mean_val:g} | {am:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-tune", action="store_true",
                        help="use the kernel's default tile configs")
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    if not args.no_tune:
        write_csv(args.out / "triton_tune.csv", tune())
    speed_rows = speed(tuple(args.sizes))
    for s, causal, name, base, ratio in ratios(speed_rows):
        print(f"ratio S={s} causal={causal} {name} / {base} = {ratio:.3f}")
    accuracy_rows = accuracy()
    write_csv(args.out / "triton_speed.csv", speed_rows)
    write_csv(args.out / "triton_accuracy.csv", accuracy_rows)
    text = markdown(speed_rows, accuracy_rows, "python " + " ".join(sys.argv))
    text += f"\npasa tile configs (BLOCK_M, num_warps, num_stages) by (variant, causal): {TUNED}\n"
    (args.out / "triton_bench.md").write_text(text)
    print(text)
    print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
