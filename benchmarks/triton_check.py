"""Correctness of the Triton PASA kernel on a GPU, at many shapes, before any timing.

    python benchmarks/triton_check.py [--cases N] [--max-seq S] [--out DIR]
    TRITON_INTERPRET=1 python benchmarks/triton_check.py --max-seq 150    (on the CPU)

Each case draws fresh inputs (shape, GQA/MQA, ragged S1 and S2, head dims 16..256, Dv != D,
fp16 and bf16, both variants, no mask / causal / random mask / padding mask) and checks:

    finite, fully masked rows exactly 0 (PASA-MASK-3), every element written (the output
    memory is poisoned with NaN first), two runs bit for bit equal;
    max |O - O*| <= the PASA-ACC-1 envelope, O* float64 attention on the GPU;
    max |O - O*| <= 2 max |O_ref - O*| + 2 ulp_F(max |O*|), O_ref the reference kernel of the
    same profile (pasa_ref.kernels.pasa, numpy), the certifier's rule PASA-CERT-12;
    and reports the share of output elements equal to the reference's bit for bit.

Prints one line per case and a summary; exits 1 if any case fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import torch

from pasa_ref import profiles
from pasa_ref.accuracy import reference_bound
from pasa_ref.gpu import triton_pasa
from pasa_ref.kernels import pasa

DTYPES = {"fp16": (np.float16, torch.float16, 11), "bf16": (ml_dtypes.bfloat16, torch.bfloat16, 8)}
HEAD_DIMS = (16, 32, 64, 80, 96, 128, 256)
MASKINGS = ("none", "causal", "random", "padding")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: with TRITON_INTERPRET=1


def draw_case(rng: np.random.Generator, max_seq: int) -> dict:
    hkv = int(rng.choice([1, 2, 4]))
    d = int(rng.choice(HEAD_DIMS))
    return dict(
        variant=str(rng.choice(triton_pasa.VARIANTS)),
        dtype=str(rng.choice(list(DTYPES))),
        b=int(rng.integers(1, 3)),
        hq=hkv * int(rng.choice([1, 2, 4])),
        hkv=hkv,
        s1=int(rng.integers(1, max_seq)),
        s2=int(rng.integers(1, max_seq)),
        d=d,
        dv=d if rng.random() < 0.7 else int(rng.choice(HEAD_DIMS[:5])),
        masking=str(rng.choice(MASKINGS)),
        sd=float(rng.choice([0.5, 1.0, 3.0])),
    )


def arrays(case: dict, rng: np.random.Generator):
    np_dtype = DTYPES[case["dtype"]][0]
    q = (rng.standard_normal((case["b"], case["hq"], case["s1"], case["d"])) * case["sd"])
    k = (rng.standard_normal((case["b"], case["hkv"], case["s2"], case["d"])) * case["sd"])
    v = rng.standard_normal((case["b"], case["hkv"], case["s2"], case["dv"]))
    mask = None
    if case["masking"] == "random":
        mask = rng.random((case["b"], 1, case["s1"], case["s2"])) < 0.5
        mask[..., :: max(case["s1"] // 5, 1), :] = False
    elif case["masking"] == "padding":
        lengths = rng.integers(0, case["s2"] + 1, size=(case["b"], 1, 1, 1))
        mask = np.arange(case["s2"]) < lengths
    return q.astype(np_dtype), k.astype(np_dtype), v.astype(np_dtype), mask


def float64_attention(q, k, v, causal, mask):
    """softmax(scale q k^T) v in float64 on the GPU, fully masked rows 0, and the largest
    row range of the visible scores."""
    q, k, v = (torch.from_numpy(x.astype(np.float64)).to(DEVICE) for x in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
    s = (q @ k.transpose(-1, -2)) / np.sqrt(q.shape[-1])
    s1, s2 = s.shape[-2:]
    visible = torch.ones(s.shape, dtype=torch.bool, device=DEVICE)
    if causal:
        visible &= torch.arange(s2, device=DEVICE)[None, :] <= (
            torch.arange(s1, device=DEVICE)[:, None] + (s2 - s1))
    if mask is not None:
        visible &= torch.from_numpy(mask).to(DEVICE)
    any_visible = visible.any(-1, keepdim=True)
    top = torch.where(visible, s, -torch.inf).amax(-1, keepdim=True)
    low = torch.where(visible, s, torch.inf).amin(-1, keepdim=True)
    score_range = float(torch.where(any_visible, top - low, 0).max())
    w = torch.where(visible, torch.exp(s - torch.where(any_visible, top, 0)), 0)
    out = (w / torch.where(any_visible, w.sum(-1, keepdim=True), 1)) @ v
    return out.cpu().numpy(), score_range, any_visible[..., 0].cpu().numpy()


def run_kernel(case, q, k, v, mask) -> np.ndarray:
    if DEVICE == "cuda":  # freed again: the output's memory is likely to be this NaN block
        torch.full((64 << 20,), float("nan"), device=DEVICE)
    fn = triton_pasa.certify_fp16_mixed if case["variant"] == "mixed" else (
        triton_pasa.certify_fp16_full)
    return fn(q, k, v, scale=1.0 / np.sqrt(q.shape[-1]), causal=case["masking"] == "causal",
              mask=mask)


def check(case: dict, seed: int) -> tuple[bool, str]:
    rng = np.random.default_rng(seed)
    q, k, v, mask = arrays(case, rng)
    causal = case["masking"] == "causal"
    profile = f"{case['dtype']}-{case['variant']}"
    out = run_kernel(case, q, k, v, mask)
    again = run_kernel(case, q, k, v, mask)
    problems = []
    if out.shape != (*q.shape[:3], v.shape[-1]) or out.dtype != q.dtype:
        return False, f"shape/dtype {out.shape} {out.dtype}"
    if not np.array_equal(out.view(np.uint16), again.view(np.uint16)):
        problems.append("two runs differ")
    out64 = out.astype(np.float64)
    exact, score_range, visible = float64_attention(q, k, v, causal, mask)
    if not np.isfinite(out64).all():
        problems.append(f"non-finite {np.mean(~np.isfinite(out64)):.2%}")
    if not (out64[~visible] == 0).all():
        problems.append("masked rows not 0")
    reference = pasa.attention(q, k, v, profile=profile, scale=1.0 / np.sqrt(q.shape[-1]),
                               causal=causal, mask=mask, block_k=128).astype(np.float64)
    error = float(np.abs(out64 - exact).max())
    ref_error = float(np.abs(reference - exact).max())
    top = float(np.abs(exact).max())
    ulp = 2.0 ** (np.floor(np.log2(top)) - (DTYPES[case["dtype"]][2] - 1)) if top > 0 else 0.0
    envelope = reference_bound("pasa", profile, v, score_range, profiles.get(profile).beta)
    if error > envelope:
        problems.append(f"error {error:.3g} > envelope {envelope:.3g}")
    if error > 2 * ref_error + 2 * ulp:
        problems.append(f"error {error:.3g} > 2 x reference {ref_error:.3g} + 2 ulp")
    equal = float(np.mean(out64 == reference))
    text = (f"err {error:.2e} ref {ref_error:.2e} bit-equal {equal:.1%} "
            + ("; ".join(problems) if problems else "ok"))
    return not problems, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--max-seq", type=int, default=700)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    lines, failures = [], 0
    for index in range(args.cases):
        case = draw_case(rng, args.max_seq)
        try:
            ok, text = check(case, seed=index)
        except Exception as error:  # noqa: BLE001 - report and go on
            ok, text = False, f"{type(error).__name__}: {str(error)[:300]}"
        failures += not ok
        line = f"{'PASS' if ok else 'FAIL'} {case} {text}"
        lines.append(line)
        print(line, flush=True)
    summary = f"{args.cases - failures}/{args.cases} cases pass"
    print(summary)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "triton_check.log").write_text("\n".join(lines + [summary]) + "\n")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
