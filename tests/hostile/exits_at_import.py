"""Calls sys.exit(0) while being imported: must not end `pasa certify` with status 0."""

import sys

sys.exit(0)


def attention(q, k, v, *, scale, causal, mask):
    raise AssertionError("never reached")
