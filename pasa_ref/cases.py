"""Attention cases and their files: one problem (q, k, v, mask, causal, scale) that hunting
finds, certification generates and replays, and a kernel in any language can read
(spec PASA-CASE-1..3).

A case file is an uncompressed .npz (numpy's zip of .npy arrays; read it with
allow_pickle=False) with these members:

    q, k, v     BNSD arrays; float16/float32/float64 as themselves, bfloat16 as uint16 bit
                patterns (see `dtype`)
    dtype       0-d unicode array: "float16", "bfloat16", "float32" or "float64"
    causal      0-d bool array
    scale       0-d float64 array; NaN means the default 1/sqrt(D)
    mask        optional bool array broadcastable to B x Hq x S1 x S2, True = visible

and beside it, with the same stem, a .json file of metadata (what made the case, what it
showed; specs/case.schema.json). An output file for a case is an .npz with one member `out`
(B x Hq x S1 x Dv; bf16 as uint16 bit patterns, float16/float32/float64 as themselves).

Files are untrusted (PASA-CASE-4): `read_members` checks the zip's member names, that they
are stored uncompressed, each .npy header's dtype and rank, and that the data has exactly the
declared size within `size_limit()`, all before reading any data; `read_json` bounds and
schema-checks sidecars and manifests. Every problem is a one-line CaseFileError naming the
file (and member or JSON path).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from pasa_ref import schemas
from pasa_ref.inputs import InputError, validate

__all__ = [
    "DTYPES",
    "Case",
    "CaseFileError",
    "load_output",
    "read_json",
    "read_members",
    "read_metadata",
    "save_output",
    "size_limit",
]

DTYPES = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


class CaseFileError(ValueError):
    """A case or output file is malformed; the message names the file and the member."""


def _dtype_name(dtype: np.dtype) -> str:
    for name, known in DTYPES.items():
        if known == dtype:
            return name
    raise CaseFileError(f"dtype: expected one of {list(DTYPES)}, got {dtype}")


def _encode(x: np.ndarray) -> np.ndarray:
    """bfloat16 -> uint16 bit patterns (npz cannot name ml_dtypes types); others unchanged."""
    return x.view(np.uint16) if x.dtype == DTYPES["bfloat16"] else x


def _decode(x: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    if dtype == DTYPES["bfloat16"]:
        if x.dtype != np.uint16:
            raise CaseFileError(f"{where}: expected uint16 bit patterns of bfloat16, got {x.dtype}")
        return x.view(dtype)
    if x.dtype != dtype:
        raise CaseFileError(f"{where}: expected dtype {dtype}, got {x.dtype}")
    return x


@dataclass(frozen=True)
class Case:
    """One attention problem. q: B x Hq x S1 x D, k: B x Hkv x S2 x D, v: B x Hkv x S2 x Dv,
    one dtype; mask broadcastable to B x Hq x S1 x S2 (True = visible); scale None means
    1/sqrt(D)."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    causal: bool = False
    mask: np.ndarray | None = None
    scale: float | None = None
    label: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def dtype(self) -> np.dtype:
        return self.q.dtype

    def shapes(self) -> dict[str, list[int]]:
        shapes = {name: list(getattr(self, name).shape) for name in "qkv"}
        if self.mask is not None:
            shapes["mask"] = list(self.mask.shape)
        return shapes

    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments a kernel or the oracle takes: scale, causal, mask."""
        return {"scale": self.scale, "causal": self.causal, "mask": self.mask}

    def save(self, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
        """Write PATH.npz and PATH.json (the suffix of `path` is replaced); returns the .npz."""
        npz = Path(path).with_suffix(".npz")
        npz.parent.mkdir(parents=True, exist_ok=True)
        members = {
            "q": _encode(self.q),
            "k": _encode(self.k),
            "v": _encode(self.v),
            "dtype": np.array(_dtype_name(self.dtype)),
            "causal": np.array(bool(self.causal)),
            "scale": np.array(math.nan if self.scale is None else float(self.scale)),
        }
        if self.mask is not None:
            members["mask"] = np.asarray(self.mask, dtype=bool)
        np.savez(npz, **members)
        meta = {
            "label": self.label,
            "dtype": _dtype_name(self.dtype),
            "causal": self.causal,
            "scale": self.scale,
            "shapes": self.shapes(),
            **self.metadata,
            **(metadata or {}),
        }
        npz.with_suffix(".json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
        return npz

    @classmethod
    def load(cls, path: str | Path) -> Case:
        """Read a case file (and its .json metadata when present), defensively: see
        `read_members` and `read_metadata`; raises CaseFileError naming the file."""
        npz = _npz_path(path, "case file")
        where = f"case file {str(npz)!r}"
        members = read_members(npz, CASE_MEMBERS, "case file")
        missing = [m for m in ("q", "k", "v", "dtype", "causal", "scale") if m not in members]
        if missing:
            raise CaseFileError(f"{where}: missing member(s) {missing}")
        name = str(members["dtype"])
        if name not in DTYPES:
            raise CaseFileError(
                f"{where}, member 'dtype': expected one of {list(DTYPES)}, got {name[:40]!r}"
            )
        arrays = {m: _decode(members[m], DTYPES[name], f"{where}, member {m!r}") for m in "qkv"}
        scale = float(members["scale"])
        metadata = read_metadata(npz.with_suffix(".json"))
        case = cls(
            **arrays,
            causal=bool(members["causal"]),
            mask=members.get("mask"),
            scale=None if math.isnan(scale) else scale,
            label=str(metadata.get("label", "")),
            metadata=metadata,
        )
        try:
            validate(case.q, case.k, case.v, scale=case.scale, causal=case.causal, mask=case.mask)
        except InputError as error:
            raise CaseFileError(f"{where}: {error}") from None
        return case


@dataclass(frozen=True)
class Member:
    """What a member NAME.npy of a case or output file may be: its .npy dtype strings
    (little-endian) and its ranks."""

    dtypes: tuple[str, ...]
    ranks: tuple[int, ...]


_FLOATS = ("<f2", "<f4", "<f8", "<u2")
CASE_MEMBERS = {
    "q": Member(_FLOATS, (4,)),
    "k": Member(_FLOATS, (4,)),
    "v": Member(_FLOATS, (4,)),
    "dtype": Member(tuple(f"<U{n}" for n in range(1, 17)), (0,)),
    "causal": Member(("|b1",), (0,)),
    "scale": Member(("<f8",), (0,)),
    "mask": Member(("|b1",), (0, 1, 2, 3, 4)),
}
OUTPUT_MEMBERS = {"out": Member(_FLOATS, tuple(range(9)))}
#: the environment variable that sets the size limit, and the limit's default (bytes)
SIZE_LIMIT_VARIABLE = "PASA_MAX_FILE_BYTES"
DEFAULT_SIZE_LIMIT = 1 << 32
#: the largest .json sidecar or manifest read (bytes)
JSON_LIMIT = 1 << 24


def size_limit() -> int:
    """The most bytes a case or output file may hold, and may make pasa-ref allocate:
    $PASA_MAX_FILE_BYTES, else 4 GiB (PASA-CASE-4)."""
    text = os.environ.get(SIZE_LIMIT_VARIABLE)
    if text is None:
        return DEFAULT_SIZE_LIMIT
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:
        raise CaseFileError(
            f"environment variable {SIZE_LIMIT_VARIABLE}: expected a number of bytes >= 1, "
            f"got {text!r}"
        )
    return limit


def _npz_path(path: str | Path, what: str) -> Path:
    """PATH as the .npz it names: a .npz suffix, or none (then .npz is added)."""
    given = Path(path)
    if given.suffix not in ("", ".npz", ".json"):
        raise CaseFileError(
            f"{what} {str(given)!r}: expected a .npz file (or its stem), got suffix {given.suffix!r}"
        )
    npz = given.with_suffix(".npz")
    if not npz.is_file():
        raise CaseFileError(f"{what} {str(npz)!r}: not found")
    return npz


def read_members(npz: Path, allowed: dict[str, Member], what: str) -> dict[str, np.ndarray]:
    """The members of an .npz, read defensively (PASA-CASE-4): the file and the sum of the
    members' declared sizes within `size_limit()`, only members NAME.npy with NAME in
    `allowed`, each once, stored (not compressed, not encrypted), its .npy header's dtype
    and rank among the allowed ones and its data exactly the declared size, all checked
    before any data is read; raises CaseFileError("WHAT 'PATH'[, member 'NAME']: problem")."""
    where = f"{what} {str(npz)!r}"
    limit = size_limit()
    size = npz.stat().st_size
    if size > limit:
        raise CaseFileError(f"{where}: {size} bytes, above the limit of {limit} bytes "
                            f"(${SIZE_LIMIT_VARIABLE})")
    try:
        with zipfile.ZipFile(npz) as archive:
            headers = _headers(archive, allowed, where, limit)
            return {name: _read_data(archive, header, f"{where}, member {name!r}")
                    for name, header in headers.items()}
    except CaseFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError,
            NotImplementedError, RuntimeError) as error:
        raise CaseFileError(f"{where}: not a readable npz ({type(error).__name__}: "
                            f"{str(error)[:200]})") from None


@dataclass(frozen=True)
class _Header:
    info: zipfile.ZipInfo
    offset: int
    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype


def _headers(archive: zipfile.ZipFile, allowed: dict[str, Member], where: str,
             limit: int) -> dict[str, _Header]:
    infos = archive.infolist()
    if len(infos) > len(allowed):
        raise CaseFileError(f"{where}: {len(infos)} members, expected at most {len(allowed)} "
                            f"({', '.join(allowed)})")
    headers: dict[str, _Header] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if not info.filename.endswith(".npy") or name not in allowed:
            raise CaseFileError(f"{where}: unexpected member {info.filename[:80]!r}, expected "
                                f"NAME.npy for NAME in {list(allowed)}")
        if name in headers:
            raise CaseFileError(f"{where}: member {info.filename!r} appears twice")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            raise CaseFileError(
                f"{where}, member {name!r}: compressed or encrypted; case and output files "
                "are stored uncompressed (numpy.savez, not savez_compressed)"
            )
        headers[name] = _header(archive, info, allowed[name], f"{where}, member {name!r}")
    declared = sum(h.info.file_size for h in headers.values())
    if declared > limit:
        raise CaseFileError(f"{where}: members of {declared} bytes, above the limit of {limit} "
                            f"bytes (${SIZE_LIMIT_VARIABLE})")
    return headers


def _header(archive: zipfile.ZipFile, info: zipfile.ZipInfo, member: Member,
            where: str) -> _Header:
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        readers = {(1, 0): np.lib.format.read_array_header_1_0,
                   (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise CaseFileError(f"{where}: .npy format version {version} is not supported")
        shape, fortran, dtype = readers[version](stream)
        offset = stream.tell()
    if dtype.str not in member.dtypes or dtype.hasobject:
        raise CaseFileError(f"{where}: expected dtype {' or '.join(member.dtypes)}, got "
                            f"{dtype.str[:40]}")
    if len(shape) not in member.ranks:
        raise CaseFileError(f"{where}: expected rank {' or '.join(map(str, member.ranks))}, "
                            f"got rank {len(shape)} (shape {shape})")
    nbytes = math.prod(shape) * dtype.itemsize
    if info.file_size - offset != nbytes:
        raise CaseFileError(
            f"{where}: {info.file_size - offset} data bytes, expected {nbytes} for shape "
            f"{shape} of {dtype.str} (truncated or padded)"
        )
    return _Header(info, offset, tuple(shape), bool(fortran), dtype)


def _read_data(archive: zipfile.ZipFile, header: _Header, where: str) -> np.ndarray:
    """The member's data in one allocation of exactly its declared size."""
    flat = np.empty(math.prod(header.shape), dtype=header.dtype)
    view = memoryview(flat.view(np.uint8))
    with archive.open(header.info) as stream:
        stream.seek(header.offset)
        filled = 0
        while filled < len(view):
            count = stream.readinto(view[filled:])
            if not count:
                raise CaseFileError(f"{where}: truncated after {filled} of {len(view)} bytes")
            filled += count
    return flat.reshape(header.shape, order="F" if header.fortran else "C")


def read_json(path: Path, schema: str, what: str) -> dict[str, Any]:
    """A JSON file of at most JSON_LIMIT bytes, parsed and checked against
    specs/SCHEMA.schema.json; raises CaseFileError("WHAT 'PATH': problem")."""
    where = f"{what} {str(path)!r}"
    size = path.stat().st_size
    if size > JSON_LIMIT:
        raise CaseFileError(f"{where}: {size} bytes, above the limit of {JSON_LIMIT} bytes")
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CaseFileError(f"{where}: not valid JSON ({str(error)[:200]})") from None
    try:
        schemas.check(document, schema, where)
    except schemas.SchemaError as error:
        raise CaseFileError(str(error)) from None
    return document


def read_metadata(path: Path) -> dict[str, Any]:
    """A case file's .json sidecar (empty when there is none), checked against
    specs/case.schema.json."""
    return read_json(path, "case", "case metadata") if path.is_file() else {}


def save_output(path: str | Path, out: np.ndarray) -> Path:
    """Write a kernel's output for one case as PATH.npz with the member `out`."""
    npz = Path(path).with_suffix(".npz")
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, out=_encode(np.asarray(out)))
    return npz


def load_output(path: str | Path) -> np.ndarray:
    """Read an output file (PASA-CASE-2) in the dtype it holds: float16, float32 or float64
    as themselves, '<u2' as bfloat16 bit patterns. Its shape and dtype are judged by the
    certifier (a wrong one is measured and fails PASA-CERT-10), not here."""
    npz = _npz_path(path, "output file")
    members = read_members(npz, OUTPUT_MEMBERS, "output file")
    if "out" not in members:
        raise CaseFileError(f"output file {str(npz)!r}: missing member 'out'")
    out = members["out"]
    return out.view(DTYPES["bfloat16"]) if out.dtype == np.uint16 else out
