"""The numbers of certification, read from specs/conformance.toml, table [certification]
(specs/certification.md). Nothing normative lives only in code: this module checks the
table and returns immutable values; a malformed table raises ThresholdError naming the key,
what was expected and what was found.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from pasa_ref import profiles

__all__ = [
    "Absolute",
    "Conformance",
    "Levels",
    "Relative",
    "ThresholdError",
    "load",
]


class ThresholdError(ValueError):
    """specs/conformance.toml [certification] is malformed."""


@dataclass(frozen=True)
class Relative:
    """A FlashAttention-style rule: measured <= rtol * reference + floor, with
    floor = floor_ulps * ulp_F(scale of the values) (+ the oracle's bound where there is one)."""

    rtol: float
    floor_ulps: float
    rmse_rtol: float | None = None


@dataclass(frozen=True)
class Absolute:
    """Per-profile absolute bounds on the benign cases (PASA-CERT-13)."""

    max_rmse_over_rms_reference: float
    min_cosine_similarity: float
    min_pass_ratio_hundredth: float
    min_pass_ratio_thousandth: float


@dataclass(frozen=True)
class Levels:
    """How many cases levels 2 and 3 add (PASA-CERT-5)."""

    adversarial_cases: int
    adversarial_max_seq: int
    adversarial_max_dim: int
    correlated_cases: int
    metamorphic_bases: int
    long_keys: tuple[int, ...]
    long_queries: int
    hunt_budget_s: float


@dataclass(frozen=True)
class Conformance:
    default_profile: str
    default_level: int
    default_seed: int
    timeout_s: float
    levels: Levels
    accuracy: Relative
    metamorphic: Relative
    single_key_max_ulps: float
    absolute: dict[str, Absolute]
    accumulation_chunks: tuple[int, ...] = ()  # PASA-CERT-9: the modelled summation orders

    def absolute_for(self, profile: str) -> Absolute:
        if profile not in self.absolute:
            raise ThresholdError(
                f"specs/conformance.toml: missing table [certification.absolute.{profile}]"
            )
        return self.absolute[profile]


def _table(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise ThresholdError(
            f"specs/conformance.toml: expected a table [{where}.{key}], got {type(value).__name__}"
        )
    return value


def _number(table: dict[str, Any], key: str, where: str, *, integer: bool = False) -> Any:
    """table[key], a number (an integer when asked) > 0."""
    value = table.get(key)
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        kind = "an integer" if integer else "a number"
        raise ThresholdError(
            f"specs/conformance.toml [{where}] {key}: expected {kind} > 0, got {value!r}"
        )
    return value


def _relative(table: dict[str, Any], where: str) -> Relative:
    """rtol, floor_ulps and an optional rmse_rtol, all > 0."""
    rmse_rtol = table.get("rmse_rtol")
    return Relative(
        rtol=float(_number(table, "rtol", where)),
        floor_ulps=float(_number(table, "floor_ulps", where)),
        rmse_rtol=None if rmse_rtol is None else float(_number(table, "rmse_rtol", where)),
    )


def _absolute(table: dict[str, Any], where: str) -> Absolute:
    """max_* > 0; min_* in [0, 1) (0: no bound, e.g. a ratio below one ulp of bf16)."""
    minima = {}
    for field in ("min_cosine_similarity", "min_pass_ratio_hundredth", "min_pass_ratio_thousandth"):
        value = table.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ThresholdError(
                f"specs/conformance.toml [{where}] {field}: expected a number "
                f"in [0, 1), got {value!r}"
            )
        minima[field] = float(value)
    return Absolute(
        max_rmse_over_rms_reference=float(_number(table, "max_rmse_over_rms_reference", where)),
        **minima,
    )


def parse(document: dict[str, Any]) -> Conformance:
    """Check the [certification] table of a parsed conformance.toml."""
    root = _table(document, "certification", "")
    levels_table = _table(root, "levels", "certification")
    where = "certification.levels"
    long_keys = levels_table.get("long_keys")
    if not (
        isinstance(long_keys, list)
        and long_keys
        and all(isinstance(n, int) and n >= 1 for n in long_keys)
    ):
        raise ThresholdError(
            f"specs/conformance.toml [{where}] long_keys: expected a non-empty "
            f"list of integers >= 1, got {long_keys!r}"
        )
    levels = Levels(
        **{
            key: _number(levels_table, key, where, integer=True)
            for key in (
                "adversarial_cases",
                "adversarial_max_seq",
                "adversarial_max_dim",
                "correlated_cases",
                "metamorphic_bases",
                "long_queries",
            )
        },
        long_keys=tuple(long_keys),
        hunt_budget_s=float(_number(levels_table, "hunt_budget_s", where)),
    )
    absolute_tables = _table(root, "absolute", "certification")
    absolute = {
        name: _absolute(table, f"certification.absolute.{name}")
        for name, table in absolute_tables.items()
    }
    default_profile = root.get("default_profile")
    if default_profile not in profiles.names():
        raise ThresholdError(
            f"specs/conformance.toml [certification] default_profile: expected "
            f"one of {profiles.names()}, got {default_profile!r}"
        )
    default_level = _number(root, "default_level", "certification", integer=True)
    if default_level not in (1, 2, 3):
        raise ThresholdError(
            f"specs/conformance.toml [certification] default_level: expected "
            f"1, 2 or 3, got {default_level!r}"
        )
    seed = root.get("default_seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ThresholdError(
            f"specs/conformance.toml [certification] default_seed: expected an "
            f"integer >= 0, got {seed!r}"
        )
    edge = _table(root, "edge", "certification")
    chunks = _table(root, "yardstick", "certification").get("accumulation_chunks")
    if not (
        isinstance(chunks, list)
        and all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in chunks)
    ):
        raise ThresholdError(
            "specs/conformance.toml [certification.yardstick] accumulation_chunks: expected a "
            f"list of integers >= 1, got {chunks!r}"
        )
    return Conformance(
        default_profile=default_profile,
        default_level=default_level,
        default_seed=seed,
        timeout_s=float(_number(root, "timeout_s", "certification")),
        levels=levels,
        accuracy=_relative(_table(root, "accuracy", "certification"), "certification.accuracy"),
        metamorphic=_relative(
            _table(root, "metamorphic", "certification"), "certification.metamorphic"
        ),
        single_key_max_ulps=float(_number(edge, "single_key_max_ulps", "certification.edge")),
        absolute=absolute,
        accumulation_chunks=tuple(chunks),
    )


@cache
def load() -> Conformance:
    """The bundled thresholds (pasa_ref.specs/conformance.toml)."""
    with resources.files("pasa_ref.specs").joinpath("conformance.toml").open("rb") as fh:
        return parse(tomllib.load(fh))
