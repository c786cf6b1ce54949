"""A BERT encoder (Devlin et al. 2019; Hugging Face's BertModel layout) in numpy binary64,
for capturing the attention inputs of real models. No torch: the weights are read from a
safetensors file, the tokenizer from a tokenizers JSON file.

For hidden states x (B x S x H, H = heads * d) and every layer l:

    q, k, v  = x Wq^T + bq, x Wk^T + bk, x Wv^T + bv, split into heads: B x heads x S x d
    scores   = q k^T / sqrt(d), padded keys excluded (-inf)
    context  = softmax(scores) v, heads joined
    x        = LN(x + context Wo^T + bo)
    x        = LN(x + gelu(x Wi^T + bi) Wf^T + bf)        gelu(z) = z (1 + erf(z / sqrt 2)) / 2

with the embeddings x_0 = LN(word + position + token type 0). LN(z) = gamma (z - mean) /
sqrt(var + eps) + beta over the hidden dimension. Sentence embeddings (sentence-transformers)
are the mean of the last hidden states over the real tokens, divided by its norm.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Bert", "LayerInputs", "Tokens", "load", "sentence_embedding", "tokenize"]

_erf = np.vectorize(math.erf, otypes=[np.float64])


@dataclass(frozen=True)
class Tokens:
    """Token ids and the padding mask of a batch (B x S; mask True = real token)."""

    ids: np.ndarray
    mask: np.ndarray


@dataclass(frozen=True)
class LayerInputs:
    """The attention inputs of one layer, B x heads x S x d each, binary64."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray


@dataclass(frozen=True)
class Bert:
    weights: dict[str, np.ndarray]
    heads: int
    eps: float

    def _w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def _linear(self, x: np.ndarray, prefix: str) -> np.ndarray:
        return x @ self._w(f"{prefix}.weight").T + self._w(f"{prefix}.bias")

    def _norm(self, x: np.ndarray, prefix: str) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True)
        scaled = centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + self.eps)
        return scaled * self._w(f"{prefix}.weight") + self._w(f"{prefix}.bias")

    def _split(self, x: np.ndarray) -> np.ndarray:
        b, s, hidden = x.shape
        return x.reshape(b, s, self.heads, hidden // self.heads).transpose(0, 2, 1, 3)

    @property
    def layers(self) -> int:
        return 1 + max(
            int(name.split(".")[2]) for name in self.weights if name.startswith("encoder.layer.")
        )

    def forward(self, tokens: Tokens) -> tuple[np.ndarray, list[LayerInputs]]:
        """The last hidden states (B x S x H) and every layer's attention inputs."""
        s = tokens.ids.shape[1]
        x = (
            self._w("embeddings.word_embeddings.weight")[tokens.ids]
            + self._w("embeddings.position_embeddings.weight")[:s]
            + self._w("embeddings.token_type_embeddings.weight")[0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        captured = []
        for layer in range(self.layers):
            prefix = f"encoder.layer.{layer}"
            q, k, v = (
                self._split(self._linear(x, f"{prefix}.attention.self.{name}"))
                for name in ("query", "key", "value")
            )
            captured.append(LayerInputs(q, k, v))
            scores = q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1])
            scores = np.where(tokens.mask[:, None, None, :], scores, -np.inf)
            weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
            weights /= weights.sum(axis=-1, keepdims=True)
            context = (weights @ v).transpose(0, 2, 1, 3).reshape(x.shape)
            x = self._norm(
                x + self._linear(context, f"{prefix}.attention.output.dense"),
                f"{prefix}.attention.output.LayerNorm",
            )
            inner = self._linear(x, f"{prefix}.intermediate.dense")
            inner = inner * (1.0 + _erf(inner / math.sqrt(2.0))) / 2.0
            x = self._norm(
                x + self._linear(inner, f"{prefix}.output.dense"), f"{prefix}.output.LayerNorm"
            )
        return x, captured


def load(model_dir: Path) -> Bert:
    """The model of a Hugging Face directory (config.json, model.safetensors) in binary64."""
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    raw = load_file(str(model_dir / "model.safetensors"))
    weights = {name.removeprefix("bert."): np.asarray(w, np.float64) for name, w in raw.items()}
    return Bert(weights, int(config["num_attention_heads"]), float(config["layer_norm_eps"]))


def tokenize(model_dir: Path, texts: list[str], max_length: int = 512) -> Tokens:
    """Token ids with [CLS] ... [SEP], padded with the pad id to the longest text."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding()
    encoded = tokenizer.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encoded], dtype=bool)
    return Tokens(ids, mask)


def sentence_embedding(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the real tokens, normalised to unit length (B x H)."""
    summed = (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
    return summed / np.linalg.norm(summed, axis=-1, keepdims=True)
