"""Figures of the reproduced results, drawn with matplotlib (an optional extra:
pip install 'pasa-ref[plots]'). matplotlib is imported only when a figure is drawn; without it
`PlotsUnavailable` says so and the tables are still written.

One kind of figure: a grid of heatmaps sharing one colour scale, linear or logarithmic. A NaN
value is a cell without a value (an output with non-finite elements, for accuracy maps) and is
drawn grey and labelled `mark`; with `under`, values below the scale are drawn in that colour
(zeros on a logarithmic scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Heatmap", "PlotsUnavailable", "heatmaps"]

MISSING_COLOUR = "#bdbdbd"


class PlotsUnavailable(RuntimeError):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Heatmap:
    """One panel: values[i, j] at row label i, column label j (row 0 at the top)."""

    title: str
    values: np.ndarray
    row_labels: Sequence[str]
    col_labels: Sequence[str]
    row_name: str
    col_name: str

    def __post_init__(self) -> None:
        expected = (len(self.row_labels), len(self.col_labels))
        if np.shape(self.values) != expected:
            raise ValueError(
                f"argument 'values': expected shape {expected} (row x column labels), "
                f"got {np.shape(self.values)}"
            )


def heatmaps(
    grid: Sequence[Sequence[Heatmap]],
    path: Path,
    *,
    title: str,
    colour_label: str,
    limits: tuple[float, float],
    cmap: str = "viridis",
    log: bool = False,
    under: str | None = None,
    label: Callable[[float], str] | None = None,
    mark: str = "NaN/inf",
) -> Path:
    """Draw the panels of `grid` (rows of panels) into one PNG at `path`, one colour bar.
    label, when given, writes label(value) in every cell with a value (`mark` in the others)."""
    figure_class = _figure_class()
    n_rows, n_cols = len(grid), max(len(row) for row in grid)
    first = grid[0][0]
    cell_w, cell_h = (0.55, 0.45) if label else (0.32, 0.17)  # inches: labelled cells need room
    width = n_cols * max(2.6, cell_w * len(first.col_labels) + 1.6) + 1.2
    height = n_rows * max(2.2, cell_h * len(first.row_labels) + 1.2) + 0.8
    fig = figure_class(figsize=(width, height), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    image = None
    for r, row in enumerate(grid):
        for c in range(n_cols):
            ax = axes[r][c]
            if c >= len(row):
                ax.set_visible(False)
                continue
            image = _panel(ax, row[c], _norm(limits, log), _colours(cmap, under), label, mark)
    fig.colorbar(image, ax=axes, label=colour_label, shrink=0.6)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _norm(limits: tuple[float, float], log: bool) -> Any:
    from matplotlib.colors import LogNorm, Normalize

    return (LogNorm if log else Normalize)(vmin=limits[0], vmax=limits[1])


def _colours(cmap: str, under: str | None) -> Any:
    import matplotlib

    colours = matplotlib.colormaps[cmap].with_extremes(bad=MISSING_COLOUR)
    return colours if under is None else colours.with_extremes(under=under)


def _panel(
    ax: Any,
    panel: Heatmap,
    norm: Any,
    colours: Any,
    label: Callable[[float], str] | None,
    mark: str,
) -> Any:
    from matplotlib.colors import LogNorm

    values = np.asarray(panel.values, dtype=float)
    if isinstance(norm, LogNorm):  # a log scale would mask zeros as bad: put them under it
        values = np.where(values <= 0, norm.vmin / 2, values)
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colours, norm=norm, aspect="auto")
    ax.set_title(panel.title, fontsize=9)
    ax.set_xticks(range(len(panel.col_labels)), panel.col_labels, fontsize=7)
    ax.set_yticks(range(len(panel.row_labels)), panel.row_labels, fontsize=7)
    ax.set_xlabel(panel.col_name, fontsize=8)
    ax.set_ylabel(panel.row_name, fontsize=8)
    if label is not None:
        for (i, j), value in np.ndenumerate(np.asarray(panel.values, dtype=float)):
            text = mark if np.isnan(value) else label(value)
            colour = "black" if np.isnan(value) or norm(value) > 0.5 else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=6, color=colour)
    return image


def _figure_class() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotsUnavailable(
            "plots need matplotlib, an optional extra: pip install 'pasa-ref[plots]' "
            "(the tables were written)"
        ) from None
    return Figure
