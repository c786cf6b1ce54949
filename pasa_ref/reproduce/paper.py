"""The PASA paper's random benchmark (Cheng et al., arXiv 2503.01873; specs/sources.md).

Grid: distribution in {uniform, hybrid} x mean_val in {0, 10, 20, 30} x Am in {0.5, 5, 10, 20}
(see `distributions`); B = 1, Hq = 28, Hkv = 4, S1 = S2 = 1407 (= 10 x 128 + 127, a ragged last
key block), D = 128, key blocks of 128. Kernels naive, flash, pasa (the suite's default: the
profile's beta, 0.9375 for fp16 inputs, and the ragged block at its true length) and
pasa-authors (PASA as the authors' published code runs it: beta 0.984497 and their padding of
the ragged block, PASA-BLK-4; measure.VARIANTS), in the profiles fp16-full, fp16-mixed and
bf16-in-fp16. Each grid point is one binary64 draw, rounded into each profile's input format;
the reference is the oracle on that rounded input (the paper used a binary32 softmax).
Metrics: RMSE and RMSE / RMS(V); an output with NaN or inf elements has no metric and is
marked with its non-finite share instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pasa_ref.reproduce import distributions, measure, plots, tables
from pasa_ref.reproduce.measure import Setting
from pasa_ref.strategies import Shape

__all__ = ["Config", "Paper", "Row", "config"]

KERNELS = ("naive", "flash", "pasa")
#: beside the bundled kernels: PASA with the authors' beta and padding (measure.VARIANTS)
AUTHORS_KERNELS = ("pasa-authors",)
PASA_VARIANTS = (
    "pasa is the suite's default (the profile's beta, 0.9375 for fp16 inputs, 0.9689939 in "
    "bf16-in-fp16; the ragged key block at its true length, PASA-BLK-2); pasa-authors runs "
    "PASA as the authors' published code does (beta 0.984497, their HEAD; the ragged block "
    "padded with the last P key and value rows, PASA-BLK-4)"
)
PROFILES = ("fp16-full", "fp16-mixed", "bf16-in-fp16")


@dataclass(frozen=True)
class Config:
    shape: Shape
    distributions: tuple[str, ...]
    mean_vals: tuple[float, ...]
    amplitudes: tuple[float, ...]
    kernels: tuple[str, ...]
    profiles: tuple[str, ...]
    block_k: int
    seed: int


def config(quick: bool = False, seed: int = 0) -> Config:
    """The paper's grid, or with --quick a 2 x 2 corner of it on 2 heads of 160 tokens (still
    D = 128 and a ragged key block, so the overflow at mean_val 30 shows)."""
    if quick:
        return Config(
            shape=Shape(1, 2, 1, 160, 160, 128),
            distributions=distributions.DISTRIBUTIONS,
            mean_vals=(0.0, 30.0),
            amplitudes=(0.5, 20.0),
            kernels=KERNELS + AUTHORS_KERNELS,
            profiles=PROFILES,
            block_k=128,
            seed=seed,
        )
    return Config(
        shape=Shape(1, 28, 4, 1407, 1407, 128),
        distributions=distributions.DISTRIBUTIONS,
        mean_vals=(0.0, 10.0, 20.0, 30.0),
        amplitudes=(0.5, 5.0, 10.0, 20.0),
        kernels=KERNELS + AUTHORS_KERNELS,
        profiles=PROFILES,
        block_k=128,
        seed=seed,
    )


@dataclass(frozen=True)
class Row:
    """One kernel call on one grid point."""

    distribution: str
    mean_val: float
    amplitude: float
    kernel: str
    profile: str
    input_format: str
    elements: int
    nonfinite: int
    rmse: float | None
    rmse_over_rms_v: float | None
    reference_bound: float | None
    seconds: float


class Paper:
    """The experiment run by `pasa reproduce paper` (see runner.Experiment)."""

    name = "paper"
    title = "PASA paper random benchmark, reproduced"
    row_type = Row

    def __init__(self, cfg: Config) -> None:
        self.config = cfg
        self.settings = measure.settings(cfg.kernels, cfg.profiles)

    def points(self) -> list[tuple[str, float, float]]:
        c = self.config
        return [(d, m, a) for d in c.distributions for m in c.mean_vals for a in c.amplitudes]

    def count(self) -> int:
        return len(self.points()) * len(self.settings)

    def point_rows(self, point: tuple[str, float, float]) -> Iterator[Row]:
        dist, mean_val, amplitude = point
        draw = distributions.qkv(dist, self.config.shape, mean_val, amplitude, self.config.seed)
        return (
            Row(
                distribution=dist,
                mean_val=mean_val,
                amplitude=amplitude,
                kernel=m.setting.kernel,
                profile=m.setting.profile,
                input_format=m.input_format,
                elements=m.elements,
                nonfinite=m.nonfinite,
                rmse=m.rmse,
                rmse_over_rms_v=m.rmse_over_rms_v,
                reference_bound=m.reference_bound,
                seconds=m.seconds,
            )
            for m in measure.accuracy(draw, self.settings, self.config.block_k)
        )

    def facts(self) -> list[tuple[str, str]]:
        c, s = self.config, self.config.shape
        return [
            (
                "shape",
                f"B={s.batch}, Hq={s.heads_q}, Hkv={s.heads_kv}, S1={s.seq_q}, S2={s.seq_k}, "
                + f"D={s.head_dim}; key blocks of {c.block_k}",
            ),
            ("grid", f"mean_val {tables.braced(c.mean_vals)} x Am {tables.braced(c.amplitudes)}"),
            ("distributions", ", ".join(c.distributions)),
            ("kernels x profiles", f"{', '.join(c.kernels)} x {', '.join(c.profiles)}"),
            ("pasa variants", PASA_VARIANTS),
            ("seed", str(c.seed)),
            ("reference", "the oracle (fast path) on the rounded inputs"),
        ]

    def sections(self, rows: Sequence[Row]) -> list[str]:
        index = {_key(r): r for r in rows}
        out = [self._summary(rows)]
        for dist in self.config.distributions:
            for metric, title in (("rmse_over_rms_v", "RMSE / RMS(V)"), ("rmse", "RMSE")):
                out.append(f"## {dist}: {title}\n\n" + self._grid_table(index, dist, metric))
        return out

    def _summary(self, rows: Sequence[Row]) -> str:
        header = ["kernel / profile"]
        for dist in self.config.distributions:
            header += [f"{dist}: points with NaN/inf", f"{dist}: largest RMSE/RMS(V)"]
        body = []
        for setting in self.settings:
            cells = [setting.label]
            for dist in self.config.distributions:
                mine = [r for r in rows if _matches(r, setting) and r.distribution == dist]
                bad = sum(r.nonfinite > 0 for r in mine)
                finite = [r.rmse_over_rms_v for r in mine if r.rmse_over_rms_v is not None]
                cells += [f"{bad}/{len(mine)}", tables.scientific(max(finite)) if finite else "—"]
            body.append(cells)
        return "## Summary\n\n" + tables.markdown_table(header, body)

    def _grid_table(self, index: dict, dist: str, metric: str) -> str:
        header = ["mean_val / Am", *(s.label for s in self.settings)]
        body = []
        for mean_val in self.config.mean_vals:
            for amplitude in self.config.amplitudes:
                cells = [f"{mean_val:g} / {amplitude:g}"]
                for s in self.settings:
                    row = index.get((dist, mean_val, amplitude, s.kernel, s.profile))
                    cells.append(
                        "—"
                        if row is None
                        else tables.metric_cell(getattr(row, metric), row.nonfinite / row.elements)
                    )
                body.append(cells)
        return tables.markdown_table(header, body)

    def plot(self, rows: Sequence[Row], directory: Path) -> list[Path]:
        """One figure per kernel and profile (a heatmap of log10 RMSE/RMS(V) per distribution)
        and one overview per distribution (every kernel and profile), on one colour scale."""
        c = self.config
        panels = {
            (s, d): self._heatmap(rows, s, d, f"{s.label}, {d}")
            for s in self.settings
            for d in c.distributions
        }
        limits = _limits([p.values for p in panels.values()])
        style = {"colour_label": "log10 RMSE / RMS(V)", "limits": limits, "label": _power_of_ten}
        paths = [
            plots.heatmaps(
                [[panels[s, d] for d in c.distributions]],
                directory / f"paper-{s.kernel}-{s.profile}.png",
                title=f"PASA random benchmark: {s.label}",
                **style,
            )
            for s in self.settings
        ]
        for d in c.distributions:
            grid = [
                [self._heatmap(rows, Setting(k, p), d, f"{k} {p}") for k in c.kernels]
                for p in c.profiles
            ]
            paths.append(
                plots.heatmaps(
                    grid,
                    directory / f"paper-{d}.png",
                    title=f"PASA random benchmark, {d} inputs (grey: NaN/inf output)",
                    **style,
                )
            )
        return paths

    def _heatmap(
        self, rows: Sequence[Row], setting: Setting, dist: str, title: str
    ) -> plots.Heatmap:
        c = self.config
        values = np.full((len(c.mean_vals), len(c.amplitudes)), np.nan)
        for r in rows:
            if _matches(r, setting) and r.distribution == dist and r.rmse_over_rms_v is not None:
                i, j = c.mean_vals.index(r.mean_val), c.amplitudes.index(r.amplitude)
                values[i, j] = math.log10(max(r.rmse_over_rms_v, 1e-16))  # 0 would be -inf
        return plots.Heatmap(
            title=title,
            values=values,
            row_labels=[f"{m:g}" for m in c.mean_vals],
            col_labels=[f"{a:g}" for a in c.amplitudes],
            row_name="mean_val",
            col_name="Am",
        )


def _key(row: Row) -> tuple:
    return (row.distribution, row.mean_val, row.amplitude, row.kernel, row.profile)


def _matches(row: Row, setting: Setting) -> bool:
    return row.kernel == setting.kernel and row.profile == setting.profile


def _limits(maps: Sequence[np.ndarray], decades: int = 6) -> tuple[float, float]:
    """Whole decades spanning the finite values of `maps`, at most `decades` of them below the
    largest (smaller values share the darkest colour; their cells still print them)."""
    finite = np.concatenate([m[np.isfinite(m)] for m in maps])
    if finite.size == 0:
        return (-float(decades), 0.0)
    high = math.ceil(finite.max())
    low = max(math.floor(finite.min()), high - decades)
    return (float(low), float(max(high, low + 1)))


def _power_of_ten(log_value: float) -> str:
    return f"{10.0**log_value:.0e}".replace("e-0", "e-")
