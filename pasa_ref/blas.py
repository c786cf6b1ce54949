"""BLAS threads of pasa-ref's own numerics (specs/certification.md, PASA-CERT-53).

The oracle and the reference kernels multiply many small matrices (one head, one block at a
time), where BLAS threads cost more than they save and oversubscribe the cores of a shared
machine: with OpenBLAS on 2 cores, one thread halved the time of a 7-head reference call.
`limited()` runs a block with THREADS BLAS threads per process (threadpoolctl; numpy's
OpenBLAS, MKL or BLIS alike); work that is parallel runs in processes (`--jobs`), each
limited in the same way.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["THREADS", "limited"]

THREADS = 1


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def limited(threads: int = THREADS) -> AbstractContextManager[Any]:
    """A context in which the BLAS libraries loaded in this process use `threads` threads."""
    return _controller().limit(limits=threads, user_api="blas")
