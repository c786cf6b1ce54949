"""The profile-envelope check, "is it PASA" (specs/certification.md, PASA-CERT-5): a search
for inputs inside pasa's safe envelope (PASA-ENV-1) on which the backend gives NaN or inf.

It is a report of its own, never a clause: for a pasa-class kernel a case found is a
counterexample to its envelope, for a softmax-class kernel it only shows that the kernel is
not PASA (FlashAttention overflows there in fp16-full, as its own yardstick does). The cases
found are written as case files, so that `pasa certify BACKEND --case FILE` replays them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pasa_ref.certify import levels
from pasa_ref.certify.backend import Caller
from pasa_ref.certify.thresholds import Conformance
from pasa_ref.profiles import Profile

__all__ = ["EnvelopeReport", "envelope_report"]


@dataclass(frozen=True)
class EnvelopeReport:
    """What the search found: the case files written (empty: nothing found in the budget)."""

    profile: str
    budget_s: float
    cases: tuple[Path, ...]

    def text(self) -> str:
        if not self.cases:
            return (
                f"profile envelope ({self.profile}, {self.budget_s:g} s): no input inside pasa's "
                "safe envelope found on which the backend gives NaN or inf"
            )
        return (
            f"profile envelope ({self.profile}, {self.budget_s:g} s): the backend gives NaN or "
            f"inf inside pasa's safe envelope on {len(self.cases)} case(s): "
            + ", ".join(str(p) for p in self.cases)
            + " (not a failure for a softmax-class kernel: it is not PASA)"
        )


def envelope_report(
    caller: Caller, profile: Profile, seed: int, budget: float, out: Path, conf: Conformance
) -> EnvelopeReport:
    """Search `budget` seconds (levels.envelope_cases), calling the backend through `caller`
    (its deadline and isolation), and write what it finds to out/envelope/envelope-<n>.npz
    (+ .json)."""
    found = levels.envelope_cases(profile, seed, budget, caller, conf)
    directory = Path(out) / "envelope"
    paths = tuple(
        case.save(directory / f"envelope-{index}", {"check": "profile envelope"})
        for index, case in enumerate(found)
    )
    return EnvelopeReport(profile.name, budget, paths)
