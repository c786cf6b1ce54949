"""The JSON Schemas of specs/ (case sidecars, the `pasa gen` manifest, the certificate) and a
validator for the subset of JSON Schema they use: type (one or a list), const, enum, pattern,
minimum, maximum, minLength, maxLength, required, properties, additionalProperties (a
boolean or a schema), items, minItems, maxItems. JSON documents from files are untrusted:
`check` raises SchemaError with the first few problems, each naming its path ($.cases[3].id).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["SchemaError", "check", "errors", "schema"]

SHOWN_ERRORS = 3

_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
    "integer": int,
    "number": (int, float),
}


class SchemaError(ValueError):
    """A JSON document does not match its schema; the message lists the problems."""


@cache
def schema(name: str) -> dict[str, Any]:
    """specs/<name>.schema.json, read from the installed pasa_ref.specs."""
    text = resources.files("pasa_ref.specs").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


def _is(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[kind])


def errors(value: Any, rules: dict[str, Any], where: str = "$") -> list[str]:
    """Every problem of `value` under `rules`, one line each (empty: it matches)."""
    kinds = rules.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, kind) for kind in kinds):
            return [f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    found = []
    if "const" in rules and value != rules["const"]:
        found.append(f"{where}: expected {rules['const']!r}, got {_shown(value)}")
    if "enum" in rules and value not in rules["enum"]:
        found.append(f"{where}: expected one of {rules['enum']}, got {_shown(value)}")
    if isinstance(value, str):
        found += _string_errors(value, rules, where)
    if _is(value, "number"):
        if "minimum" in rules and value < rules["minimum"]:
            found.append(f"{where}: expected >= {rules['minimum']}, got {value}")
        if "maximum" in rules and value > rules["maximum"]:
            found.append(f"{where}: expected <= {rules['maximum']}, got {value}")
    if isinstance(value, dict):
        found += _object_errors(value, rules, where)
    if isinstance(value, list):
        if len(value) < rules.get("minItems", 0):
            found.append(f"{where}: expected >= {rules['minItems']} items, got {len(value)}")
        if "maxItems" in rules and len(value) > rules["maxItems"]:
            found.append(f"{where}: expected <= {rules['maxItems']} items, got {len(value)}")
        for index, item in enumerate(value):
            found += errors(item, rules.get("items", {}), f"{where}[{index}]")
            if len(found) > SHOWN_ERRORS:
                break
    return found


def _string_errors(value: str, rules: dict[str, Any], where: str) -> list[str]:
    found = []
    if len(value) < rules.get("minLength", 0):
        found.append(f"{where}: expected >= {rules['minLength']} characters, got {len(value)}")
    if "maxLength" in rules and len(value) > rules["maxLength"]:
        found.append(f"{where}: expected <= {rules['maxLength']} characters, got {len(value)}")
    if "pattern" in rules and not _matches(rules["pattern"], value):
        found.append(f"{where}: {_shown(value)} does not match {rules['pattern']}")
    return found


def _matches(pattern: str, value: str) -> bool:
    """ECMA-262 semantics of an anchored pattern: `$` does not match before a final newline
    (Python's re.search lets "id\n" match "^id$")."""
    match = re.search(pattern, value)
    return match is not None and (not pattern.endswith("$") or match.end() == len(value))


def _object_errors(value: dict[str, Any], rules: dict[str, Any], where: str) -> list[str]:
    found = [f"{where}: missing {key!r}" for key in rules.get("required", []) if key not in value]
    properties = rules.get("properties", {})
    extra = rules.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            found += errors(item, properties[key], f"{where}.{key}")
        elif extra is False:
            found.append(f"{where}: unexpected key {_shown(key)}")
        elif isinstance(extra, dict):
            found += errors(item, extra, f"{where}.{key}")
        if len(found) > SHOWN_ERRORS:
            break
    return found


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check(value: Any, name: str, what: str) -> None:
    """Raise SchemaError("WHAT: problem; problem") unless `value` matches specs/NAME."""
    found = errors(value, schema(name))
    if found:
        more = f" (and {len(found) - SHOWN_ERRORS} more)" if len(found) > SHOWN_ERRORS else ""
        raise SchemaError(f"{what}: " + "; ".join(found[:SHOWN_ERRORS]) + more)
