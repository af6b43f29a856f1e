"""The one clock: the only module that reads the wall clock, so everything else takes time as input.

A `Clock` says what time it is (`now`, aware UTC) and how much time has passed (`ticks`, seconds that
never jump). The engine, the dashboard and the commands receive one by injection; the sources receive its
`now` (`SourceContext.clock`). Three implementations: `SystemClock` (the real one), `FixedClock` (tests,
screenshots, `report --at`) and `ShiftedClock` (the demo: real speed, another day).

`tests/domain/test_clock.py` fails when any other module of the package reads the clock directly.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Protocol


class Clock(Protocol):
    """Something that says what time it is (aware UTC), and how much time has passed."""

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        ...

    def ticks(self) -> float:
        """Elapsed seconds that never jump: a wall clock that moves away from it was set or went back."""
        ...


def _boot_ticks() -> float:
    """Elapsed seconds that never jump (boot time: it keeps counting through suspend)."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        """The wall clock's time, aware UTC."""
        return datetime.now(timezone.utc)

    def ticks(self) -> float:
        """Elapsed seconds that never jump (boot time: it keeps counting through suspend)."""
        return _boot_ticks()


SYSTEM_CLOCK = SystemClock()
"""The wall clock, for defaults (`SourceContext.clock`, pollers): injected clocks replace it in tests."""


class FixedClock:
    """A clock that only moves when told to: tests, screenshots and `report --at`."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(timezone.utc)
        self._elapsed = 0.0

    def now(self) -> datetime:
        """The instant it was set to (or advanced to)."""
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


class ShiftedClock:
    """The wall clock moved by a fixed offset: the demo's time runs at real speed from another instant."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        """The wall clock's time plus the offset."""
        return SYSTEM_CLOCK.now() + self.offset

    def ticks(self) -> float:
        """Elapsed seconds, as the wall clock's (the offset never changes)."""
        return _boot_ticks()


def local_zone() -> tzinfo:
    """The machine's timezone as it is now (its current UTC offset), for a time given without one."""
    return datetime.now().astimezone().tzinfo or timezone.utc


def seconds_since_mtime(mtime: float) -> float:
    """How long ago the kernel stamped a file's `st_mtime`.

    A file's times come from the kernel's wall clock, not from an injected one, so they are compared with
    the real clock only; a test that moves the clock cannot move them (such tests are marked `wall_clock`).
    """
    return time.time() - mtime
