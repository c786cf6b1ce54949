"""Backends that carry kernel declarations (specs/certification.md, PASA-CERT-7): the bundled
flash kernel behind wrappers that refuse what real kernels refuse, as torch's flash backend
or a kernel of fixed tiles does. Each raises on an input outside its declared scope, so a
certification that called one of those cases would fail PASA-CERT-10.
"""

from __future__ import annotations

import numpy as np

from pasa_ref.kernels import flash


def _refuse(condition: bool, what: str) -> None:
    if condition:
        raise NotImplementedError(f"not supported: {what}")


def flash_no_mask(q, k, v, *, scale, causal, mask, profile):
    """flash, refusing explicit masks, Dv != D and head dims that are not multiples of 8."""
    _refuse(mask is not None, "explicit masks")
    _refuse(v.shape[-1] != q.shape[-1], "Dv != D")
    _refuse(q.shape[-1] % 8 != 0, "head dims not multiples of 8")
    return flash.attention(q, k, v, profile=profile, scale=scale, causal=causal)


flash_no_mask.pasa_declaration = {
    "name": "flash without masks, Dv = D, D a multiple of 8",
    "algorithm": {"class": "softmax"},
    "supports": {"mask": False, "dv_ne_d": False, "head_dim": {"min": 8, "multiple_of": 8}},
}


def flash_no_mask_undeclared(q, k, v, *, scale, causal, mask, profile):
    """The same kernel without its declaration."""
    return flash_no_mask(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


def flash_fixed_tiles(q, k, v, *, scale, causal, mask, profile):
    """flash as a kernel of fixed 128 x 128 tiles: no explicit mask, D in {64, 128}, Dv = D,
    S1 and S2 multiples of 128."""
    _refuse(mask is not None, "explicit masks")
    _refuse(q.shape[-1] not in (64, 128) or v.shape[-1] != q.shape[-1], "D not in {64, 128}")
    _refuse(q.shape[-2] % 128 != 0 or k.shape[-2] % 128 != 0, "S1, S2 not multiples of 128")
    return flash.attention(q, k, v, profile=profile, scale=scale, causal=causal)


#: its declaration, also in tests/declarations/fixed-tiles.toml
flash_fixed_tiles.pasa_declaration = {
    "algorithm": {"class": "softmax"},
    "supports": {
        "mask": False,
        "dv_ne_d": False,
        "head_dim": {"values": [64, 128]},
        "seq_q": {"multiple_of": 128},
        "seq_k": {"multiple_of": 128},
    },
}


def flash_batch_offset(q, k, v, *, scale, causal, mask, profile):
    """A batch-offset bug: every batch reads the keys and values of batch 0."""
    first = np.repeat(k[:1], k.shape[0], axis=0), np.repeat(v[:1], v.shape[0], axis=0)
    return flash.attention(q, *first, profile=profile, scale=scale, causal=causal, mask=mask)


def flash_head_stride(q, k, v, *, scale, causal, mask, profile):
    """A head-stride bug: every key/value head reads head 0."""
    first = np.repeat(k[:, :1], k.shape[1], axis=1), np.repeat(v[:, :1], v.shape[1], axis=1)
    return flash.attention(q, *first, profile=profile, scale=scale, causal=causal, mask=mask)
