"""Which cases each certification level runs, deterministic from (profile, level, seed,
declaration) (specs/certification.md, PASA-CERT-5, -7).

    level 1   a fixed corpus, the same for every seed: the edge corpus (16 cases), the
              correlated-mask cases (8), the survivor cases (1), the benign cases (6), the
              paper's grid (32), the batch cases (4) and the regression corpus (the case files bundled in pasa_ref/certify/corpus/ plus
              any the user adds); every case is called twice (criterion (e)). The cheap,
              diagnostic edge cases run first, so that --fail-fast stops early.
    level 2   level 1, plus `adversarial_cases` problems drawn from
              pasa_ref.strategies.cases(profile) with hypothesis seeded by the seed and 4
              batch cases drawn from the seed (every fourth called twice), then
              `correlated_cases` draws of masks correlated with the values, plus
              `metamorphic_bases` base cases checked under PASA-MR-1..3
    level 3   level 2, plus long sequences (S2 in `long_keys`, up to 16384 keys) and the
              cases pasa_ref.hunt finds in `hunt_budget_s` seconds (HUNTS: inputs where the
              backend is worse than its class reference, and the class reference's largest
              errors); a time budget, the one part of a plan that may depend on the
              machine's speed. The "is it PASA" search (ENVELOPE_HUNT, envelope_cases) is a
              report of its own, not part of a level

Every generated case lies in the declared scope (the declaration's Support): drawn inside it,
or fitted into it size by size; the edge, mask, correlated and regression cases keep the
sizes and features they test and are not applicable where those lie outside it. The counts are in specs/conformance.toml
[certification.levels]. Hypothesis draws with a fixed seed, no example database, the
generate phase only and no "local constants" (see `draw`), so the same seed gives the same
cases with the same hypothesis version wherever the suite runs (the certificate records the
version and the plan's hash).
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.strategies import SearchStrategy

from pasa_ref import hunt, strategies
from pasa_ref.cases import Case
from pasa_ref.certify import evidence, generators
from pasa_ref.certify.backend import Backend, Caller, Identity
from pasa_ref.certify.declaration import Declaration, Support
from pasa_ref.certify.relations import Transformed, transforms
from pasa_ref.certify.thresholds import Conformance
from pasa_ref.profiles import Profile

__all__ = ["LEVELS", "Item", "corpus_cases", "draw", "item", "plan", "plan_hash", "tagged"]

LEVELS = (1, 2, 3)
ADVERSARIAL_REPEAT_EVERY = 4


@dataclass(frozen=True)
class Item:
    """One planned case: call it (twice when `repeat`), and check its relations."""

    case: Case
    repeat: bool
    relations: tuple[Transformed, ...] = ()

    @property
    def id(self) -> str:
        return str(self.case.metadata.get("id", self.case.label))


def item(case: Case, repeat: bool) -> Item:
    """A planned case with the metamorphic transformations its metadata asks for."""
    return Item(case, repeat, tuple(transforms(case)))


def tagged(case: Case, case_id: str, group: str) -> Case:
    """The case with its id (also its label and file stem) and group in the metadata."""
    return replace(case, label=case_id, metadata={**case.metadata, "id": case_id, "group": group})


def in_profile(case: Case, profile: Profile) -> Case:
    """The case with q, k, v rounded into the profile's input format (regression cases are
    replayed in every profile)."""
    if case.dtype == profile.input.storage:
        return case
    to_input = profile.input.to_storage
    return replace(
        case,
        q=to_input(case.q.astype(np.float64)),
        k=to_input(case.k.astype(np.float64)),
        v=to_input(case.v.astype(np.float64)),
    )


def corpus_cases(directories: Iterable[Path], profile: Profile) -> list[Case]:
    """The case files of the regression corpus directories, sorted by name, ids prefixed with
    'regression-' (a file's own metadata, e.g. relations_seed, is kept)."""
    cases = []
    for directory in directories:
        for path in sorted(Path(directory).glob("*.npz")):
            case = in_profile(Case.load(path), profile)
            stem = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower())
            cases.append(tagged(case, f"regression-{stem}", "regression"))
    return cases


def bundled_corpus() -> Path:
    """pasa_ref/certify/corpus/: the regression cases shipped with pasa-ref."""
    return Path(str(resources.files("pasa_ref.certify").joinpath("corpus")))


@contextmanager
def _without_local_constants() -> Iterator[None]:
    """hypothesis (>= 6.131) mixes into its draws constants it reads from the source of the
    "local" modules imported so far (its module `internal.conjecture.providers`, functions
    `_get_local_constants` and the cache CONSTANTS_CACHE), so the same seed gives other
    cases from a script, the command line, a wheel or pytest. It has no setting to turn
    this off; here the collector returns no constant and the cache is emptied before and
    after, so a plan depends on (strategy, seed, hypothesis version) alone."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # a hypothesis without the feature
        yield
        return
    collector = getattr(providers, "_get_local_constants", None)
    cache = getattr(providers, "CONSTANTS_CACHE", None)
    if collector is None or cache is None:
        yield
        return
    providers._get_local_constants = Constants
    cache.cache.clear()
    try:
        yield
    finally:
        providers._get_local_constants = collector
        cache.cache.clear()


def draw(strategy: SearchStrategy, count: int, seed_value: int) -> list:
    """`count` examples of a strategy, the same for the same seed wherever it runs (no
    database, no shrinking, the default backend, no local constants, no dependence on the
    hypothesis profile that is loaded)."""
    drawn: list = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        derandomize=False,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
        backend="hypothesis",
    )
    @seed(seed_value)
    @given(strategy)
    def collect(example) -> None:
        drawn.append(example)

    with _without_local_constants():
        collect()
    return drawn[:count]


def adversarial(
    profile: Profile, seed_value: int, conf: Conformance, support: Support = generators.ANY
) -> list[Case]:
    levels = conf.levels
    strategy = strategies.cases(
        profile,
        max_seq=levels.adversarial_max_seq,
        max_dim=levels.adversarial_max_dim,
        support=support,
    )
    return [
        tagged(case, f"adversarial-{index}", "adversarial")
        for index, case in enumerate(draw(strategy, levels.adversarial_cases, seed_value))
    ]


def correlated(profile: Profile, seed_value: int, conf: Conformance) -> list[Case]:
    """`correlated_cases` problems from pasa_ref.strategies.correlated_cases (masks correlated
    with the values, PASA-GEN-10), drawn with the seed."""
    strategy = strategies.correlated_cases(profile, max_dim=conf.levels.adversarial_max_dim)
    return [
        tagged(case, f"correlated-{index}", "correlated")
        for index, case in enumerate(draw(strategy, conf.levels.correlated_cases, seed_value))
    ]


#: level 3's searches (who is hunted, objective), splitting hunt_budget_s evenly: the backend
#: against its class reference (objective "class": worse than the yardstick, or non-finite
#: where it is finite), and the class reference itself (objective "error": its least accurate
#: inputs, which every backend of the class is then judged on). A backend that cannot be
#: called during planning (case files) gets the second search alone.
HUNTS = (("backend", "class"), ("reference", "error"))
#: the profile-envelope check ("is it PASA"): inputs inside pasa's safe envelope on which the
#: hunted kernel overflows; a report of its own, never part of a level (PASA-CERT-5)
ENVELOPE_HUNT = ("backend", "envelope")


def _yardstick(declaration: Declaration) -> Callable[[Case, str], tuple[np.ndarray, ...]]:
    """The class reference's outputs for a case in a profile, for the hunts: Or and the
    class's other reference algorithms (PASA-CERT-8, -9). The reordered sums are left out to
    keep the search fast; the certifier judges the cases found with them."""
    forms = (evidence.class_reference(declaration), *evidence.class_variants(declaration))

    def outputs(case: Case, profile: str) -> tuple[np.ndarray, ...]:
        return tuple(
            kernel(case.q, case.k, case.v, profile=profile, **options, **case.call_kwargs())
            for kernel, options in forms
        )

    return outputs


def _hunted_kernel(
    who: str, declaration: Declaration, caller: Caller | None, profile: Profile, conf: Conformance
) -> hunt.KernelUnderTest:
    """The kernel a search calls (HUNTS): the backend through the certification's own Caller
    (its deadline and isolation), or the declared class's reference kernel."""
    if who == "backend":
        if caller is None:
            raise ValueError("argument 'caller': the backend hunt needs the backend's Caller")
        return hunt.KernelUnderTest(caller.name, caller, "flash")
    kernel, options = evidence.class_reference(declaration)
    name = "flash" if declaration.algorithm.kind == "softmax" else "pasa"
    reference = Backend(
        functools.partial(kernel, **options), Identity(name=name, receives_profile=True)
    )
    return hunt.KernelUnderTest(
        name, Caller(reference, profile.name, timeout=conf.timeout_s, isolate=False), name
    )


def _search(
    who: str,
    objective: str,
    profile: Profile,
    seed_value: int,
    budget: float,
    declaration: Declaration,
    caller: Caller | None,
    conf: Conformance,
) -> list[Case]:
    """The final cases of the search `who` ("backend" or "reference") with `objective`."""
    kernel = _hunted_kernel(who, declaration, caller, profile, conf)
    config = hunt.HuntConfig(
        kernel=kernel.name,
        profile=profile.name,
        objective=objective,
        budget=budget,
        seed=seed_value,
        threshold=conf.accuracy.rtol if objective == "class" else hunt.DEFAULT_THRESHOLD,
        yardstick=_yardstick(declaration),
    )
    return [finding.case for finding in hunt.hunt(config, kernel=kernel).findings if finding.final]


def hunted(
    profile: Profile,
    seed_value: int,
    conf: Conformance,
    declaration: Declaration = evidence.DEFAULT_DECLARATION,
    caller: Caller | None = None,
) -> list[Case]:
    """The final cases of level 3's pasa_ref.hunt searches (HUNTS), seeded by the seed: where
    the backend is worse than its class reference or non-finite where it is finite, and where
    the class reference is least accurate. Both are then judged for the backend by every
    criterion. Without a backend (case files) only the second search runs."""
    found = []
    for who, objective in HUNTS:
        if who == "backend" and caller is None:
            continue
        cases = _search(who, objective, profile, seed_value,
                        conf.levels.hunt_budget_s / len(HUNTS), declaration, caller, conf)
        found += [
            tagged(case, f"hunt-{who}-{objective}-{index}", "hunt")
            for index, case in enumerate(cases)
        ]
    return found


def envelope_cases(
    profile: Profile, seed_value: int, budget: float, caller: Caller, conf: Conformance
) -> list[Case]:
    """The profile-envelope check (ENVELOPE_HUNT): the final cases of a search for inputs
    inside pasa's safe envelope on which the backend gives NaN or inf. For a pasa-class kernel
    such a case is a counterexample to its envelope; for a softmax-class kernel it says only
    that the kernel is not PASA (FlashAttention overflows there in fp16-full), which no level
    counts as a failure."""
    who, objective = ENVELOPE_HUNT
    return _search(who, objective, profile, seed_value, budget, evidence.DEFAULT_DECLARATION,
                   caller, conf)


def plan(
    level: int,
    profile: Profile,
    seed_value: int,
    conf: Conformance,
    corpus: Iterable[Path] = (),
    declaration: Declaration | None = None,
    caller: Caller | None = None,
) -> list[Item]:
    """The items of a level, in the order they run, generated inside the declared scope
    (PASA-CERT-7): drawn or fitted into its Support. Cases whose point lies outside it (an
    edge case testing an undeclared feature, a stored regression case) stay in the plan;
    the runner counts them as not applicable and never calls them. Level 3's hunts use the
    declaration's class reference and, when given, call the backend through `caller` (HUNTS)."""
    if level not in LEVELS:
        raise ValueError(f"argument 'level': expected one of {LEVELS}, got {level!r}")
    declaration = declaration or Declaration()
    support = declaration.supports
    fixed = (
        generators.edge(profile, support)
        + generators.correlated_masks(profile)
        + generators.mutation_survivors(profile, support)
        + generators.benign(profile, support=support)
        + generators.paper_grid(profile, support)
        + generators.batches(profile, support)
        + corpus_cases([bundled_corpus(), *corpus], profile)
    )
    items = [item(case, repeat=True) for case in fixed]
    if level >= 2:
        items += [
            item(case, repeat=index % ADVERSARIAL_REPEAT_EVERY == 0)
            for index, case in enumerate(
                adversarial(profile, seed_value, conf, support)
                + generators.drawn_batches(profile, seed_value, support)
            )
        ]
        items += [item(case, repeat=False) for case in correlated(profile, seed_value, conf)]
        items += [
            item(generators.metamorphic_base(profile, index, seed_value, support), repeat=False)
            for index in range(conf.levels.metamorphic_bases)
        ]
    if level >= 3:
        items += [
            item(
                generators.long_sequence(
                    profile, keys, conf.levels.long_queries, causal, seed_value, support
                ),
                repeat=False,
            )
            for keys in conf.levels.long_keys
            for causal in (False, True)
        ]
        items += [
            item(case, repeat=False)
            for case in hunted(profile, seed_value, conf, declaration, caller)
        ]
    return items


def plan_hash(items: Iterable[Item]) -> str:
    """sha256 of a plan, bit for bit: per item its id, repeat flag, dtype, shapes, the bytes
    of q, k, v and the mask, causal, scale, and the same for each transformation (PASA-CERT-5:
    the same profile, level, seed, declaration and corpus give the same hash wherever the
    suite runs)."""
    digest = hashlib.sha256()

    def case_bytes(case: Case) -> None:
        digest.update(repr((str(case.dtype), case.shapes(), case.causal, case.scale)).encode())
        for array in (case.q, case.k, case.v, case.mask):
            if array is not None:
                digest.update(np.ascontiguousarray(array).tobytes())

    for planned in items:
        digest.update(repr((planned.id, planned.repeat, len(planned.relations))).encode())
        case_bytes(planned.case)
        for relation in planned.relations:
            digest.update(str(relation.case.metadata.get("id")).encode())
            case_bytes(relation.case)
    return digest.hexdigest()
