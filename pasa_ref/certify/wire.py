"""What an isolated backend's child process may send to the certifier, and how the certifier
reads it (specs/certification.md, PASA-CERT-3): plain bytes only, never a pickle.

Every message from the child is one `Connection.send_bytes` frame:

    header   a JSON object (UTF-8, at most HEADER_LIMIT bytes), one of
               {"kind": "ready", "identity": {...}}             the backend is loaded
               {"kind": "load-error", "message": "..."}         it could not be resolved
               {"kind": "result", "seconds": s, "dtype": "float16", "shape": [B, H, S, D],
                "nbytes": n}                                     followed by a data frame
               {"kind": "failure", "failure": "exception", "message": "...", "seconds": s}
    data     the result's n bytes, C order, native byte order

The parent reads a frame with a length limit given before the frame is read (the header's
limit, or the result's declared nbytes), checks the dtype against OUTPUT_DTYPES, the shape
(rank <= MAX_RANK, non-negative integers), nbytes = prod(shape) * itemsize and nbytes <= the
call's bound before it allocates, and copies the bytes into an array it owns. Anything else
is a `WireError`: the call fails as "undecodable" and the child is replaced.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

import ml_dtypes
import numpy as np

__all__ = [
    "HEADER_LIMIT",
    "MAX_RANK",
    "OUTPUT_DTYPES",
    "WireError",
    "array_frames",
    "plain_json",
    "read_array",
    "read_header",
    "send_header",
    "short",
]

#: the largest header frame (bytes); messages are cut to MESSAGE_LIMIT characters before
HEADER_LIMIT = 1 << 20
MESSAGE_LIMIT = 4000
MAX_RANK = 8
#: the dtypes a result may have on the wire (by numpy name); others are "not-an-array"
OUTPUT_DTYPES: dict[str, np.dtype] = {
    np.dtype(t).name: np.dtype(t)
    for t in (
        np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
        np.uint64, np.float16, ml_dtypes.bfloat16, np.float32, np.float64, np.complex64,
        np.complex128,
    )
}


class WireError(ValueError):
    """A message from the child that breaks the format above."""


def plain_json(value: Any, where: str) -> Any:
    """`value` as plain JSON data (dict with str keys, list, str, finite numbers, bool,
    None), checked by a round trip; raises WireError naming `where`."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as error:
        raise WireError(f"{where}: not plain JSON data ({error})") from None
    return json.loads(text)


def send_header(conn: Connection, header: Mapping[str, Any]) -> None:
    conn.send_bytes(json.dumps(header, allow_nan=False).encode("utf-8"))


def short(message: str) -> str:
    """A message cut to MESSAGE_LIMIT characters."""
    if len(message) <= MESSAGE_LIMIT:
        return message
    return message[:MESSAGE_LIMIT] + f"... ({len(message) - MESSAGE_LIMIT} characters cut)"


def array_frames(array: np.ndarray, seconds: float) -> tuple[dict[str, Any], bytes]:
    """The header and data frames of a result (C order, native byte order)."""
    contiguous = np.ascontiguousarray(array)
    header = {
        "kind": "result",
        "seconds": float(seconds),
        "dtype": contiguous.dtype.name,
        "shape": [int(n) for n in contiguous.shape],
        "nbytes": int(contiguous.nbytes),
    }
    return header, contiguous.tobytes()


def read_header(conn: Connection) -> dict[str, Any]:
    """One header frame, parsed and checked for its kind and field types."""
    try:
        frame = conn.recv_bytes(HEADER_LIMIT)
    except OSError as error:  # a frame longer than the limit ("bad message length")
        raise WireError(f"a header frame longer than {HEADER_LIMIT} bytes ({error})") from None
    try:
        header = json.loads(frame.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"a header frame that is not JSON ({error})") from None
    if not isinstance(header, dict) or header.get("kind") not in _FIELDS:
        raise WireError(f"a header frame of unknown kind: {str(header)[:200]!r}")
    for key, kinds in _FIELDS[header["kind"]].items():
        value = header.get(key)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise WireError(
                f"a {header['kind']!r} header whose field {key!r} is "
                f"{type(value).__name__}, expected {[k.__name__ for k in kinds]}"
            )
    return header


_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    "ready": {"identity": (dict,)},
    "load-error": {"message": (str,)},
    "result": {"seconds": (int, float), "dtype": (str,), "shape": (list,), "nbytes": (int,)},
    "failure": {"failure": (str,), "message": (str,), "seconds": (int, float)},
}


def read_array(conn: Connection, header: Mapping[str, Any], bound: int) -> np.ndarray:
    """The data frame announced by a "result" header, as an array the caller owns."""
    dtype = OUTPUT_DTYPES.get(header["dtype"])
    if dtype is None:
        raise WireError(f"a result of dtype {header['dtype'][:40]!r}, not one of {list(OUTPUT_DTYPES)}")
    shape = header["shape"]
    if len(shape) > MAX_RANK or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise WireError(f"a result shape {str(shape)[:200]} (expected <= {MAX_RANK} sizes >= 0)")
    nbytes = math.prod(shape) * dtype.itemsize
    if header["nbytes"] != nbytes:
        raise WireError(f"a result of shape {shape} and dtype {dtype} announcing "
                        f"{header['nbytes']} bytes instead of {nbytes}")
    if nbytes > bound:
        raise WireError(f"a result of {nbytes} bytes, above this call's bound of {bound} bytes")
    try:
        frame = conn.recv_bytes(max(nbytes, 1))
    except OSError as error:
        raise WireError(f"a data frame longer than the announced {nbytes} bytes ({error})") from None
    if len(frame) != nbytes:
        raise WireError(f"a data frame of {len(frame)} bytes instead of the announced {nbytes}")
    return np.frombuffer(frame, dtype=dtype).reshape(shape).copy()
