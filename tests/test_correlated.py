"""Masks correlated with the values (PASA-GEN-10) and the real-model corpus: each scenario
does what it says (the hidden keys outscore the visible ones, whole blocks are masked and
negative, single keys sit at block edges, padding covers outliers); the level-1 case that
builds the authors' NaN gives NaN with a finite fp16 mask; the shipped MiniLM corpus is
well formed and its recorded statistics match its arrays."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasa_ref import profiles, strategies
from pasa_ref.cases import Case
from pasa_ref.certify import generators
from pasa_ref.inputs import validate
from tests.mutants import base, finite_mask_65504_guarded

PROFILES = ("fp16-full", "bf16-mixed")


def scores_and_visibility(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Exact scaled scores B x Hq x S1 x S2 and which pairs are visible."""
    inputs = validate(case.q, case.k, case.v, **case.call_kwargs())
    q = inputs.q.astype(np.float64)
    k = inputs.k.astype(np.float64)
    s = (q @ np.swapaxes(k, -1, -2)) * inputs.scale
    visible = inputs.visible(slice(0, inputs.seq_q), slice(0, inputs.seq_k))
    shape = s.shape
    visible = np.ones(shape, bool) if visible is None else np.broadcast_to(visible, shape)
    return s.reshape(-1, *shape[3:]), visible.reshape(-1, *shape[3:])


@pytest.mark.parametrize("profile", PROFILES)
@settings(max_examples=12)
@given(data=st.data())
def test_correlated_cases_are_valid_problems(profile, data):
    case = data.draw(strategies.correlated_cases(profile))
    fmt = profiles.get(profile).input
    for name in "qkv":
        x = getattr(case, name)
        assert x.dtype == fmt.storage and np.isfinite(x.astype(np.float64)).all()
    assert case.q.shape[0] == 2 and case.metadata["scenario"] in strategies.SCENARIOS
    assert case.label.startswith(case.metadata["scenario"] + "(")
    validate(case.q, case.k, case.v, **case.call_kwargs())


@settings(max_examples=8)
@given(data=st.data())
def test_the_mask_hides_the_largest_scores(data):
    """hidden-max by padding or random masks: every visible score stays below margin / 2
    while some key scores above it (the hidden ones score about margin: the queries' noise
    moves them by a relative 1 / (4 sqrt(D)) per standard deviation, the keys' noise every
    score by about 1, so 12 below margin / 2 is six standard deviations on each side); with
    padding, every padded key is one of them."""
    case = data.draw(
        strategies.correlated_cases("fp32", scenarios=["hidden-max"]).filter(
            lambda c: c.metadata["parameters"]["hidden_by"] != "causal-ramp"
        )
    )
    s, visible = scores_and_visibility(case)
    threshold = case.metadata["parameters"]["margin"] / 2
    assert (s[visible] < threshold - 6).all()
    high = (s > threshold + 6).all(axis=1)  # B Hq x S2: above the threshold for every query
    assert high.any()
    if case.metadata["parameters"]["hidden_by"] == "padding":
        padded = ~np.broadcast_to(case.mask, (*case.q.shape[:2], 1, case.k.shape[2]))
        assert high[padded.reshape(high.shape)].all()


@settings(max_examples=8)
@given(data=st.data())
def test_masked_blocks_are_whole_and_strongly_negative(data):
    case = data.draw(strategies.correlated_cases("fp16-full", scenarios=["masked-block"]))
    n, depth = profiles.get("fp16-full").block_k, case.metadata["parameters"]["depth"]
    s, visible = scores_and_visibility(case)
    assert case.causal and case.k.shape[2] > n
    assert not visible[:, : n - 1, n:].any()  # first query block: later key blocks masked
    assert (s[:, :, n:] < -depth / 2).all()


@settings(max_examples=8)
@given(data=st.data())
def test_edge_keys_are_the_only_visible_ones(data):
    case = data.draw(strategies.correlated_cases("fp16-full", scenarios=["edge-key"]))
    n, s2 = profiles.get("fp16-full").block_k, case.k.shape[2]
    _, visible = scores_and_visibility(case)
    edges = {t for j in range(0, s2, n) for t in (j, j + n - 1, s2 - 1) if t < s2}
    assert set(np.flatnonzero(visible.any(axis=(0, 1)))) <= edges
    if case.metadata["parameters"]["single_share"] == 1.0:
        assert (visible.sum(axis=-1) == 1).all()


@settings(max_examples=8)
@given(data=st.data())
def test_padded_keys_carry_the_outliers(data):
    case = data.draw(strategies.correlated_cases("fp32", scenarios=["padded-outliers"]))
    parameters = case.metadata["parameters"]
    v = case.v.astype(np.float64)
    for b, length in enumerate(parameters["lengths"]):
        assert case.mask[b, 0, 0, :length].all() and not case.mask[b, 0, 0, length:].any()
        assert (np.abs(v[b, :, length:]) >= parameters["size"] / 2 * (1 - 2**-10)).all()


def test_whole_masked_block_makes_the_authors_finite_mask_nan_in_fp16():
    """mask-block-negative: -65504 added in fp16 turns a whole block to -inf, and
    -inf - (-inf) = NaN on rows that see keys; the spec's -inf mask stays finite."""
    prof = profiles.get("fp16-full")
    case = next(c for c in generators.correlated_masks(prof) if c.label == "mask-block-negative")
    call = dict(case.call_kwargs(), scale=1 / math.sqrt(case.q.shape[-1]), profile=prof.name)
    finite = finite_mask_65504_guarded.attention(case.q, case.k, case.v, **call)
    assert np.isnan(finite.astype(np.float64)).any()
    assert np.isfinite(base.attention(case.q, case.k, case.v, **call).astype(np.float64)).all()


CORPUS = Path(generators.__file__).parent / "corpora" / "minilm"


def test_minilm_corpus_is_every_layer_and_head_with_its_statistics():
    files = sorted(CORPUS.glob("*.npz"))
    assert [f.stem for f in files] == [f"minilm-layer{i}" for i in range(6)]
    texts = json.loads((CORPUS / "texts.json").read_text())["texts"]
    assert len(texts) == 2
    for path in files:
        case = Case.load(path)
        lengths = case.metadata["lengths"]
        assert case.q.shape == (2, 12, 256, 32) and case.dtype == np.float16
        assert (
            case.mask.shape == (2, 1, 1, 256) and case.mask.sum(axis=-1).ravel().tolist() == lengths
        )
        real = case.mask[:, 0, 0, :]
        q, k = case.q.astype(np.float64), case.k.astype(np.float64)
        dot = q @ np.swapaxes(k, -1, -2)
        pairs = real[:, None, :, None] & real[:, None, None, :]
        largest = np.abs(dot[np.broadcast_to(pairs, dot.shape)]).max()
        recorded = case.metadata["statistics"]["max |q.k|"]
        assert abs(largest - recorded) <= 0.01 * recorded  # fp16 rounding of q and k


@settings(max_examples=8)
@given(data=st.data())
def test_qwen2_bias_sets_the_key_mean_ratio(data):
    """|mean_t k_t| / mean_t |k_t| is at least the drawn ratio less the noise's share, and at
    most 1 (PASA-GEN-6, the statistic of the MiniLM capture)."""
    case = data.draw(
        strategies.cases("fp32", max_seq=200, distributions=["qwen2-bias"], masks=["none"]).filter(
            lambda c: c.k.shape[2] >= 64 and c.k.shape[3] >= 16
        )
    )
    k = case.k.astype(np.float64)
    ratio = np.linalg.norm(k.mean(axis=2), axis=-1) / np.linalg.norm(k, axis=-1).mean(axis=2)
    drawn = case.metadata["parameters"]["ratio"]
    assert (ratio >= drawn - 0.1).all() and (ratio <= 1.0 + 1e-9).all()


@settings(max_examples=8)
@given(data=st.data())
def test_svd_resonance_sets_the_query_key_cosine(data):
    case = data.draw(
        strategies.cases(
            "fp32", max_seq=64, distributions=["svd-resonance"], masks=["none"]
        ).filter(lambda c: c.q.shape[3] >= 8)
    )
    parameters = case.metadata["parameters"]
    q, k = case.q.astype(np.float64), case.k.astype(np.float64)
    hq = q.shape[1]
    k = np.repeat(k, hq // k.shape[1], axis=1)
    dot = q @ np.swapaxes(k, -1, -2)
    cosine = dot / (
        np.linalg.norm(q, axis=-1)[..., None] * np.linalg.norm(k, axis=-1)[..., None, :]
    )
    assert (np.sign(cosine) == parameters["sign"]).all()
    assert (np.abs(cosine) >= parameters["cosine"] - 0.1).all()
