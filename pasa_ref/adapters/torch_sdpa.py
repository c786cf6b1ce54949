"""torch attention as PASA-CERT-1 backends: `torch.nn.functional.scaled_dot_product_attention`
with one backend forced (`torch:math`, `torch:flash`, `torch:efficient`, `torch:cudnn`, through
torch.nn.attention.sdpa_kernel), and any torch function with SDPA's arguments
(`torch-fn:pkg.mod:function`, e.g. a Triton kernel called from torch).

A call converts the numpy inputs exactly (fp16/fp32/fp64 directly, bf16 through its bit
patterns) onto the device, maps masking and GQA (pasa_ref.adapters.arguments), passes the
scale explicitly and converts the output back exactly. The spec's bottom-right causal mask
goes through the backend's causal route: `causal_lower_right` (torch.nn.attention.bias) for
flash and efficient, whose kernels implement it natively, an explicit mask for math and
cuDNN (cuDNN's as a contiguous B x Hq x S1 x S2 array) and for torch-fn functions.

STATIC holds the documented limits of the four SDPA backends (torch 2.5 .. 2.11 docs and
sdp_utils), used only when probing is switched off; otherwise the declaration is measured
(pasa_ref.adapters.discovery).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from pasa_ref.adapters.arguments import BFLOAT16, from_bits, grouped, masking, to_bits
from pasa_ref.adapters.discovery import (
    PROBED_HEAD_DIMS,
    AdapterError,
    Capabilities,
    Probe,
    discover,
)

__all__ = ["BACKENDS", "STATIC", "TorchAttention", "function", "sdpa"]

#: name in `torch:<name>` -> member of torch.nn.attention.SDPBackend
BACKENDS = {
    "math": "MATH",
    "flash": "FLASH_ATTENTION",
    "efficient": "EFFICIENT_ATTENTION",
    "cudnn": "CUDNN_ATTENTION",
}
#: causal routes in order of preference (pasa_ref.adapters.arguments)
ROUTES = {"math": ("mask", "bias"), "flash": ("bias",), "efficient": ("bias", "mask"),
          "cudnn": ("mask", "bias"), "function": ("mask", "bias")}
#: backends that need masks as contiguous B x Hq x S1 x S2 arrays
FULL_MASK = {"cudnn", "function"}
#: candidate profiles and their input dtypes, in order of preference for the probes
PROFILES = {"fp16-mixed": np.float16, "bf16-mixed": BFLOAT16, "fp32": np.float32,
            "fp64": np.float64}
HALF = ("fp16-mixed", "bf16-mixed")
HEAD_DIMS = PROBED_HEAD_DIMS

STATIC = {
    "math": Capabilities(tuple(PROFILES), mask=True, causal="bottom-right", route="mask",
                         gqa=True, mqa=True, dv_ne_d=True, head_dim={"min": 1},
                         measured=False),
    "flash": Capabilities(HALF, mask=False, causal="bottom-right", route="bias", gqa=True,
                          mqa=True, dv_ne_d=False, head_dim={"min": 1, "max": 256},
                          measured=False),
    "efficient": Capabilities((*HALF, "fp32"), mask=True, causal="bottom-right", route="bias",
                              gqa=False, mqa=False, dv_ne_d=True,
                              head_dim={"min": 8, "multiple_of": 8}, measured=False),
    "cudnn": Capabilities(HALF, mask=True, causal="bottom-right", route="mask", gqa=True,
                          mqa=True, dv_ne_d=False,
                          head_dim={"min": 8, "max": 256, "multiple_of": 8}, seq_k_min=2,
                          measured=False),
}

_DISCOVERED: dict[tuple[str, str], Capabilities] = {}


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise AdapterError(
            "the torch adapters need PyTorch: pip install 'pasa-ref[torch]'"
        ) from None
    return torch


def _device(torch: Any, device: str) -> Any:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise AdapterError(
            f"argument 'device': expected a device torch can use, got {device!r} "
            f"(torch {torch.__version__}: torch.cuda.is_available() is False)"
        )
    return torch.device(device)


def to_tensor(torch: Any, x: np.ndarray, device: Any) -> Any:
    """A numpy input on the device, exactly: bf16 through its bits, others directly."""
    tensor = torch.from_numpy(np.ascontiguousarray(to_bits(x)))
    if x.dtype == BFLOAT16:
        tensor = tensor.view(torch.bfloat16)
    return tensor.to(device)


def to_numpy(torch: Any, tensor: Any) -> np.ndarray:
    """A torch output as numpy, exactly: bf16 through its bits, others directly."""
    tensor = tensor.detach()
    if tensor.dtype == torch.bfloat16:
        return from_bits(tensor.view(torch.int16).cpu().numpy(), bfloat16=True)
    return tensor.cpu().numpy()


class TorchAttention:
    """fn(q, k, v, *, scale, causal, mask) -> numpy over a torch attention function
    attend(query, key, value, attn_mask=, is_causal=, scale=[, enable_gqa=]) run inside
    `context()`; `route` and `full_mask` as in arguments.masking."""

    def __init__(
        self,
        attend: Callable[..., Any],
        context: Callable[[], contextlib.AbstractContextManager[Any]],
        device: str,
        route: str | None,
        full_mask: bool,
    ) -> None:
        self.torch = _torch()
        self.attend, self.context = attend, context
        self.device = _device(self.torch, device)
        self.route, self.full_mask = route, full_mask

    def with_route(self, route: str | None) -> TorchAttention:
        return TorchAttention(self.attend, self.context, str(self.device), route, self.full_mask)

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
        plan = masking(q.shape, k.shape, causal=causal, mask=mask, route=self.route,
                       full_mask=self.full_mask)
        query, key, value = (to_tensor(torch, x, self.device) for x in (q, k, v))
        attn_mask = None
        if plan.lower_right:
            from torch.nn.attention.bias import causal_lower_right

            attn_mask = causal_lower_right(q.shape[2], k.shape[2])
        elif plan.mask is not None:
            attn_mask = torch.from_numpy(plan.mask).to(self.device)
        kwargs: dict[str, Any] = {"attn_mask": attn_mask, "is_causal": plan.is_causal,
                                  "scale": float(scale)}
        if grouped(q.shape, k.shape):
            kwargs["enable_gqa"] = True
        with torch.no_grad(), self.context():
            out = self.attend(query, key, value, **kwargs)
        return to_numpy(torch, out)

    def attempt(self, probe: Probe, route: str | None) -> np.ndarray:
        """One probe call through this adapter with causal route `route`."""
        args, kwargs = probe.arguments()
        return self.with_route(route)(*args, **kwargs)


def _backend_context(
    torch: Any, backend: str
) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    member = getattr(SDPBackend, BACKENDS[backend])
    return lambda: sdpa_kernel([member])


def _finish(
    adapter: TorchAttention,
    key: tuple[str, str],
    routes: Sequence[str],
    static: Capabilities | None,
    probe: bool,
    name: str,
    version: str,
    declared: Mapping[str, Any] | None = None,
) -> TorchAttention:
    """Discover (once per process) or take the static capabilities; attach the declaration
    (`declared`, the wrapped function's own, replaces the discovered one)."""
    if probe:
        if key not in _DISCOVERED:
            _DISCOVERED[key] = discover(adapter.attempt, PROFILES, routes, HEAD_DIMS)
        capabilities = _DISCOVERED[key]
    elif static is not None:
        capabilities = static
    else:
        raise AdapterError(f"argument 'probe': {key[0]} has no static declaration; probe it")
    adapter = adapter.with_route(capabilities.route)
    adapter.pasa_capabilities = capabilities
    adapter.pasa_declaration = (
        dict(declared) if declared is not None else capabilities.declaration(name)
    )
    adapter.pasa_version = version
    return adapter


def _where(torch: Any, device: str) -> str:
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        return f"{device}: {torch.cuda.get_device_name(index)}"
    return device


def sdpa(backend: str, device: str, *, probe: bool = True) -> TorchAttention:
    """`torch:<backend>`: SDPA with that backend forced, on `device`."""
    if backend not in BACKENDS:
        raise AdapterError(
            f"argument 'name': expected torch:<backend> with backend one of {list(BACKENDS)}, "
            f"got torch:{backend}"
        )
    torch = _torch()
    adapter = TorchAttention(
        torch.nn.functional.scaled_dot_product_attention,
        _backend_context(torch, backend),
        device,
        route=None,
        full_mask=backend in FULL_MASK,
    )
    version = torch.__version__
    if backend == "cudnn" and torch.backends.cudnn.is_available():
        version += f" (cuDNN {torch.backends.cudnn.version()})"
    name = f"torch {version} sdpa {backend} ({_where(torch, device)})"
    return _finish(adapter, (backend, device), ROUTES[backend], STATIC[backend], probe, name,
                   version)


def function(target: str, device: str, *, probe: bool = True) -> TorchAttention:
    """`torch-fn:pkg.mod:function`: a torch function with SDPA's arguments, on `device`. A
    function that carries its own `pasa_declaration` keeps it; the causal route is probed."""
    from pasa_ref.certify.backend import load as resolve

    resolved = resolve(target)
    torch = _torch()
    adapter = TorchAttention(resolved.function, contextlib.nullcontext, device, route=None,
                             full_mask=True)
    version = f"{resolved.identity.version or 'unversioned'} (torch {torch.__version__})"
    name = f"{target} via torch ({_where(torch, device)})"
    return _finish(adapter, (f"torch-fn:{target}", device), ROUTES["function"], None, probe,
                   name, version, getattr(resolved.function, "pasa_declaration", None))
