"""An independent binary32 softmax attention for the tests of the yardstick (PASA-CERT-8, -9):
written from the definition, sharing no code with pasa_ref's kernels, with the score GEMM
summed the way hardware sums it, and two realistic mistakes to plant. Also the shared-bias
case on which the summation order decides the output."""

from __future__ import annotations

import numpy as np

from tests.float64_attention import visible_keys


def attention32(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    scale: float,
    causal: bool = False,
    mask: np.ndarray | None = None,
    chunk: int = 1,
    score_sum: type = np.float32,
    scale_error: float = 1.0,
) -> np.ndarray:
    """softmax(scale q k^T) v, fully masked rows 0, rounded into q's dtype. The score GEMM
    is a running sum over the head dimension in chunks of `chunk` products (1: sequential;
    16: a tensor core's k = 16 step), the running sum rounded into `score_sum` after every
    chunk (float32 is correct; float16 is the planted accumulation bug); `scale_error`
    multiplies the scale (1 is correct). Softmax and P V in binary32. GQA by repeating heads."""
    group = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    q64, k64 = q.astype(np.float64), k.astype(np.float64)
    s = np.zeros((*q.shape[:-1], k.shape[-2]), dtype=score_sum)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, q.shape[-1], chunk):
            columns = slice(start, start + chunk)
            part = q64[..., columns] @ np.swapaxes(k64[..., columns], -1, -2)
            s = (s.astype(np.float64) + part).astype(score_sum)
        s = s.astype(np.float32) * np.float32(scale * scale_error)
    visible = visible_keys(s.shape, causal, mask)
    seen = visible.any(axis=-1, keepdims=True)
    s = np.where(visible, s, np.float32(-np.inf))
    with np.errstate(invalid="ignore"):
        e = np.exp(s - np.where(seen, s.max(axis=-1, keepdims=True), np.float32(0)))
        p = e / np.where(seen, e.sum(axis=-1, keepdims=True), np.float32(1))
    out = np.where(seen, p @ v.astype(np.float32), np.float32(0))
    return out.astype(q.dtype)


def shared_bias_case(seed: int, gap: float, heads: int = 32, seq_k: int = 16, dim: int = 128):
    """(q, k, v) in float16 with scores near 3.5e8: every query and key entry near 1650 (keys
    within 2 of one base vector), so that q . k ~ 128 * 1650^2, where binary32's spacing is
    32. Per head, key 1 trails key 0 by about `gap` in the raw score (gap / sqrt(D) in the
    exponent) and the other keys by thousands: the output is v_0 up to ~e^-(gap/sqrt(D)),
    the once-rounded GEMM (error <= 16) keeps it, a sequential binary32 sum (errors of
    hundreds) can hand the row to key 1."""
    rng = np.random.default_rng(seed)
    q = np.empty((1, heads, 2, dim))
    k = np.empty((1, heads, seq_k, dim))
    for h in range(heads):
        q_h = 1650 + np.round(rng.standard_normal(dim) * 30)
        k_0 = 1650 + np.round(rng.standard_normal(dim))
        while True:  # key 1 = key 0 with six entries moved by 1, trailing by about `gap`
            delta = np.zeros(dim)
            delta[rng.choice(dim, 6, replace=False)] = rng.choice([-1.0, 1.0], 6)
            if abs(q_h @ delta + gap) <= 15:
                break
        q[0, h] = q_h
        k[0, h, 0], k[0, h, 1] = k_0, k_0 + delta
        for j in range(2, seq_k):
            far = np.zeros(dim)
            far[rng.choice(dim, 4, replace=False)] = -1.0
            k[0, h, j] = k_0 + far
    v = rng.standard_normal((1, heads, seq_k, dim))
    return q.astype(np.float16), k.astype(np.float16), v.astype(np.float16)
