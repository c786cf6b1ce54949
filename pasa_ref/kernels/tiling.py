"""What every kernel shares: option checks, the query-block loop, masking and grouped GEMMs.

Tiles are B x Hkv x G x r x c arrays (G query heads per key/value head, r query rows, c key
columns), so batch, heads and GQA groups are one numpy broadcast. A GEMM of a tile with a
key/value block merges (G, r) into one matrix dimension: one BLAS call per (b, kv head).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pasa_ref import profiles
from pasa_ref.arithmetic import Arithmetic
from pasa_ref.formats import Format
from pasa_ref.inputs import AttentionInputs, InputError, blocks, validate
from pasa_ref.profiles import Profile

__all__ = [
    "attend_by_query_blocks",
    "check_block",
    "check_scale_at",
    "gemm",
    "input_operand",
    "keys_transposed",
    "masked",
    "prepare",
    "query_operand",
    "scores",
]


def prepare(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    *,
    profile: str | Profile,
    scale: float | None,
    causal: bool,
    mask: np.ndarray | None,
    accumulation_chunk: int | None = None,
) -> tuple[AttentionInputs, Arithmetic]:
    """Validate the inputs against the profile's input dtype (PASA-IO-4); no casting.
    accumulation_chunk: the GEMMs' summation order (pasa_ref.arithmetic.Arithmetic)."""
    prof = profiles.get(profile)
    inputs = validate(q, k, v, scale=scale, causal=causal, mask=mask, dtypes=[prof.input.storage])
    return inputs, Arithmetic(prof, accumulation_chunk)


def check_block(name: str, value: int | None, default: int) -> int:
    """A block size: an integer >= 1 (PASA-IO-5), or the profile's default when None."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"argument {name!r}: expected an integer >= 1, got {value!r}")
    return int(value)


def check_scale_at(value: str | None, default: str) -> str:
    if value is None:
        return default
    if value not in profiles.SCALE_PLACEMENTS:
        raise InputError(
            f"argument 'scale_at': expected one of {profiles.SCALE_PLACEMENTS}, got {value!r}"
        )
    return value


def attend_by_query_blocks(
    inputs: AttentionInputs,
    ar: Arithmetic,
    block_q: int,
    attend: Callable[[slice], np.ndarray],
) -> np.ndarray:
    """Run `attend(rows)` on each block of query rows (PASA-BLK-1), set fully masked rows to
    0 (PASA-MASK-3), round into the output format and return B x Hq x S1 x Dv."""
    b, hkv, g, s1, _ = inputs.q.shape
    out = np.empty((b, hkv, g, s1, inputs.value_dim), dtype=ar.carrier)
    with ar.ieee():
        for rows in blocks(s1, block_q):
            out[..., rows, :] = attend(rows)
    out = np.where(inputs.has_visible_key(), out, 0)
    return inputs.ungroup(ar.output(out))


def masked(scores: np.ndarray, visible: np.ndarray | None) -> np.ndarray:
    """Scores with invisible entries set to -inf (PASA-MASK-1)."""
    if visible is None:
        return scores
    return np.where(visible, scores, -np.inf).astype(scores.dtype, copy=False)


def gemm(
    ar: Arithmetic, tile: np.ndarray, tile_format: Format, block: np.ndarray, block_format: Format
) -> np.ndarray:
    """ar.matmul of a B x Hkv x G x r x K tile with a B x Hkv x 1 x K x N block, computed as
    one (G*r) x K by K x N product per (b, kv head); *_format: the formats they are in."""
    b, hkv, g, r, kdim = tile.shape
    flat = ar.matmul(tile.reshape(b, hkv, g * r, kdim), block[:, :, 0], tile_format, block_format)
    return flat.reshape(b, hkv, g, r, flat.shape[-1])


def keys_transposed(k_block: np.ndarray) -> np.ndarray:
    """B x Hkv x 1 x n x D  ->  B x Hkv x 1 x D x n."""
    return np.swapaxes(k_block, -1, -2)


def scores(
    ar: Arithmetic, q_operand: np.ndarray, k_operand_t: np.ndarray, scale: float | None
) -> np.ndarray:
    """The GEMM q k^T of prepared operands, then fl_vector(fl_vector(lambda) * S) when a scale
    is given (PASA-ALG-2; None when the scale was applied to q or folded into M)."""
    operand = ar.profile.matmul_operand
    product = gemm(ar, q_operand, operand, k_operand_t, operand)
    if scale is None:
        return product
    return ar.vector(ar.constant(scale, ar.profile.vector) * product)


def query_operand(ar: Arithmetic, q_tile: np.ndarray, scale: float | None) -> np.ndarray:
    """The query tile as a GEMM operand: fl_operand(fl_vector(fl_vector(lambda) * q)) when a
    scale is given (scale_at = "q", PASA-ALG-2), else fl_operand(q)."""
    q_tile = ar.from_input(q_tile)
    if scale is None:
        return ar.gemm_operand(q_tile, ar.profile.input)
    scaled = ar.vector(ar.constant(scale, ar.profile.vector) * q_tile)
    return ar.gemm_operand(scaled, ar.profile.vector)


def input_operand(ar: Arithmetic, x: np.ndarray) -> np.ndarray:
    """An input array (k or v) as a GEMM operand: fl_operand(x), prepared once."""
    return ar.gemm_operand(ar.from_input(x), ar.profile.input)
