"""Writing results: CSV files row by row, Markdown tables and documents.

A CSV file has one column per field of the row dataclass, in field order. Floats are written
with repr (shortest round-trip form), None as the empty string, so that a non-finite output's
missing RMSE is an empty cell next to its non-finite count, never a number. Every row is
flushed as soon as it is written: an interrupted run keeps what it found.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

__all__ = [
    "CsvLog",
    "braced",
    "document",
    "markdown_table",
    "metric_cell",
    "percent",
    "scientific",
]


class CsvLog:
    """Append dataclass rows to a CSV file, header first; use as a context manager."""

    def __init__(self, path: Path, row_type: type) -> None:
        if not dataclasses.is_dataclass(row_type):
            raise TypeError(f"argument 'row_type': expected a dataclass, got {row_type!r}")
        self.path = path
        self.columns = [f.name for f in dataclasses.fields(row_type)]
        self._file: TextIO | None = None
        self._writer: Any = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.columns)
        self._file.flush()
        return self

    def write(self, row: Any) -> None:
        values = dataclasses.astuple(row)
        if len(values) != len(self.columns):
            raise ValueError(
                f"argument 'row': expected {len(self.columns)} fields {self.columns}, "
                f"got {len(values)}"
            )
        self._writer.writerow([_csv_value(v) for v in values])
        self._file.flush()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def scientific(x: float, digits: int = 2) -> str:
    """x in scientific notation with `digits` significant digits, e.g. 3.2e-04."""
    return f"{x:.{digits - 1}e}"


def metric_cell(value: float | None, nonfinite_share: float) -> str:
    """A table cell for an accuracy metric: the value, or the share of non-finite output
    elements when there are any (such an output has no metric)."""
    if nonfinite_share > 0 or value is None:
        return f"NaN/inf ({percent(nonfinite_share)})"
    return scientific(value)


def percent(share: float) -> str:
    """A share in [0, 1] as a percentage that never rounds a non-zero share to 0 % or a share
    below one to 100 %."""
    if share <= 0:
        return "0%"
    if share >= 1:
        return "100%"
    value = 100 * share
    if value < 0.1:
        return "<0.1%"
    if value > 99.9:
        return ">99.9%"
    return f"{math.floor(value * 10 + 0.5) / 10:g}%"


def braced(values: Sequence[float]) -> str:
    """A set of numbers as text, e.g. {0, 10, 20}."""
    return "{" + ", ".join(f"{v:g}" for v in values) + "}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table; the first column left-aligned, the others right-aligned."""
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"argument 'rows': expected {len(header)} cells per row, got {len(row)} in row {i}"
            )
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def document(title: str, facts: Sequence[tuple[str, str]], sections: Sequence[str]) -> str:
    """A Markdown document: the title, a bullet list of facts (name: value), the sections."""
    head = [f"# {title}", "", *(f"- {name}: {value}" for name, value in facts)]
    return "\n\n".join(["\n".join(head), *sections]) + "\n"
