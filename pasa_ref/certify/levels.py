"""Which cases each certification level runs, deterministic from (profile, level, seed)
(specs/certification.md, PASA-CERT-5).

    level 1   a fixed corpus, the same for every seed: the edge corpus (16 cases), the
              benign cases (6), the paper's grid (32) and the regression corpus (the case
              files bundled in pasa_ref/certify/corpus/ plus any the user adds); every
              case is called twice (criterion (e)). The cheap, diagnostic edge cases run
              first, so that --fail-fast stops early.
    level 2   level 1, plus `adversarial_cases` problems drawn from
              pasa_ref.strategies.cases(profile) with hypothesis seeded by the seed (every
              fourth called twice), plus `metamorphic_bases` base cases checked under
              PASA-MR-1..3
    level 3   level 2, plus long sequences (S2 in `long_keys`, up to 16384 keys) and the
              cases pasa_ref.hunt finds in `hunt_budget_s` seconds (HUNTS: inputs inside
              pasa's envelope that overflow FlashAttention, and the reference kernel's
              largest errors); a time budget, the one part of a plan that may depend on
              the machine's speed

The counts are in specs/conformance.toml [certification.levels]. Hypothesis draws with a
fixed seed, no example database and the generate phase only, so the same seed gives the same
cases with the same hypothesis version (the certificate records the version).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.strategies import SearchStrategy

from pasa_ref import hunt, strategies
from pasa_ref.cases import Case
from pasa_ref.certify import generators
from pasa_ref.certify.relations import Transformed, transforms
from pasa_ref.certify.thresholds import Conformance
from pasa_ref.profiles import Profile

__all__ = ["LEVELS", "Item", "corpus_cases", "draw", "item", "plan", "tagged"]

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


def draw(strategy: SearchStrategy, count: int, seed_value: int) -> list:
    """`count` examples of a strategy, the same for the same seed (no database, no shrinking,
    no dependence on the hypothesis profile that is loaded)."""
    drawn: list = []

    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        derandomize=False,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @seed(seed_value)
    @given(strategy)
    def collect(example) -> None:
        drawn.append(example)

    collect()
    return drawn[:count]


def adversarial(profile: Profile, seed_value: int, conf: Conformance) -> list[Case]:
    levels = conf.levels
    strategy = strategies.cases(
        profile, max_seq=levels.adversarial_max_seq, max_dim=levels.adversarial_max_dim
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


#: level 3's searches: (kernel, objective), each given half of hunt_budget_s
HUNTS = (("flash", "envelope"), ("pasa", "error"))


def hunted(profile: Profile, seed_value: int, conf: Conformance) -> list[Case]:
    """The final cases of two pasa_ref.hunt searches, seeded by the seed: inputs inside
    pasa's safe envelope on which FlashAttention overflows in this profile (objective
    "envelope"), and inputs on which the reference kernel is least accurate or overflows
    (objective "error"). Both are then judged for the backend by every criterion."""
    found = []
    for kernel, objective in HUNTS:
        config = hunt.HuntConfig(
            kernel=kernel,
            profile=profile.name,
            objective=objective,
            budget=conf.levels.hunt_budget_s / len(HUNTS),
            seed=seed_value,
        )
        cases = [finding.case for finding in hunt.hunt(config).findings if finding.final]
        found += [
            tagged(case, f"hunt-{kernel}-{objective}-{index}", "hunt")
            for index, case in enumerate(cases)
        ]
    return found


def plan(
    level: int, profile: Profile, seed_value: int, conf: Conformance, corpus: Iterable[Path] = ()
) -> list[Item]:
    """The items of a level, in the order they run."""
    if level not in LEVELS:
        raise ValueError(f"argument 'level': expected one of {LEVELS}, got {level!r}")
    fixed = (
        generators.edge(profile)
        + generators.correlated_masks(profile)
        + generators.mutation_survivors(profile)
        + generators.benign(profile)
        + generators.paper_grid(profile)
        + corpus_cases([bundled_corpus(), *corpus], profile)
    )
    items = [item(case, repeat=True) for case in fixed]
    if level >= 2:
        items += [
            item(case, repeat=index % ADVERSARIAL_REPEAT_EVERY == 0)
            for index, case in enumerate(adversarial(profile, seed_value, conf))
        ]
        items += [item(case, repeat=False) for case in correlated(profile, seed_value, conf)]
        items += [
            item(generators.metamorphic_base(profile, index, seed_value), repeat=False)
            for index in range(conf.levels.metamorphic_bases)
        ]
    if level >= 3:
        items += [
            item(
                generators.long_sequence(
                    profile, keys, conf.levels.long_queries, causal, seed_value
                ),
                repeat=False,
            )
            for keys in conf.levels.long_keys
            for causal in (False, True)
        ]
        items += [item(case, repeat=False) for case in hunted(profile, seed_value, conf)]
    return items
