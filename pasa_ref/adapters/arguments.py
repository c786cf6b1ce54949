"""How the arguments of a PASA-CERT-1 call map onto a framework's attention call: the parts
that need no framework (pure numpy), shared by every adapter.

    causal    the spec aligns the causal mask bottom-right: key t is visible to query i iff
              t <= i + (S2 - S1) (PASA-MASK-2). torch's and JAX's `is_causal` align it
              top-left (t <= i); the two agree only when S1 = S2. A backend expresses the
              spec's causal mask by one of its *causal routes*:
                  "bias"   the framework's own bottom-right causal object
                           (torch.nn.attention.bias.causal_lower_right)
                  "mask"   an explicit boolean mask, for backends that take masks
              With S1 = S2 the top-left flag is exact and is what every route passes.
    masks     True = visible in the spec, in torch and in JAX; a causal flag and an explicit
              mask combine by AND (PASA-MASK-2). Some backends (cuDNN) need the mask
              expanded to a contiguous B x Hq x S1 x S2 array.
    GQA       query head h reads key/value head floor(h / G), G = Hq / Hkv, in the spec
              (PASA-IO-2), torch's `enable_gqa` and JAX alike: heads pass unchanged, and the
              framework is told the call is grouped.
    bf16      numpy holds bfloat16 as `ml_dtypes.bfloat16`; a framework that knows no
              ml_dtypes takes it through its 16-bit pattern, exact both ways.

Nothing here emulates a feature: a call that the backend's route cannot express raises
`UnsupportedCall`, and the backend's declaration says so beforehand.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np

__all__ = [
    "CAUSAL_ROUTES",
    "INPUT_DTYPES",
    "Masking",
    "UnsupportedCall",
    "bottom_right",
    "from_bits",
    "grouped",
    "masking",
    "to_bits",
]

CAUSAL_ROUTES = ("bias", "mask")
#: the input dtypes of the profiles (PASA-CERT-1)
INPUT_DTYPES = tuple(
    np.dtype(d) for d in (np.float16, ml_dtypes.bfloat16, np.float32, np.float64)
)
BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


class UnsupportedCall(ValueError):
    """The backend has no way to express this call (its declaration excludes it)."""


@dataclass(frozen=True)
class Masking:
    """What the framework's call receives for masking.

    is_causal    the framework's top-left causal flag
    lower_right  pass the framework's bottom-right causal object (route "bias")
    mask         None or a boolean array of 4 dimensions broadcastable to
                 B x Hq x S1 x S2, True = visible
    """

    is_causal: bool
    lower_right: bool
    mask: np.ndarray | None


def bottom_right(seq_q: int, seq_k: int) -> np.ndarray:
    """The spec's causal mask, S1 x S2: key t visible to query i iff t <= i + (S2 - S1)."""
    return np.arange(seq_k)[None, :] <= np.arange(seq_q)[:, None] + (seq_k - seq_q)


def grouped(q_shape: tuple[int, ...], k_shape: tuple[int, ...]) -> bool:
    """Whether the call is GQA/MQA (Hq != Hkv); Hkv must divide Hq (PASA-IO-2)."""
    heads_q, heads_kv = q_shape[1], k_shape[1]
    if heads_kv < 1 or heads_q % heads_kv:
        raise ValueError(
            f"argument 'k': expected a number of key heads dividing Hq = {heads_q}, "
            f"got Hkv = {heads_kv}"
        )
    return heads_q != heads_kv


def masking(
    q_shape: tuple[int, ...],
    k_shape: tuple[int, ...],
    *,
    causal: bool,
    mask: np.ndarray | None,
    route: str | None,
    full_mask: bool,
) -> Masking:
    """The masking arguments for a call with the spec's `causal` and `mask`.

    route is the backend's causal route (CAUSAL_ROUTES) or None when it has only the
    top-left flag; full_mask expands every mask to a contiguous B x Hq x S1 x S2 array.
    Raises UnsupportedCall for a causal call with S1 != S2 and no route.
    """
    if route is not None and route not in CAUSAL_ROUTES:
        raise ValueError(
            f"argument 'route': expected one of {CAUSAL_ROUTES} or None, got {route!r}"
        )
    batch, heads, seq_q = q_shape[0], q_shape[1], q_shape[2]
    seq_k = k_shape[2]
    full = (batch, heads, seq_q, seq_k)
    if mask is None:
        if not causal:
            return Masking(False, False, None)
        if seq_q == seq_k:
            return Masking(True, False, None)
        if route == "bias":
            return Masking(False, True, None)
        if route == "mask":
            return Masking(False, False, _layout(bottom_right(seq_q, seq_k), full, full_mask))
        raise UnsupportedCall(
            f"causal attention with S1 = {seq_q} != S2 = {seq_k}: the backend aligns its "
            "causal mask top-left and has no bottom-right form (declared causal = top-left)"
        )
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"argument 'mask': expected a boolean array, got dtype {mask.dtype}")
    try:
        np.broadcast_shapes(mask.shape, full)
    except ValueError:
        raise ValueError(
            f"argument 'mask': expected a shape broadcastable to {full}, got {mask.shape}"
        ) from None
    if causal:
        mask = mask & bottom_right(seq_q, seq_k)
    return Masking(False, False, _layout(mask, full, full_mask))


def _layout(mask: np.ndarray, full: tuple[int, int, int, int], expand: bool) -> np.ndarray:
    """The mask with 4 dimensions; with `expand`, a contiguous array of the full shape."""
    if expand:
        return np.ascontiguousarray(np.broadcast_to(mask, full))
    return mask.reshape((1,) * (4 - mask.ndim) + mask.shape)


def to_bits(x: np.ndarray) -> np.ndarray:
    """An input array as a framework can take it: bfloat16 as its bit patterns (int16, the
    16-bit integer every framework has), other dtypes of INPUT_DTYPES unchanged."""
    if x.dtype not in INPUT_DTYPES:
        raise ValueError(
            f"argument 'x': expected one of the dtypes {[str(d) for d in INPUT_DTYPES]}, "
            f"got {x.dtype}"
        )
    return x.view(np.int16) if x.dtype == BFLOAT16 else x


def from_bits(x: np.ndarray, bfloat16: bool) -> np.ndarray:
    """The inverse of to_bits: int16 bit patterns back to bfloat16 when `bfloat16`."""
    if not bfloat16:
        return x
    if x.dtype not in (np.dtype(np.int16), np.dtype(np.uint16)):
        raise ValueError(f"argument 'x': expected 16-bit patterns, got dtype {x.dtype}")
    return x.view(BFLOAT16)
