"""The metamorphic relations of the spec (PASA-MR-1..3) as exact transformations of a case
and the map they induce on the output (specs/certification.md, PASA-CERT-14).

    PASA-MR-1  k' = k + 1 c^T           output unchanged (each row's scores shift by a constant)
    PASA-MR-2  v' = v + 1 c^T           output + c on every row with a visible key
    PASA-MR-3  v' = 2^s v               output times 2^s

c has integer entries in [-16, 16] and s is -2 or 3, drawn from the case's metadata
"relations_seed". A transformation is used only when it is exact in the input format
(checked: x' - c == x, or x' 2^-s == x, in binary64), so in exact arithmetic the relation
holds with no tolerance at all; the generators of pasa_ref.certify.generators make base cases
on which all three are exact in fp16 and bf16.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from pasa_ref.cases import Case

__all__ = ["RELATIONS", "Transformed", "transforms"]

RELATIONS = ("PASA-MR-1", "PASA-MR-2", "PASA-MR-3")


@dataclass(frozen=True)
class Transformed:
    """A relation applied to a base case. expect(base_output, visible_rows) maps the base
    output (binary64, B x Hq x S1 x Dv) to what the transformed case must give;
    visible_rows is B x Hq x S1 x 1, False on fully masked rows."""

    relation: str
    case: Case
    expect: Callable[[np.ndarray, np.ndarray], np.ndarray]
    parameter: str


def _derived(case: Case, relation: str, **arrays: np.ndarray) -> Case:
    """The transformed case; its id is the base id plus the relation's number."""
    base = case.metadata.get("id", case.label)
    case_id = f"{base}-mr{relation.rsplit('-', 1)[1]}"
    metadata = {key: value for key, value in case.metadata.items() if key != "relations_seed"}
    metadata.update(id=case_id, derived_from=base, relation=relation)
    return replace(case, label=case_id, metadata=metadata, **arrays)


def transforms(case: Case) -> list[Transformed]:
    """The exact relations applicable to `case` (none without metadata 'relations_seed')."""
    seed = case.metadata.get("relations_seed")
    if seed is None:
        return []
    rng = np.random.default_rng(int(seed))
    key_shift = rng.integers(-16, 17, case.k.shape[-1]).astype(np.float64)
    value_shift = rng.integers(-16, 17, case.v.shape[-1]).astype(np.float64)
    power = int(rng.choice([-2, 3]))
    k, v = case.k.astype(np.float64), case.v.astype(np.float64)
    candidates = (  # relation, input changed, its new value, undo, output map, parameter
        (
            "PASA-MR-1",
            "k",
            k + key_shift,
            lambda x: x - key_shift,
            lambda o, rows: o,
            f"c = {key_shift.astype(int).tolist()}",
        ),
        (
            "PASA-MR-2",
            "v",
            v + value_shift,
            lambda x: x - value_shift,
            lambda o, rows: np.where(rows, o + value_shift, 0.0),
            f"c = {value_shift.astype(int).tolist()}",
        ),
        (
            "PASA-MR-3",
            "v",
            np.ldexp(v, power),
            lambda x: np.ldexp(x, -power),
            lambda o, rows: np.ldexp(o, power),
            f"s = {power}",
        ),
    )
    found = []
    for relation, name, changed, undo, expect, parameter in candidates:
        rounded = changed.astype(case.dtype)
        original = getattr(case, name).astype(np.float64)
        if np.array_equal(undo(rounded.astype(np.float64)), original):  # exact in the format
            found.append(
                Transformed(
                    relation, _derived(case, relation, **{name: rounded}), expect, parameter
                )
            )
    return found
