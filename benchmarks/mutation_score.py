"""Mutation testing of the certification suite itself (issue 13, item 4): how many small
mistakes in the reference kernels' source does `pasa certify` catch?

    python benchmarks/mutation_score.py [--kernel pasa|flash]... [--profile KERNEL=PROFILE]...
        [--max-mutants N] [--sample-seed S] [--index N]... [--jobs J] [--timeout S] [--list]
        [--json FILE]

For each kernel (pasa_ref/kernels/pasa.py, flash.py) the mutator below parses the source and
makes one mutant per applicable change:

    operator     + <-> -, * <-> /, unary minus removed
    comparison   < <-> <=, > <-> >=, == <-> !=
    constant     an int n -> n + 1, a float x -> x + 1 (inside function bodies; docstrings
                 and string constants are left alone)
    rounding     a rounding point removed: ar.stat(x), ar.acc(x), ar.vector(x), ar.output(x),
                 ar.gemm_operand(x, F), ar.constant(c, F), ar.from_input(x) -> x
    index        a slice bound moved by one: a:b -> a:b - 1, a + 1:b
    swap         two neighbouring positional arguments of a call exchanged

Each mutant is written as its own module `kernel.py` in a temporary package (it imports
pasa_ref as the original does; the suite and its reference kernel stay unmodified) and
certified through the in-process API `pasa_ref.certify.runner.certify(..., level, fail_fast=
True)` in the kernel's profile (the original must be certified there: pasa in fp16-full,
flash in bf16-mixed by default: flash is held to the pasa yardstick and fails fp16-full, and
one fp16-mixed level-2 draw; the tool checks the original first and stops if it is not).
A mutant is

    killed-1     rejected at level 1 (a mutant that cannot be imported counts: it is rejected;
                 an error of this tool is never counted as a kill)
    killed-2     certified at level 1, rejected at level 2
    equivalent   certified at level 2 and bit-identical to the original on every case of the
                 level-2 plans of seeds 0 and 1 (about 130 cases: edge, masks, grid, benign,
                 adversarial and correlated draws, metamorphic bases)
    live         certified at level 2 and different somewhere: a gap of the suite, or a
                 variant that conforms (removing a rounding point can make a kernel more
                 accurate); listed with its largest deviation from the original in ulps of the
                 output format at the output's scale, and both kernels' errors against the
                 oracle on that case

The score is killed / (total - equivalent). --max-mutants samples that many mutants per
kernel (uniformly, --sample-seed) when the machine is too slow for all of them.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KERNELS = {
    "pasa": ROOT / "pasa_ref" / "kernels" / "pasa.py",
    "flash": ROOT / "pasa_ref" / "kernels" / "flash.py",
}
DEFAULT_PROFILES = {"pasa": "fp16-full", "flash": "bf16-mixed"}
ROUNDING_POINTS = ("stat", "acc", "vector", "output", "gemm_operand", "constant", "from_input")
EQUIVALENCE_SEEDS = (0, 1)

# -- the mutator ---------------------------------------------------------------------------

_OPERATORS: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}
_COMPARISONS: dict[type, type] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
}


@dataclass(frozen=True)
class Mutant:
    """One change of a kernel's source: its kind, where (line), what, and the new source."""

    kernel: str
    index: int
    kind: str
    line: int
    description: str
    source: str


def _is_docstring(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    parent = parents.get(node)
    return (
        isinstance(parent, ast.Expr)
        and isinstance(node, ast.Constant)
        and isinstance(node.value, str)
    )


def _inside_function(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            return True
    return False


def _in_annotation(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Annotations are strings under `from __future__ import annotations`: not code."""
    while node in parents:
        parent = parents[node]
        if isinstance(parent, ast.arg) and node is parent.annotation:
            return True
        if isinstance(parent, ast.FunctionDef) and node is parent.returns:
            return True
        node = parent
    return False


Change = tuple[str, str, Callable[[ast.AST], ast.AST]]  # kind, description, node -> new node


def _changes(node: ast.AST) -> Iterator[Change]:
    """Every mutation of one node, as functions producing the replacement node."""
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        new = _OPERATORS[type(node.op)]
        yield (
            "operator",
            f"{type(node.op).__name__} -> {new.__name__}",
            lambda n: ast.BinOp(n.left, new(), n.right),
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        yield "operator", "unary minus removed", lambda n: n.operand
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARISONS:
        new = _COMPARISONS[type(node.ops[0])]
        yield (
            "comparison",
            f"{type(node.ops[0]).__name__} -> {new.__name__}",
            lambda n: ast.Compare(n.left, [new()], n.comparators),
        )
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        value = node.value + 1
        yield "constant", f"{node.value!r} -> {value!r}", lambda n: ast.Constant(value)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ROUNDING_POINTS
        and isinstance(node.func.value, ast.Name)
        and node.args
    ):
        yield "rounding", f"ar.{node.func.attr}(x) -> x", lambda n: n.args[0]
    if isinstance(node, ast.Slice):
        one = ast.Constant(1)
        if node.upper is not None:
            yield (
                "index",
                "slice upper bound - 1",
                lambda n: ast.Slice(n.lower, ast.BinOp(n.upper, ast.Sub(), one), n.step),
            )
        if node.lower is not None:
            yield (
                "index",
                "slice lower bound + 1",
                lambda n: ast.Slice(ast.BinOp(n.lower, ast.Add(), one), n.upper, n.step),
            )
    if isinstance(node, ast.Call):
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        for i in range(len(positional) - 1):

            def swap(n: ast.Call, i: int = i) -> ast.Call:
                args = list(n.args)
                args[i], args[i + 1] = args[i + 1], args[i]
                return ast.Call(n.func, args, n.keywords)

            yield "swap", f"arguments {i + 1} and {i + 2} swapped", swap


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def mutants(kernel: str, path: Path) -> list[Mutant]:
    """Every mutant of one kernel's source, in source order (nodes are addressed by their
    position in ast.walk order, which a deep copy of the tree keeps)."""
    tree = ast.parse(path.read_text())
    parents = _parents(tree)
    found: list[Mutant] = []
    for position, node in enumerate(ast.walk(tree)):
        if not _inside_function(node, parents) or _is_docstring(node, parents):
            continue
        if _in_annotation(node, parents):
            continue
        for kind, description, change in _changes(node):
            mutated = copy.deepcopy(tree)
            _replace(mutated, position, change)
            source = ast.unparse(ast.fix_missing_locations(mutated))
            line = getattr(node, "lineno", getattr(parents[node], "lineno", 0))
            text = f"line {line}: {description}: {ast.unparse(node)[:70]}"
            found.append(Mutant(kernel, len(found), kind, line, text, source))
    return [m for m in found if _compiles(m.source)]


def _replace(tree: ast.AST, position: int, change: Callable[[ast.AST], ast.AST]) -> None:
    """Replace the node at walk position `position` of `tree` by change(node)."""
    node = next(n for i, n in enumerate(ast.walk(tree)) if i == position)
    parent = _parents(tree)[node]
    new = change(node)
    for field, value in ast.iter_fields(parent):
        if value is node:
            setattr(parent, field, new)
            return
        if isinstance(value, list) and any(item is node for item in value):
            value[next(i for i, item in enumerate(value) if item is node)] = new
            return
    raise AssertionError("node not found in its parent")


def _compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec")
    except SyntaxError:
        return False
    return True


# -- certifying one mutant -----------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    kernel: str
    index: int
    kind: str
    description: str
    status: str  # killed-1, killed-2, equivalent, live
    detail: str
    seconds: float


def _install(mutant: Mutant, directory: Path) -> str:
    """Write the mutant as package mutant_<kernel>_<index>; returns the backend name."""
    package = directory / f"mutant_{mutant.kernel}_{mutant.index}"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "kernel.py").write_text(mutant.source)
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    return f"{package.name}.kernel:attention"


def _failed_clauses(outcome) -> str:
    return ", ".join(
        f"{c['id']} on {c['worst']['case'] if c.get('worst') else '?'}"
        for c in outcome.document["clauses"]
        if c["verdict"] == "FAIL"
    )


_PLANS: dict[tuple[str, int, int], list] = {}


def plan(profile_name: str, level: int, seed: int = 0) -> list:
    """The items of a level, computed once per (profile, level, seed) before any mutant is
    imported and shared by every mutant (worker processes inherit them): hypothesis mixes
    constants read from the source of the local modules imported so far into its draws, so
    a plan drawn after importing a mutant would differ from the original's."""
    key = (profile_name, level, seed)
    if key not in _PLANS:
        from pasa_ref import profiles
        from pasa_ref.certify import levels, thresholds

        _PLANS[key] = levels.plan(level, profiles.get(profile_name), seed, thresholds.load())
    return _PLANS[key]


def sample(profile_name: str) -> list:
    """The equivalence sample: every case of the level-2 plans of EQUIVALENCE_SEEDS and their
    metamorphic transformations."""
    return [
        case
        for seed in EQUIVALENCE_SEEDS
        for item in plan(profile_name, 2, seed)
        for case in (item.case, *(t.case for t in item.relations))
    ]


def certify_plan(name: str, profile_name: str, level: int, timeout: float, out: Path):
    """The certification of `name` on the shared plan (pasa_ref.certify.runner.run with
    fail_fast), under the declaration the kernel carries (the bundled kernels' and their
    mutants': the yardstick of their class, PASA-CERT-7 and -8)."""
    from pasa_ref import profiles
    from pasa_ref.certify import thresholds
    from pasa_ref.certify.backend import Caller
    from pasa_ref.certify.runner import BackendSource, declared_by, run

    prof = profiles.get(profile_name)
    with Caller(name, prof.name, timeout=timeout, isolate=False) as caller:
        return run(
            plan(profile_name, level),
            BackendSource(caller, prof),
            profile=prof,
            level=level,
            seed=0,
            out=out,
            conf=thresholds.load(),
            fail_fast=True,
            declaration=declared_by(None, caller.identity),
        )


def _call(fn, case, profile: str) -> np.ndarray:
    import math

    kwargs = case.call_kwargs()
    if kwargs["scale"] is None:
        kwargs["scale"] = 1.0 / math.sqrt(case.q.shape[-1])
    with np.errstate(all="ignore"):
        return np.asarray(
            fn(case.q.copy(), case.k.copy(), case.v.copy(), profile=profile, **kwargs)
        )


_ORIGINAL_OUTPUTS: dict[tuple[str, str], list[np.ndarray]] = {}


def original_outputs(kernel: str, profile: str) -> list[np.ndarray]:
    """The unmodified kernel's outputs on the equivalence sample (computed once; workers
    inherit them)."""
    if (kernel, profile) not in _ORIGINAL_OUTPUTS:
        import importlib

        original = importlib.import_module(f"pasa_ref.kernels.{kernel}").attention
        _ORIGINAL_OUTPUTS[kernel, profile] = [
            _call(original, case, profile) for case in sample(profile)
        ]
    return _ORIGINAL_OUTPUTS[kernel, profile]


def deviation(fn, kernel: str, profile: str) -> tuple[bool, str]:
    """Whether fn is bit-identical to the original kernel on every case of the sample; else
    where it differs most, measured in ulps of the output format at the output's scale
    (max |O*|), with both kernels' errors against the oracle on that case (NaN against a
    number: inf)."""
    from pasa_ref import profiles

    out_format = profiles.get(profile).output
    identical, worst, where = True, -1.0, None
    pairs = zip(sample(profile), original_outputs(kernel, profile), strict=True)
    for case, expected in pairs:
        try:
            got = _call(fn, case, profile)
        except Exception as error:  # noqa: BLE001 - a mutant may raise anywhere
            return False, f"raises {type(error).__name__} on {case.label}"
        if got.shape == expected.shape and got.tobytes() == expected.tobytes():
            continue
        if got.shape != expected.shape:
            return False, f"shape {got.shape} instead of {expected.shape} on {case.label}"
        identical = False
        gap = _ulps(got, expected, out_format)
        if gap > worst:
            worst, where = gap, (case, got, expected)
    if identical:
        return True, "bit-identical"
    case, got, expected = where
    mutant_error, original_error = _errors(case, got, expected)
    return False, (
        f"max {worst:.3g} ulp on {case.label} (error / max|O*|: mutant {mutant_error:.2e}, "
        f"original {original_error:.2e})"
    )


def _ulps(got: np.ndarray, expected: np.ndarray, out_format) -> float:
    """max |got - expected| in ulps of the output format at max |expected|; inf where one is
    NaN or infinite and the other is not."""
    a, b = got.astype(np.float64), expected.astype(np.float64)
    if ((np.isnan(a) != np.isnan(b)) | (np.isinf(a) != np.isinf(b))).any():
        return float("inf")
    finite = np.isfinite(b)
    scale = np.abs(b[finite]).max(initial=out_format.smallest_normal)
    ulp = float(np.spacing(out_format.to_storage(np.array(scale))).astype(np.float64))
    with np.errstate(invalid="ignore"):
        return float(np.nan_to_num(np.abs(a - b)[finite] / ulp, nan=0.0).max(initial=0.0))


def _errors(case, got: np.ndarray, expected: np.ndarray) -> tuple[float, float]:
    """max |O - O*| / max |O*| of the mutant and of the original on one case."""
    from pasa_ref import oracle

    truth = oracle.attention(case.q, case.k, case.v, **case.call_kwargs()).output
    scale = max(float(np.abs(truth).max()), np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        return tuple(
            float(np.abs(x.astype(np.float64) - truth).max()) / scale for x in (got, expected)
        )


def judge(mutant: Mutant, profile: str, directory: str, timeout: float) -> Result:
    """Certify one mutant at level 1, then 2; classify the survivors."""
    import importlib

    from pasa_ref.certify.backend import BackendError
    from pasa_ref.certify.declaration import DeclarationError

    start = time.perf_counter()
    try:
        name = _install(mutant, Path(directory))
        for level in (1, 2):
            out = Path(directory) / f"cert-{mutant.kernel}-{mutant.index}-{level}"
            outcome = certify_plan(name, profile, level, timeout, out)
            if not outcome.certified:
                return Result(
                    mutant.kernel,
                    mutant.index,
                    mutant.kind,
                    mutant.description,
                    f"killed-{level}",
                    _failed_clauses(outcome),
                    time.perf_counter() - start,
                )
    except (BackendError, DeclarationError) as error:  # an unloadable mutant is rejected
        return Result(
            mutant.kernel,
            mutant.index,
            mutant.kind,
            mutant.description,
            "killed-1",
            f"{type(error).__name__}: {error}"[:120],
            time.perf_counter() - start,
        )
    module = importlib.import_module(name.split(":")[0])
    same, detail = deviation(module.attention, mutant.kernel, profile)
    return Result(
        mutant.kernel,
        mutant.index,
        mutant.kind,
        mutant.description,
        "equivalent" if same else "live",
        detail,
        time.perf_counter() - start,
    )


def _check_original(kernel: str, profile: str, timeout: float, directory: Path) -> None:
    """The unmodified kernel must be certified on both plans, or every mutant is 'killed'."""
    for level in (1, 2):
        outcome = certify_plan(
            f"pasa_ref.kernels.{kernel}:attention",
            profile,
            level,
            timeout,
            directory / f"original-{kernel}-{level}",
        )
        if not outcome.certified:
            raise SystemExit(
                f"argument --profile: the original {kernel} kernel is not certified "
                f"in {profile} at level {level} ({_failed_clauses(outcome)})"
            )


# -- the report ----------------------------------------------------------------------------

STATUSES = ("killed-1", "killed-2", "equivalent", "live")


def summary(results: list[Result]) -> dict[str, int | float]:
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    killed = counts["killed-1"] + counts["killed-2"]
    judged = len(results) - counts["equivalent"]
    return {"total": len(results), **counts, "score": killed / judged if judged else float("nan")}


def report(results: list[Result], population: dict[str, int], profiles_used: dict[str, str]) -> str:
    lines = [
        (
            "| kernel | profile | mutants (sampled of all) | killed at level 1 | killed at level 2 "
            "| equivalent | live | score |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for kernel, size in population.items():
        mine = [r for r in results if r.kernel == kernel]
        s = summary(mine)
        lines.append(
            f"| {kernel} | {profiles_used[kernel]} | {s['total']} of {size} | "
            f"{s['killed-1']} | {s['killed-2']} | {s['equivalent']} | {s['live']} | "
            f"{s['score']:.3f} |"
        )
    by_kind: dict[str, list[Result]] = {}
    for r in results:
        by_kind.setdefault(r.kind, []).append(r)
    lines += [
        "",
        "| kind | mutants | killed-1 | killed-2 | equivalent | live |",
        "|---|---|---|---|---|---|",
    ]
    for kind, rs in sorted(by_kind.items()):
        s = summary(rs)
        lines.append(
            f"| {kind} | {s['total']} | {s['killed-1']} | {s['killed-2']} | "
            f"{s['equivalent']} | {s['live']} |"
        )
    live = [r for r in results if r.status == "live"]
    lines += ["", f"Live survivors ({len(live)}):"]
    lines += [f"- {r.kernel} #{r.index} ({r.kind}) {r.description}; {r.detail}" for r in live]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kernel", action="append", choices=sorted(KERNELS))
    parser.add_argument("--profile", action="append", default=[], metavar="KERNEL=PROFILE")
    parser.add_argument("--max-mutants", type=int, default=None)
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument(
        "--index",
        type=int,
        action="append",
        default=[],
        help="only the mutants with these indices (with one --kernel)",
    )
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per kernel call")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--json", type=Path, default=None, help="write every result here")
    args = parser.parse_args(argv)
    kernels = args.kernel or sorted(KERNELS)
    chosen = dict(DEFAULT_PROFILES)
    for entry in args.profile:
        kernel, _, profile = entry.partition("=")
        if kernel not in KERNELS or not profile:
            parser.error(
                f"argument --profile: expected KERNEL=PROFILE with KERNEL in "
                f"{sorted(KERNELS)}, got {entry!r}"
            )
        chosen[kernel] = profile
    population, selected = {}, []
    for kernel in kernels:
        every = mutants(kernel, KERNELS[kernel])
        population[kernel] = len(every)
        if args.index:
            every = [m for m in every if m.index in args.index]
        if args.max_mutants is not None and args.max_mutants < len(every):
            every = sorted(
                random.Random(args.sample_seed).sample(every, args.max_mutants),
                key=lambda m: m.index,
            )
        selected += every
    if args.list:
        for m in selected:
            print(f"{m.kernel} #{m.index} {m.kind}: {m.description}")
        return 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pasa-mutants-") as directory:
        for kernel in kernels:
            _check_original(kernel, chosen[kernel], args.timeout, Path(directory))
            original_outputs(kernel, chosen[kernel])
        jobs = [(m, chosen[m.kernel], directory, args.timeout) for m in selected]
        if args.jobs > 1:
            with ProcessPoolExecutor(args.jobs) as pool:
                results = list(pool.map(judge, *zip(*jobs, strict=True)))
        else:
            results = [judge(*job) for job in jobs]
    print(report(results, population, chosen))
    print(f"\n{len(results)} mutants in {time.perf_counter() - start:.0f} s with {args.jobs} jobs")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
