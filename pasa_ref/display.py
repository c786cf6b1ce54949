"""How the `pasa` commands show progress and summaries, decided in one place.

    progress (stderr)
        a terminal at least BAR_MIN_COLUMNS wide   a rich progress bar
        a pipe, a file or a narrower terminal      plain lines: one at the start, one
                                                   whenever another LINE_FRACTION of the
                                                   total (or `every` units) is done or
                                                   LINE_SECONDS have passed, and a last one
        quiet (-q)                                 nothing
    summaries (stdout, `console()`)
        a terminal                                 its width; a table wider than the terminal
                                                   becomes one line per row (rich would cut
                                                   its cells to "72/…")
        a pipe or a file                           WIDE columns: rich never wraps a line

A progress line reads `[   12.3 s] certify: 20/55 cases, eta 21 s; grid-uniform-mean0-amp5`
(elapsed time, label, amount done of the total, the time left at the mean rate so far, and a
note that the command chooses).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress
from rich.table import Column, Table
from rich.text import Text

__all__ = [
    "BAR_MIN_COLUMNS",
    "LINE_FRACTION",
    "LINE_SECONDS",
    "WIDE",
    "Progress",
    "console",
    "line",
    "print_table",
    "progress",
]

BAR_MIN_COLUMNS = 72
LINE_FRACTION = 0.25
LINE_SECONDS = 10.0
WIDE = 10_000
_BAR_WIDTH = 24


class Progress(Protocol):
    """What a command tells its progress display: the amount done and a short note."""

    def update(self, completed: float | None = None, note: str | None = None) -> None: ...

    def advance(self, note: str | None = None) -> None: ...


def _amount(value: float) -> str:
    """A count as an integer, seconds with one decimal."""
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


class _Silent:
    def update(self, completed: float | None = None, note: str | None = None) -> None:
        pass

    def advance(self, note: str | None = None) -> None:
        pass


class _Lines:
    """Plain progress lines for a pipe, a file or a narrow terminal."""

    def __init__(
        self,
        label: str,
        total: float,
        unit: str,
        stream: TextIO,
        every: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.total, self.unit, self.stream = label, total, unit, stream
        self.every, self.clock = every, clock
        self.completed = 0.0
        self.note = ""
        self._start = clock()
        self._print(self._start)

    def update(self, completed: float | None = None, note: str | None = None) -> None:
        if note is not None:
            self.note = note
        if completed is None or completed == self.completed:
            return
        self.completed = completed
        now = self.clock()
        due = self.completed - self._last_amount >= self.every
        if due or now - self._last_time >= LINE_SECONDS:
            self._print(now)

    def advance(self, note: str | None = None) -> None:
        self.update(self.completed + 1, note)

    def close(self) -> None:
        """The last line, unless the last update was printed already."""
        if self._last_amount != self.completed:
            self._print(self.clock())

    def _print(self, now: float) -> None:
        elapsed = now - self._start
        left = self.total - self.completed
        eta = f", eta {elapsed * left / self.completed:.0f} s" if self.completed and left else ""
        text = (
            f"[{elapsed:7.1f} s] {self.label}: {_amount(self.completed)}/{_amount(self.total)} "
            f"{self.unit}{eta}" + (f"; {self.note}" if self.note else "")
        )
        print(text, file=self.stream, flush=True)
        self._last_time, self._last_amount = now, self.completed


class _Bar:
    """A rich progress bar; the note is the column that gives way on a narrow terminal."""

    def __init__(self, bar: RichProgress, label: str, total: float, unit: str) -> None:
        self.bar, self.unit, self.total = bar, unit, total
        self.completed = 0.0
        self.task = bar.add_task(label, total=total, amount=self._amount_text(), note="")

    def _amount_text(self) -> str:
        return f"{_amount(self.completed)}/{_amount(self.total)} {self.unit}"

    def update(self, completed: float | None = None, note: str | None = None) -> None:
        if completed is not None:
            self.completed = completed
            self.bar.update(self.task, completed=completed, amount=self._amount_text())
        if note is not None:
            self.bar.update(self.task, note=note)

    def advance(self, note: str | None = None) -> None:
        self.update(self.completed + 1, note)


def _bar(terminal: Console) -> RichProgress:
    fixed = Column(no_wrap=True)
    return RichProgress(
        TextColumn("[bold]{task.description}", table_column=fixed),
        BarColumn(bar_width=_BAR_WIDTH, table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[amount]}", table_column=Column(no_wrap=True)),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        TextColumn("eta", table_column=Column(no_wrap=True)),
        TimeRemainingColumn(table_column=Column(no_wrap=True)),
        TextColumn("{task.fields[note]}", table_column=Column(overflow="ellipsis")),
        console=terminal,
        transient=False,
    )


@contextmanager
def progress(
    label: str,
    total: float,
    *,
    unit: str = "cases",
    quiet: bool = False,
    every: float | None = None,
    stream: TextIO | None = None,
) -> Iterator[Progress]:
    """Show the progress of `total` units (cases, kernel runs, seconds) on `stream` (default
    stderr): a bar, plain lines or nothing (quiet), as the module docstring says. `every`: the
    units between two plain lines (default LINE_FRACTION of the total)."""
    if quiet:
        yield _Silent()
        return
    stream = sys.stderr if stream is None else stream
    terminal = Console(file=stream)
    if terminal.is_terminal and terminal.width >= BAR_MIN_COLUMNS:
        with _bar(terminal) as bar:
            yield _Bar(bar, label, total, unit)
        return
    lines = _Lines(label, total, unit, stream, LINE_FRACTION * total if every is None else every)
    try:
        yield lines
    finally:
        lines.close()


def console(stderr: bool = False) -> Console:
    """Standard output (or error) for summaries: the terminal, or WIDE columns for a pipe or a
    file."""
    terminal = Console(stderr=stderr)
    return terminal if terminal.is_terminal else Console(stderr=stderr, width=WIDE)


def line(out: Console, text: str | Text) -> None:
    """Print one line as it is: no markup, no highlighting, wrapped (on a terminal) only
    between words."""
    out.print(text, markup=False, highlight=False)


def print_table(
    out: Console,
    title: str | Text,
    header: Sequence[str],
    rows: Sequence[Sequence[str | Text]],
    *,
    right: Collection[str] = (),
    wrap: Collection[str] = (),
) -> None:
    """The title as a line of its own, then the rows: a rich table when it fits the width of
    `out`, else one line per row, `header: value` joined by "; " (so that no cell is cut).
    `right`: the columns justified right; `wrap`: the columns whose text may wrap."""
    line(out, title)
    table = Table()
    for name in header:
        table.add_column(
            name, justify="right" if name in right else "left", no_wrap=name not in wrap
        )
    for row in rows:
        table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
    if out.measure(table, options=out.options.update_width(WIDE)).maximum <= out.width:
        out.print(table)
        return
    for row in rows:
        cells = [cell.plain if isinstance(cell, Text) else cell for cell in row]
        fields = zip(header, cells, strict=True)
        line(out, "; ".join(f"{name}: {cell}" for name, cell in fields if cell))
