"""Kernel declarations (specs/certification.md, PASA-CERT-7; specs/declaration.schema.json):
the parser and the schema agree, plans are generated inside the declared scope, cases
outside it are not applicable (counted, listed, never called), declared departures from the
spec are certified "with exceptions", and the batch cases catch batch and head offsets.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pasa_ref import profiles, strategies
from pasa_ref.certify import casefiles, declaration, generators, levels, thresholds
from pasa_ref.certify.declaration import Declaration, DeclarationError, Range, Support
from pasa_ref.certify.runner import certify
from pasa_ref.cli import main
from tests.test_certify import certificate, certify_items

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "specs" / "declaration.schema.json").read_text())
CERTIFICATE_SCHEMA = json.loads((ROOT / "specs" / "certificate.schema.json").read_text())
FIXED_TILES = ROOT / "tests" / "declarations" / "fixed-tiles.toml"

VALID = [
    {},
    {"schema": "pasa-ref/declaration/1", "name": "torch sdpa flash"},
    {"algorithm": {"class": "softmax"}},
    {"algorithm": {"class": "pasa", "beta": 0.984497, "block_k": 128, "ragged": "authors"}},
    {"algorithm": {"beta": 0.5, "scale": "scores", "block_q": 64}},
    {"supports": {"mask": False, "causal": "top-left", "gqa": False, "mqa": True}},
    {"supports": {"causal": False, "dv_ne_d": False, "head_dim": {"values": [64, 128]}}},
    {"supports": {"seq_k": {"min": 2, "multiple_of": 128}, "batch": {"max": 64}}},
    {"supports": {"causal": True, "value_dim": {"min": 8, "max": 256, "multiple_of": 8}}},
    {"supports": {"profiles": ["fp16-mixed", "bf16-mixed"]}},
    {"conventions": {"fully_masked_rows": "nan", "subnormals": "flush-to-zero"}},
    {"conventions": {"fully_masked_rows": "unspecified"}},
]
INVALID = [
    [],
    {"schema": "pasa-ref/declaration/2"},
    {"name": 3},
    {"colour": "blue"},
    {"algorithm": {"class": "linear"}},
    {"algorithm": {"class": "softmax", "beta": 0.9}},
    {"algorithm": {"beta": 1.0}},
    {"algorithm": {"beta": 0}},
    {"algorithm": {"beta": True}},
    {"algorithm": {"block_k": 0}},
    {"algorithm": {"block_k": "128"}},
    {"algorithm": {"ragged": "zeros"}},
    {"algorithm": []},
    {"supports": {"mask": "no"}},
    {"supports": {"causal": "bottom-left"}},
    {"supports": {"head_dim": [64, 128]}},
    {"supports": {"head_dim": {"values": []}}},
    {"supports": {"head_dim": {"values": [64, 0]}}},
    {"supports": {"head_dim": {"values": [64], "min": 8}}},
    {"supports": {"seq_k": {"multiple": 128}}},
    {"supports": {"batch": {"max": -1}}},
    {"supports": {"profiles": []}},
    {"supports": {"profiles": ["fp8"]}},
    {"supports": {"dtypes": ["float16"]}},
    {"conventions": {"fully_masked_rows": 0}},
    {"conventions": {"subnormals": "daz"}},
]


def parses(table) -> bool:
    try:
        declaration.from_mapping(table)
    except DeclarationError:
        return False
    return True


@pytest.mark.parametrize("table", VALID + INVALID, ids=lambda t: json.dumps(t)[:60])
def test_schema_and_parser_agree(table):
    valid = jsonschema.Draft202012Validator(SCHEMA).is_valid(table)
    assert valid == parses(table) == (table in VALID)


def test_schema_is_well_formed_and_names_every_profile():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    items = SCHEMA["properties"]["supports"]["properties"]["profiles"]["items"]
    assert items["enum"] == profiles.names()


def test_errors_name_the_key_the_expected_and_the_actual_value(tmp_path):
    with pytest.raises(DeclarationError, match=r"'supports.head_dim.values'.*got \[\]"):
        declaration.from_mapping({"supports": {"head_dim": {"values": []}}})
    with pytest.raises(DeclarationError, match=r"'algorithm.beta'.*\(0, 1\), got 1.5"):
        declaration.from_mapping({"algorithm": {"beta": 1.5}})
    with pytest.raises(DeclarationError, match=r"no size is a multiple of 128 between 1 and 100"):
        declaration.from_mapping({"supports": {"seq_k": {"max": 100, "multiple_of": 128}}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[supports]\nmask = 'no'\n")
    with pytest.raises(DeclarationError, match=rf"{bad}.*'supports.mask'.*got 'no'"):
        declaration.load(bad)


@pytest.mark.parametrize("table", VALID, ids=lambda t: json.dumps(t)[:60])
def test_mapping_round_trips(table):
    parsed = declaration.from_mapping(table)
    again = declaration.from_mapping(parsed.mapping(), source=parsed.source)
    assert again == parsed


def test_the_callable_the_file_and_the_default(tmp_path):
    from tests import declared_backends

    assert declaration.of(declared_backends.flash_no_mask_undeclared) is None
    carried = declaration.resolve(None, declared_backends.flash_fixed_tiles)
    from_file = declaration.resolve(FIXED_TILES, declared_backends.flash_no_mask)
    assert carried.source == "attribute" and from_file.source == str(FIXED_TILES)
    assert carried.supports == from_file.supports  # the TOML beside it says the same
    assert declaration.resolve(None, print) == Declaration()
    sent = declaration.resolve(None, declared_backends.flash_fixed_tiles.pasa_declaration)
    assert sent == carried  # the attribute's value as an isolated child sends it back
    assert tomllib.loads(FIXED_TILES.read_text())["algorithm"]["class"] == "softmax"


# -- sizes and shapes inside a scope --------------------------------------------------------

ranges = st.one_of(
    st.builds(lambda v: Range(values=tuple(sorted(set(v)))),
              st.lists(st.integers(1, 300), min_size=1, max_size=4)),
    st.builds(lambda low, span, m: Range(min=low, max=None if span is None else low + span,
                                         multiple_of=m),
              st.integers(1, 200), st.one_of(st.none(), st.integers(200, 400)),
              st.sampled_from([1, 8, 64, 128])),
)


@given(ranges, st.integers(1, 600))
def test_range_fit_is_an_allowed_size_nearest_to_the_given(allowed, size):
    fitted = allowed.fit(size)
    members = allowed.members(1, 2000)
    assert fitted in allowed and fitted in members
    assert all(abs(m - size) >= abs(fitted - size) for m in members)
    assert (allowed.fit(size) == size) == (size in allowed)


supports = st.builds(
    Support,
    mask=st.booleans(),
    causal=st.sampled_from(["bottom-right", "top-left", None]),
    gqa=st.booleans(),
    mqa=st.booleans(),
    dv_ne_d=st.booleans(),
    head_dim=st.sampled_from([Range(), Range(values=(64, 128)), Range(min=8, multiple_of=8)]),
    seq_q=st.sampled_from([Range(), Range(multiple_of=128), Range(max=64)]),
    seq_k=st.sampled_from([Range(), Range(multiple_of=128), Range(min=2, multiple_of=64)]),
    batch=st.sampled_from([Range(), Range(min=2)]),
)


@settings(max_examples=30, deadline=None)
@given(st.data(), supports)
def test_drawn_cases_lie_in_the_declared_scope(data, support):
    case = data.draw(strategies.cases("fp16-mixed", max_seq=256, max_dim=128, support=support))
    assert Declaration(supports=support).applicable(case, "fp16-mixed") is None


@settings(max_examples=10, deadline=None)
@given(supports)
def test_fixed_recipes_are_fitted_into_the_scope(support):
    """Benign (but for causal where it is not declared), metamorphic and batch cases are
    fitted (the grid: test_a_kernel_of_fixed_tiles_gets_a_full_level_2_plan); an edge case
    is not applicable only for a size or feature it tests."""
    prof, declared = profiles.get("fp16-mixed"), Declaration(supports=support)
    fitted = (
        [c for c in generators.benign(prof, support=support) if not c.causal]
        + [generators.metamorphic_base(prof, i, 0, support) for i in range(3)]
        + generators.drawn_batches(prof, 1, support)
    )
    assert [c.label for c in fitted if declared.applicable(c)] == []
    for case in generators.edge(prof, support):
        recipe = generators.EDGE_RECIPES[case.label]
        reason = declared.applicable(case)
        if reason is not None and not recipe.causal and case.mask is None:
            untouched = support.fit(recipe.shape(prof.block_k), keep=recipe.tests)
            assert support.fit(untouched) != untouched, (case.label, reason)


# -- plans and certification inside a scope -------------------------------------------------


def test_a_kernel_of_fixed_tiles_gets_a_full_level_2_plan():
    """No masks, D in {64, 128}, S1 and S2 multiples of 128: at least 90 applicable level-2
    cases, among them B >= 2 with GQA and MQA, causal and not (issue 10, 13)."""
    prof, declared = profiles.get("fp16-mixed"), declaration.load(FIXED_TILES)
    items = levels.plan(2, prof, 0, thresholds.load(), (), declared)
    inside = [i.case for i in items if declared.applicable(i.case, prof.name) is None]
    assert len(inside) >= 90
    batched = [c for c in inside if c.q.shape[0] >= 2]
    assert len(batched) >= 8
    assert any(1 < c.k.shape[1] < c.q.shape[1] for c in batched)
    assert any(c.k.shape[1] == 1 < c.q.shape[1] for c in batched)
    assert {c.causal for c in batched} == {False, True}
    outside = {i.id for i in items} - {c.label for c in inside}
    assert {"edge-masked-rows", "edge-value-dim", "edge-one-key"} <= outside
    # outside: only cases whose point is a feature the kernel lacks (masks, D = 1, Dv != D,
    # one key, ...) or stored at fixed sizes; every drawn or fitted group lies inside
    assert all(i.case.metadata["group"] in ("edge", "regression", "mask", "correlated")
               for i in items if i.id in outside)


def test_declared_wrapper_is_certified_and_never_called_outside_its_scope(tmp_path):
    """The bundled flash behind a wrapper that raises on explicit masks, Dv != D and head dims
    not multiples of 8: a call outside its scope would fail PASA-CERT-10."""
    outcome = certify(
        "tests.declared_backends:flash_no_mask", profile="fp16-mixed", level=2, out=tmp_path
    )
    doc = certificate(tmp_path)
    jsonschema.validate(doc, CERTIFICATE_SCHEMA)
    contract = next(c for c in doc["clauses"] if c["id"] == "PASA-CERT-10")
    cases = doc["cases"]
    assert cases["not_applicable"] == len(doc["not_applicable"]) > 0
    assert cases["done"] + cases["not_applicable"] == cases["planned"] == doc["plan"]["cases"]
    assert cases["done"] >= 90 and contract["evaluated"] == cases["done"]
    assert contract["verdict"] == "PASS"
    reasons = {skip["case"]: skip["reason"] for skip in doc["not_applicable"]}
    assert reasons["edge-masked-rows"] == "explicit mask"
    assert reasons["edge-head-dim-one"] == "D = 1 outside 8 <= D, D a multiple of 8"
    assert doc["declaration"]["source"] == "attribute"
    assert doc["scope"].startswith("softmax class, no explicit mask")
    md = (tmp_path / "certificate.md").read_text().splitlines()
    assert md[2] == f"Certified for fp16-mixed, {doc['scope']}" and outcome.certified
    assert "## Not applicable" in "\n".join(md)


def test_the_same_kernel_undeclared_is_rejected(tmp_path):
    outcome = certify(
        "tests.declared_backends:flash_no_mask_undeclared",
        profile="fp16-mixed",
        level=1,
        out=tmp_path,
        fail_fast=True,
    )
    contract = next(c for c in outcome.document["clauses"] if c["id"] == "PASA-CERT-10")
    assert not outcome.certified and contract["verdict"] == "FAIL"
    assert "not supported" in contract["worst"]["message"]
    assert outcome.document["cases"]["not_applicable"] == 0


def test_declared_departures_are_certified_with_exceptions(tmp_path):
    declared = declaration.from_mapping(
        {"conventions": {"fully_masked_rows": "unspecified", "subnormals": "flush-to-zero"}}
    )
    prof = profiles.get("fp16-full")
    chosen = [c for c in generators.edge(prof) if c.label in ("edge-one-key", "edge-tiny")]
    outcome = certify_items(
        "pasa_ref.kernels.pasa:attention", "fp16-full",
        [levels.item(c, repeat=True) for c in chosen], tmp_path, declaration=declared,
    )
    doc = certificate(tmp_path)
    assert outcome.certified and len(doc["exceptions"]) == 2
    assert "fully masked rows give unspecified" in doc["exceptions"][0]
    assert (tmp_path / "certificate.md").read_text().startswith(
        "# PASA certificate: CERTIFIED WITH EXCEPTIONS"
    )


# -- batches --------------------------------------------------------------------------------


def test_batch_cases_hold_other_data_in_every_batch_and_head():
    prof = profiles.get("fp16-mixed")
    for case in generators.batches(prof) + generators.drawn_batches(prof, 5):
        b, hq, s1, d = case.q.shape
        assert b >= 2 and s1 % 128 == 0 and case.k.shape[2] % 128 == 0 and d in (64, 128)
        v_means = case.v.astype(np.float64).mean(axis=(2, 3)).ravel()
        assert np.all(np.diff(np.sort(v_means)) > 0.5)  # value offsets 1 apart
        q_sd = case.q.astype(np.float64).std(axis=(2, 3)).ravel()
        assert len(np.unique(np.round(q_sd, 2))) == b * hq


@pytest.mark.parametrize("bug", ["flash_batch_offset", "flash_head_stride"])
def test_batch_cases_catch_offset_bugs(tmp_path, bug):
    prof = profiles.get("fp16-mixed")
    items = [levels.item(c, repeat=False) for c in generators.batches(prof)]
    rejected = certify_items(f"tests.declared_backends:{bug}", "fp16-mixed", items,
                             tmp_path / "bug")
    assert not rejected.certified
    correct = certify_items("pasa_ref.kernels.flash:attention", "fp16-mixed", items,
                            tmp_path / "flash")
    assert correct.certified


# -- the command line -----------------------------------------------------------------------


def test_declare_on_the_command_line(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text("[supports]\nhead_dim = { values = [] }\n")
    result = runner.invoke(main, ["certify", "--declare", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "'supports.head_dim.values'" in result.output
    result = runner.invoke(main, ["gen", "--declare", str(bad), "-o", str(tmp_path / "x")])
    assert result.exit_code == 2 and "'supports.head_dim.values'" in result.output
    cases = tmp_path / "cases"
    result = runner.invoke(
        main, ["gen", "--profile", "fp16-mixed", "--declare", str(FIXED_TILES), "-o", str(cases)]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((cases / "manifest.json").read_text())
    skipped = {entry["id"] for entry in manifest["not_applicable"]}
    assert "edge-masked-rows" in skipped and not (cases / "edge-masked-rows.npz").exists()
    assert {entry["id"] for entry in manifest["cases"]}.isdisjoint(skipped)
    assert manifest["declaration"]["source"] == str(FIXED_TILES)
    assert len(manifest["plan_sha256"]) == 64 and manifest["plan_sha256"] in result.output
    # verify (two cases kept, for time): the manifest's declaration, its not-applicable list
    manifest["cases"] = manifest["cases"][:2]
    (cases / "manifest.json").write_text(json.dumps(manifest))
    outcome = casefiles.verify(cases, tmp_path / "no-outputs", out=tmp_path / "cert")
    doc = certificate(tmp_path / "cert")
    assert doc["declaration"]["source"] == str(FIXED_TILES)
    assert doc["cases"]["not_applicable"] == len(skipped) and doc["cases"]["done"] == 2
    assert doc["plan"]["sha256"] == manifest["plan_sha256"] and not outcome.certified
    contract = next(c for c in doc["clauses"] if c["id"] == "PASA-CERT-10")
    assert contract["worst"]["reproduce"].endswith(f"--declare {FIXED_TILES}")
    result = runner.invoke(
        main, ["verify", str(cases), str(tmp_path), "--declare", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2 and "'supports.head_dim.values'" in result.output
