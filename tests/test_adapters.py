"""The framework adapters (pasa_ref.adapters): the framework-free mapping and discovery
without any framework; torch:math and torch-fn/dlpack on the CPU when torch is installed;
jax:xla on the CPU when JAX is installed (each skipped with the reason otherwise)."""

from __future__ import annotations

import math
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

from pasa_ref import adapters
from pasa_ref.adapters import arguments, discovery
from pasa_ref.adapters.arguments import UnsupportedCall, masking
from pasa_ref.adapters.discovery import AdapterError, Probe
from tests.float64_attention import attention64

BF16 = np.dtype(ml_dtypes.bfloat16)


# --- arguments: causal alignment, masks, GQA, bf16 bits --------------------------------------


def test_bottom_right_is_the_spec_definition():
    for s1, s2 in ((3, 7), (7, 3), (5, 5), (1, 4)):
        expected = [[t <= i + (s2 - s1) for t in range(s2)] for i in range(s1)]
        assert arguments.bottom_right(s1, s2).tolist() == expected


@pytest.mark.parametrize("route", ["bias", "mask", None])
def test_causal_with_equal_lengths_is_the_top_left_flag(route):
    plan = masking((1, 2, 6, 8), (1, 2, 6, 8), causal=True, mask=None, route=route,
                   full_mask=False)
    assert plan == arguments.Masking(True, False, None)


def test_causal_with_unequal_lengths_goes_through_the_route():
    q, k = (2, 4, 3, 8), (2, 2, 7, 8)
    bias = masking(q, k, causal=True, mask=None, route="bias", full_mask=False)
    assert (bias.is_causal, bias.lower_right, bias.mask) == (False, True, None)
    explicit = masking(q, k, causal=True, mask=None, route="mask", full_mask=True)
    assert not explicit.is_causal and not explicit.lower_right
    assert explicit.mask.shape == (2, 4, 3, 7) and explicit.mask.flags.c_contiguous
    assert (explicit.mask == arguments.bottom_right(3, 7)).all()
    with pytest.raises(UnsupportedCall, match="S1 = 3 != S2 = 7"):
        masking(q, k, causal=True, mask=None, route=None, full_mask=False)


def test_explicit_mask_combines_with_causal_by_and():
    rng = np.random.default_rng(0)
    mask = rng.random((2, 1, 5, 9)) < 0.6
    plan = masking((2, 4, 5, 8), (2, 4, 9, 8), causal=True, mask=mask, route=None,
                   full_mask=False)
    assert plan.mask.shape == (2, 1, 5, 9)  # broadcastable layout kept
    assert (plan.mask == (mask & arguments.bottom_right(5, 9))).all()
    low = masking((2, 4, 5, 8), (2, 4, 9, 8), causal=False, mask=mask[0, 0], route=None,
                  full_mask=False)
    assert low.mask.shape == (1, 1, 5, 9) and (low.mask == mask[0, 0]).all()


def test_bad_masks_are_errors_naming_the_argument():
    with pytest.raises(ValueError, match="'mask'.*boolean"):
        masking((1, 1, 2, 4), (1, 1, 3, 4), causal=False, mask=np.ones((2, 3)), route=None,
                full_mask=False)
    with pytest.raises(ValueError, match=r"'mask'.*broadcastable to \(1, 1, 2, 3\)"):
        masking((1, 1, 2, 4), (1, 1, 3, 4), causal=False, mask=np.ones((2, 4), bool),
                route=None, full_mask=False)


def test_gqa_is_detected_and_checked():
    assert arguments.grouped((1, 8, 4, 16), (1, 2, 4, 16))
    assert not arguments.grouped((1, 8, 4, 16), (1, 8, 4, 16))
    with pytest.raises(ValueError, match="Hkv = 3"):
        arguments.grouped((1, 8, 4, 16), (1, 3, 4, 16))


def test_bf16_bits_round_trip_every_pattern():
    patterns = np.arange(2**16, dtype=np.uint16)
    values = patterns.view(BF16)
    bits = arguments.to_bits(values)
    assert bits.dtype == np.int16
    back = arguments.from_bits(bits, bfloat16=True)
    assert back.dtype == BF16 and (back.view(np.uint16) == patterns).all()
    half = np.array([1.5, -0.0], np.float16)
    assert arguments.to_bits(half) is half and arguments.from_bits(half, bfloat16=False) is half
    with pytest.raises(ValueError, match="'x'.*int32"):
        arguments.to_bits(np.zeros(2, np.int32))


# --- discovery, on a numpy kernel with known limits --------------------------------------------


def _numpy_kernel(*, mask_ok=True, route_ok=("mask",), multiple=1, min_seq_k=1, gqa=True,
                  dtypes=(np.float16, BF16), masked_rows="zero"):
    """A probe target with the given limits: computes float64 attention, or raises."""

    def attempt(probe: Probe, route: str | None) -> np.ndarray:
        (q, k, v), kw = probe.arguments()
        if q.dtype not in [np.dtype(d) for d in dtypes]:
            raise TypeError(f"dtype {q.dtype}")
        if kw["mask"] is not None and not mask_ok:
            raise RuntimeError("no masks")
        if kw["causal"] and probe.seq_q != probe.seq_k and route not in route_ok:
            raise RuntimeError("no bottom-right route")
        if probe.head_dim % multiple or probe.seq_k < min_seq_k:
            raise RuntimeError("size")
        if probe.heads_q != probe.heads_kv and not gqa:
            raise RuntimeError("heads")
        out, _ = attention64(q, k, v, scale=kw["scale"], causal=kw["causal"], mask=kw["mask"])
        if masked_rows == "nan":
            out[..., :1, :] = np.nan if kw["mask"] is not None else out[..., :1, :]
        return out.astype(q.dtype)

    return attempt


PROFILES = {"fp16-mixed": np.float16, "bf16-mixed": BF16, "fp32": np.float32}


def test_discovery_measures_each_limit():
    caps = discovery.discover(
        _numpy_kernel(mask_ok=False, route_ok=("bias",), multiple=8, min_seq_k=2, gqa=False),
        PROFILES, ("mask", "bias"), head_dims=range(1, 65),
    )
    assert caps.profiles == ("fp16-mixed", "bf16-mixed")
    assert (caps.mask, caps.causal, caps.route) == (False, "bottom-right", "bias")
    assert (caps.gqa, caps.mqa, caps.dv_ne_d) == (False, False, True)
    assert caps.head_dim == {"min": 8, "multiple_of": 8}
    assert (caps.seq_q_min, caps.seq_k_min) == (1, 2)
    assert caps.fully_masked_rows == "zero"  # rows 0..7 of causal S1 = 16 > S2 = 8
    assert any(r.startswith("fp32: TypeError") for r in caps.rejections)
    declared = caps.declaration("numpy test kernel")
    assert declared["supports"]["seq_k"] == {"min": 2}
    assert declared["algorithm"] == {"class": "softmax"}
    assert declared["supports"]["profiles"] == ["fp16-mixed", "bf16-mixed"]


def test_discovery_without_any_bottom_right_route_declares_top_left():
    caps = discovery.discover(_numpy_kernel(mask_ok=False, route_ok=()), PROFILES,
                              ("mask", "bias"), head_dims=(8, 64))
    assert (caps.causal, caps.route, caps.fully_masked_rows) == ("top-left", None, None)


def test_discovery_reads_the_fully_masked_row_convention():
    caps = discovery.discover(_numpy_kernel(masked_rows="nan"), PROFILES, ("mask",),
                              head_dims=(64,))
    assert caps.fully_masked_rows == "nan"


def test_a_probe_that_breaks_the_kernel_is_an_error_not_an_unsupported_feature():
    broken = []

    def attempt(probe: Probe, route: str | None) -> np.ndarray:
        if broken or probe.masked_key:
            broken.append(True)
            raise RuntimeError("CUDA error: misaligned address")
        return np.zeros((1, probe.heads_q, probe.seq_q, probe.value_dim or probe.head_dim))

    with pytest.raises(AdapterError, match="probing 'mask' left the kernel unusable"):
        discovery.discover(attempt, PROFILES, ("mask",), head_dims=(64,))


def test_a_kernel_that_takes_nothing_is_an_error():
    def attempt(probe: Probe, route: str | None) -> np.ndarray:
        raise RuntimeError("no kernel")

    with pytest.raises(AdapterError, match="every candidate profile"):
        discovery.discover(attempt, PROFILES, ("mask",))


@pytest.mark.parametrize(
    ("accepted", "probed", "expected"),
    [
        (range(1, 257), range(1, 257), {"min": 1, "multiple_of": 1}),
        (range(8, 257, 8), range(1, 300), {"min": 8, "max": 256, "multiple_of": 8}),
        ([8, 16, 24, 32, 40, 48, 64], discovery.SPARSE_HEAD_DIMS,
         {"min": 8, "max": 64, "multiple_of": 8}),
        ([8, 16, 64], discovery.SPARSE_HEAD_DIMS, {"values": [8, 16, 64]}),
        ([64, 128], range(1, 257), {"min": 64, "max": 128, "multiple_of": 64}),
        ([64, 128, 256], range(1, 300), {"values": [64, 128, 256]}),
    ],
)
def test_head_dim_range(accepted, probed, expected):
    assert discovery.head_dim_range(list(accepted), list(probed)) == expected


# --- names and devices ---------------------------------------------------------------------------


def test_importing_the_adapters_imports_no_framework():
    code = ("import sys, pasa_ref, pasa_ref.adapters, pasa_ref.adapters.arguments, "
            "pasa_ref.adapters.discovery; print(sorted({'torch', 'jax'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_device_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(adapters.DEVICE_VARIABLE, raising=False)
    assert adapters.resolve_device() == "cpu"
    monkeypatch.setenv(adapters.DEVICE_VARIABLE, "cuda:1")
    assert adapters.resolve_device() == "cuda:1"
    assert adapters.resolve_device("cpu") == "cpu"
    with pytest.raises(AdapterError, match="'device'.*'gpu'"):
        adapters.resolve_device("gpu")
    monkeypatch.setenv(adapters.DEVICE_VARIABLE, "tpu")
    with pytest.raises(AdapterError, match="'PASA_DEVICE'.*'tpu'"):
        adapters.resolve_device()


def test_names():
    assert adapters.is_adapter("torch:flash") and adapters.is_adapter("dlpack:m:f")
    assert not adapters.is_adapter("pasa_ref.kernels.pasa:attention")
    with pytest.raises(AdapterError, match="starting with one of"):
        adapters.load("cupy:attention", device="cpu")
    with pytest.raises(AdapterError, match="<prefix>:<target>"):
        adapters.load("torch:", device="cpu")


# --- the frameworks, on the CPU ------------------------------------------------------------------

CASES = [  # (Hq, Hkv, S1, S2, D, causal, masked)
    (4, 4, 16, 16, 32, False, False),
    (4, 2, 5, 37, 16, True, False),  # causal bottom-right, S1 < S2, GQA
    (4, 4, 24, 9, 16, True, False),  # S1 > S2: leading rows see no key
    (4, 1, 12, 20, 8, True, True),  # MQA, mask AND causal
]


def _case(dtype, hq, hkv, s1, s2, d, causal, masked, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((2, hq, s1, d)).astype(dtype)
    k = rng.standard_normal((2, hkv, s2, d)).astype(dtype)
    v = rng.standard_normal((2, hkv, s2, d)).astype(dtype)
    mask = None
    if masked:
        mask = rng.random((2, 1, s1, s2)) < 0.7
        mask[:, :, 0, :] = False
    return q, k, v, dict(scale=1 / math.sqrt(d), causal=causal, mask=mask)


@pytest.fixture
def few_head_dims(monkeypatch):
    """Probe 3 head dims instead of 256 (the full probe is exercised on the GPU machine)."""
    from pasa_ref.adapters import torch_sdpa

    monkeypatch.setattr(torch_sdpa, "HEAD_DIMS", (8, 16, 64))
    monkeypatch.setattr(torch_sdpa, "_DISCOVERED", {})


def _check_against_float64(fn, dtype, tolerance):
    for case in CASES:
        q, k, v, kw = _case(dtype, *case)
        out = fn(q, k, v, **kw)
        exact, _ = attention64(q, k, v, **kw)
        assert out.dtype == np.dtype(dtype) and out.shape == exact.shape, case
        seen, _ = attention64(q, k, np.ones_like(v), **kw)  # 1 on rows that see a key, else 0
        err = np.abs(out.astype(np.float64) - exact)[seen[..., 0] == 1]  # conventions aside
        assert err.max() <= tolerance, (case, err.max())


def _top_left_differs(fn, dtype):
    """The adapter aligns causal bottom-right: top-left would differ from float64 here."""
    q, k, v, kw = _case(dtype, 2, 2, 6, 30, 16, True, False)
    exact, _ = attention64(q, k, v, **kw)
    top_left, _ = attention64(q, k, v, scale=kw["scale"], mask=np.tri(6, 30, dtype=bool))
    out = fn(q, k, v, **kw).astype(np.float64)
    assert np.abs(out - exact).max() < 0.01 < np.abs(out - top_left).max()


def test_torch_math_on_cpu_against_float64(few_head_dims):
    pytest.importorskip("torch", reason="torch not installed (pip install 'pasa-ref[torch]')")
    fn = adapters.load("torch:math", device="cpu")
    supports = fn.pasa_declaration["supports"]
    assert supports["mask"] and supports["causal"] == "bottom-right" and supports["gqa"]
    assert "fp16-mixed" in supports["profiles"] and "bf16-mixed" in supports["profiles"]
    _check_against_float64(fn, np.float16, 4e-3)
    _check_against_float64(fn, BF16, 3e-2)
    _top_left_differs(fn, np.float16)


def sdpa_without_masks(query, key, value, attn_mask=None, is_causal=False, scale=None,
                       enable_gqa=False):
    """A torch function with SDPA's arguments that takes no mask of any kind."""
    import torch

    if attn_mask is not None:
        raise NotImplementedError("no attn_mask")
    return torch.nn.functional.scaled_dot_product_attention(
        query, key, value, is_causal=is_causal, scale=scale, enable_gqa=enable_gqa
    )


def numpy_attention_over_dlpack(q, k, v, *, scale, causal, mask):
    """A PASA-CERT-1 function of another array library (numpy, through DLPack)."""
    q, k, v = (np.from_dlpack(x) for x in (q, k, v))
    m = None if mask is None else np.from_dlpack(mask)
    out, _ = attention64(q, k, v, scale=scale, causal=causal, mask=m)
    return out.astype(q.dtype)


def test_torch_fn_declares_what_the_function_takes(few_head_dims):
    pytest.importorskip("torch", reason="torch not installed (pip install 'pasa-ref[torch]')")
    fn = adapters.load("torch-fn:tests.test_adapters:sdpa_without_masks", device="cpu")
    supports = fn.pasa_declaration["supports"]
    assert supports["mask"] is False and supports["causal"] == "top-left"
    q, k, v, kw = _case(np.float16, *CASES[0])
    exact, _ = attention64(q, k, v, **kw)
    assert np.abs(fn(q, k, v, **kw).astype(np.float64) - exact).max() < 4e-3
    with pytest.raises(UnsupportedCall):
        fn(*_case(np.float16, 2, 2, 4, 9, 8, True, False)[:3], scale=0.5, causal=True,
           mask=None)


def test_dlpack_function_is_probed_through_its_library(few_head_dims):
    pytest.importorskip("torch", reason="torch not installed (pip install 'pasa-ref[torch]')")
    fn = adapters.load("dlpack:tests.test_adapters:numpy_attention_over_dlpack", device="cpu")
    supports = fn.pasa_declaration["supports"]
    assert "bf16-mixed" not in supports["profiles"]  # numpy's DLPack has no bfloat16
    assert supports["causal"] == "bottom-right" and supports["mask"]
    _check_against_float64(fn, np.float16, 1e-3)


def test_jax_xla_on_cpu_against_float64(monkeypatch):
    pytest.importorskip("jax", reason="jax not installed (pip install 'pasa-ref[jax]')")
    from pasa_ref.adapters import jax_attention

    monkeypatch.setattr(jax_attention, "HEAD_DIMS", (8, 16, 32, 64))  # compiles per shape
    monkeypatch.setattr(jax_attention, "_DISCOVERED", {})
    fn = adapters.load("jax:xla", device="cpu")
    supports = fn.pasa_declaration["supports"]
    assert supports["causal"] == "bottom-right" and supports["mask"] and supports["gqa"]
    assert "bf16-mixed" in supports["profiles"]
    _check_against_float64(fn, BF16, 3e-2)
    _top_left_differs(fn, BF16)


def test_every_static_declaration_is_a_valid_declaration():
    declaration = pytest.importorskip(
        "pasa_ref.certify.declaration", reason="the declaration module is not merged yet"
    )
    from pasa_ref.adapters import jax_attention, torch_sdpa

    for name, caps in [*torch_sdpa.STATIC.items(), *jax_attention.STATIC.items()]:
        parsed = declaration.from_mapping(caps.declaration(name))
        assert parsed.algorithm.kind == "softmax"
        assert list(parsed.supports.profiles) == list(caps.profiles)
