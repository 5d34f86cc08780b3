"""How many inputs each property (fuzz) test generates, and the long mode's tally.

The default is the quick slice every ``make test`` runs. The long mode
(``make fuzz``, or ``EV_FUZZ=long``) generates ``EV_FUZZ_EXAMPLES`` inputs per
target, 1,000,000 unless set; docs/reliability.md records a long run.

A target is written with :func:`fuzz_target`: a check of one input, and the
strategies of its arguments. The quick slice gives hypothesis one input per
example, as a plain ``@given`` would. The long mode draws a batch of inputs per
example, so hypothesis's own cost per example (engine, bookkeeping: most of the
time of a cheap check) is paid once per batch; each input is still drawn from
the same strategies and checked on its own, and a failing batch shrinks like
any list. As a pytest plugin (``-p evstack.fuzzing``, what ``make fuzz`` uses)
this module prints each target's count of checked inputs, its wall and CPU time.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

__all__ = ["LONG_EXAMPLES", "fuzz_target", "long_mode"]

LONG_EXAMPLES = 1_000_000

# inputs checked, and (wall, CPU) seconds, per target in this process (the long mode's tally)
_CHECKED: Counter[str] = Counter()
_TIME: dict[str, tuple[float, float]] = {}
_PROGRESS_EVERY = 100_000  # a long run says how far it got (seen with pytest -s)


def long_mode() -> bool:
    return os.environ.get("EV_FUZZ", "") == "long"


def _settings(examples: int) -> settings:
    if not long_mode():
        return settings(max_examples=examples, deadline=None)
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,  # a million inputs would fill the example database
        # no reuse (no database), no targeting, no explain pass: generate, and
        # shrink what fails; explicit examples (regressions) still run first
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def fuzz_target(
    quick: int, batch: int, **strategies: st.SearchStrategy[Any]
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Make ``check`` (one input, as keyword arguments) a property test.

    ``quick`` inputs in the quick slice; in the long mode ``EV_FUZZ_EXAMPLES``
    (1,000,000) in examples of ``batch`` inputs each. Keep ``batch`` times the
    largest input well under hypothesis's 8 KiB per example, or big inputs
    would be crowded out.
    """
    size = batch if long_mode() else 1
    total = int(os.environ.get("EV_FUZZ_EXAMPLES", LONG_EXAMPLES)) if long_mode() else quick
    inputs = st.lists(st.fixed_dictionaries(strategies), min_size=size, max_size=size)

    def decorate(check: Callable[..., None]) -> Callable[..., None]:
        name = check.__name__

        def run(inputs: list[dict[str, Any]]) -> None:
            _CHECKED[name] += len(inputs)
            if size > 1 and _CHECKED[name] % _PROGRESS_EVERY < size:
                print(
                    f"{time.strftime('%H:%M:%S')} {_CHECKED[name]:>11,} inputs  {name}", flush=True
                )
            for kwargs in inputs:
                try:
                    check(**kwargs)
                except Exception:
                    note(f"the failing input: {kwargs!r}")
                    raise

        run.__name__, run.__qualname__, run.__doc__ = (
            check.__name__,
            check.__qualname__,
            check.__doc__,
        )
        return _settings(-(-total // size))(given(inputs=inputs)(run))

    return decorate


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    start, cpu = time.monotonic(), time.process_time()
    try:
        return (yield)
    finally:
        _TIME[item.name] = (time.monotonic() - start, time.process_time() - cpu)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The long mode's tally: inputs checked and wall time per target."""
    if not _CHECKED:
        return
    terminalreporter.section("fuzz inputs per target")
    for name, count in sorted(_CHECKED.items()):
        wall, cpu = _TIME.get(name, (0.0, 0.0))
        terminalreporter.write_line(
            f"{count:>11,} inputs {wall:>8.1f} s wall {cpu:>8.1f} s CPU"
            f" {cpu / max(count, 1) * 1e6:>6.0f} us/input  {name}"
        )
