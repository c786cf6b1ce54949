"""Hostile backends: each misbehaves in one way that must not take a certification run down
(PASA-CERT-3). Those that behave return the reference kernel's output, so that the only
thing under test is the misbehaviour."""

from __future__ import annotations

import ctypes
import os
import signal
import time

import numpy as np

from pasa_ref.kernels import pasa


def reference(q, k, v, *, scale, causal, mask, profile="fp16-full"):
    return pasa.attention(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


def raises(q, k, v, *, scale, causal, mask):
    raise RuntimeError("kernel launch failed")


def exits(q, k, v, *, scale, causal, mask):
    raise SystemExit(3)


def hangs(q, k, v, *, scale, causal, mask):
    time.sleep(3600)


def aborts(q, k, v, *, scale, causal, mask):
    os.abort()


def segfaults(q, k, v, *, scale, causal, mask):
    ctypes.string_at(0)


def wrong_shape(q, k, v, *, scale, causal, mask, profile):
    return reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)[:, :1]


def wrong_dtype(q, k, v, *, scale, causal, mask, profile):
    out = reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)
    return out.astype(np.float32)


def nan_output(q, k, v, *, scale, causal, mask, profile):
    out = reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)
    out[..., 0] = np.nan
    return out


def not_an_array(q, k, v, *, scale, causal, mask):
    return {"out": "not an array"}


class _DLPackOnly:
    """An array-like that offers DLPack only (as torch and jax arrays do)."""

    def __init__(self, array: np.ndarray) -> None:
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def dlpack(q, k, v, *, scale, causal, mask, profile):
    return _DLPackOnly(reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile))


def mutates_inputs(q, k, v, *, scale, causal, mask, profile):
    out = reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)
    for x in (q, k, v):
        x[...] = 0
    if mask is not None:
        mask[...] = False
    return out


_calls = {"count": 0}


def flaky(q, k, v, *, scale, causal, mask, profile):
    """Fails every second call."""
    _calls["count"] += 1
    if _calls["count"] % 2 == 0:
        raise MemoryError("out of device memory")
    return reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


def slow(q, k, v, *, scale, causal, mask, profile):
    time.sleep(0.5)
    return reference(q, k, v, scale=scale, causal=causal, mask=mask, profile=profile)


def interrupts(q, k, v, *, scale, causal, mask):
    """Ctrl-C arriving while the backend runs: a real SIGINT, which interrupts the certifier's
    wait for this call at once (a simulated one, _thread.interrupt_main, is only seen after
    the wait and made the test timing-dependent)."""
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
