"""Hypothesis profiles: ``ci`` (default, lean for shared machines) and ``thorough``."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
