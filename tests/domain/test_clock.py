"""The one clock (`zai_dash.clock`): its implementations, and no other module reading the time itself."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import zai_dash
from tests.support.env import FIXED_NOW
from zai_dash.clock import SYSTEM_CLOCK, FixedClock, ShiftedClock

DIRECT_READS = re.compile(
    r"\b(?:datetime|date)\.(?:now|utcnow|today)\("
    r"|\btime\.(?:time|time_ns|monotonic|monotonic_ns|clock_gettime|perf_counter)\("
    r"|^\s*from time import|^\s*from datetime import[^\n]*\bdatetime as\b",
    re.M,
)
"""A read of the wall clock or of an elapsed-time clock (or an import that would hide one from this check).

Not included: asyncio's `loop.time()`, the event loop's own scheduling clock, which its sleeps and timeouts
are measured on (the engine's watch loop paces itself with it).
"""

ALLOWED: dict[str, str] = {
    "clock.py": "the clock module: the one place that reads the time",
}
"""Modules allowed to read the clock directly, each with the reason (none but the clock itself today)."""


def test_only_the_clock_module_reads_the_clock() -> None:
    package = Path(zai_dash.__file__).parent
    readers = {
        str(path.relative_to(package)): match.group(0).strip()
        for path in sorted(package.rglob("*.py"))
        if (match := DIRECT_READS.search(path.read_text(encoding="utf-8")))
    }
    assert {name: read for name, read in readers.items() if name not in ALLOWED} == {}
    assert set(ALLOWED) <= set(readers), "an allowed module no longer reads the clock: drop its exception"


def test_fixed_clock_moves_only_when_told() -> None:
    clock = FixedClock(FIXED_NOW)
    assert clock.now() == FIXED_NOW and clock.ticks() == 0
    clock.advance(timedelta(minutes=5))
    assert clock.now() == FIXED_NOW + timedelta(minutes=5) and clock.ticks() == 300
    clock.set(FIXED_NOW - timedelta(days=2))  # the wall clock jumped back: no time passed
    assert clock.now() == FIXED_NOW - timedelta(days=2) and clock.ticks() == 300


def test_shifted_clock_runs_at_the_wall_clocks_speed_from_elsewhere() -> None:
    offset = -timedelta(days=3, hours=2)
    clock = ShiftedClock(offset)
    before = SYSTEM_CLOCK.now()
    shifted = clock.now()
    after = SYSTEM_CLOCK.now()
    assert before + offset <= shifted <= after + offset
    assert shifted.tzinfo is not None
    first = clock.ticks()
    assert clock.ticks() >= first
