"""The Triton PASA kernel (pasa_ref.gpu.triton_pasa) run on the CPU by Triton's interpreter
(TRITON_INTERPRET=1), at small sizes, against float64 attention and the reference kernel of
the same profile. Skipped when torch or triton is not installed (the extra pasa-ref[triton]).

Criteria: the PASA-ACC-1 envelope against float64 attention, an error at most twice the
reference kernel's (plus one output ulp of max|O*|, the floor where the reference is exact),
fully masked rows exactly 0 (PASA-MASK-3), and finite outputs where raw fp16 scores overflow.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: @triton.jit reads it
torch = pytest.importorskip("torch", reason="pasa-ref[triton] not installed (torch)")
pytest.importorskip("triton", reason="pasa-ref[triton] not installed (triton)")

import ml_dtypes  # noqa: E402

from pasa_ref import formats, profiles  # noqa: E402
from pasa_ref.accuracy import reference_bound  # noqa: E402
from pasa_ref.arithmetic import Arithmetic  # noqa: E402
from pasa_ref.inputs import InputError  # noqa: E402
from pasa_ref.kernels import pasa  # noqa: E402
from pasa_ref.reproduce import distributions  # noqa: E402
from pasa_ref.strategies import Shape  # noqa: E402
from tests.float64_attention import attention64  # noqa: E402

triton_pasa = pytest.importorskip("pasa_ref.gpu.triton_pasa")

BACKENDS = {"mixed": triton_pasa.certify_fp16_mixed, "full": triton_pasa.certify_fp16_full}
DTYPES = {"fp16": np.float16, "bf16": ml_dtypes.bfloat16}

# (variant, dtype, B, Hq, Hkv, S1, S2, D, Dv, masking)
CASES = [
    ("mixed", "fp16", 1, 2, 1, 130, 200, 64, 64, "none"),  # MQA, ragged query and key tiles
    ("mixed", "fp16", 1, 4, 2, 70, 300, 32, 32, "causal"),  # GQA, S1 < S2
    ("mixed", "bf16", 2, 2, 2, 40, 150, 16, 16, "random"),  # mask with fully masked rows
    ("mixed", "fp16", 1, 1, 1, 20, 5, 24, 40, "causal"),  # S1 > S2, D and Dv padded
    ("full", "fp16", 1, 2, 1, 200, 100, 32, 32, "causal"),  # S1 > S2: masked rows, one block
    ("full", "bf16", 1, 2, 2, 50, 260, 24, 40, "random"),  # padded head dims, Dv != D
    ("full", "fp16", 1, 1, 1, 64, 256, 128, 128, "none"),  # D = 128, two full blocks
]


def _case(variant, dtype, b, hq, hkv, s1, s2, d, dv, masking, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, hq, s1, d)).astype(DTYPES[dtype])
    k = rng.standard_normal((b, hkv, s2, d)).astype(DTYPES[dtype])
    v = rng.standard_normal((b, hkv, s2, dv)).astype(DTYPES[dtype])
    mask = None
    if masking == "random":
        mask = rng.random((b, 1, s1, s2)) < 0.6
        mask[:, :, ::7] = False  # every 7th query row sees nothing
    return q, k, v, masking == "causal", mask


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
def test_kernel_against_float64_and_reference(case):
    variant, dtype = case[0], case[1]
    profile = f"{dtype}-{variant}"
    q, k, v, causal, mask = _case(*case, seed=len(case) + sum(case[2:9]))
    scale = 1.0 / np.sqrt(q.shape[-1])
    out = BACKENDS[variant](q, k, v, scale=scale, causal=causal, mask=mask)
    assert out.dtype == q.dtype and out.shape == (*q.shape[:3], v.shape[-1])
    out = out.astype(np.float64)
    assert np.isfinite(out).all()

    exact, score_range = attention64(q, k, v, scale=scale, causal=causal, mask=mask)
    reference = pasa.attention(
        q, k, v, profile=profile, scale=scale, causal=causal, mask=mask, block_k=128
    ).astype(np.float64)
    visible = _has_visible_key(q, k, causal, mask)
    assert (out[~visible] == 0).all()  # PASA-MASK-3, bit for bit
    beta = profiles.get(profile).beta
    assert np.abs(out - exact).max() <= reference_bound("pasa", profile, v, score_range, beta)
    _assert_within_twice_the_reference(out, exact, reference, DTYPES[dtype])


def _assert_within_twice_the_reference(out, exact, reference, dtype):
    """max |O - O*| <= 2 max |O_ref - O*| + one ulp of max |O*| in the output format."""
    floor = _ulp(np.abs(exact).max(), dtype)
    assert np.abs(out - exact).max() <= 2 * np.abs(reference - exact).max() + floor


def _ulp(x: float, dtype) -> float:
    """The spacing of `dtype` (fp16: 11 bits, bf16: 8 bits) at x > 0."""
    bits = 11 if dtype == np.float16 else 8
    return 2.0 ** (np.floor(np.log2(x)) - (bits - 1))


def _has_visible_key(q, k, causal, mask):
    s1, s2 = q.shape[2], k.shape[2]
    visible = np.ones((q.shape[0], q.shape[1], s1, s2), dtype=bool)
    if causal:
        visible &= np.arange(s2)[None, :] <= np.arange(s1)[:, None] + (s2 - s1)
    if mask is not None:
        visible &= mask
    return visible.any(axis=-1)


@pytest.mark.parametrize("variant", ["mixed", "full"])
def test_large_means_stay_finite(variant):
    """uniform(mean 30, Am 0.5), D = 128: raw scores q.k reach 128 * 30^2 = 115200 > 65504,
    so a kernel that forms fp16 Q K^T overflows; PASA's shifted scores do not."""
    q, k, v = (
        x.astype(np.float16)
        for x in distributions.qkv("uniform", Shape(1, 1, 1, 64, 160, 128), 30.0, 0.5, seed=0)
    )
    raw = q.astype(np.float32) @ np.swapaxes(k.astype(np.float32), -1, -2)
    with np.errstate(over="ignore"):
        assert not np.isfinite(raw.astype(np.float16)).all()  # the premise: fp16 Q K^T overflows
    scale = 1.0 / np.sqrt(128)
    out = BACKENDS[variant](q, k, v, scale=scale, causal=False, mask=None).astype(np.float64)
    exact, _ = attention64(q, k, v, scale=scale)
    assert np.isfinite(out).all()
    reference = pasa.attention(q, k, v, profile=f"fp16-{variant}", scale=scale, block_k=128)
    _assert_within_twice_the_reference(out, exact, reference.astype(np.float64), np.float16)


@pytest.mark.parametrize("variant", ["mixed", "full"])
def test_shift_program_is_the_reference_shift(variant):
    """K~_j = M_{n_j}^T K_j (PASA-ALG-1), once per key block, equals the reference's K~ except
    where the binary32 GEMM's summation order moves a value across an fp16 rounding boundary
    (then by one ulp); rows past S2 are zero."""
    rng = np.random.default_rng(3)
    k = rng.standard_normal((1, 2, 200, 32)).astype(np.float16)  # blocks of 128 and 72
    setup = triton_pasa.Setup.of(variant, torch.float16, 32, 200, None, None)
    k_tilde = triton_pasa.shifted_keys(torch.from_numpy(k), setup).numpy().astype(np.float64)
    ar = Arithmetic(setup.profile)
    scale_m = setup.scale if variant == "full" else 1.0
    for rows in (slice(0, 128), slice(128, 200)):
        m = pasa.shift_matrix(rows.stop - rows.start, setup.beta, scale_m)
        expected = ar.gemm_operand(
            ar.matmul(m.T, k[..., rows, :].astype(np.float32), formats.get("fp64"),
                      setup.profile.input),
            setup.profile.matmul_output,
        )
        got = k_tilde[..., rows, :]
        differs = got != expected
        assert differs.mean() < 0.01
        assert (np.abs(got - expected) <= np.spacing(np.abs(expected).astype(np.float16)))[
            differs
        ].all()
    assert (k_tilde[..., 200:, :] == 0).all()


def test_bad_inputs_name_the_argument():
    q = np.zeros((1, 1, 4, 16), dtype=np.float32)
    with pytest.raises(InputError, match="argument 'q'"):
        triton_pasa.certify_fp16_mixed(q, q, q, scale=0.25, causal=False, mask=None)
    x = torch.zeros((1, 2, 4, 16), dtype=torch.float16)
    with pytest.raises(InputError, match="argument 'k'"):
        three_heads = torch.zeros((1, 3, 4, 16), dtype=torch.float16)
        triton_pasa.pasa_attention(x, three_heads, three_heads)
    with pytest.raises(InputError, match="argument 'profile'"):
        triton_pasa.certify_fp16_full(
            x.numpy(), x.numpy(), x.numpy(), scale=0.25, causal=False, mask=None,
            profile="fp16-mixed",
        )


def test_importing_pasa_ref_imports_no_torch():
    code = "import sys, pasa_ref, pasa_ref.gpu; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
