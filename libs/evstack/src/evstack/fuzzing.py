"""How many inputs each property (fuzz) test generates.

The default is the quick slice every ``make test`` runs. The long mode
(``make fuzz``, or ``EV_FUZZ=long``) generates ``EV_FUZZ_EXAMPLES`` inputs per
target, 1,000,000 unless set; docs/reliability.md records a long run.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

__all__ = ["LONG_EXAMPLES", "fuzz_settings", "long_mode"]

LONG_EXAMPLES = 1_000_000


def long_mode() -> bool:
    return os.environ.get("EV_FUZZ", "") == "long"


def fuzz_settings(quick: int) -> settings:
    """Hypothesis settings of one fuzz target: ``quick`` inputs, or the long mode's count."""
    if not long_mode():
        return settings(max_examples=quick, deadline=None)
    return settings(
        max_examples=int(os.environ.get("EV_FUZZ_EXAMPLES", LONG_EXAMPLES)),
        deadline=None,
        database=None,  # a million inputs would fill the example database
        suppress_health_check=[HealthCheck.too_slow],
    )
