"""Hostile backends that attack the certifier through what a call returns or does
(tests/test_hostile.py, specs/certification.md PASA-CERT-50..53). Those that behave return the
reference kernel's output, so that the attack is the only thing under test."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np

from tests.mutants.hostile import reference


def _reference(q, k, v, scale, causal, mask, profile):
    return reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


class Trojan(np.ndarray):
    """Zeros that, once unpickled, would make every clause pass (the attack of issue 12 on
    the old pickling pipe), and that lie to anyone who asks them to convert or compare."""

    def __reduce__(self):
        return (exec, ("import pasa_ref.certify.criteria as c; c.evaluate = lambda e, f: []",))

    def astype(self, *args, **kwargs):  # noqa: ARG002 - a lie: "I am the right answer"
        return np.asarray(_TRUTH["out"]).astype(*args, **kwargs)


_TRUTH: dict[str, np.ndarray] = {}


def trojan(q, k, v, *, scale, causal, mask, profile):
    _TRUTH["out"] = _reference(q, k, v, scale, causal, mask, profile)
    return np.zeros_like(_TRUTH["out"]).view(Trojan)


_ALIASED: dict[str, np.ndarray] = {}


def aliases(q, k, v, *, scale, causal, mask, profile):
    """Returns one buffer for every call and rewrites it: the second call's output differs
    from the first (nondeterministic), but both results are the same array object."""
    out = _reference(q, k, v, scale, causal, mask, profile)
    key = str(out.shape)
    if key in _ALIASED:
        _ALIASED[key][...] = out + np.asarray(2.0**-8, out.dtype)  # the "repeat" differs
    else:
        _ALIASED[key] = out
    return _ALIASED[key]


def mutates_later(q, k, v, *, scale, causal, mask, profile):
    """Returns the right output and zeroes it from a background thread soon after."""
    out = _reference(q, k, v, scale, causal, mask, profile)
    threading.Timer(0.05, lambda: out.fill(0)).start()
    return out


def prints_megabytes(q, k, v, *, scale, causal, mask, profile):
    sys.stdout.write("x" * (4 << 20) + "\n")
    sys.stdout.flush()
    return _reference(q, k, v, scale, causal, mask, profile)


def nan_everywhere(q, k, v, *, scale, causal, mask, profile):
    return np.full(q.shape[:3] + v.shape[3:], np.nan, _reference(
        q, k, v, scale, causal, mask, profile).dtype)


def huge_output(q, k, v, *, scale, causal, mask, profile):
    """An output of 64 MiB whatever the case (an isolated child may not make the parent
    allocate it)."""
    return np.zeros(32 << 20, np.float16)


def object_output(q, k, v, *, scale, causal, mask, profile):
    out = np.empty(q.shape[:3] + v.shape[3:], dtype=object)
    out[...] = 0.0
    return out


def string_output(q, k, v, *, scale, causal, mask):
    return "the answer"


def big_endian(q, k, v, *, scale, causal, mask, profile):
    """The right values, stored big-endian: values, not byte order, are judged."""
    out = _reference(q, k, v, scale, causal, mask, profile)
    return out.astype(out.dtype.newbyteorder(">"))


def raises_keyboard_interrupt(q, k, v, *, scale, causal, mask):
    raise KeyboardInterrupt


def os_exit_at_call(q, k, v, *, scale, causal, mask):
    os._exit(0)


def busy_loop(q, k, v, *, scale, causal, mask):
    """A Python-level busy loop that never returns (it holds the GIL between bytecodes)."""
    while True:
        pass


_POISON = {"poisoned": False}


def sticky_error(q, k, v, *, scale, causal, mask, profile):
    """A sticky accelerator fault: refuses one key (S2 = 1) and from then on every call in
    the same process fails, as cuDNN's "misaligned address" did (issue 11)."""
    if k.shape[2] == 1:
        _POISON["poisoned"] = True
        raise RuntimeError("CUDA error: misaligned address")
    if _POISON["poisoned"]:
        raise RuntimeError("CUDA error: misaligned address (sticky)")
    return _reference(q, k, v, scale, causal, mask, profile)


def strict_protocol(q, k, v, *, scale, causal, mask, profile):
    """The reference, after checking the call protocol of PASA-CERT-1 to the letter."""
    if type(scale) is not float or type(causal) is not bool:
        raise TypeError(f"scale {scale!r} / causal {causal!r}: expected float / bool")
    if not all(type(x) is np.ndarray for x in (q, k, v)) or q.dtype != k.dtype:
        raise TypeError("q, k, v: expected numpy arrays of one dtype")
    return _reference(q, k, v, scale, causal, mask, profile)


def declared(q, k, v, *, scale, causal, mask, profile):
    return _reference(q, k, v, scale, causal, mask, profile)


declared.pasa_declaration = {"schema": "pasa-ref/declaration/1", "algorithm": {"class": "pasa"}}


def badly_declared(q, k, v, *, scale, causal, mask, profile):
    return _reference(q, k, v, scale, causal, mask, profile)


badly_declared.pasa_declaration = {"algorithm": {"class": Path("pickle me")}}

