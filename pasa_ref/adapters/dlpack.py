"""`dlpack:pkg.mod:function`: a kernel of any array library that speaks DLPack, as a
PASA-CERT-1 backend.

The function follows the PASA-CERT-1 protocol itself (the spec's bottom-right causal flag,
GQA layout of PASA-IO-2, scale, mask True = visible), but receives its arrays on the device
instead of as numpy arrays:

    function(q, k, v, *, scale, causal, mask) -> an array offering __dlpack__

q, k, v and mask (None, or a contiguous boolean B x Hq x S1 x S2 array) are torch tensors,
the carrier that holds every profile dtype (bfloat16 included) on the CPU and on CUDA; the
function takes them into its own library with `xp.from_dlpack(q)` without a copy. The result
comes back through `torch.from_dlpack` and leaves exactly (bf16 through its bits). A
function that carries `pasa_declaration` keeps it; otherwise its declaration is probed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pasa_ref.adapters import torch_sdpa
from pasa_ref.adapters.arguments import masking
from pasa_ref.adapters.discovery import Probe, discover

__all__ = ["DLPackAttention", "dlpack_function"]

_DISCOVERED: dict[tuple[str, str], Any] = {}


class DLPackAttention:
    """fn(q, k, v, *, scale, causal, mask) -> numpy over a DLPack `function` on `device`."""

    def __init__(self, function: Callable[..., Any], device: str) -> None:
        self.torch = torch_sdpa._torch()
        self.function = function
        self.device = torch_sdpa._device(self.torch, device)

    def __call__(
        self,
        q: np.ndarray,
        k: np.ndarray,
        v: np.ndarray,
        *,
        scale: float,
        causal: bool,
        mask: np.ndarray | None,
    ) -> np.ndarray:
        torch = self.torch
        query, key, value = (torch_sdpa.to_tensor(torch, x, self.device) for x in (q, k, v))
        full = masking(q.shape, k.shape, causal=False, mask=mask, route=None, full_mask=True)
        tmask = None if full.mask is None else torch.from_numpy(full.mask).to(self.device)
        out = self.function(query, key, value, scale=float(scale), causal=bool(causal),
                            mask=tmask)
        return torch_sdpa.to_numpy(torch, torch.from_dlpack(out))

    def attempt(self, probe: Probe, route: str | None) -> np.ndarray:
        """One probe call (the function takes the spec's causal flag: `route` is unused)."""
        args, kwargs = probe.arguments()
        return self(*args, **kwargs)


def dlpack_function(target: str, device: str) -> DLPackAttention:
    """`dlpack:<target>` on `device`, with its declaration (its own, else discovered once per
    process)."""
    from pasa_ref.certify.backend import load as resolve

    resolved = resolve(target)
    adapter = DLPackAttention(resolved.function, device)
    key = (target, device)
    if key not in _DISCOVERED:
        _DISCOVERED[key] = discover(adapter.attempt, torch_sdpa.PROFILES, ("native",),
                                    torch_sdpa.HEAD_DIMS)
    capabilities = _DISCOVERED[key]
    declared = getattr(resolved.function, "pasa_declaration", None)
    adapter.pasa_capabilities = capabilities
    adapter.pasa_declaration = (
        dict(declared) if declared is not None
        else capabilities.declaration(f"{target} via DLPack ({device})")
    )
    adapter.pasa_version = resolved.identity.version or "unversioned"
    return adapter
