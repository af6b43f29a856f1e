"""The one numeric and time rule every reader and the official parser apply (pure, no I/O).

A log is written by another program, sometimes by a buggy one, sometimes by an attacker: a token count
of `1e20` overflows the cache encoder, a timestamp of `9999-12-31T23:59:59-01:00` overflows the
conversion to UTC, `Infinity` turns arithmetic into NaN. Values outside these bounds are bad input (the
record is skipped and counted), never clamped into something that looks real.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

MAX_TOKENS = 10**9
"""Upper bound (exclusive) of one record's token count. The largest context is ~10^6 tokens; a billion
in one call is a corrupt record, and every sum of counts below this stays far inside 2^63."""

EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
"""No coding tool wrote a log before this."""
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
"""Later instants are bogus (readers also reject anything a day past their wall clock)."""
EARLIEST_S = EARLIEST.timestamp()
LATEST_S = LATEST.timestamp()

MAX_OFFICIAL = 1e15
"""Bound of any figure the official endpoint reports: counts, limits, tokens, percentages, and reset
times in epoch milliseconds (~1.8e12; those are checked against `EARLIEST`/`LATEST` as well)."""


def token_count(value: object) -> int | None:
    """A token count as an int, or None when it is not a non-negative integer below `MAX_TOKENS`.

    Integral floats (`12.0`, as some tools write) are accepted; NaN, infinities, fractions, booleans,
    strings and negative numbers are not.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < MAX_TOKENS else None
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and 0 <= value < MAX_TOKENS:
        return int(value)
    return None


def epoch_in_range(seconds: object) -> bool:
    """Whether `seconds` (epoch) is a finite number between `EARLIEST` and `LATEST`."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return False
    return math.isfinite(seconds) and EARLIEST_S <= seconds < LATEST_S


def instant_in_range(ts: datetime) -> bool:
    """Whether an aware instant lies between `EARLIEST` and `LATEST`."""
    return EARLIEST <= ts < LATEST


def official_value(value: object, bound: float = MAX_OFFICIAL) -> float | None:
    """A figure from the official endpoint as a float, or None when not a finite number within ±`bound`.

    `1e300` used of a limit is not a quota anyone has: it must not reach the status line.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        return None
    return number if math.isfinite(number) and -bound <= number <= bound else None
