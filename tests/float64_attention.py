"""An independent float64 attention for the tests: written from the definition, sharing no
code with pasa_ref's kernels (masks included), so that agreement means something."""

from __future__ import annotations

import numpy as np


def visible_keys(shape: tuple[int, ...], causal: bool, mask: np.ndarray | None) -> np.ndarray:
    """... x S1 x S2 booleans: key t visible to query i (bottom-right causal, AND the mask)."""
    s1, s2 = shape[-2:]
    visible = np.ones(shape, dtype=bool)
    if causal:
        visible &= np.arange(s2)[None, :] <= np.arange(s1)[:, None] + (s2 - s1)
    if mask is not None:
        visible &= mask
    return visible


def attention64(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float | None = None,
    causal: bool = False,
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """(softmax(scale q k^T) v in float64 with fully masked rows 0, R) where R is the largest
    row range max - min of the visible scores. GQA by repeating heads."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    s = scale * (q @ np.swapaxes(k, -1, -2))
    visible = visible_keys(s.shape, causal, mask)
    any_visible = visible.any(axis=-1, keepdims=True)
    top = np.where(visible, s, -np.inf).max(axis=-1, keepdims=True)
    bottom = np.where(visible, s, np.inf).min(axis=-1, keepdims=True)
    score_range = float(np.where(any_visible, top - bottom, 0).max())
    w = np.where(visible, np.exp(s - np.where(any_visible, top, 0)), 0.0)
    total = w.sum(axis=-1, keepdims=True)
    out = (w / np.where(any_visible, total, 1.0)) @ v
    return out, score_range
