"""Every public entry point rejects bad input with an error naming the argument, the expected
and the actual value (PASA-IO-4, PASA-IO-5); nothing is cast silently."""

from __future__ import annotations

import numpy as np
import pytest

from pasa_ref.inputs import InputError
from pasa_ref.kernels import KERNELS


def good(dtype=np.float16):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 4, 5, 8)).astype(dtype)
    k = rng.standard_normal((1, 2, 6, 8)).astype(dtype)
    v = rng.standard_normal((1, 2, 6, 8)).astype(dtype)
    return q, k, v


def call(kernel, q, k, v, **options):
    return KERNELS[kernel](q, k, v, profile="fp16-full", **options)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda q, k, v: (q[0], k, v), r"argument 'q': expected rank 4 .* got rank 3"),
        (
            lambda q, k, v: (q, k[..., :4], v),
            r"argument 'k': expected head size D = 8 \(as q\), got 4",
        ),
        (lambda q, k, v: (q, k, v[:, :, :5]), r"argument 'v': expected sequence length S2 = 6"),
        (
            lambda q, k, v: (q, k[:, :1].repeat(3, 1), v[:, :1].repeat(3, 1)),
            r"argument 'k': expected a number of heads Hkv dividing Hq = 4, got Hkv = 3",
        ),
        (lambda q, k, v: (q, np.concatenate([k, k]), v), r"expected batch size B = 1"),
        (lambda q, k, v: (q, k, v[:, :1]), r"argument 'v': expected Hkv = 2 heads"),
        (
            lambda q, k, v: (q.astype(np.float32), k, v),
            r"argument 'q': expected dtype float16, got float32",
        ),
        (lambda q, k, v: (q, k.astype(np.float32), v), r"argument 'k': expected dtype float16"),
        (
            lambda q, k, v: (q.astype(np.int16), k, v),
            r"argument 'q': expected dtype float16, got int16",
        ),
        (lambda q, k, v: (q.tolist(), k, v), r"argument 'q': expected a numpy array, got list"),
        (lambda q, k, v: (q[:, :, :0], k, v), r"argument 'q': expected no empty dimension"),
    ],
)
def test_shape_and_dtype_errors(kernel, mutate, message):
    with pytest.raises(InputError, match=message):
        call(kernel, *mutate(*good()))


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_inputs_are_rejected_with_their_index(kernel, bad):
    q, k, v = good()
    v[0, 1, 3, 2] = bad
    with pytest.raises(
        InputError, match=r"argument 'v': expected finite values, got .* at index \(0, 1, 3, 2\)"
    ):
        call(kernel, q, k, v)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize(
    "options, message",
    [
        ({"scale": 0.0}, r"argument 'scale': expected a finite value > 0, got 0.0"),
        ({"scale": float("nan")}, r"argument 'scale': expected a finite value > 0, got nan"),
        ({"scale": "1"}, r"argument 'scale': expected a float, got str"),
        ({"causal": 1}, r"argument 'causal': expected a bool, got 1"),
        (
            {"mask": np.ones((5, 6))},
            r"argument 'mask': expected dtype bool \(True = visible\), got float64",
        ),
        (
            {"mask": np.ones((5, 7), dtype=bool)},
            r"argument 'mask': expected a shape broadcastable to B x Hq x S1 x S2 = \(1, 4, 5, 6\), got \(5, 7\)",
        ),
        ({"block_q": 0}, r"argument 'block_q': expected an integer >= 1, got 0"),
        ({"scale_at": "k"}, r"argument 'scale_at': expected one of"),
    ],
)
def test_option_errors(kernel, options, message):
    with pytest.raises(InputError, match=message):
        call(kernel, *good(), **options)


@pytest.mark.parametrize("kernel", ["flash", "pasa"])
@pytest.mark.parametrize("block_k", [0, -3, 2.5, True])
def test_block_k_must_be_a_positive_integer(kernel, block_k):
    with pytest.raises(InputError, match="argument 'block_k': expected an integer >= 1"):
        call(kernel, *good(), block_k=block_k)


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.5, 1.5, float("nan")])
def test_beta_outside_the_open_unit_interval(beta):
    with pytest.raises(
        InputError, match=r"argument 'beta': expected a value in the open interval \(0, 1\)"
    ):
        call("pasa", *good(), beta=beta)


def test_ragged_mode_is_checked():
    with pytest.raises(
        InputError,
        match=r"argument 'ragged': expected one of \('true-length', 'pad', 'authors'\), got 'crop'",
    ):
        call("pasa", *good(), ragged="crop")


def test_unknown_profile_and_kernel():
    with pytest.raises(ValueError, match="argument 'profile'"):
        KERNELS["pasa"](*good(), profile="fp12")
    from pasa_ref.kernels import get

    with pytest.raises(ValueError, match="argument 'kernel': expected one of"):
        get("turbo")
