"""Reference kernels, one module each: `naive`, `flash` (FlashAttention-2) and `pasa`.

Every kernel is `attention(q, k, v, *, profile, scale, causal, mask, ...) -> ndarray`, BNSD
layout, output B x Hq x S1 x Dv in the profile's output dtype.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pasa_ref.kernels import flash, naive, pasa

__all__ = ["KERNELS", "flash", "get", "naive", "pasa"]

Kernel = Callable[..., np.ndarray]

KERNELS: dict[str, Kernel] = {
    "naive": naive.attention,
    "flash": flash.attention,
    "pasa": pasa.attention,
}


def get(name: str) -> Kernel:
    """The reference kernel called `name`."""
    if name not in KERNELS:
        raise ValueError(f"argument 'kernel': expected one of {list(KERNELS)}, got {name!r}")
    return KERNELS[name]
