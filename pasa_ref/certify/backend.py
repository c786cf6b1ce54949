"""Backends under test: naming, identity, and calls that cannot take the run down or change a
verdict (specs/certification.md, PASA-CERT-1..3 and PASA-CERT-50..53). The one loader of
`pasa certify`, `pasa hunt` and `pasa replay`.

A backend is a callable fn(q, k, v, *, scale, causal, mask) named

    naive | flash | pasa              a bundled reference kernel (pasa_ref.kernels.X:attention)
    package.module:function           importable Python (a dotted path may follow the colon:
                                      `pkg.mod:Class.method`)
    PREFIX:...                        an adapter, PREFIX in ADAPTER_PREFIXES (e.g. torch:flash,
                                      torch-fn:my_pkg.mod:attn), resolved by
                                      pasa_ref.adapters.load(name)

It receives BNSD numpy arrays in the profile's input dtype (fresh copies, so writing into them
is harmless), scale as a binary64 float (never None), causal as a bool and mask as None or a
boolean array broadcastable to B x Hq x S1 x S2 (True = visible). A backend that declares a
keyword parameter `profile` also receives the profile's name. It returns anything
`numpy.from_dlpack` or `numpy.asarray` accepts; the result is copied at once into an array
the certifier owns (a backend cannot rewrite an output it returned).

`Caller` makes the calls, each with a deadline:

    in-process (default)   in a daemon thread. Past the deadline the call is a timeout, the
                           thread is sent an asynchronous exception (which ends a Python-level
                           loop; C code runs on) and abandoned, and every later call runs
                           isolated: one hung call costs its deadline, not the run.
    isolated               in a child process ("spawn"); the parent never imports the backend:
                           the child loads it and sends its identity as JSON, then results as
                           raw bytes (pasa_ref.certify.wire). After any failed call (exception,
                           timeout, crash, undecodable result) the child is killed and a fresh
                           one is started at once, in the background.

A child that dies or hangs while importing the backend makes the backend unusable: every
call fails at once with that message (`Caller.unusable`), and the runner stops.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import importlib.metadata
import inspect
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import numpy as np

from pasa_ref.certify import wire

__all__ = [
    "ADAPTER_PREFIXES",
    "BUNDLED",
    "DEFAULT",
    "FAILURES",
    "STARTUP_TIMEOUT",
    "Backend",
    "BackendError",
    "Call",
    "Caller",
    "Identity",
    "Request",
    "as_numpy",
    "importable_from_cwd",
    "load",
    "output_bound",
]

#: the bundled reference kernel, certified when no backend is named (PASA-CERT-2)
DEFAULT = "pasa_ref.kernels.pasa:attention"
#: short names of the bundled reference kernels
BUNDLED = {name: f"pasa_ref.kernels.{name}:attention" for name in ("naive", "flash", "pasa")}
#: name prefixes resolved by pasa_ref.adapters.load (the one list; PASA-CERT-2)
ADAPTER_PREFIXES = ("torch", "torch-fn", "jax", "dlpack")
#: kinds of failed calls (PASA-CERT-3); case files add missing-output and unreadable-output
FAILURES = ("exception", "timeout", "crash", "not-an-array", "undecodable")
#: seconds a child process may take to start and import the backend
STARTUP_TIMEOUT = 120.0


class BackendError(ValueError):
    """The backend name is malformed or does not resolve to a callable."""


def importable_from_cwd() -> None:
    """Put the current directory first on sys.path, as `python -m` does (PASA-CERT-2): the
    rule of every command that loads a backend (certify, hunt, replay)."""
    cwd = os.getcwd()
    if sys.path[:1] != [cwd]:
        sys.path.insert(0, cwd)


@dataclass(frozen=True)
class Identity:
    """What the certificate records about a backend (PASA-CERT-21): plain data, computed
    where the backend is loaded (in the child when isolated). `declaration` is the mapping
    the callable carries as `pasa_declaration`, or None."""

    name: str
    version: str | None = None
    file: str | None = None
    sha256: str | None = None
    receives_profile: bool = False
    declaration: dict[str, Any] | None = None
    declaration_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        document = {
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "receives_profile": self.receives_profile,
            "declaration": self.declaration,
        }
        if self.declaration_error is not None:
            document["declaration_error"] = self.declaration_error
        return document

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Identity:
        """An identity sent by a child, checked field by field; raises wire.WireError."""
        kinds = {"name": (str,), "version": (str, type(None)), "file": (str, type(None)),
                 "sha256": (str, type(None)), "receives_profile": (bool,),
                 "declaration": (dict, type(None)), "declaration_error": (str, type(None))}
        unknown = sorted(set(document) - set(kinds))
        if unknown:
            raise wire.WireError(f"an identity with unknown fields {unknown[:5]}")
        for key, types in kinds.items():
            if not isinstance(document.get(key), types):
                raise wire.WireError(f"an identity whose {key!r} is {type(document.get(key)).__name__}")
        return cls(**document)


@dataclass(frozen=True)
class Backend:
    """A backend loaded in this process: the callable and its identity."""

    function: Callable[..., Any]
    identity: Identity

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def takes_profile(self) -> bool:
        return self.identity.receives_profile


def load(name: str) -> Backend:
    """Resolve a backend name (module docstring) in this process; raises BackendError naming
    what is wrong. Anything the import raises, SystemExit included, is such an error."""
    if not isinstance(name, str):
        raise BackendError(f"argument 'backend': expected a name, got {type(name).__name__}")
    name = BUNDLED.get(name, name)
    prefix, colon, rest = name.partition(":")
    if prefix in ADAPTER_PREFIXES:
        return _from_adapter(name)
    if not colon or not prefix or not rest:
        raise BackendError(
            f"argument 'backend': expected 'package.module:function', a bundled kernel "
            f"({', '.join(BUNDLED)}) or an adapter PREFIX:... (PREFIX one of "
            f"{', '.join(ADAPTER_PREFIXES)}), got {name!r}"
        )
    module = _import(prefix, name)
    function: Any = module
    for part in rest.split("."):
        if not hasattr(function, part):
            raise BackendError(f"argument 'backend': module {prefix!r} has no attribute {rest!r}")
        function = getattr(function, part)
    return Backend(function, _identity(name, function, prefix, getattr(module, "__file__", None)))


def _import(module_name: str, name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - any import-time failure
        raise BackendError(
            f"argument 'backend': cannot import module {module_name!r} of {name!r} "
            f"({type(error).__name__}: {wire.short(str(error))})"
        ) from None


def _from_adapter(name: str) -> Backend:
    try:
        adapters = importlib.import_module("pasa_ref.adapters")
    except ModuleNotFoundError as error:
        if error.name != "pasa_ref.adapters":
            raise BackendError(f"argument 'backend': the adapters of {name!r} failed to import "
                               f"({error})") from None
        raise BackendError(
            f"argument 'backend': {name!r} names an adapter, and adapters need the optional "
            f"extra of their framework (pip install 'pasa-ref[torch]' or 'pasa-ref[jax]'); "
            "pasa_ref.adapters is not installed"
        ) from None
    try:
        function = adapters.load(name)
    except BackendError:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the adapter's own errors
        raise BackendError(f"argument 'backend': adapter {name!r}: {type(error).__name__}: "
                           f"{wire.short(str(error))}") from None
    module = inspect.getmodule(function)
    module_name = getattr(module, "__name__", "pasa_ref.adapters")
    return Backend(function, _identity(name, function, module_name,
                                       getattr(module, "__file__", None)))


def _identity(name: str, function: Any, module_name: str, file: str | None) -> Identity:
    if not callable(function):
        raise BackendError(
            f"argument 'backend': expected {name!r} to be callable, got {type(function).__name__}"
        )
    declaration, error = _declaration(function)
    return Identity(
        name=name,
        # an adapter names the version of the framework it wraps (e.g. "torch 2.11.0")
        version=getattr(function, "pasa_version", None) or _version(module_name),
        file=file,
        sha256=_file_sha256(file),
        receives_profile=_takes_profile(function),
        declaration=declaration,
        declaration_error=error,
    )


def _declaration(function: Any) -> tuple[dict[str, Any] | None, str | None]:
    """The `pasa_declaration` mapping as plain JSON data, or (None, why it is not)."""
    carried = getattr(function, "pasa_declaration", None)
    if carried is None:
        return None, None
    if not isinstance(carried, Mapping):
        return None, f"pasa_declaration is a {type(carried).__name__}, expected a mapping"
    try:
        return wire.plain_json(dict(carried), "pasa_declaration"), None
    except wire.WireError as error:
        return None, str(error)


def _version(module_name: str) -> str | None:
    """The version of the distribution that provides the module's top-level package, else
    the top-level package's __version__, else None."""
    top = module_name.split(".")[0]
    for distribution in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    version = getattr(sys.modules.get(top), "__version__", None)
    return None if version is None else str(version)


def _file_sha256(file: str | None) -> str | None:
    if file is None or not Path(file).is_file():
        return None
    return hashlib.sha256(Path(file).read_bytes()).hexdigest()


def _takes_profile(function: Callable[..., Any]) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get("profile")
    return parameter is not None and parameter.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


def as_numpy(x: Any) -> np.ndarray:
    """The backend's result as a numpy array: DLPack when offered, else numpy.asarray."""
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "__dlpack__"):
        try:
            return np.from_dlpack(x)
        except (TypeError, ValueError, RuntimeError, BufferError):
            pass  # e.g. a dtype DLPack cannot carry into numpy: try the array protocol
    return np.asarray(x)


def owned(x: Any) -> np.ndarray:
    """A copy of the result that the certifier owns: a plain ndarray (no subclass), native
    byte order, of a dtype in wire.OUTPUT_DTYPES; raises TypeError for other dtypes."""
    array = as_numpy(x)
    dtype = array.dtype.newbyteorder("=")
    if dtype.name not in wire.OUTPUT_DTYPES or dtype != wire.OUTPUT_DTYPES[dtype.name]:
        raise TypeError(f"dtype {array.dtype} is not a numeric array dtype")
    return np.array(array, dtype=dtype, copy=True, subok=False, order="C")


@dataclass(frozen=True)
class Call:
    """The outcome of one call: `output`, or `failure` (one of FAILURES) and `message`.
    `seconds` is the backend's own time (the wait, for a timeout); `fresh_child` says the
    call was the first one of a newly started child process."""

    output: np.ndarray | None
    failure: str | None
    message: str
    seconds: float
    fresh_child: bool = False

    @property
    def ok(self) -> bool:
        return self.failure is None


@dataclass(frozen=True)
class Request:
    """The arguments of one call, exactly as the backend receives them."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scale: float
    causal: bool
    mask: np.ndarray | None

    def arguments(self, profile: str | None) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
        """Fresh copies of the arrays (a backend may write into its inputs) and the keywords."""
        kwargs: dict[str, Any] = {
            "scale": float(self.scale),
            "causal": bool(self.causal),
            "mask": None if self.mask is None else self.mask.copy(),
        }
        if profile is not None:
            kwargs["profile"] = profile
        return (self.q.copy(), self.k.copy(), self.v.copy()), kwargs


def output_bound(request: Request) -> int:
    """The most bytes a child may send as one result: 4 x the expected B x Hq x S1 x Dv
    elements in binary64, + 1 MiB (a wrong shape or dtype is still measured within it)."""
    b, hq, s1, _ = request.q.shape
    return 4 * 8 * b * hq * s1 * request.v.shape[-1] + (1 << 20)


def _invoke(function: Callable[..., Any], request: Request, profile: str | None) -> Call:
    """Call and copy, turning any exception into a failed Call (runs in the worker)."""
    args, kwargs = request.arguments(profile)
    start = time.perf_counter()
    try:
        result = function(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001 - a hostile backend may raise anything
        return Call(None, "exception", _describe(error), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    try:
        return Call(owned(result), None, "", seconds)
    except BaseException as error:  # noqa: BLE001 - whatever the result's conversion raises
        return Call(
            None,
            "not-an-array",
            f"cannot convert the result of type {type(result).__name__} to a numeric numpy "
            f"array ({_describe(error)})",
            seconds,
        )


def _describe(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return wire.short(f"{type(error).__name__}: {error}{where}")


class _Abandoned(BaseException):
    """Raised asynchronously in a timed-out worker thread, to end a Python-level loop."""


def _interrupt(thread: threading.Thread) -> None:
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_Abandoned)
        )


class Caller:
    """Calls one backend for one profile with a per-call deadline (module docstring). Use as
    a context manager: closing stops the child. `identity` is the backend's Identity."""

    def __init__(
        self,
        backend: str | Backend,
        profile: str,
        *,
        timeout: float,
        isolate: bool,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        for argument, value in (("timeout", timeout), ("startup_timeout", startup_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(
                    f"argument {argument!r}: expected a number of seconds > 0, got {value!r}"
                )
        self.name = backend if isinstance(backend, str) else backend.name
        self.profile = profile
        self.timeout = float(timeout)
        self.startup_timeout = float(startup_timeout)
        self.isolate = isolate
        self.unusable: str | None = None
        self._failure = ("crash", "")
        self._backend: Backend | None = None
        self._child: _Child | None = None
        if isolate:
            self._child = _Child(self.name)
            self.identity = self._first_identity()
        else:
            self._backend = backend if isinstance(backend, Backend) else load(backend)
            self.identity = self._backend.identity

    def _first_identity(self) -> Identity:
        """The first child's identity; a child that cannot even say why it failed (it died
        or hung) makes the backend unusable, a load error is a BackendError."""
        assert self._child is not None
        ready = self._child.ready(self.startup_timeout)
        if isinstance(ready, Identity):
            return ready
        kind, message = ready
        self._discard()
        if kind == "load-error":
            raise BackendError(message)
        self._mark_unusable(kind, message)
        return Identity(name=self.name)

    def _mark_unusable(self, kind: str, message: str) -> None:
        self._failure = (kind, message)
        self.unusable = f"{message}; no call of this backend can be made, the run stops"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._discard()

    def _discard(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None

    def __call__(self, request: Request, profile: str | None = None) -> Call:
        """One call; `profile` (default: the Caller's) is passed when the backend takes it."""
        if self.unusable is not None:
            return Call(None, self._failure[0], self.unusable, 0.0)
        if not self.isolate:
            return self._in_thread(request, profile or self.profile)
        return self._in_child(request, profile or self.profile)

    def _in_child(self, request: Request, profile: str) -> Call:
        if self._child is None:
            self._child = _Child(self.name)
        child = self._child
        fresh = child.calls == 0
        if fresh and child.identity is None:
            problem = self._replacement_problem(child)
            if problem is not None:
                self._discard()
                self._mark_unusable(*problem)
                return Call(None, problem[0], str(self.unusable), 0.0, fresh)
        call = child.call(request, profile, self.timeout, fresh)
        if not call.ok:  # any failure may leave the process poisoned: start a fresh child now
            self._discard()
            self._child = _Child(self.name)
        return call

    def _replacement_problem(self, child: _Child) -> tuple[str, str] | None:
        """Why a replacement child cannot serve, as (failure kind, message), or None."""
        ready = child.ready(self.startup_timeout)
        if isinstance(ready, Identity):
            if ready == self.identity:
                return None
            return "crash", f"a fresh child reports the identity {ready.to_json()}, not the first's"
        kind, message = ready
        return ("exception" if kind == "load-error" else kind), message

    def _in_thread(self, request: Request, profile: str) -> Call:
        assert self._backend is not None
        passed = profile if self._backend.takes_profile else None
        box: list[Call] = []
        worker = threading.Thread(
            target=lambda: box.append(_invoke(self._backend.function, request, passed)),
            name="pasa-certify-backend",
            daemon=True,
        )
        start = time.perf_counter()
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive() or not box:
            _interrupt(worker)
            self.isolate = True  # the later calls run in a child process: a hang costs once
            self._child = _Child(self.name)
            return Call(
                None,
                "timeout",
                f"no result after {self.timeout:g} s (the thread was abandoned; the later "
                "calls run in a child process)",
                time.perf_counter() - start,
            )
        return box[0]


class _Child:
    """A spawned process that imports the backend once and serves calls over a pipe. It is
    started at construction; `ready` waits for its identity."""

    def __init__(self, name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(name, child_end), name="pasa-certify-backend",
            daemon=True,
        )
        self.started = time.monotonic()
        self.process.start()
        child_end.close()
        self.identity: Identity | None = None
        self.calls = 0

    def ready(self, timeout: float) -> Identity | tuple[str, str]:
        """The identity the child sends, else (kind, message): kind "load-error" when the
        backend did not resolve, "timeout", "crash" or "undecodable"."""
        remaining = max(0.0, self.started + timeout - time.monotonic())
        try:
            if not self.conn.poll(remaining):
                return "timeout", (
                    f"the child process did not load the backend within {timeout:g} s"
                )
            header = wire.read_header(self.conn)
            if header["kind"] == "load-error":
                return "load-error", header["message"]
            if header["kind"] != "ready":
                raise wire.WireError(f"a {header['kind']!r} header before 'ready'")
            self.identity = Identity.from_json(header["identity"])
            return self.identity
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return "crash", f"{self._death()} while loading the backend"
        except wire.WireError as error:
            return "undecodable", f"the child process sent {error} while loading the backend"

    def call(self, request: Request, profile: str, timeout: float, fresh: bool) -> Call:
        self.calls += 1
        start = time.perf_counter()

        def failed(kind: str, message: str) -> Call:
            return Call(None, kind, message, time.perf_counter() - start, fresh)

        try:
            self.conn.send((request, profile))
            if not self.conn.poll(timeout):
                return failed("timeout", f"no result after {timeout:g} s (the child process "
                                         "was killed)")
            header = wire.read_header(self.conn)
            if header["kind"] == "failure" and header["failure"] in FAILURES:
                return Call(None, header["failure"], header["message"], header["seconds"], fresh)
            if header["kind"] != "result":
                raise wire.WireError(f"a {header['kind']!r} header instead of a result")
            if not self.conn.poll(timeout):
                return failed("timeout", f"no data after {timeout:g} s (the child process "
                                         "was killed)")
            output = wire.read_array(self.conn, header, output_bound(request))
            return Call(output, None, "", float(header["seconds"]), fresh)
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return failed("crash", self._death())
        except wire.WireError as error:
            return failed("undecodable", f"the child process sent {error}")

    def _death(self) -> str:
        self.process.join(5)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"the child process died of signal {signal.Signals(-code).name}"
            except ValueError:
                return f"the child process died of signal {-code}"
        return f"the child process exited with status {code}"

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()


def _serve(name: str, conn: Connection) -> None:
    """Child process: load the backend, send its identity, then answer (Request, profile)
    pairs (pickled by the parent, which the child trusts) with wire frames until the pipe closes. Ctrl-C is
    left to the parent, which stops the child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        backend = load(name)
    except BackendError as error:
        wire.send_header(conn, {"kind": "load-error", "message": wire.short(str(error))})
        return
    wire.send_header(conn, {"kind": "ready", "identity": backend.identity.to_json()})
    while True:
        try:
            request, profile = conn.recv()
        except EOFError:
            return
        call = _invoke(backend.function, request, profile if backend.takes_profile else None)
        if call.output is None:
            wire.send_header(conn, {"kind": "failure", "failure": call.failure,
                                    "message": wire.short(call.message), "seconds": call.seconds})
            continue
        header, data = wire.array_frames(call.output, call.seconds)
        wire.send_header(conn, header)
        conn.send_bytes(data)

