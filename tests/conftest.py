"""Hypothesis profiles: `ci` (derandomised, few examples: what .ci/run and tox use),
`dev` (the default) and `thorough` (for users hunting rare failures). Choose one with
pytest --hypothesis-profile=NAME or the environment variable PASA_HYPOTHESIS_PROFILE."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", derandomize=True, max_examples=25, print_blob=True, **_common)
settings.register_profile("dev", max_examples=50, **_common)
settings.register_profile("thorough", max_examples=1000, **_common)
settings.load_profile(os.environ.get("PASA_HYPOTHESIS_PROFILE", "dev"))
