"""Profiles are data (specs/profiles.toml, PASA-PROF-1): loaded, validated, consistent."""

from __future__ import annotations

import pytest

from pasa_ref import beta, profiles

REQUIRED = ["fp32", "fp16-mixed", "fp16-full", "bf16-mixed", "bf16-full", "bf16-in-fp16"]
VALID = {
    "description": "x",
    "input": "fp16",
    "matmul_operand": "fp16",
    "matmul_accumulate": "fp32",
    "matmul_output": "fp16",
    "vector": "fp16",
    "statistics": "fp16",
    "accumulator": "fp16",
    "output": "fp16",
    "scale_at": "shift",
    "beta": 0.9375,
    "block_q": 128,
    "block_k": 128,
}


def test_bundled_profiles_include_the_required_ones():
    assert set(REQUIRED) <= set(profiles.names())


def test_fp16_full_rounds_everything_to_fp16_and_accumulates_gemms_in_fp32():
    p = profiles.get("fp16-full")
    assert p.matmul_accumulate.name == "fp32"
    for field in ("matmul_operand", "matmul_output", "vector", "statistics", "accumulator"):
        assert getattr(p, field).name == "fp16", field


def test_bf16_in_fp16_reads_bf16_and_computes_in_fp16():
    p = profiles.get("bf16-in-fp16")
    assert p.input.name == "bf16" and p.matmul_operand.name == "fp16" and p.vector.name == "fp16"


@pytest.mark.parametrize("name", REQUIRED)
def test_profile_beta_is_the_rounding_aware_fixed_point_of_its_operand_format(name):
    """PASA-BETA-1: each default beta is (to 6 digits) a fixed point of the authors' map for
    the profile's operand format and block length."""
    p = profiles.get(name)
    after = beta.fixed_point_map(p.beta, p.block_k, p.matmul_operand)
    assert after == pytest.approx(p.beta, rel=1e-6)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"input": "fp8"}, r"profile 'bad', field 'input': expected one of .* got 'fp8'"),
        ({"scale_at": "k"}, r"field 'scale_at': expected one of .* got 'k'"),
        ({"beta": 1.0}, r"field 'beta': expected a float in \(0, 1\), got 1.0"),
        ({"beta": "0.5"}, r"field 'beta': expected a float in \(0, 1\), got '0.5'"),
        ({"block_k": 0}, r"field 'block_k': expected an integer >= 1, got 0"),
        ({"block_q": True}, r"field 'block_q': expected an integer >= 1, got True"),
        ({"colour": "red"}, r"unknown field\(s\) \['colour'\]"),
    ],
)
def test_malformed_profile_names_the_field(change, message):
    with pytest.raises(profiles.ProfileError, match=message):
        profiles.parse({"bad": {**VALID, **change}})


def test_missing_field_is_named():
    table = dict(VALID)
    del table["vector"]
    with pytest.raises(profiles.ProfileError, match="profile 'bad': missing field 'vector'"):
        profiles.parse({"bad": table})


def test_load_reads_a_user_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        "[mine]\n" + "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in VALID.items())
    )
    loaded = profiles.load(path)
    assert loaded["mine"].vector.name == "fp16"


def test_unknown_profile_name_is_a_clear_error():
    with pytest.raises(ValueError, match="argument 'profile': expected one of .* got 'fp17'"):
        profiles.get("fp17")


def test_spec_table_matches_the_profiles_file():
    """PASA-PROF-2: the spec's table of rounding points is the profiles file, row by row."""
    from importlib import resources

    spec = resources.files("pasa_ref.specs").joinpath("pasa-spec.md").read_text()
    rows = {}
    for line in spec.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 12 and cells[0] in profiles.names():
            rows[cells[0]] = cells
    assert set(rows) == set(profiles.names())
    for name, cells in rows.items():
        p = profiles.get(name)
        expected = [
            name,
            p.input.name,
            p.matmul_operand.name,
            p.matmul_accumulate.name,
            p.matmul_output.name,
            p.vector.name,
            p.statistics.name,
            p.accumulator.name,
            p.output.name,
            p.scale_at,
            repr(p.beta),
            f"{p.block_q} x {p.block_k}",
        ]
        assert cells == expected, name
