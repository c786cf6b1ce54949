"""FlashAttention-3's error table, fp16 rows (Shah et al., arXiv 2407.08608, Table 3).

Inputs: every entry of q, k, v is N(0, 1) + N(0, 100) Bernoulli(0.001) (`distributions`:
hybrid with mean_val 0, Am 10); the error is the RMSE against an fp64 reference (here the
oracle, whose bound is far below these errors). Published fp16 RMSE: standard attention
("baseline fp16") 3.2e-4, FlashAttention-2 fp16 1.9e-4, FlashAttention-3 fp16 1.9e-4 (the same
numerics as FlashAttention-2: fp16 GEMM operands, fp32 accumulation and softmax).

The table does not say whether its fp64 reference reads the fp16 inputs or the unrounded
draw, so both are reported: RMSE against the oracle on the fp16 inputs (the kernel's own error)
and against the oracle on the unrounded binary64 draw (which adds the error of rounding the
inputs to fp16).

Our counterparts: "baseline fp16" is the `naive` kernel, in fp16-full (everything rounded to
fp16) and fp16-mixed (softmax in fp32); "FlashAttention-2 fp16" is `flash` in fp16-mixed. The
table does not give its shapes, so the run sweeps the sequence length at head size 128 and
reports our RMSE over published RMSE at each length. pasa and flash fp16-full are shown for
context (no published counterpart).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pasa_ref.reproduce import distributions, measure, tables
from pasa_ref.reproduce.measure import Setting
from pasa_ref.strategies import Shape

__all__ = ["PUBLISHED", "Config", "Fa3", "Row", "config"]

MEAN_VAL = 0.0
OUTLIER_SD = 10.0

# (kernel, profile) -> (Table 3 row, published fp16 RMSE)
PUBLISHED: dict[tuple[str, str], tuple[str, float]] = {
    ("naive", "fp16-full"): ("baseline fp16", 3.2e-4),
    ("naive", "fp16-mixed"): ("baseline fp16", 3.2e-4),
    ("flash", "fp16-mixed"): ("FlashAttention-2 fp16", 1.9e-4),
}
SETTINGS = (
    Setting("naive", "fp16-full"),
    Setting("naive", "fp16-mixed"),
    Setting("flash", "fp16-mixed"),
    Setting("flash", "fp16-full"),
    Setting("pasa", "fp16-mixed"),
    Setting("pasa", "fp16-full"),
)


@dataclass(frozen=True)
class Config:
    heads: int
    seq_lens: tuple[int, ...]
    head_dim: int
    block_k: int
    seed: int

    def shape(self, seq: int) -> Shape:
        return Shape(1, self.heads, self.heads, seq, seq, self.head_dim)


def config(quick: bool = False, seed: int = 0) -> Config:
    """B = 1, 4 heads (Hq = Hkv), S1 = S2 in {512, ..., 8192}, D = 128; --quick: 1 head of
    256 tokens."""
    if quick:
        return Config(heads=1, seq_lens=(256,), head_dim=128, block_k=128, seed=seed)
    return Config(
        heads=4, seq_lens=(512, 1024, 2048, 4096, 8192), head_dim=128, block_k=128, seed=seed
    )


@dataclass(frozen=True)
class Row:
    """One kernel call at one sequence length: rmse against the fp16 inputs' exact attention,
    rmse_unrounded against the unrounded draw's; ratios are over published_rmse."""

    seq_len: int
    kernel: str
    profile: str
    published_row: str
    published_rmse: float | None
    rmse: float | None
    ratio: float | None
    rmse_unrounded: float | None
    ratio_unrounded: float | None
    elements: int
    nonfinite: int
    reference_bound: float | None
    seconds: float


class Fa3:
    """The experiment run by `pasa reproduce fa3` (see runner.Experiment)."""

    name = "fa3"
    title = "FlashAttention-3 Table 3 (fp16 rows), reproduced"
    row_type = Row

    def __init__(self, cfg: Config) -> None:
        self.config = cfg

    def count(self) -> int:
        return len(self.config.seq_lens) * len(SETTINGS)

    def points(self) -> list[int]:
        return list(self.config.seq_lens)

    def point_rows(self, seq: int) -> Iterator[Row]:
        c = self.config
        draw = distributions.qkv("hybrid", c.shape(seq), MEAN_VAL, OUTLIER_SD, c.seed)
        measurements = measure.accuracy(draw, SETTINGS, c.block_k, unrounded=True)
        return (_row(seq, m) for m in measurements)

    def facts(self) -> list[tuple[str, str]]:
        c = self.config
        return [
            (
                "inputs",
                f"q, k, v entries N(0, 1) + N(0, {OUTLIER_SD**2:g}) Bernoulli(0.001), rounded "
                + "to fp16",
            ),
            (
                "shape",
                f"B=1, Hq=Hkv={c.heads}, S1=S2 in {{{', '.join(map(str, c.seq_lens))}}}, "
                + f"D={c.head_dim}; key blocks of {c.block_k}",
            ),
            ("seed", str(c.seed)),
            (
                "references",
                "the oracle (fast path) on the fp16 inputs and on the unrounded binary64 draw",
            ),
        ]

    def sections(self, rows: Sequence[Row]) -> list[str]:
        index = {(r.seq_len, r.kernel, r.profile): r for r in rows}
        header = [
            "Table 3 row",
            "published RMSE",
            "ours",
            *(f"S={s}" for s in self.config.seq_lens),
        ]
        note = (
            "Each cell: our RMSE, and in brackets our RMSE divided by the published one. "
            "FlashAttention-3 fp16 (published 1.9e-4) has FlashAttention-2's numerics, so "
            "`flash fp16-mixed` stands for both."
        )
        titles = {
            False: "RMSE against exact attention of the fp16 inputs (the kernels' own error)",
            True: "RMSE against exact attention of the unrounded inputs (adds input rounding)",
        }
        out = []
        for unrounded, title in titles.items():
            body = []
            for s in SETTINGS:
                label, published = PUBLISHED.get((s.kernel, s.profile), ("—", None))
                cells = [label, "—" if published is None else tables.scientific(published), s.label]
                for seq in self.config.seq_lens:
                    cells.append(_cell(index.get((seq, s.kernel, s.profile)), unrounded))
                body.append(cells)
            out.append(f"## {title}\n\n{tables.markdown_table(header, body)}\n\n{note}")
        return out

    def plot(self, rows: Sequence[Row], directory: Path) -> list[Path]:
        """No figure: the comparison is one small table."""
        return []


def _row(seq: int, m: measure.Measurement) -> Row:
    label, published = PUBLISHED.get((m.setting.kernel, m.setting.profile), ("", None))
    return Row(
        seq_len=seq,
        kernel=m.setting.kernel,
        profile=m.setting.profile,
        published_row=label,
        published_rmse=published,
        rmse=m.rmse,
        ratio=_over(m.rmse, published),
        rmse_unrounded=m.rmse_unrounded,
        ratio_unrounded=_over(m.rmse_unrounded, published),
        elements=m.elements,
        nonfinite=m.nonfinite,
        reference_bound=m.reference_bound,
        seconds=m.seconds,
    )


def _over(value: float | None, published: float | None) -> float | None:
    return None if value is None or published is None else value / published


def _cell(row: Row | None, unrounded: bool) -> str:
    if row is None:
        return "—"
    value, ratio = (row.rmse_unrounded, row.ratio_unrounded) if unrounded else (row.rmse, row.ratio)
    cell = tables.metric_cell(value, row.nonfinite / row.elements)
    return cell if ratio is None else f"{cell} ({ratio:.2f}x)"
