"""Case files (PASA-CASE): every dtype round-trips bit for bit, without pickles."""

from __future__ import annotations

import json

import ml_dtypes
import numpy as np
import pytest

from pasa_ref.cases import Case, CaseFileError, load_output, save_output


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.float64])
def test_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 3, 4)).astype(dtype) for _ in range(3))
    mask = rng.random((1, 1, 3, 3)) < 0.5
    case = Case(q, k, v, causal=True, mask=mask, scale=0.25, label="demo")
    path = case.save(tmp_path / "c1", {"objective": 1.5})
    loaded = Case.load(path)
    for name in "qkv":
        got, want = getattr(loaded, name), getattr(case, name)
        assert got.dtype == want.dtype
        assert got.tobytes() == want.tobytes()
    assert loaded.causal and loaded.scale == 0.25 and loaded.label == "demo"
    np.testing.assert_array_equal(loaded.mask, mask)
    assert json.loads(path.with_suffix(".json").read_text())["objective"] == 1.5
    with np.load(path, allow_pickle=False) as data:  # readable without pickles
        assert set(data.files) == {"q", "k", "v", "dtype", "causal", "scale", "mask"}


def test_default_scale_and_no_mask(tmp_path):
    q = np.zeros((1, 1, 2, 2), np.float16)
    loaded = Case.load(Case(q, q, q).save(tmp_path / "c"))
    assert loaded.scale is None and loaded.mask is None and not loaded.causal


def test_output_round_trip(tmp_path):
    out = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3).astype(ml_dtypes.bfloat16)
    path = save_output(tmp_path / "o", out)
    loaded = load_output(path)
    assert loaded.dtype == out.dtype and loaded.tobytes() == out.tobytes()
    wide = load_output(save_output(tmp_path / "wide", out.astype(np.float32)))
    assert wide.dtype == np.float32  # read as written: the certifier judges the dtype


def test_malformed_files_are_named(tmp_path):
    with pytest.raises(CaseFileError, match="not found"):
        Case.load(tmp_path / "missing")
    np.savez(tmp_path / "bad.npz", q=np.zeros((1, 1, 1, 1)))
    with pytest.raises(CaseFileError, match=r"missing member\(s\) \['k', 'v', 'dtype'"):
        Case.load(tmp_path / "bad.npz")
