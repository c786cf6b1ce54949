"""Recompute a failing case of a certificate in float64 and say whose fault it is.

    python benchmarks/float64_check.py KERNEL CASE.npz --device cuda --profile fp16-mixed

KERNEL is an adapter name (pasa_ref.adapters); CASE a case file that `pasa certify` saved
under failures/. The kernel is called twice on the case as stored; its output Ob is compared
with an independent float64 attention O64 of the same (rounded) inputs (tests/
float64_attention.py, which shares no code with pasa_ref), and so is the softmax-class
yardstick Or (pasa_ref.kernels.flash in the profile). Printed as one JSON object:

    finding   "kernel defect" when float64 confirms it: a non-finite output where O64 is
              finite, a row with no visible key that is not 0 (PASA-MASK-3, or NaN when so
              declared; not judged when declared "unspecified"), two calls that
              differ bit for bit, an exception other than a refusal of the input (a
              refusal, UnsupportedCall or torch's "No available kernel", is an input
              outside the declaration: the suite's), or
                  max|Ob - O64| > 2 max|Or - O64| + 2 ulp_F(max|O64|)      (rows with a key)
              (the accuracy rule of PASA-CERT-12 with O64 in place of the oracle); else
              "limit of the suite": float64 does not confirm the failure
    what      the defect in words, with the worst element (index, got, exact)
    measures  the numbers behind it
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pasa_ref import adapters, metrics, profiles  # noqa: E402
from pasa_ref.adapters.arguments import UnsupportedCall  # noqa: E402
from pasa_ref.cases import Case  # noqa: E402
from pasa_ref.kernels import flash  # noqa: E402
from tests.float64_attention import attention64, visible_keys  # noqa: E402

RTOL, FLOOR_ULPS = 2.0, 2.0
REFUSED = "No available kernel"  # torch SDPA's refusal of an input its backend lacks


def check(kernel: str, path: Path, device: str, profile_name: str) -> dict[str, Any]:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN outputs are findings
        return _check(kernel, path, device, profile_name)


def _check(kernel: str, path: Path, device: str, profile_name: str) -> dict[str, Any]:
    case = Case.load(path)
    profile = profiles.get(profile_name)
    scale = case.scale if case.scale is not None else 1.0 / np.sqrt(case.q.shape[-1])
    kwargs = {"scale": float(scale), "causal": bool(case.causal), "mask": case.mask}
    exact, _ = attention64(case.q, case.k, case.v, **kwargs)
    group = case.q.shape[1] // case.k.shape[1]
    score_shape = (case.q.shape[0], case.q.shape[1], case.q.shape[2], case.k.shape[2])
    # B x Hq x S1: rows with a visible key (from the mask itself: an average of ones is not
    # always exactly 1 in float64)
    rows = visible_keys(score_shape, bool(case.causal), case.mask).any(axis=-1)
    shape = f"B={case.q.shape[0]} Hq={case.q.shape[1]} Hkv={case.k.shape[1]} " \
            f"S1={case.q.shape[2]} S2={case.k.shape[2]} D={case.q.shape[3]} " \
            f"Dv={case.v.shape[3]} causal={case.causal} mask={case.mask is not None}"
    q, k = (x.astype(np.float64) for x in (case.q, case.k))
    scores = scale * np.einsum("bhid,bhjd->bhij", q, np.repeat(k, group, axis=1))
    shape += (f", max|q| {np.abs(q).max():.4g}, max|k| {np.abs(k).max():.4g}, max|v| "
              f"{np.abs(case.v.astype(np.float64)).max():.4g}, scale {scale:.4g}, "
              f"max|score| {np.abs(scores).max():.4g}")
    result: dict[str, Any] = {"kernel": kernel, "case": str(path), "shape": shape}
    try:
        fn = adapters.load(kernel, device=device)
        first = np.asarray(fn(case.q.copy(), case.k.copy(), case.v.copy(), **kwargs))
        second = np.asarray(fn(case.q.copy(), case.k.copy(), case.v.copy(), **kwargs))
    except Exception as error:  # noqa: BLE001 - the kernel's exception is the finding
        what = f"the call raises {type(error).__name__}: {str(error)[:300]}"
        if isinstance(error, UnsupportedCall) or REFUSED in str(error):
            return {**result, "finding": "limit of the suite",
                    "what": what + " (an input the kernel refuses: outside the declaration, "
                            "or a restriction the adapter's probes missed)"}
        return {**result, "finding": "kernel defect", "what": what}
    if first.shape != exact.shape:
        return {**result, "finding": "kernel defect",
                "what": f"output shape {first.shape}, expected {exact.shape}"}
    reference = flash.attention(case.q, case.k, case.v, profile=profile,
                                **case.call_kwargs()).astype(np.float64)
    ob = first.astype(np.float64)
    err_b = np.where(rows[..., None], np.abs(ob - exact), 0)
    err_r = np.where(rows[..., None], np.abs(reference - exact), 0)
    finite = np.isfinite(ob)
    worst = np.unravel_index(int(np.argmax(np.where(finite, err_b, np.inf))), ob.shape)
    # where the yardstick is not finite it allows nothing beyond the floor (PASA-CERT-11/12:
    # a finite output there is held to the oracle as closely as the floor says)
    finite_r = err_r[np.isfinite(err_r)]
    yardstick_error = float(finite_r.max()) if finite_r.size else 0.0
    allowed = RTOL * yardstick_error + FLOOR_ULPS * float(metrics.ulp(np.abs(exact).max(), profile.output))
    masked = ob[~rows]
    measures = {
        "max_err_kernel": float(np.nanmax(np.where(finite, err_b, np.nan))) if finite.any()
        else float("nan"),
        "max_err_yardstick": yardstick_error,
        "yardstick_nonfinite": int((~np.isfinite(err_r)).sum()),
        "allowed": allowed,
        "nonfinite": int((~finite & rows[..., None]).sum()),
        "masked_rows": int((~rows).sum()),
        "masked_rows_nonzero": int((masked != 0).sum()),
        "bitwise_repeat": bool(first.tobytes() == second.tobytes()),
        "worst": {"index": [int(i) for i in worst], "got": float(ob[worst]),
                  "exact": float(exact[worst])},
    }
    problems = []
    if measures["nonfinite"]:
        problems.append(f"{measures['nonfinite']} non-finite elements on rows with a visible "
                        "key where float64 is finite")
    convention = fn.pasa_declaration.get("conventions", {}).get("fully_masked_rows", "zero")
    nan = int(np.isnan(masked).sum())
    expected = {"zero": (masked == 0).all(), "nan": nan == masked.size}.get(convention, True)
    if not expected:
        problems.append(f"rows with no visible key are not {convention} "
                        f"({measures['masked_rows_nonzero']} non-zero elements, {nan} NaN; "
                        "PASA-MASK-3)")
    if not measures["bitwise_repeat"]:
        problems.append("two calls on the same input differ bit for bit")
    if not measures["max_err_kernel"] <= allowed:  # NaN compares as a failure
        w = measures["worst"]
        problems.append(
            f"max|Ob - O64| = {measures['max_err_kernel']:.3g} > allowed {allowed:.3g} "
            f"(yardstick {measures['max_err_yardstick']:.3g}, non-finite on "
            f"{measures['yardstick_nonfinite']} elements); worst at {tuple(w['index'])}: "
            f"got {w['got']:.6g}, exact {w['exact']:.6g}"
        )
    if problems:
        return {**result, "finding": "kernel defect", "what": "; ".join(problems),
                "measures": measures}
    return {**result, "finding": "limit of the suite",
            "what": f"float64 does not confirm it: max|Ob - O64| = "
                    f"{measures['max_err_kernel']:.3g} <= allowed {allowed:.3g}, finite, "
                    "masked rows 0, repeatable",
            "measures": measures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernel")
    parser.add_argument("case", type=Path)
    parser.add_argument("--device", default=None)
    parser.add_argument("--profile", required=True, choices=profiles.names())
    args = parser.parse_args(argv)
    print(json.dumps(check(args.kernel, args.case, args.device, args.profile)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
