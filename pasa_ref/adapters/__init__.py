"""Adapters: attention kernels of array frameworks as backends of the PASA-CERT-1 protocol
(numpy in, numpy out: fn(q, k, v, *, scale, causal, mask)), each carrying the declaration
(`pasa_declaration`) discovered for the backend and the device it wraps.

    torch:math | torch:flash | torch:efficient | torch:cudnn
                    torch.nn.functional.scaled_dot_product_attention with that backend
                    forced (torch.nn.attention.sdpa_kernel)           extra: pasa-ref[torch]
    torch-fn:pkg.mod:function
                    any torch function with SDPA's arguments (query, key, value, attn_mask=,
                    is_causal=, scale=, enable_gqa=), e.g. a Triton kernel   pasa-ref[torch]
    jax:xla | jax:cudnn
                    jax.nn.dot_product_attention(implementation=...)    pasa-ref[jax]
    dlpack:pkg.mod:function
                    a PASA-CERT-1 function over DLPack arrays of any library
                    (pasa_ref.adapters.dlpack)                          pasa-ref[torch]

The device is the `device` argument, else $PASA_DEVICE, else "cpu": "cpu", "cuda" or
"cuda:N". Importing this package imports no framework; `load` imports the one it needs.

One module, one job:

    arguments.py      framework-free mapping: causal alignment, masks, GQA, bf16 bits
    discovery.py      probe calls per feature -> capabilities -> declaration
    torch_sdpa.py     torch SDPA backends and torch functions
    jax_attention.py  jax.nn.dot_product_attention
    dlpack.py         DLPack functions
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from pasa_ref.adapters.discovery import AdapterError

__all__ = ["DEVICE_VARIABLE", "PREFIXES", "AdapterError", "is_adapter", "load", "resolve_device"]

PREFIXES = ("torch:", "torch-fn:", "jax:", "dlpack:")
DEVICE_VARIABLE = "PASA_DEVICE"
_DEVICE = re.compile(r"cpu|cuda(:\d+)?")


def is_adapter(name: str) -> bool:
    """Whether `name` names an adapter (one of PREFIXES) rather than package.module:function."""
    return name.startswith(PREFIXES)


def resolve_device(device: str | None = None) -> str:
    """The device: `device`, else $PASA_DEVICE, else "cpu"; one of cpu, cuda, cuda:N."""
    chosen = device or os.environ.get(DEVICE_VARIABLE) or "cpu"
    if not _DEVICE.fullmatch(chosen):
        source = "device" if device else DEVICE_VARIABLE
        raise AdapterError(f"argument {source!r}: expected cpu, cuda or cuda:N, got {chosen!r}")
    return chosen


def load(name: str, *, device: str | None = None, probe: bool = True) -> Callable[..., Any]:
    """The backend named `name` (see the module's docstring) on the device, with its
    declaration discovered by probing (once per process), or with probe=False taken from the
    adapter's documented static knowledge (SDPA and JAX backends only)."""
    where = resolve_device(device)
    prefix, _, rest = name.partition(":")
    if not rest:
        raise AdapterError(f"argument 'name': expected <prefix>:<target>, got {name!r}")
    if prefix == "torch":
        from pasa_ref.adapters import torch_sdpa

        return torch_sdpa.sdpa(rest, where, probe=probe)
    if prefix == "torch-fn":
        from pasa_ref.adapters import torch_sdpa

        return torch_sdpa.function(rest, where, probe=probe)
    if prefix == "jax":
        from pasa_ref.adapters import jax_attention

        return jax_attention.dot_product_attention(rest, where, probe=probe)
    if prefix == "dlpack":
        from pasa_ref.adapters import dlpack

        return dlpack.dlpack_function(rest, where)
    raise AdapterError(
        f"argument 'name': expected a name starting with one of {list(PREFIXES)}, got {name!r}"
    )
