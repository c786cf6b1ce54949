"""`jax.nn.dot_product_attention` as a PASA-CERT-1 backend: `jax:xla` and `jax:cudnn`
(its `implementation` argument), jitted, on the CPU or a CUDA GPU.

JAX's layout is B x S x H x D (BTNH), the spec's B x H x S x D (BNSD): inputs and output
are transposed on the host, which moves data without rounding. JAX reads and returns
`ml_dtypes.bfloat16` arrays as they are (the same type numpy holds), so every conversion is
exact. GQA is native (query head h reads key head floor(h / G), as PASA-IO-2). Its
`is_causal` is top-left: the spec's bottom-right causal mask with S1 != S2 goes in as an
explicit mask (route "mask"), for the implementations that take masks; masks keep JAX's
B x H x S1 x S2 layout, True = visible. float64 needs JAX_ENABLE_X64=1: without it JAX
would hold it as float32, and the call is refused rather than cast. STATIC holds the
documented limits for when probing is switched off.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from pasa_ref.adapters.arguments import BFLOAT16, UnsupportedCall, masking
from pasa_ref.adapters.discovery import (
    SPARSE_HEAD_DIMS,
    AdapterError,
    Capabilities,
    Probe,
    discover,
)

__all__ = ["IMPLEMENTATIONS", "STATIC", "JaxAttention", "dot_product_attention"]

IMPLEMENTATIONS = ("xla", "cudnn")
#: JAX compiles per shape: the head dims probed are a representative set
HEAD_DIMS = SPARSE_HEAD_DIMS
PROFILES = {"fp16-mixed": np.float16, "bf16-mixed": BFLOAT16, "fp32": np.float32,
            "fp64": np.float64}
STATIC = {
    "xla": Capabilities(tuple(PROFILES), mask=True, causal="bottom-right", route="mask",
                        gqa=True, mqa=True, dv_ne_d=False, head_dim={"min": 1},
                        measured=False),
    "cudnn": Capabilities(("fp16-mixed", "bf16-mixed"), mask=True, causal="bottom-right",
                          route="mask", gqa=True, mqa=True, dv_ne_d=False,
                          head_dim={"min": 8, "max": 128, "multiple_of": 8}, measured=False),
}
_DISCOVERED: dict[tuple[str, str], Capabilities] = {}


def _jax() -> Any:
    try:
        import jax
    except ImportError:
        raise AdapterError("the jax adapters need JAX: pip install 'pasa-ref[jax]'") from None
    return jax


def _device(jax: Any, device: str) -> Any:
    platform, _, index = device.partition(":")
    backend = {"cpu": "cpu", "cuda": "gpu"}.get(platform)
    try:
        devices = jax.devices(backend)
        return devices[int(index or 0)]
    except (RuntimeError, IndexError, ValueError) as error:
        raise AdapterError(
            f"argument 'device': expected a device JAX can use, got {device!r} "
            f"(jax {jax.__version__}: {error})"
        ) from None


class JaxAttention:
    """fn(q, k, v, *, scale, causal, mask) -> numpy over jax.nn.dot_product_attention with
    `implementation` on `device`; `route` as in arguments.masking."""

    def __init__(self, implementation: str, device: str, route: str | None) -> None:
        if implementation not in IMPLEMENTATIONS:
            raise AdapterError(
                f"argument 'name': expected jax:<implementation> with implementation one of "
                f"{list(IMPLEMENTATIONS)}, got jax:{implementation}"
            )
        self.jax = _jax()
        self.implementation, self.device_name, self.route = implementation, device, route
        self.device = _device(self.jax, device)
        self.attend = _jitted(implementation)

    def with_route(self, route: str | None) -> JaxAttention:
        return JaxAttention(self.implementation, self.device_name, route)

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
        jax = self.jax
        plan = masking(q.shape, k.shape, causal=causal, mask=mask, route=self.route,
                       full_mask=self.implementation == "cudnn")
        query, key, value = (
            jax.device_put(np.ascontiguousarray(x.transpose(0, 2, 1, 3)), self.device)
            for x in (q, k, v)
        )
        if query.dtype != q.dtype:
            raise UnsupportedCall(
                f"argument 'q': JAX holds {q.dtype} as {query.dtype} (for float64 set "
                "JAX_ENABLE_X64=1); nothing is cast silently"
            )
        jmask = None if plan.mask is None else jax.device_put(plan.mask, self.device)
        out = self.attend(query, key, value, mask=jmask, scale=float(scale),
                          is_causal=plan.is_causal)
        return np.ascontiguousarray(np.asarray(jax.device_get(out)).transpose(0, 2, 1, 3))

    def attempt(self, probe: Probe, route: str | None) -> np.ndarray:
        """One probe call through this adapter with causal route `route`."""
        args, kwargs = probe.arguments()
        return self.with_route(route)(*args, **kwargs)


@functools.cache
def _jitted(implementation: str) -> Any:
    jax = _jax()
    return jax.jit(
        functools.partial(jax.nn.dot_product_attention, implementation=implementation),
        static_argnames=("scale", "is_causal"),
    )


def dot_product_attention(implementation: str, device: str, *, probe: bool = True) -> JaxAttention:
    """`jax:<implementation>` on `device`, with its declaration discovered (once per process)
    or, with probe=False, taken from STATIC."""
    adapter = JaxAttention(implementation, device, route=None)
    key = (implementation, device)
    if probe:
        if key not in _DISCOVERED:
            _DISCOVERED[key] = discover(adapter.attempt, PROFILES, ("mask",), HEAD_DIMS)
        capabilities = _DISCOVERED[key]
    else:
        capabilities = STATIC[implementation]
    adapter = adapter.with_route(capabilities.route)
    jax = adapter.jax
    adapter.pasa_capabilities = capabilities
    adapter.pasa_version = jax.__version__
    adapter.pasa_declaration = capabilities.declaration(
        f"jax {jax.__version__} dot_product_attention {implementation} "
        f"({device}: {adapter.device.device_kind})"
    )
    return adapter
