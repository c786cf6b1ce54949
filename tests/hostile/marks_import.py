"""Writes the file named by $PASA_HOSTILE_MARKER when imported: proves code ran."""

import os
from pathlib import Path

Path(os.environ["PASA_HOSTILE_MARKER"]).write_text("imported")


def attention(q, k, v, *, scale, causal, mask):
    Path(os.environ["PASA_HOSTILE_MARKER"]).write_text("called")
