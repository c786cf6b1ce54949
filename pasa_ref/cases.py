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
showed). An output file for a case is an .npz with one member `out` (B x Hq x S1 x Dv; bf16 as
uint16 bit patterns, float16/float32/float64 as themselves).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

__all__ = ["DTYPES", "Case", "CaseFileError", "load_output", "save_output"]

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
        """Read a case file (and its .json metadata when present)."""
        npz = Path(path).with_suffix(".npz")
        if not npz.is_file():
            raise CaseFileError(f"case file {str(npz)!r}: not found")
        try:
            with np.load(npz, allow_pickle=False) as data:
                members = {name: data[name] for name in data.files}
        except (ValueError, OSError) as error:
            raise CaseFileError(f"case file {str(npz)!r}: not a readable npz ({error})") from None
        missing = [m for m in ("q", "k", "v", "dtype", "causal", "scale") if m not in members]
        if missing:
            raise CaseFileError(f"case file {str(npz)!r}: missing member(s) {missing}")
        name = str(members["dtype"])
        if name not in DTYPES:
            raise CaseFileError(
                f"case file {str(npz)!r}, member 'dtype': expected one of {list(DTYPES)}, got {name!r}"
            )
        arrays = {
            m: _decode(members[m], DTYPES[name], f"case file {str(npz)!r}, member {m!r}")
            for m in "qkv"
        }
        scale = float(members["scale"])
        meta_path = npz.with_suffix(".json")
        metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls(
            **arrays,
            causal=bool(members["causal"]),
            mask=members.get("mask"),
            scale=None if math.isnan(scale) else scale,
            label=str(metadata.get("label", "")),
            metadata=metadata,
        )


def save_output(path: str | Path, out: np.ndarray) -> Path:
    """Write a kernel's output for one case as PATH.npz with the member `out`."""
    npz = Path(path).with_suffix(".npz")
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, out=_encode(np.asarray(out)))
    return npz


def load_output(path: str | Path, dtype: np.dtype) -> np.ndarray:
    """Read an output file written for a case whose output dtype is `dtype`."""
    npz = Path(path).with_suffix(".npz")
    if not npz.is_file():
        raise CaseFileError(f"output file {str(npz)!r}: not found")
    with np.load(npz, allow_pickle=False) as data:
        if "out" not in data.files:
            raise CaseFileError(f"output file {str(npz)!r}: missing member 'out'")
        return _decode(data["out"], np.dtype(dtype), f"output file {str(npz)!r}, member 'out'")
