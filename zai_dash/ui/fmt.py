"""Text formatting shared by the widgets: local times, durations, counts. Pure functions."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, tzinfo


def local(dt: datetime, tz: tzinfo | None) -> datetime:
    """`dt` in the display timezone (`None` = the machine's local zone, DST-aware)."""
    return dt.astimezone(tz)


def hhmm(dt: datetime, tz: tzinfo | None) -> str:
    """`14:05` in the display timezone."""
    return local(dt, tz).strftime("%H:%M")


def clock_digits(seconds: float) -> str:
    """`4:59:07` for a countdown; never negative. Rounds up so 0:00:00 means the deadline passed."""
    total = max(0, math.ceil(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def countdown(seconds: float) -> str:
    """`2h 47m`, `47 min`, `6d 23h` to a reset; rounds up, so it never reads zero before the deadline.

    Minutes, not seconds: the text then changes once a minute, and an idle dashboard repaints once a
    minute instead of once a second (the idle-CPU budget). Blocked waits keep `clock_digits`.
    """
    minutes = max(0, math.ceil(seconds / 60))
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    if h >= 24:
        d, h = divmod(h, 24)
        return f"{d}d {h:02d}h"
    return f"{h}h {m:02d}m"


def duration(seconds: float) -> str:
    """`1h 05m`, `38 min`, `45 s` for prose."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h}h {m:02d}m"


def ago(then: datetime | None, now: datetime) -> str:
    """`just now`, `2m ago`, `3h ago`, `2d ago`, or `never`."""
    if then is None:
        return "never"
    delta = now - then
    if delta < timedelta(0):
        return "just now"
    secs = delta.total_seconds()
    if secs < 60:
        return "just now"
    if secs < 3600:
        return f"{int(secs // 60)}m ago"
    if secs < 86400 * 2:
        return f"{int(secs // 3600)}h ago"
    return f"{int(secs // 86400)}d ago"


def count(n: int | float) -> str:
    """`1,234` with thousands separators; floats rounded to whole numbers."""
    return f"{round(n):,}"


def rate(per_hour: float) -> str:
    """`52/h`, or `<1/h` for tiny non-zero rates."""
    if 0 < per_hour < 1:
        return "<1/h"
    return f"{round(per_hour):,}/h"
