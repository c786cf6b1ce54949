"""The public strategies (PASA-GEN-1 .. 9): representable, finite inputs of the profile's dtype,
well-formed shapes and masks, and each distribution doing what its name says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pasa_ref import formats, profiles, strategies
from pasa_ref.cases import Case
from pasa_ref.inputs import validate

PROFILES = ("fp16-full", "bf16-in-fp16", "fp32")


def first_draw(strategy: st.SearchStrategy) -> object:
    """One value of `strategy`, drawn by @given (errors of the strategy propagate)."""
    drawn = []

    @settings(max_examples=1, database=None)
    @given(strategy)
    def draw(value):
        drawn.append(value)

    draw()
    return drawn[0]


def assert_well_formed(case: Case, profile: str, max_seq: int, max_dim: int) -> None:
    """PASA-GEN-1 and -2: dtype, finiteness, exact representability, shapes, a valid problem."""
    fmt = profiles.get(profile).input
    for name in "qkv":
        x = getattr(case, name)
        assert x.dtype == fmt.storage, name
        wide = x.astype(np.float64)
        assert np.isfinite(wide).all(), name
        np.testing.assert_array_equal(fmt.to_storage(wide).astype(np.float64), wide)
    _, hq, s1, d = case.q.shape
    _, hkv, s2, _ = case.k.shape
    assert hq % hkv == 0 and 1 <= s1 <= max_seq and 1 <= s2 <= max_seq and d <= max_dim
    assert case.v.shape[:3] == case.k.shape[:3] and case.v.shape[3] <= max_dim
    validate(case.q, case.k, case.v, **case.call_kwargs())  # the kernels accept it
    assert case.label and case.metadata["distribution"] in strategies.DISTRIBUTIONS
    assert case.label.endswith(f"mask={case.metadata['mask']}")


@pytest.mark.parametrize("profile", PROFILES)
@given(data=st.data())
def test_cases_are_valid_problems_in_the_input_format(profile, data):
    case = data.draw(strategies.cases(profile, max_seq=300, max_dim=64))
    assert_well_formed(case, profile, 300, 64)


@pytest.mark.parametrize("name", sorted(strategies.DISTRIBUTIONS))
@settings(max_examples=10)
@given(data=st.data())
def test_every_distribution_gives_finite_representable_values(name, data):
    """Including near-max in fp16 and bf16: clipping keeps the rounding finite."""
    profile = data.draw(st.sampled_from(["fp16-full", "bf16-full"]))
    case = data.draw(strategies.cases(profile, max_seq=40, distributions=[name]))
    assert_well_formed(case, profile, 40, 128)
    assert case.metadata["distribution"] == name


@pytest.mark.parametrize("kind", strategies.MASKS)
@settings(max_examples=10)
@given(data=st.data())
def test_every_mask_kind_is_broadcastable_and_means_what_it_says(kind, data):
    case = data.draw(strategies.cases("fp16-full", max_seq=40, masks=[kind]))
    b, hq, s1, _ = case.q.shape
    s2 = case.k.shape[2]
    assert case.causal == (kind == "causal")
    if kind in ("none", "causal"):
        assert case.mask is None
        return
    visible = np.broadcast_to(case.mask, (b, hq, s1, s2))
    if kind == "padding":  # one prefix of the keys per batch
        lengths = visible.sum(axis=-1)
        assert (lengths == lengths[:, :1, :1]).all()
        assert all(visible[i, 0, 0, : lengths[i, 0, 0]].all() for i in range(b))
    if kind == "empty-rows":  # each row sees every key or none
        assert (visible.all(axis=-1) | ~visible.any(axis=-1)).all()


@given(shape=strategies.shapes(max_seq=8192, max_dim=256, max_pairs=2**16))
def test_shapes_respect_their_limits(shape):
    assert shape.heads_q % shape.heads_kv == 0
    assert shape.pairs <= 2**16 or shape.seq_q == 1
    assert 1 <= shape.seq_k <= 8192 and 1 <= shape.head_dim <= 256
    assert shape.q == (shape.batch, shape.heads_q, shape.seq_q, shape.head_dim)


def test_sequence_lengths_include_block_neighbours_and_one():
    lengths = strategies.seq_lengths(300, block=128)
    seen = set()

    @settings(max_examples=300, database=None)
    @given(lengths)
    def collect(n):
        seen.add(n)

    collect()
    assert {1, 127, 129} & seen and max(seen) <= 300


@pytest.mark.parametrize(
    "argument, call",
    [
        ("distributions", lambda: strategies.cases("fp16-full", distributions=["gauss"])),
        ("masks", lambda: strategies.cases("fp16-full", masks=["diagonal"])),
        ("max_seq", lambda: strategies.seq_lengths(0)),
        ("max_dim", lambda: strategies.head_dims(0)),
        ("profile", lambda: strategies.cases("fp8")),
    ],
)
def test_bad_arguments_name_the_argument(argument, call):
    with pytest.raises(ValueError, match=argument):
        first_draw(call())


def draw_noiseless(data, name: str, **parameters) -> Case:
    """A case of distribution `name` whose drawn parameters include `parameters` (rejects the
    others: hypothesis keeps drawing)."""
    case = data.draw(
        strategies.cases("fp32", max_seq=40, distributions=[name], masks=["none"]).filter(
            lambda c: all(c.metadata["parameters"].get(k) == v for k, v in parameters.items())
        )
    )
    return case


@settings(max_examples=10)
@given(data=st.data())
def test_resonance_makes_q_and_k_parallel_or_opposite(data):
    """PASA-GEN-6 / PASA-BND-2: without noise, |q . k| = |q| |k|."""
    case = draw_noiseless(data, "resonance", noise=0.0)
    q, k = case.q.astype(np.float64)[0, 0, 0], case.k.astype(np.float64)[0, 0, 0]
    norms = np.linalg.norm(q) * np.linalg.norm(k)
    sign = 1.0 if case.metadata["parameters"]["delta"] == "0" else -1.0
    assert norms == 0 or sign * (q @ k) / norms == pytest.approx(1.0, abs=1e-5)


@settings(max_examples=10)
@given(data=st.data())
def test_bias_steps_alternate_between_runs_of_keys(data):
    """PASA-GEN-5: without noise, alternate steps flip the keys' sign from run to run."""
    case = draw_noiseless(data, "bias-steps", noise=0.0, signs="alternate")
    step = case.metadata["parameters"]["step"]
    keys = case.k.astype(np.float64)[0, 0, :, 0]
    runs = np.arange(keys.size) // step
    first = keys[runs % 2 == 0]
    assert (np.sign(first) == np.sign(keys[0])).all()
    assert (np.sign(keys[runs % 2 == 1]) == -np.sign(keys[0])).all()


def test_representable_clips_to_the_largest_finite_value():
    fp16 = formats.get("fp16")
    x = strategies.representable(np.array([1e6, -1e6, 65519.0, 1.0 + 2.0**-12]), fp16)
    assert x.dtype == np.float16
    np.testing.assert_array_equal(x.astype(np.float64), [65504.0, -65504.0, 65504.0, 1.0])


def test_users_can_register_a_distribution():
    """`distribution` adds a named builder that `cases` then draws from."""

    @strategies.distribution("ones-for-test")
    def ones(draw, shape, fmt):
        return strategies.Values(np.ones(shape.q), np.ones(shape.k), np.ones(shape.v),
                                 "ones-for-test", {})

    try:
        case = first_draw(strategies.cases("fp16-full", distributions=["ones-for-test"]))
        assert (case.q == 1).all() and case.label.startswith("ones-for-test()")
    finally:
        del strategies.DISTRIBUTIONS["ones-for-test"]
