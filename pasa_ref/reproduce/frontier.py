"""The overflow frontier: where each kernel and profile first returns NaN or inf.

Inputs are the PASA paper's distributions (`distributions`: uniform and hybrid, mean_val is
the bias of every entry of q, k and v, Am the amplitude). Only finiteness is measured, so no
reference is computed. Two sweeps, for every kernel and profile:

1. bias x amplitude: mean_val in 0..300 x Am in 0.5..40 at the paper's key length S2 = 1407.
   Naive and flash in an fp16 pipeline overflow when a raw score q.k (formed before the scale)
   passes 65504, i.e. about D mean_val^2 > 65504 (mean_val > 22.6 at D = 128); PASA removes
   beta = 15/16 of the key mean first.
2. sequence length: S2 in 512..16384 over the paper's grid (mean_val in {0, 10, 20, 30} x
   Am in {0.5, 5, 10, 20}). An fp16 output accumulator that sums unnormalised terms
   (flash, pasa) can overflow once S2 mean(v) passes 65504 with near-uniform weights.

Rows are independent in non-causal attention, so whether an output row overflows depends on
its own scores: the sweeps use 1 head (Hq = Hkv = 1) and 256 query rows against S2 keys to
keep long key sequences affordable. The frontier of a (kernel, profile) for one distribution
and Am is the smallest mean_val (sweep 1) whose output has any non-finite element.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pasa_ref.reproduce import distributions, measure, plots, tables
from pasa_ref.reproduce.measure import Setting
from pasa_ref.reproduce.paper import KERNELS, PROFILES
from pasa_ref.strategies import Shape

__all__ = ["Config", "Frontier", "Row", "config"]

SWEEPS = ("bias", "length")


@dataclass(frozen=True)
class Config:
    distributions: tuple[str, ...]
    kernels: tuple[str, ...]
    profiles: tuple[str, ...]
    seq_q: int
    head_dim: int
    bias_seq_k: int  # S2 of the bias x amplitude sweep
    biases: tuple[float, ...]
    amplitudes: tuple[float, ...]
    seq_lens: tuple[int, ...]  # S2 of the length sweep
    length_mean_vals: tuple[float, ...]
    length_amplitudes: tuple[float, ...]
    block_k: int
    seed: int

    def shape(self, seq_k: int) -> Shape:
        return Shape(1, 1, 1, self.seq_q, seq_k, self.head_dim)


def config(quick: bool = False, seed: int = 0) -> Config:
    """The sweeps of the module docstring; --quick: a 3 x 2 bias grid and two short lengths
    with 32 query rows."""
    if quick:
        return Config(
            distributions=distributions.DISTRIBUTIONS,
            kernels=KERNELS,
            profiles=PROFILES,
            seq_q=32,
            head_dim=128,
            bias_seq_k=160,
            biases=(0.0, 30.0, 300.0),
            amplitudes=(0.5, 20.0),
            seq_lens=(128, 512),
            length_mean_vals=(0.0, 30.0),
            length_amplitudes=(0.5,),
            block_k=128,
            seed=seed,
        )
    return Config(
        distributions=distributions.DISTRIBUTIONS,
        kernels=KERNELS,
        profiles=PROFILES,
        seq_q=256,
        head_dim=128,
        bias_seq_k=1407,
        biases=(0, 5, 10, 15, 20, 22.5, 25, 27.5, 30, 35, 40, 45, 50, 60, 80, 100, 150, 200, 300),
        amplitudes=(0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 40.0),
        seq_lens=(512, 1024, 2048, 4096, 8192, 16384),
        length_mean_vals=(0.0, 10.0, 20.0, 30.0),
        length_amplitudes=(0.5, 5.0, 10.0, 20.0),
        block_k=128,
        seed=seed,
    )


@dataclass(frozen=True)
class Row:
    """One kernel call: its non-finite output elements out of `elements`."""

    sweep: str
    distribution: str
    mean_val: float
    amplitude: float
    seq_k: int
    kernel: str
    profile: str
    elements: int
    nonfinite: int
    seconds: float


class Frontier:
    """The experiment run by `pasa reproduce frontier` (see runner.Experiment)."""

    name = "frontier"
    title = "Overflow frontier of the reference kernels"
    row_type = Row

    def __init__(self, cfg: Config) -> None:
        self.config = cfg
        self.settings = measure.settings(cfg.kernels, cfg.profiles)

    def points(self) -> list[tuple[str, str, float, float, int]]:
        """(sweep, distribution, mean_val, Am, S2) of every draw, in run order."""
        c = self.config
        bias = [
            ("bias", d, float(m), a, c.bias_seq_k)
            for d in c.distributions
            for m in c.biases
            for a in c.amplitudes
        ]
        length = [
            ("length", d, m, a, s)
            for d in c.distributions
            for s in c.seq_lens
            for m in c.length_mean_vals
            for a in c.length_amplitudes
        ]
        return bias + length

    def count(self) -> int:
        return len(self.points()) * len(self.settings)

    def point_rows(self, point: tuple[str, str, float, float, int]) -> Iterator[Row]:
        sweep, dist, mean_val, amplitude, seq_k = point
        c = self.config
        draw = distributions.qkv(dist, c.shape(seq_k), mean_val, amplitude, c.seed)
        return (
            Row(
                sweep=sweep,
                distribution=dist,
                mean_val=mean_val,
                amplitude=amplitude,
                seq_k=seq_k,
                kernel=m.setting.kernel,
                profile=m.setting.profile,
                elements=m.elements,
                nonfinite=m.nonfinite,
                seconds=m.seconds,
            )
            for m in measure.finiteness(draw, self.settings, c.block_k)
        )

    def facts(self) -> list[tuple[str, str]]:
        c = self.config
        return [
            ("heads and query rows", f"Hq = Hkv = 1, S1 = {c.seq_q}, D = {c.head_dim}"),
            (
                "bias x amplitude sweep",
                f"S2 = {c.bias_seq_k}, mean_val {tables.braced(c.biases)} x "
                + f"Am {tables.braced(c.amplitudes)}",
            ),
            (
                "length sweep",
                f"S2 {tables.braced(c.seq_lens)}, mean_val {tables.braced(c.length_mean_vals)} x "
                + f"Am {tables.braced(c.length_amplitudes)}",
            ),
            ("distributions", ", ".join(c.distributions)),
            ("kernels x profiles", f"{', '.join(c.kernels)} x {', '.join(c.profiles)}"),
            ("key blocks", str(c.block_k)),
            ("seed", str(c.seed)),
        ]

    def sections(self, rows: Sequence[Row]) -> list[str]:
        c = self.config
        out = []
        for dist in c.distributions:
            bias_rows = [r for r in rows if r.sweep == "bias" and r.distribution == dist]
            header = ["kernel / profile", *(f"Am={a:g}" for a in c.amplitudes)]
            body = [
                [s.label, *(_first_bias(bias_rows, s, a, c.biases) for a in c.amplitudes)]
                for s in self.settings
            ]
            out.append(
                f"## {dist}: smallest mean_val with NaN/inf output (S2 = {c.bias_seq_k})\n\n"
                + tables.markdown_table(header, body)
                + f"\n\n`none` means finite outputs up to mean_val = {max(c.biases):g}."
            )
        points = len(c.length_mean_vals) * len(c.length_amplitudes)
        for dist in c.distributions:
            length_rows = [r for r in rows if r.sweep == "length" and r.distribution == dist]
            header = ["kernel / profile", *(f"S2={s}" for s in c.seq_lens)]
            body = [
                [s.label, *(_overflowing_points(length_rows, s, n) for n in c.seq_lens)]
                for s in self.settings
            ]
            out.append(
                f"## {dist}: grid points (of {points}) with NaN/inf output, by key length\n\n"
                + tables.markdown_table(header, body)
                + f"\n\nGrid: mean_val {tables.braced(c.length_mean_vals)} x "
                + f"Am {tables.braced(c.length_amplitudes)}."
            )
        return out

    def plot(self, rows: Sequence[Row], directory: Path) -> list[Path]:
        """Per distribution and sweep, one figure of heatmaps of the non-finite share (rows of
        panels: profiles; columns: kernels)."""
        c = self.config
        paths = []
        for dist in c.distributions:
            bias_rows = [r for r in rows if r.sweep == "bias" and r.distribution == dist]
            length_rows = [r for r in rows if r.sweep == "length" and r.distribution == dist]
            grids = {
                "bias": [
                    [self._bias_map(bias_rows, Setting(k, p)) for k in c.kernels]
                    for p in c.profiles
                ],
                "length": [
                    [self._length_map(length_rows, Setting(k, p)) for k in c.kernels]
                    for p in c.profiles
                ],
            }
            titles = {
                "bias": f"Share of NaN/inf outputs, {dist} inputs, S2 = {c.bias_seq_k}",
                "length": f"Share of NaN/inf outputs, {dist} inputs, by key length",
            }
            for sweep in SWEEPS:
                paths.append(
                    plots.heatmaps(
                        grids[sweep],
                        directory / f"frontier-{sweep}-{dist}.png",
                        title=titles[sweep],
                        colour_label="share of NaN/inf output elements (white: none)",
                        limits=(1e-3, 1.0),
                        cmap="YlOrRd",
                        log=True,
                        under="white",
                    )
                )
        return paths

    def _bias_map(self, rows: Sequence[Row], setting: Setting) -> plots.Heatmap:
        c = self.config
        biases = sorted(c.biases, reverse=True)  # largest bias at the top
        values = np.full((len(biases), len(c.amplitudes)), np.nan)
        for r in _of(rows, setting):
            values[biases.index(r.mean_val), c.amplitudes.index(r.amplitude)] = _share(r)
        return plots.Heatmap(
            title=setting.label,
            values=values,
            row_labels=[f"{b:g}" for b in biases],
            col_labels=[f"{a:g}" for a in c.amplitudes],
            row_name="mean_val (bias)",
            col_name="Am",
        )

    def _length_map(self, rows: Sequence[Row], setting: Setting) -> plots.Heatmap:
        c = self.config
        points = [
            (m, a) for m in sorted(c.length_mean_vals, reverse=True) for a in c.length_amplitudes
        ]
        values = np.full((len(points), len(c.seq_lens)), np.nan)
        for r in _of(rows, setting):
            values[points.index((r.mean_val, r.amplitude)), c.seq_lens.index(r.seq_k)] = _share(r)
        return plots.Heatmap(
            title=setting.label,
            values=values,
            row_labels=[f"{m:g} / {a:g}" for m, a in points],
            col_labels=[str(s) for s in c.seq_lens],
            row_name="mean_val / Am",
            col_name="S2",
        )


def _of(rows: Sequence[Row], setting: Setting) -> list[Row]:
    return [r for r in rows if r.kernel == setting.kernel and r.profile == setting.profile]


def _share(row: Row) -> float:
    return row.nonfinite / row.elements


def _first_bias(rows: Sequence[Row], setting: Setting, amplitude: float, biases) -> str:
    """The smallest mean_val whose output has NaN/inf, `none` if none did, `—` if not run."""
    mine = [r for r in _of(rows, setting) if r.amplitude == amplitude]
    if not mine:
        return "—"
    bad = [r.mean_val for r in mine if r.nonfinite > 0]
    return f"{min(bad):g}" if bad else "none"


def _overflowing_points(rows: Sequence[Row], setting: Setting, seq_k: int) -> str:
    mine = [r for r in _of(rows, setting) if r.seq_k == seq_k]
    if not mine:
        return "—"
    return f"{sum(r.nonfinite > 0 for r in mine)}/{len(mine)}"
