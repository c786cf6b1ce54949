"""Validated attention inputs and the one definition of which keys a query sees.

Every public entry point (kernels, oracle, certifier) goes through `validate`, so layout,
GQA head mapping, causal alignment, explicit masks and fully masked rows mean the same thing
everywhere (spec PASA-IO-1..5, PASA-MASK-1..3).

Layout BNSD: q is B x Hq x S1 x D, k and v are B x Hkv x S2 x D with Hkv dividing Hq.
Query head h reads key/value head h // G, G = Hq / Hkv (torch.repeat_interleave order).
Internally q is viewed as B x Hkv x G x S1 x D and k, v as B x Hkv x 1 x S2 x D, so GQA is
a broadcast, never a copy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from pasa_ref import formats

__all__ = ["AttentionInputs", "InputError", "blocks", "validate"]


class InputError(ValueError):
    """An argument of a public entry point is malformed; the message names it."""


@dataclass(frozen=True)
class AttentionInputs:
    """q, k, v in the grouped 5-D view, plus the scale and the visibility rule.

    mask, when given, is a boolean array broadcast (as a view) to B x Hkv x G x S1 x S2;
    True means the key is visible to the query (PASA-MASK-1).
    """

    q: np.ndarray  # B x Hkv x G x S1 x D
    k: np.ndarray  # B x Hkv x 1 x S2 x D
    v: np.ndarray  # B x Hkv x 1 x S2 x D
    scale: float
    causal: bool
    mask: np.ndarray | None

    @property
    def batch(self) -> int:
        return self.q.shape[0]

    @property
    def heads(self) -> int:
        return self.q.shape[1] * self.q.shape[2]

    @property
    def seq_q(self) -> int:
        return self.q.shape[3]

    @property
    def seq_k(self) -> int:
        return self.k.shape[3]

    @property
    def head_dim(self) -> int:
        return self.q.shape[4]

    @property
    def value_dim(self) -> int:
        return self.v.shape[4]

    def visible(self, rows: slice, cols: slice) -> np.ndarray | None:
        """Which keys in `cols` each query in `rows` sees, broadcastable to
        B x Hkv x G x len(rows) x len(cols); None when every key is visible.

        causal (PASA-MASK-2): key t is visible to query i iff t <= i + (S2 - S1)
        (bottom-right alignment, as FlashAttention-2). It is ANDed with the explicit mask.
        """
        tile = None
        if self.causal:
            offset = self.seq_k - self.seq_q
            i = np.arange(rows.start, rows.stop)[:, None]
            t = np.arange(cols.start, cols.stop)[None, :]
            causal = t <= i + offset
            if not causal.all():
                tile = causal
        if self.mask is not None:
            explicit = self.mask[..., rows, cols]
            tile = explicit if tile is None else explicit & tile
        return tile

    def has_visible_key(self) -> np.ndarray:
        """B x Hkv x G x S1 x 1 booleans: False on fully masked rows (PASA-MASK-3)."""
        shape = (*self.q.shape[:4], 1)
        if self.mask is None:
            # causal alone: row i sees key 0 iff 0 <= i + (S2 - S1)
            rows = np.arange(self.seq_q) + (self.seq_k - self.seq_q) >= 0 if self.causal else True
            return np.broadcast_to(np.reshape(rows, (-1, 1)), shape).copy()
        out = np.empty(shape, dtype=bool)
        every_key = slice(0, self.seq_k)
        for rows in blocks(self.seq_q, 1024):  # bounded memory for long sequences
            tile = np.broadcast_to(
                self.visible(rows, every_key), (*shape[:3], rows.stop - rows.start, self.seq_k)
            )
            out[..., rows, :] = tile.any(axis=-1, keepdims=True)
        return out

    def ungroup(self, out: np.ndarray) -> np.ndarray:
        """B x Hkv x G x S1 x Dv  ->  B x Hq x S1 x Dv."""
        b, hkv, g, s1, dv = out.shape
        return out.reshape(b, hkv * g, s1, dv)


def blocks(length: int, size: int) -> Iterable[slice]:
    """Consecutive slices of `size` covering range(length); the last may be shorter."""
    return (slice(start, min(start + size, length)) for start in range(0, length, size))


def _check_array(name: str, x: object, dtypes: tuple[np.dtype, ...]) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise InputError(f"argument {name!r}: expected a numpy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise InputError(
            f"argument {name!r}: expected rank 4 (B x H x S x D), got rank {x.ndim} "
            f"with shape {x.shape}"
        )
    if x.dtype not in dtypes:
        expected = " or ".join(str(d) for d in dtypes)
        raise InputError(f"argument {name!r}: expected dtype {expected}, got {x.dtype}")
    if 0 in x.shape:
        raise InputError(f"argument {name!r}: expected no empty dimension, got shape {x.shape}")
    finite = np.isfinite(x.astype(np.float64)) if x.dtype != np.float64 else np.isfinite(x)
    if not finite.all():
        where = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InputError(
            f"argument {name!r}: expected finite values, got {x[where]} at index {where}"
        )
    return x


def _check_scale(scale: float | None, head_dim: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating)):
        raise InputError(f"argument 'scale': expected a float, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale > 0):
        raise InputError(f"argument 'scale': expected a finite value > 0, got {scale}")
    return float(scale)


def _check_mask(mask: object, shape: tuple[int, int, int, int]) -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        raise InputError(f"argument 'mask': expected a numpy bool array, got {type(mask).__name__}")
    if mask.dtype != np.bool_:
        raise InputError(f"argument 'mask': expected dtype bool (True = visible), got {mask.dtype}")
    if mask.ndim > 4:
        raise InputError(f"argument 'mask': expected rank <= 4, got rank {mask.ndim}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise InputError(
            f"argument 'mask': expected a shape broadcastable to B x Hq x S1 x S2 = {shape}, "
            f"got {mask.shape}"
        ) from None


def validate(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: np.ndarray | None = None,
    dtypes: Iterable[np.dtype | str] | None = None,
) -> AttentionInputs:
    """Check q, k, v, scale, causal and mask; return them in the grouped view.

    dtypes: the accepted input dtypes (default: float16, bfloat16, float32, float64).
    q, k, v must share one dtype. Raises InputError naming the argument, the expected and
    the actual value.
    """
    accepted = tuple(np.dtype(d) for d in (dtypes or [f.storage for f in formats.FORMATS.values()]))
    q = _check_array("q", q, accepted)
    k = _check_array("k", k, accepted)
    v = _check_array("v", v, accepted)
    for name, x in (("k", k), ("v", v)):
        if x.dtype != q.dtype:
            raise InputError(f"argument {name!r}: expected dtype {q.dtype} (as q), got {x.dtype}")
    b, hq, s1, d = q.shape
    if k.shape[0] != b or v.shape[0] != b:
        raise InputError(
            f"arguments 'k', 'v': expected batch size B = {b} (as q), got {k.shape[0]} and {v.shape[0]}"
        )
    if k.shape[3] != d:
        raise InputError(f"argument 'k': expected head size D = {d} (as q), got {k.shape[3]}")
    if v.shape[1] != k.shape[1]:
        raise InputError(
            f"argument 'v': expected Hkv = {k.shape[1]} heads (as k), got {v.shape[1]}"
        )
    if v.shape[2] != k.shape[2]:
        raise InputError(
            f"argument 'v': expected sequence length S2 = {k.shape[2]} (as k), got {v.shape[2]}"
        )
    hkv, s2 = k.shape[1], k.shape[2]
    if hq % hkv:
        raise InputError(
            f"argument 'k': expected a number of heads Hkv dividing Hq = {hq}, got Hkv = {hkv}"
        )
    if not isinstance(causal, (bool, np.bool_)):
        raise InputError(f"argument 'causal': expected a bool, got {causal!r}")
    scale = _check_scale(scale, d)
    group = hq // hkv
    grouped_mask = None
    if mask is not None:
        full = _check_mask(mask, (b, hq, s1, s2))
        grouped_mask = full.reshape(b, hkv, group, s1, s2)
    return AttentionInputs(
        q=q.reshape(b, hkv, group, s1, d),
        k=k[:, :, None],
        v=v[:, :, None],
        scale=scale,
        causal=bool(causal),
        mask=grouped_mask,
    )
