"""Clocks: the one place that reads the wall clock, so everything else can take time as input."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol


class Clock(Protocol):
    """Something that says what time it is (aware UTC)."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def ticks(self) -> float:
        """Elapsed seconds that never jump (boot time: it keeps counting through suspend)."""
        boottime = getattr(time, "CLOCK_BOOTTIME", None)
        return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class FixedClock:
    """A clock that only moves when told to: tests, screenshots and `report --at`."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(timezone.utc)
        self._elapsed = 0.0

    def now(self) -> datetime:
        return self._at

    def ticks(self) -> float:
        """Elapsed seconds: `advance` is time passing, `set` a jump of the wall clock."""
        return self._elapsed

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward."""
        self._at += delta
        self._elapsed += delta.total_seconds()

    def set(self, at: datetime) -> None:
        """Jump to `at`."""
        self._at = at.astimezone(timezone.utc)
