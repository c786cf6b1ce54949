"""benchmarks/mutation_score.py, the mutation testing of the suite (issue 13): the mutator
makes every kind of change as valid Python that differs from the kernel, and a small sample
of mutants goes through the real pipeline (a temporary package, certification at level 1
against the unmodified suite) and is rejected. The full score is a benchmark, not a test."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tool():
    name = "benchmarks_mutation_score"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "mutation_score.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[name]


@pytest.fixture(scope="module")
def pasa_mutants(tool):
    return tool.mutants("pasa", tool.KERNELS["pasa"])


def test_mutator_makes_every_kind_of_change_as_valid_distinct_python(tool, pasa_mutants):
    source = tool.KERNELS["pasa"].read_text()
    made = pasa_mutants
    kinds = {m.kind for m in made}
    assert kinds == {"operator", "comparison", "constant", "rounding", "index", "swap"}
    original = ast.dump(ast.parse(source))
    for m in made:
        assert ast.dump(ast.parse(m.source)) != original, m.description
    assert len({m.source for m in made}) == len(made)
    rounding = next(m for m in made if m.kind == "rounding")
    assert rounding.source.count("ar.") < ast.unparse(ast.parse(source)).count("ar.")


def test_a_sample_of_mutants_is_rejected_at_level_1(tool, tmp_path):
    """Three mutants of flash (q and k swapped in the call that prepares the inputs; the
    running maximum started at +inf; the score scale applied to the wrong operand) are
    rejected at level 1 in bf16-mixed."""
    made = {m.description: m for m in tool.mutants("flash", tool.KERNELS["flash"])}
    chosen = [
        next(m for d, m in made.items() if "arguments 1 and 2 swapped: tiling.prepare" in d),
        next(m for d, m in made.items() if "unary minus removed: -np.inf" in d),
        next(m for d, m in made.items() if "Eq -> NotEq: scale_at == 'q'" in d),
    ]
    for mutant in chosen:
        result = tool.judge(mutant, "bf16-mixed", str(tmp_path), 30.0)
        assert result.status == "killed-1", (mutant.description, result)
    summary = tool.summary([tool.judge(chosen[0], "bf16-mixed", str(tmp_path), 30.0)])
    assert summary["total"] == 1 and summary["killed-1"] == 1 and summary["score"] == 1.0


def test_the_survivor_of_the_empty_frame_guard_is_now_rejected_at_level_1(
    tool, pasa_mutants, tmp_path
):
    """The live survivor that tests the maximum against +inf instead of -inf before moving a
    frame (PASA-ALG-5) was certified at levels 1 and 2; the level-1 case
    survivor-negative-first-block rejects it."""
    mutant = next(
        m for m in pasa_mutants if "np.where(maximum == np.inf, -np.inf, moved)" in m.source
    )
    result = tool.judge(mutant, "fp16-full", str(tmp_path), 30.0)
    assert result.status == "killed-1" and "survivor-negative-first-block" in result.detail
