"""Ends its process with status 0 while being imported."""

import os

os._exit(0)


def attention(q, k, v, *, scale, causal, mask):
    raise AssertionError("never reached")
