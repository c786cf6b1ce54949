"""PASA forward on NVIDIA GPUs through Triton: the torch entry point and the certifier's.

    pasa_attention(q, k, v, variant="mixed" | "full", scale=None, causal=False, mask=None)

takes BNSD torch tensors (fp16 or bf16, on one device) and returns B x Hq x S1 x Dv in the
input dtype. The variant and the input dtype name the profile it follows (specs/profiles.toml):
"mixed" is fp16-mixed / bf16-mixed, "full" is fp16-full / bf16-full. Every constant is rounded
exactly as the reference kernel rounds it (pasa_ref.kernels.pasa, with the profile's
formats): M's entries, gamma, the abar weights 1/j and (j-1)/j, 1/n_j and the scale.
Where the kernel differs from the reference bit for bit, docs/triton.md says why.

certify_fp16_mixed and certify_fp16_full are backends for `pasa certify`: numpy arrays in
and out (bf16 through its bit pattern), computed on cuda, or on the CPU when the Triton
interpreter is on (TRITON_INTERPRET=1). Each carries its declaration (triton_pasa_mixed.toml,
triton_pasa_full.toml beside this file) as the attribute `pasa_declaration`.

Importing this module imports torch and triton; `import pasa_ref` never does.
"""

from __future__ import annotations

import functools
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F
import triton
from triton.tools.tensor_descriptor import TensorDescriptor

from pasa_ref import profiles
from pasa_ref.gpu import triton_kernels
from pasa_ref.inputs import InputError

__all__ = ["VARIANTS", "certify_fp16_full", "certify_fp16_mixed", "pasa_attention"]

VARIANTS = ("mixed", "full")
#: key block length: it changes results (PASA-BLK-1), so it is fixed and declared
BLOCK_N = 128
#: profile prefix of each input dtype
_FORMAT = {torch.float16: "fp16", torch.bfloat16: "bf16"}
#: (BLOCK_M, num_warps, num_stages) by (variant, padded head dim); query tiles never change
#: results (PASA-BLK-1). D = 128: the fastest of benchmarks/triton_bench.py's candidates on an
#: H200 (docs/triton.md); D <= 64 and 256: chosen from the compiler's report (no spills, shared
#: memory within 227 KB), not timed.
DEFAULT_CONFIGS = {
    **{("mixed", d): (128, 8, 3) for d in (16, 32, 64, 128)},
    ("mixed", 256): (64, 4, 1),
    **{("full", d): (128, 8, 3) for d in (16, 32, 64, 128)},
    ("full", 256): (64, 8, 1),
}
MAX_HEAD_DIM = 256


def profile_name(variant: str, dtype: torch.dtype) -> str:
    """The profile a variant follows for inputs of `dtype`: fp16-mixed, bf16-full, ..."""
    if variant not in VARIANTS:
        raise InputError(f"argument 'variant': expected one of {VARIANTS}, got {variant!r}")
    if dtype not in _FORMAT:
        raise InputError(
            f"argument 'q': expected dtype torch.float16 or torch.bfloat16, got {dtype}"
        )
    return f"{_FORMAT[dtype]}-{variant}"


def _check_tensors(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    for name, x in (("q", q), ("k", k), ("v", v)):
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise InputError(f"argument {name!r}: expected a 4-D torch tensor (BNSD), got {x!r}")
        if x.dtype != q.dtype or x.device != q.device:
            raise InputError(
                f"argument {name!r}: expected dtype {q.dtype} on {q.device} like q, "
                f"got {x.dtype} on {x.device}"
            )
        if 0 in x.shape:
            raise InputError(
                f"argument {name!r}: expected no empty dimension, got {tuple(x.shape)}"
            )
    b, hq, _, d = q.shape
    if k.shape[0] != b or v.shape[0] != b or k.shape[3] != d:
        raise InputError(
            f"argument 'k': expected shape ({b}, Hkv, S2, {d}) for q of shape {tuple(q.shape)}, "
            f"got {tuple(k.shape)}"
        )
    if v.shape[1:3] != k.shape[1:3]:
        raise InputError(
            f"argument 'v': expected shape ({b}, {k.shape[1]}, {k.shape[2]}, Dv), "
            f"got {tuple(v.shape)}"
        )
    if hq % k.shape[1]:
        raise InputError(f"argument 'k': expected Hkv dividing Hq = {hq}, got {k.shape[1]}")
    for name, size in (("q", d), ("v", v.shape[3])):
        if size > MAX_HEAD_DIM:
            raise InputError(
                f"argument {name!r}: expected a head dim <= {MAX_HEAD_DIM}, got {size}"
            )


def _padded_dim(size: int) -> int:
    """The power of two >= max(size, 16) that tiles a head dim (tl.dot's smallest K)."""
    return max(16, 1 << (size - 1).bit_length())


def _pad_last(x: torch.Tensor, width: int) -> torch.Tensor:
    return x if x.shape[-1] == width else F.pad(x, (0, width - x.shape[-1]))


@functools.lru_cache(maxsize=64)
def _block_weights(blocks: int, profile: str, device: str) -> torch.Tensor:
    """fl_statistics(1/j) and fl_statistics((j-1)/j) for j = 1..blocks (PASA-ALG-4), as a
    blocks x 2 binary32 tensor."""
    stat = profiles.get(profile).statistics
    j = np.arange(1, blocks + 1, dtype=np.float64)
    table = np.stack([stat.round(1.0 / j), stat.round((j - 1.0) / j)], axis=1)
    return torch.from_numpy(table.astype(np.float32)).to(device)


@dataclass(frozen=True)
class Setup:
    """A call's profile and every constant, rounded as the reference rounds them."""

    profile: profiles.Profile
    full: bool
    scale: float  # the caller's lambda, binary64
    beta: float
    blocks: int  # T
    n_last: int  # n_T
    low: Any  # tl.float16 or tl.bfloat16

    @classmethod
    @functools.lru_cache(maxsize=256)
    def of(cls, variant: str, dtype: torch.dtype, head_dim: int, seq_k: int,
           scale: float | None, beta: float | None) -> Setup:
        prof = profiles.get(profile_name(variant, dtype))
        scale = 1.0 / math.sqrt(head_dim) if scale is None else float(scale)
        if not (math.isfinite(scale) and scale > 0):
            raise InputError(f"argument 'scale': expected a finite float > 0, got {scale}")
        beta = prof.beta if beta is None else float(beta)
        if not 0.0 < beta < 1.0:
            raise InputError(f"argument 'beta': expected a value in (0, 1), got {beta}")
        blocks = -(-seq_k // BLOCK_N)
        low = triton_kernels.tl.float16 if dtype == torch.float16 else triton_kernels.tl.bfloat16
        return cls(prof, variant == "full", scale, beta, blocks,
                   seq_k - (blocks - 1) * BLOCK_N, low)

    @functools.cached_property
    def emulate_bf16(self) -> bool:
        """Round to bfloat16 on bit patterns and multiply binary32 copies: Triton's
        interpreter with bfloat16 (its cast truncates, its dot multiplies bit patterns);
        on a GPU never."""
        return os.environ.get("TRITON_INTERPRET") == "1" and self.low == triton_kernels.tl.bfloat16

    @functools.cached_property
    def entries(self) -> tuple[float, float, float, float]:
        """M's entries for full blocks and for the last block (shift_entries)."""
        return (*self.shift_entries(BLOCK_N), *self.shift_entries(self.n_last))

    def shift_entries(self, n: int) -> tuple[float, float]:
        """M_n's diagonal lambda_M (1 - beta/n) and off-diagonal -lambda_M beta/n, computed
        in binary64 as the reference's shift_matrix and rounded into the operand format
        (PASA-ALG-1); lambda_M = lambda in the full variant (scale_at = "shift"), else 1."""
        scale_m = self.scale if self.full else 1.0
        operand = self.profile.matmul_operand
        diag, off = scale_m * (1.0 - self.beta / n), scale_m * -(self.beta / n)
        return float(operand.round(np.float64(diag))), float(operand.round(np.float64(off)))

    @functools.cached_property
    def scalars(self) -> dict[str, float]:
        """fl_vector(lambda), fl_statistics(gamma), fl_vector(1/n) for n = 128 and n_T."""
        vector = self.profile.vector
        return dict(
            scale=float(vector.round(np.float64(self.scale))),
            gamma=float(self.profile.statistics.round(np.float64(self.beta / (1 - self.beta)))),
            inv_full=float(vector.round(np.float64(1.0 / BLOCK_N))),
            inv_last=float(vector.round(np.float64(1.0 / self.n_last))),
        )


def shifted_keys(k: torch.Tensor, setup: Setup) -> torch.Tensor:
    """K~_j = M_{n_j}^T K_j for every key block, once (PASA-ALG-1): B x Hkv x (T * 128) x
    BLOCK_D in the operand format, zero past S2 and past D. k: B x Hkv x S2 x BLOCK_D."""
    b, hkv, s2, block_d = k.shape
    k_tilde = torch.empty((b, hkv, setup.blocks * BLOCK_N, block_d), dtype=k.dtype,
                          device=k.device)
    triton_kernels.shift_keys[(setup.blocks, b * hkv)](
        k, k_tilde, *k.stride(), *k_tilde.stride()[:3],
        s2, hkv, *setup.entries,
        LOW=setup.low, EMU=setup.emulate_bf16, BLOCK_N=BLOCK_N, BLOCK_D=block_d, num_warps=4,
    )
    return k_tilde


def pasa_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    variant: str = "mixed",
    scale: float | None = None,
    causal: bool = False,
    mask: torch.Tensor | None = None,
    beta: float | None = None,
    config: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """PASA forward, B x Hq x S1 x Dv in q's dtype; q: B x Hq x S1 x D, k: B x Hkv x S2 x D,
    v: B x Hkv x S2 x Dv. mask: boolean, broadcastable to B x Hq x S1 x S2, True = visible.
    beta: default the profile's. config: (BLOCK_M, num_warps, num_stages), for tuning."""
    _check_tensors(q, k, v)
    b, hq, s1, d = q.shape
    hkv, s2, dv = k.shape[1], k.shape[2], v.shape[3]
    setup = Setup.of(variant, q.dtype, d, s2, scale, beta)
    block_d, block_dv = _padded_dim(d), _padded_dim(dv)
    block_m, num_warps, num_stages = config or DEFAULT_CONFIGS[(variant, max(block_d, block_dv))]
    if mask is not None:  # the mask tiles' buffers: at most 2 stages fit in shared memory
        num_stages = min(num_stages, 2)
    q, v = _pad_last(q, block_d).contiguous(), _pad_last(v, block_dv).contiguous()
    k_tilde = shifted_keys(_pad_last(k, block_d), setup)
    out = torch.empty((b, hq, s1, block_dv), dtype=q.dtype, device=q.device)
    visible, rows_b, rows_h = _mask_rows(mask, (b, hq, s1, s2), q.device)
    grid = (triton.cdiv(s1, block_m), b * hq)
    triton_kernels.attention[grid](
        _rows(q, block_m), _rows(k_tilde, BLOCK_N), _rows(v, BLOCK_N),
        TensorDescriptor.from_tensor(visible, [block_m, BLOCK_N]), out,
        _block_weights(setup.blocks, setup.profile.name, str(q.device)),
        *out.stride()[:3], rows_b, rows_h,
        s1, s2, hq, hq // hkv, setup.blocks, **setup.scalars,
        LOW=setup.low, EMU=setup.emulate_bf16, FULL=setup.full, CAUSAL=bool(causal),
        HAS_MASK=mask is not None, BLOCK_M=block_m, BLOCK_N=BLOCK_N,
        LOG2_BLOCK_N=BLOCK_N.bit_length() - 1, BLOCK_DV=block_dv,
        num_warps=num_warps, num_stages=num_stages,
    )
    return out if block_dv == dv else out[..., :dv].contiguous()


def _rows(x: torch.Tensor, block_rows: int) -> TensorDescriptor:
    """A contiguous B x H x S x W tensor as a 2-D (B H S) x W tensor descriptor of
    block_rows x W tiles."""
    flat = x.reshape(-1, x.shape[-1])
    return TensorDescriptor.from_tensor(flat, [block_rows, x.shape[-1]])


def _mask_rows(
    mask: torch.Tensor | None, shape: tuple[int, int, int, int], device: torch.device
) -> tuple[torch.Tensor, int, int]:
    """The boolean mask as a uint8 matrix of rows B' x H' x S1 (B' = 1 or B, H' = 1 or Hq,
    as the mask broadcasts) by S2 columns padded to a multiple of 16 (the bulk copy engine's
    alignment), and the row offsets of one batch and one head (0 where broadcast).
    Without a mask: a 1 x 16 placeholder."""
    if mask is None:
        return torch.zeros((1, 16), dtype=torch.uint8, device=device), 0, 0
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise InputError(f"argument 'mask': expected a torch.bool tensor, got {mask!r}")
    b, hq, s1, s2 = shape
    full = (1,) * (4 - mask.dim()) + tuple(mask.shape)
    kept = (b if full[0] == b else 1, hq if full[1] == hq else 1, s1, s2)
    try:
        rows = mask.reshape(full).expand(kept).to(device=device, dtype=torch.uint8)
        torch.broadcast_shapes(full, shape)
    except RuntimeError:
        raise InputError(
            f"argument 'mask': expected a shape broadcastable to {shape}, "
            f"got {tuple(mask.shape)}"
        ) from None
    rows = F.pad(rows.reshape(-1, s2), (0, -s2 % 16))
    return rows, (kept[1] * s1 if kept[0] == b else 0), (s1 if kept[1] == hq else 0)


# --- the certifier's numpy protocol (pasa_ref/certify/backend.py) ---------------------------


def _device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    if os.environ.get("TRITON_INTERPRET") == "1":
        return "cpu"
    raise RuntimeError("pasa_ref.gpu.triton_pasa needs a CUDA device or TRITON_INTERPRET=1")


def to_torch(x: np.ndarray, device: str) -> torch.Tensor:
    """A float16 or bfloat16 numpy array as a torch tensor (bfloat16 through its bits)."""
    if x.dtype == np.float16:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device)
    if x.dtype == ml_dtypes.bfloat16:
        bits = np.ascontiguousarray(x).view(np.int16)
        return torch.from_numpy(bits).to(device).view(torch.bfloat16)
    raise InputError(f"argument 'q': expected dtype float16 or bfloat16, got {x.dtype}")


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """The inverse of to_torch."""
    if x.dtype == torch.bfloat16:
        return x.view(torch.int16).cpu().numpy().view(ml_dtypes.bfloat16)
    return x.cpu().numpy()


def _certify(variant: str, q, k, v, *, scale, causal, mask, profile=None) -> np.ndarray:
    if profile is not None and not profile.endswith(f"-{variant}"):
        raise InputError(
            f"argument 'profile': the {variant} variant follows the *-{variant} profiles, "
            f"got {profile!r}"
        )
    device = _device()
    out = pasa_attention(
        to_torch(q, device), to_torch(k, device), to_torch(v, device),
        variant=variant, scale=scale, causal=causal,
        mask=None if mask is None else torch.from_numpy(np.ascontiguousarray(mask)),
    )
    return to_numpy(out)


def certify_fp16_mixed(q, k, v, *, scale, causal, mask, profile=None) -> np.ndarray:
    """Backend for `pasa certify`: the mixed variant (fp16-mixed, bf16-mixed)."""
    return _certify("mixed", q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


def certify_fp16_full(q, k, v, *, scale, causal, mask, profile=None) -> np.ndarray:
    """Backend for `pasa certify`: the full variant (fp16-full, bf16-full)."""
    return _certify("full", q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


def declaration(variant: str) -> dict[str, Any]:
    """The variant's declaration (pasa_ref/gpu/triton_pasa_<variant>.toml) as a mapping."""
    path = Path(__file__).with_name(f"triton_pasa_{variant}.toml")
    return tomllib.loads(path.read_text(encoding="utf-8"))


certify_fp16_mixed.pasa_declaration = declaration("mixed")
certify_fp16_full.pasa_declaration = declaration("full")
