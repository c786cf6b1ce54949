"""Backends under certification: naming, identity, and calls that cannot take the run down
(specs/certification.md, PASA-CERT-1..3).

A backend is a callable fn(q, k, v, *, scale, causal, mask) named `package.module:function`
(a dotted attribute path after the colon is allowed: `pkg.mod:Class.method`). It receives
BNSD numpy arrays in the profile's input dtype (fresh copies, so writing into them is
harmless), scale as a binary64 float, causal as a bool and mask as None or a boolean array
broadcastable to B x Hq x S1 x S2 (True = visible). A backend that declares a keyword
parameter `profile` also receives the profile's name. It returns anything `numpy.from_dlpack`
or `numpy.asarray` accepts.

`Caller` makes the calls. Each call runs with a deadline:

    in-process (default)   in a daemon thread; past the deadline the call is recorded as a
                           timeout and abandoned (a thread cannot be killed: it keeps running
                           in the background, so use isolation for backends that may hang)
    isolated               in a child process started with the "spawn" context; past the
                           deadline the child is killed, and a child that dies (segfault,
                           abort, os._exit) is recorded as a crash; a fresh child serves the
                           next call

Every outcome is a `Call`: an output array, or a failure kind among FAILURES with a message.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import inspect
import multiprocessing
import signal
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Self

import numpy as np

__all__ = [
    "DEFAULT",
    "FAILURES",
    "Backend",
    "BackendError",
    "Call",
    "Caller",
    "as_numpy",
    "load",
]

#: the bundled reference kernel, certified when no backend is named (PASA-CERT-2)
DEFAULT = "pasa_ref.kernels.pasa:attention"
#: kinds of failed calls (PASA-CERT-3)
FAILURES = ("exception", "timeout", "crash", "not-an-array")
#: seconds a child process may take to import the backend before its first call
STARTUP_TIMEOUT = 120.0


class BackendError(ValueError):
    """The backend name is malformed or does not resolve to a callable."""


@dataclass(frozen=True)
class Backend:
    """A resolved backend and its identity (PASA-CERT-21)."""

    name: str
    function: Callable[..., Any]
    version: str | None
    file: str | None
    sha256: str | None
    takes_profile: bool

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "receives_profile": self.takes_profile,
        }


def load(name: str) -> Backend:
    """Resolve `package.module:function`; raises BackendError naming what is wrong."""
    module_name, colon, attribute = name.partition(":")
    if not colon or not module_name or not attribute:
        raise BackendError(f"argument 'backend': expected 'package.module:function', got {name!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # noqa: BLE001 - any import-time failure of user code
        raise BackendError(
            f"argument 'backend': cannot import module {module_name!r} of {name!r} "
            f"({type(error).__name__}: {error})"
        ) from None
    function: Any = module
    for part in attribute.split("."):
        if not hasattr(function, part):
            raise BackendError(
                f"argument 'backend': module {module_name!r} has no attribute {attribute!r}"
            )
        function = getattr(function, part)
    if not callable(function):
        raise BackendError(
            f"argument 'backend': expected {name!r} to be callable, got {type(function).__name__}"
        )
    file = getattr(module, "__file__", None)
    return Backend(
        name=name,
        function=function,
        version=_version(module_name),
        file=file,
        sha256=_file_sha256(file),
        takes_profile=_takes_profile(function),
    )


def _version(module_name: str) -> str | None:
    """The version of the distribution that provides the module's top-level package, else
    the top-level package's __version__, else None."""
    top = module_name.split(".")[0]
    for distribution in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    version = getattr(importlib.import_module(top), "__version__", None)
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


@dataclass(frozen=True)
class Call:
    """The outcome of one call: `output`, or `failure` (one of FAILURES) and `message`."""

    output: np.ndarray | None
    failure: str | None
    message: str
    seconds: float

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
            "scale": self.scale,
            "causal": self.causal,
            "mask": None if self.mask is None else self.mask.copy(),
        }
        if profile is not None:
            kwargs["profile"] = profile
        return (self.q.copy(), self.k.copy(), self.v.copy()), kwargs


def _invoke(function: Callable[..., Any], request: Request, profile: str | None) -> Call:
    """Call and convert, turning any exception into a failed Call (runs in the worker)."""
    args, kwargs = request.arguments(profile)
    start = time.perf_counter()
    try:
        result = function(*args, **kwargs)
    except BaseException as error:  # noqa: BLE001 - a hostile backend may raise anything
        return Call(None, "exception", _describe(error), time.perf_counter() - start)
    seconds = time.perf_counter() - start
    try:
        return Call(as_numpy(result), None, "", seconds)
    except Exception as error:  # noqa: BLE001 - whatever the result's conversion raises
        return Call(
            None,
            "not-an-array",
            f"cannot convert the result of type "
            f"{type(result).__name__} to a numpy array ({_describe(error)})",
            seconds,
        )


def _describe(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


class Caller:
    """Calls one backend for one profile with a per-call deadline; `isolate` runs each call
    in a (reused) child process. Use as a context manager: closing stops the child."""

    def __init__(self, backend: Backend, profile: str, *, timeout: float, isolate: bool) -> None:
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ValueError(
                f"argument 'timeout': expected a number of seconds > 0, got {timeout!r}"
            )
        self.backend = backend
        self.profile = profile if backend.takes_profile else None
        self.timeout = float(timeout)
        self.isolate = isolate
        self._child: _Child | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._child is not None:
            self._child.stop()
            self._child = None

    def __call__(self, request: Request) -> Call:
        if not self.isolate:
            return self._in_thread(request)
        if self._child is None:
            self._child = _Child(self.backend.name, self.profile)
        call = self._child.call(request, self.timeout)
        if call.failure in ("timeout", "crash"):
            self._child.stop()
            self._child = None
        return call

    def _in_thread(self, request: Request) -> Call:
        box: list[Call] = []
        worker = threading.Thread(
            target=lambda: box.append(_invoke(self.backend.function, request, self.profile)),
            name="pasa-certify-backend",
            daemon=True,
        )
        start = time.perf_counter()
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive() or not box:
            return Call(
                None,
                "timeout",
                f"no result after {self.timeout:g} s (the call was "
                "abandoned in a background thread)",
                time.perf_counter() - start,
            )
        return box[0]


class _Child:
    """A spawned process that imports the backend once and serves calls over a pipe."""

    def __init__(self, name: str, profile: str | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=_serve,
            args=(name, profile, child_end),
            name="pasa-certify-backend",
            daemon=True,
        )
        self.process.start()
        child_end.close()
        if not self.conn.poll(STARTUP_TIMEOUT):
            self.stop()
            raise BackendError(
                f"backend {name!r}: the child process did not start within {STARTUP_TIMEOUT:g} s"
            )
        try:
            status, message = self.conn.recv()
        except EOFError:
            status, message = "died", self._death()
        if status != "ready":
            self.stop()
            raise BackendError(f"backend {name!r} in a child process: {message}")

    def call(self, request: Request, timeout: float) -> Call:
        start = time.perf_counter()
        try:
            self.conn.send(request)
            if not self.conn.poll(timeout):
                return Call(
                    None,
                    "timeout",
                    f"no result after {timeout:g} s (the child process was killed)",
                    time.perf_counter() - start,
                )
            return self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            return Call(None, "crash", self._death(), time.perf_counter() - start)

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


def _serve(name: str, profile: str | None, conn: Connection) -> None:
    """Child process: load the backend, then answer Requests with Calls until the pipe
    closes. Ctrl-C is left to the parent, which stops the child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        function = load(name).function
    except BackendError as error:
        conn.send(("error", str(error)))
        return
    conn.send(("ready", ""))
    while True:
        try:
            request = conn.recv()
        except EOFError:
            return
        call = _invoke(function, request, profile)
        try:
            conn.send(call)
        except Exception as error:  # noqa: BLE001 - an output pickle cannot carry
            conn.send(
                Call(
                    None,
                    "not-an-array",
                    f"cannot send the result back from the child process ({_describe(error)})",
                    call.seconds,
                )
            )
