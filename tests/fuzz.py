"""Hypothesis settings of the fuzzing suite: a bounded, derandomised run for CI, more random
examples for local runs.

`ENTLINK_FUZZ_EXAMPLES=N` (e.g. 2000) runs each fuzz property on N random examples; unset,
each runs on `CI_EXAMPLES` examples drawn from a fixed seed, so CI is reproducible.
"""

import os

from hypothesis import HealthCheck, settings

CI_EXAMPLES = 40


def fuzz_settings(examples: int = CI_EXAMPLES) -> settings:
    """Settings for one fuzz property; `examples` is its CI budget (scaled up locally)."""
    local = os.environ.get("ENTLINK_FUZZ_EXAMPLES")
    return settings(
        max_examples=int(local) if local else examples,
        derandomize=not local,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
