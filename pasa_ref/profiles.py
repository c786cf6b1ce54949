"""Precision profiles: where every kernel rounds, read from specs/profiles.toml (PASA-PROF-1).

A profile is data, not code: `load()` reads the TOML file shipped as pasa_ref.specs, checks
every field and returns immutable `Profile` objects. A malformed profile raises
`ProfileError` naming the profile, the field, what was expected and what was found.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pasa_ref import formats
from pasa_ref.formats import Format

__all__ = ["SCALE_PLACEMENTS", "Profile", "ProfileError", "get", "load", "names"]

SCALE_PLACEMENTS = ("q", "scores", "shift")
_FORMAT_FIELDS = (
    "input",
    "matmul_operand",
    "matmul_accumulate",
    "matmul_output",
    "vector",
    "statistics",
    "accumulator",
    "output",
)
_FIELDS = ("description", *_FORMAT_FIELDS, "scale_at", "beta", "block_q", "block_k")


class ProfileError(ValueError):
    """A profile in the profiles file is malformed."""


@dataclass(frozen=True)
class Profile:
    """The rounding points of one precision profile; each *_format is a `Format`."""

    name: str
    description: str
    input: Format
    matmul_operand: Format
    matmul_accumulate: Format
    matmul_output: Format
    vector: Format
    statistics: Format
    accumulator: Format
    output: Format
    scale_at: str
    beta: float
    block_q: int
    block_k: int


def _check_field(name: str, table: dict[str, Any], field: str) -> Any:
    if field not in table:
        raise ProfileError(f"profile {name!r}: missing field {field!r}")
    value = table[field]
    if field in _FORMAT_FIELDS:
        if value not in formats.FORMATS:
            raise ProfileError(
                f"profile {name!r}, field {field!r}: expected one of {sorted(formats.FORMATS)}, "
                f"got {value!r}"
            )
        return formats.get(value)
    if field == "scale_at" and value not in SCALE_PLACEMENTS:
        raise ProfileError(
            f"profile {name!r}, field 'scale_at': expected one of {SCALE_PLACEMENTS}, got {value!r}"
        )
    if field == "beta" and not (isinstance(value, float) and 0.0 < value < 1.0):
        raise ProfileError(
            f"profile {name!r}, field 'beta': expected a float in (0, 1), got {value!r}"
        )
    if field in ("block_q", "block_k") and not (
        isinstance(value, int) and not isinstance(value, bool) and value >= 1
    ):
        raise ProfileError(
            f"profile {name!r}, field {field!r}: expected an integer >= 1, got {value!r}"
        )
    if field == "description" and not isinstance(value, str):
        raise ProfileError(
            f"profile {name!r}, field 'description': expected a string, got {value!r}"
        )
    return value


def parse(tables: dict[str, Any]) -> dict[str, Profile]:
    """Validate the parsed TOML tables and build one Profile per table."""
    profiles = {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ProfileError(f"profile {name!r}: expected a table, got {type(table).__name__}")
        unknown = sorted(set(table) - set(_FIELDS))
        if unknown:
            raise ProfileError(
                f"profile {name!r}: unknown field(s) {unknown}; expected only {list(_FIELDS)}"
            )
        values = {field: _check_field(name, table, field) for field in _FIELDS}
        profiles[name] = Profile(name=name, **values)
    return profiles


def load(path: str | Path | None = None) -> dict[str, Profile]:
    """Read and validate a profiles file (default: the bundled specs/profiles.toml)."""
    if path is None:
        return _bundled()
    with open(path, "rb") as fh:
        return parse(tomllib.load(fh))


@cache
def _bundled() -> dict[str, Profile]:
    with resources.files("pasa_ref.specs").joinpath("profiles.toml").open("rb") as fh:
        return parse(tomllib.load(fh))


def names() -> list[str]:
    """Names of the bundled profiles, in file order."""
    return list(_bundled())


def get(profile: str | Profile) -> Profile:
    """The bundled profile called `profile` (a Profile is returned unchanged)."""
    if isinstance(profile, Profile):
        return profile
    table = _bundled()
    if profile not in table:
        raise ValueError(f"argument 'profile': expected one of {list(table)}, got {profile!r}")
    return table[profile]
