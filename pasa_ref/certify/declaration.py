"""Kernel declarations: what a kernel under certification claims to be and to support
(specs/certification.md, PASA-CERT-7; schema specs/declaration.schema.json).

A declaration is data, never code: a TOML file (`pasa certify --declare FILE`), a mapping
carried by the callable as its attribute `pasa_declaration`, or one an adapter discovers. It
names

    algorithm     the class, "softmax" (standard attention, naive or FlashAttention-style)
                  or "pasa", and for pasa its parameters (beta, block_k, block_q, the ragged
                  mode, where the scale is applied); the reference kernel of that class with
                  those parameters is the yardstick of the accuracy criteria
    supports      the inputs it accepts: explicit masks, causal (and its alignment),
                  GQA/MQA, Dv != D, head dims, sequence lengths, batch, profiles
    conventions   the result of fully masked rows, subnormal handling

A case outside the declared scope is *not applicable*: counted and listed, never a failure.
An empty declaration means "a pasa kernel with the profile's parameters, supporting every
input the spec defines", which is what pasa-ref certified before declarations existed.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pasa_ref.strategies import Shape

__all__ = [
    "ALGORITHM_CLASSES",
    "CAUSAL_ALIGNMENTS",
    "Algorithm",
    "Conventions",
    "Declaration",
    "DeclarationError",
    "Range",
    "Support",
    "from_mapping",
    "load",
    "of",
    "resolve",
]

SCHEMA = "pasa-ref/declaration/1"
ALGORITHM_CLASSES = ("softmax", "pasa")
RAGGED_MODES = ("true-length", "pad", "authors")
#: where a pasa kernel applies the scale, and the profile's `scale_at` each one means
SCALE_PLACES = {"shift-matrix": "shift", "scores": "scores", "q": "q"}
CAUSAL_ALIGNMENTS = ("bottom-right", "top-left")
FULLY_MASKED_ROWS = ("zero", "nan", "unspecified")
SUBNORMALS = ("ieee", "flush-to-zero")
#: the attribute of a callable that carries its declaration
ATTRIBUTE = "pasa_declaration"


class DeclarationError(ValueError):
    """A declaration is malformed; the message names the key, the expected and the actual
    value."""


def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _choice(table: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str,
            path: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or value not in choices:
        raise DeclarationError(
            f"declaration key {_where(path, key)!r}: expected one of {list(choices)}, "
            f"got {value!r}"
        )
    return value


def _flag(table: Mapping[str, Any], key: str, path: str) -> bool:
    value = table.get(key, True)
    if not isinstance(value, bool):
        raise DeclarationError(
            f"declaration key {_where(path, key)!r}: expected true or false, got {value!r}"
        )
    return value


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DeclarationError(
            f"declaration key {where!r}: expected an integer >= 1, got {value!r}"
        )
    return value


def _unknown(table: Mapping[str, Any], known: tuple[str, ...], path: str) -> None:
    extra = sorted(set(table) - set(known))
    if extra:
        raise DeclarationError(
            f"declaration table {path or 'top level'!r}: unknown key {extra[0]!r} "
            f"(expected some of {list(known)})"
        )


@dataclass(frozen=True)
class Range:
    """A set of allowed sizes: `values` (an explicit set) or min <= x <= max with
    x % multiple_of == 0."""

    values: tuple[int, ...] | None = None
    min: int = 1
    max: int | None = None
    multiple_of: int = 1

    def __contains__(self, size: int) -> bool:
        if self.values is not None:
            return size in self.values
        return (
            size >= self.min
            and (self.max is None or size <= self.max)
            and size % self.multiple_of == 0
        )

    @property
    def unrestricted(self) -> bool:
        return self == Range()

    def fit(self, size: int) -> int | None:
        """The allowed size nearest to `size` (ties: the larger), None if none exists."""
        if size in self:
            return size
        if self.values is not None:
            return min(self.values, key=lambda v: (abs(v - size), -v)) if self.values else None
        step = self.multiple_of
        first = -(-self.min // step) * step  # the smallest allowed size
        last = None if self.max is None else (self.max // step) * step  # the largest
        if last is not None and last < first:
            return None

        def clamp(candidate: int) -> int:
            candidate = max(first, candidate)
            return candidate if last is None else min(candidate, last)

        down, up = clamp((size // step) * step), clamp(-(-size // step) * step)
        return min((down, up), key=lambda v: (abs(v - size), -v))

    def members(self, low: int, high: int) -> list[int]:
        """The allowed sizes in [low, high], ascending."""
        if self.values is not None:
            return [v for v in self.values if low <= v <= high]
        top = high if self.max is None else min(high, self.max)
        start = -(-max(low, self.min) // self.multiple_of) * self.multiple_of
        return list(range(start, top + 1, self.multiple_of))

    def text(self, name: str) -> str:
        if self.values is not None:
            return f"{name} in {{{', '.join(str(v) for v in self.values)}}}"
        parts = []
        if self.min > 1 or self.max is not None:
            parts.append(f"{self.min} <= {name}" + (f" <= {self.max}" if self.max else ""))
        if self.multiple_of > 1:
            parts.append(f"{name} a multiple of {self.multiple_of}")
        return ", ".join(parts)

    @classmethod
    def parse(cls, value: Any, path: str) -> Range:
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise DeclarationError(
                f"declaration key {path!r}: expected a table such as {{ values = [64, 128] }} "
                f"or {{ min = 8, max = 256, multiple_of = 8 }}, got {value!r}"
            )
        _unknown(value, ("values", "min", "max", "multiple_of"), path)
        if "values" in value:
            if set(value) != {"values"}:
                raise DeclarationError(
                    f"declaration key {path!r}: 'values' excludes min, max and multiple_of"
                )
            values = value["values"]
            if not isinstance(values, list) or not values:
                raise DeclarationError(
                    f"declaration key {path + '.values'!r}: expected a non-empty list of "
                    f"integers, got {values!r}"
                )
            return cls(values=tuple(sorted({_positive_int(v, path + ".values") for v in values})))
        low = _positive_int(value.get("min", 1), path + ".min")
        high = value.get("max")
        if high is not None:
            high = _positive_int(high, path + ".max")
            if high < low:
                raise DeclarationError(
                    f"declaration key {path + '.max'!r}: expected >= min = {low}, got {high}"
                )
        allowed = cls(
            min=low, max=high, multiple_of=_positive_int(value.get("multiple_of", 1),
                                                         path + ".multiple_of")
        )
        if allowed.fit(low) is None:
            raise DeclarationError(
                f"declaration key {path!r}: no size is a multiple of {allowed.multiple_of} "
                f"between {low} and {high}"
            )
        return allowed

    def mapping(self) -> dict[str, Any]:
        if self.values is not None:
            return {"values": list(self.values)}
        out: dict[str, Any] = {"min": self.min, "multiple_of": self.multiple_of}
        if self.max is not None:
            out["max"] = self.max
        return out


@dataclass(frozen=True)
class Algorithm:
    """The algorithm class and, for pasa, its parameters (None: the profile's default)."""

    kind: str = "pasa"
    beta: float | None = None
    block_k: int | None = None
    block_q: int | None = None
    ragged: str = "true-length"
    scale: str | None = None  # None: the profile's scale_at

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> Algorithm:
        path = "algorithm"
        _unknown(table, ("class", "beta", "block_k", "block_q", "ragged", "scale"), path)
        kind = _choice(table, "class", ALGORITHM_CLASSES, "pasa", path)
        if kind == "softmax":
            extra = sorted(set(table) - {"class"})
            if extra:
                raise DeclarationError(
                    f"declaration key {_where(path, extra[0])!r}: only a pasa kernel has "
                    "parameters (algorithm.class is 'softmax')"
                )
            return cls(kind="softmax")
        beta = table.get("beta")
        if beta is not None and (
            isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta < 1
        ):
            raise DeclarationError(
                f"declaration key 'algorithm.beta': expected a number in (0, 1), got {beta!r}"
            )
        blocks = {
            key: None if table.get(key) is None else _positive_int(table[key], f"{path}.{key}")
            for key in ("block_k", "block_q")
        }
        return cls(
            kind="pasa",
            beta=None if beta is None else float(beta),
            ragged=_choice(table, "ragged", RAGGED_MODES, "true-length", path),
            scale=None
            if table.get("scale") is None
            else _choice(table, "scale", tuple(SCALE_PLACES), "shift-matrix", path),
            **blocks,
        )

    def mapping(self) -> dict[str, Any]:
        if self.kind == "softmax":
            return {"class": "softmax"}
        out: dict[str, Any] = {"class": "pasa", "ragged": self.ragged}
        if self.scale is not None:
            out["scale"] = self.scale
        for key in ("beta", "block_k", "block_q"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass(frozen=True)
class Support:
    """The inputs a kernel accepts; a case outside them is not applicable."""

    mask: bool = True
    causal: str | None = "bottom-right"  # None: no causal masking
    gqa: bool = True
    mqa: bool = True
    dv_ne_d: bool = True
    head_dim: Range = field(default_factory=Range)
    value_dim: Range | None = None  # None: the head_dim rule
    seq_q: Range = field(default_factory=Range)
    seq_k: Range = field(default_factory=Range)
    batch: Range = field(default_factory=Range)
    profiles: tuple[str, ...] | None = None  # None: every profile

    KEYS = ("mask", "causal", "gqa", "mqa", "dv_ne_d", "head_dim", "value_dim", "seq_q",
            "seq_k", "batch", "profiles")

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> Support:
        path = "supports"
        _unknown(table, cls.KEYS, path)
        causal = table.get("causal", "bottom-right")
        if causal is False:
            causal = None
        elif causal is True:
            causal = "bottom-right"
        elif causal not in CAUSAL_ALIGNMENTS:
            raise DeclarationError(
                f"declaration key 'supports.causal': expected one of "
                f"{list(CAUSAL_ALIGNMENTS)} or false, got {causal!r}"
            )
        profiles = table.get("profiles")
        if profiles is not None:
            from pasa_ref import profiles as profile_table  # late: profiles reads spec data

            known = profile_table.names()
            if not isinstance(profiles, list) or not profiles or any(
                p not in known for p in profiles
            ):
                raise DeclarationError(
                    f"declaration key 'supports.profiles': expected a non-empty list of "
                    f"profile names from {known}, got {profiles!r}"
                )
            profiles = tuple(profiles)
        return cls(
            mask=_flag(table, "mask", path),
            causal=causal,
            gqa=_flag(table, "gqa", path),
            mqa=_flag(table, "mqa", path),
            dv_ne_d=_flag(table, "dv_ne_d", path),
            head_dim=Range.parse(table.get("head_dim"), "supports.head_dim"),
            value_dim=None
            if table.get("value_dim") is None
            else Range.parse(table["value_dim"], "supports.value_dim"),
            seq_q=Range.parse(table.get("seq_q"), "supports.seq_q"),
            seq_k=Range.parse(table.get("seq_k"), "supports.seq_k"),
            batch=Range.parse(table.get("batch"), "supports.batch"),
            profiles=profiles,
        )

    def allows_causal(self, seq_q: int, seq_k: int) -> bool:
        """Whether causal masking of an S1 x S2 problem is in scope (top-left alignment equals
        the spec's bottom-right one only when S1 == S2)."""
        return self.causal == "bottom-right" or (self.causal == "top-left" and seq_q == seq_k)

    def fit(self, shape: Shape, keep: Collection[str] = ()) -> Shape:
        """The shape moved into the scope, size by size: each size not named in `keep` (the
        sizes that carry what a case tests: "batch", "heads", "seq_q", "seq_k", "head_dim",
        "value_dim") becomes the nearest allowed one (Range.fit); GQA or MQA heads that are
        not supported become MHA (Hkv = Hq); Dv becomes D when Dv != D is not supported. A
        size that cannot be fitted stays, and the case is then not applicable."""
        from pasa_ref.strategies import Shape  # late: strategies imports hypothesis

        def fitted(name: str, size: int, allowed: Range) -> int:
            if name in keep:
                return size
            moved = allowed.fit(size)
            return size if moved is None else moved

        hq, hkv = shape.heads_q, shape.heads_kv
        if "heads" not in keep and (
            (hkv == 1 < hq and not self.mqa) or (1 < hkv < hq and not self.gqa)
        ):
            hkv = hq
        head_dim = fitted("head_dim", shape.head_dim, self.head_dim)
        if "value_dim" not in keep and not self.dv_ne_d:
            value_dim = head_dim
        else:
            value_dim = fitted("value_dim", shape.value_dim, self.value_dim or self.head_dim)
        return Shape(
            batch=fitted("batch", shape.batch, self.batch),
            heads_q=hq,
            heads_kv=hkv,
            seq_q=fitted("seq_q", shape.seq_q, self.seq_q),
            seq_k=fitted("seq_k", shape.seq_k, self.seq_k),
            head_dim=head_dim,
            value_dim=value_dim,
        )

    def phrases(self) -> list[str]:
        """The supported inputs in words, one phrase per rule."""
        parts = ["explicit masks" if self.mask else "no explicit mask"]
        parts.append(f"causal {self.causal}" if self.causal else "no causal")
        parts += [text for flag, text in ((self.gqa, "no GQA"), (self.mqa, "no MQA"),
                                          (self.dv_ne_d, "Dv = D only")) if not flag]
        for allowed, name in (
            (self.head_dim, "D"),
            (self.value_dim, "Dv"),
            (self.seq_q, "S1"),
            (self.seq_k, "S2"),
            (self.batch, "B"),
        ):
            if allowed is not None and not allowed.unrestricted:
                parts.append(allowed.text(name))
        if self.profiles is not None:
            parts.append("profiles " + ", ".join(self.profiles))
        return parts

    def mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mask": self.mask,
            "causal": self.causal if self.causal is not None else False,
            "gqa": self.gqa,
            "mqa": self.mqa,
            "dv_ne_d": self.dv_ne_d,
            "head_dim": self.head_dim.mapping(),
            "seq_q": self.seq_q.mapping(),
            "seq_k": self.seq_k.mapping(),
            "batch": self.batch.mapping(),
        }
        if self.value_dim is not None:
            out["value_dim"] = self.value_dim.mapping()
        if self.profiles is not None:
            out["profiles"] = list(self.profiles)
        return out


@dataclass(frozen=True)
class Conventions:
    """Where the kernel departs from the spec by declaration (certified "with exceptions")."""

    fully_masked_rows: str = "zero"
    subnormals: str = "ieee"

    @classmethod
    def parse(cls, table: Mapping[str, Any]) -> Conventions:
        path = "conventions"
        _unknown(table, ("fully_masked_rows", "subnormals"), path)
        return cls(
            fully_masked_rows=_choice(table, "fully_masked_rows", FULLY_MASKED_ROWS, "zero",
                                      path),
            subnormals=_choice(table, "subnormals", SUBNORMALS, "ieee", path),
        )

    def exceptions(self) -> list[str]:
        """The declared departures from the spec, in words."""
        out = []
        if self.fully_masked_rows != "zero":
            out.append(f"fully masked rows give {self.fully_masked_rows} (PASA-MASK-3: 0)")
        if self.subnormals != "ieee":
            out.append("subnormals flushed to zero (the profiles: IEEE gradual underflow)")
        return out

    def mapping(self) -> dict[str, Any]:
        return {"fully_masked_rows": self.fully_masked_rows, "subnormals": self.subnormals}


@dataclass(frozen=True)
class Declaration:
    """A kernel's declaration; `Declaration()` is the spec's default (pasa, everything)."""

    algorithm: Algorithm = field(default_factory=Algorithm)
    supports: Support = field(default_factory=Support)
    conventions: Conventions = field(default_factory=Conventions)
    name: str | None = None
    source: str = "default"  # where it came from: "default", a file, "attribute", an adapter

    @property
    def file(self) -> str | None:
        """The TOML file it was read from (while that file exists), else None."""
        return self.source if Path(self.source).is_file() else None

    def applicable(self, case: Any, profile: str | None = None) -> str | None:
        """None when the case (a pasa_ref.cases.Case) lies in the declared scope, else the
        first reason it does not, in words."""
        s = self.supports
        b, hq, s1, d = case.q.shape
        hkv, s2, dv = case.k.shape[1], case.k.shape[2], case.v.shape[3]
        if profile is not None and s.profiles is not None and profile not in s.profiles:
            return f"profile {profile} not declared"
        if case.mask is not None and not s.mask:
            return "explicit mask"
        if case.causal:
            if s.causal is None:
                return "causal"
            if s.causal == "top-left" and s1 != s2:
                return f"causal with S1 = {s1} != S2 = {s2} (declared top-left alignment)"
        if hkv == 1 and hq > 1 and not s.mqa:
            return "MQA"
        if 1 < hkv < hq and not s.gqa:
            return "GQA"
        if dv != d and not s.dv_ne_d:
            return f"Dv = {dv} != D = {d}"
        checks = (
            (s.head_dim, d, "D"),
            (s.value_dim or s.head_dim, dv, "Dv"),
            (s.seq_q, s1, "S1"),
            (s.seq_k, s2, "S2"),
            (s.batch, b, "B"),
        )
        for allowed, size, name in checks:
            if size not in allowed:
                return f"{name} = {size} outside {allowed.text(name)}"
        return None

    def scope_text(self, profile: str | None = None) -> str:
        """The scope in words, for the certificate's first lines."""
        s, a = self.supports, self.algorithm
        parts = [f"{a.kind} class"]
        if a.kind == "pasa":
            given = [f"{key} {getattr(a, key):g}" for key in ("beta", "block_k", "block_q")
                     if getattr(a, key) is not None]
            default = [key for key in ("beta", "block_k", "block_q") if getattr(a, key) is None]
            if default:
                given.append("the profile's " + "/".join(default))
            scale = "the profile's scale placement" if a.scale is None else f"scale on the {a.scale}"
            parts[0] += f" ({', '.join(given)}, ragged {a.ragged}, {scale})"
        parts += s.phrases() if s != Support() else ["every input the spec defines"]
        parts += self.conventions.exceptions()
        head = f"certified for {profile}, " if profile else ""
        return head + ", ".join(parts)

    def mapping(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SCHEMA,
            "algorithm": self.algorithm.mapping(),
            "supports": self.supports.mapping(),
            "conventions": self.conventions.mapping(),
            "source": self.source,
        }
        if self.name is not None:
            out["name"] = self.name
        return out


def from_mapping(table: Mapping[str, Any], source: str = "mapping") -> Declaration:
    """A Declaration from its TOML/JSON form; raises DeclarationError naming the key."""
    if not isinstance(table, Mapping):
        raise DeclarationError(
            f"declaration ({source}): expected a table, got {type(table).__name__}"
        )
    _unknown(table, ("schema", "name", "algorithm", "supports", "conventions", "source"), "")
    schema = table.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise DeclarationError(f"declaration key 'schema': expected {SCHEMA!r}, got {schema!r}")
    name = table.get("name")
    if name is not None and not isinstance(name, str):
        raise DeclarationError(f"declaration key 'name': expected a string, got {name!r}")
    tables = {}
    for key in ("algorithm", "supports", "conventions"):
        value = table.get(key, {})
        if not isinstance(value, Mapping):
            raise DeclarationError(
                f"declaration key {key!r}: expected a table, got {type(value).__name__}"
            )
        tables[key] = value
    return Declaration(
        algorithm=Algorithm.parse(tables["algorithm"]),
        supports=Support.parse(tables["supports"]),
        conventions=Conventions.parse(tables["conventions"]),
        name=name,
        source=source,
    )


#: a declaration file larger than this is refused before it is read
MAX_FILE_BYTES = 1 << 20


def load(path: str | Path) -> Declaration:
    """A Declaration from a TOML file, or a JSON file (name ending in .json: the form a
    certificate records); DeclarationError names the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DeclarationError(f"argument 'declare': file {str(path)!r} not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise DeclarationError(
            f"argument 'declare': expected a declaration file of at most {MAX_FILE_BYTES} "
            f"bytes, got {size} bytes in {path}"
        )
    as_json = path.suffix.lower() == ".json"
    try:
        text = path.read_text(encoding="utf-8")
        table = json.loads(text) if as_json else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as error:
        kind = "JSON" if as_json else "TOML"
        raise DeclarationError(f"declaration {path}: not valid {kind} ({error})") from None
    try:
        return from_mapping(table, source=str(path))
    except DeclarationError as error:
        raise DeclarationError(f"declaration {path}: {error}") from None


def of(function: Any) -> Declaration | None:
    """The declaration a callable carries as `pasa_declaration` (a mapping or a
    Declaration), None when it carries none."""
    carried = getattr(function, ATTRIBUTE, None)
    if carried is None or isinstance(carried, Declaration):
        return carried
    return from_mapping(carried, source="attribute")


def resolve(given: str | Path | Declaration | Mapping[str, Any] | None,
            carried: Any = None) -> Declaration:
    """The declaration a certification uses (PASA-CERT-7): the one given (a TOML file, a
    mapping or a Declaration: `--declare FILE`), else the backend's own (`carried`: the
    callable, whose `pasa_declaration` is read, or that attribute's value as a mapping or
    Declaration, e.g. sent back by an isolated child), else the default Declaration()."""
    if isinstance(given, Declaration):
        return given
    if isinstance(given, Mapping):
        return from_mapping(given)
    if given is not None:
        return load(given)
    if isinstance(carried, Declaration):
        return carried
    if isinstance(carried, Mapping):
        return from_mapping(carried, source="attribute")
    return of(carried) or Declaration()
