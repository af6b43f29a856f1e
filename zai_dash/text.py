"""Text formatters shared by every view (`report`, `status`, `doctor`, the dashboard): pure, no I/O, no clock.

One rule per kind of figure, so the report and the dashboard say the same thing about the same data:
the widgets import this module as `fmt` (`fmt.hhmm`, `fmt.ago`, …), the commands import the names.
"""

from __future__ import annotations

import math
from datetime import datetime, tzinfo

AGO_HOURS_UNTIL = 48 * 3600
"""`ago` counts hours up to two days (`30h ago`, not `1d ago`): a day and a quarter is not "a day"."""


def local(dt: datetime, tz: tzinfo | None) -> datetime:
    """`dt` in the display timezone (`None` = the machine's local zone, DST-aware)."""
    return dt.astimezone(tz)


def hhmm(dt: datetime, tz: tzinfo | None) -> str:
    """`14:05` in the display timezone."""
    return local(dt, tz).strftime("%H:%M")


def fmt_clock(ts: datetime | None, tz: tzinfo | None) -> str:
    """`hhmm`, or `—` for None (a time that is not known)."""
    return "—" if ts is None else hhmm(ts, tz)


def clock_digits(seconds: float) -> str:
    """`4:59:07` for a countdown; never negative. Rounds up so 0:00:00 means the deadline passed."""
    total = max(0, math.ceil(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


def fmt_duration(seconds: float | None) -> str:
    """Compact, for tables and status lines: `2d03h`, `1h23m`, `7m`, `45s`; `—` for None."""
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    d, day_rem = divmod(s, 86400)
    if d:
        return f"{d}d{day_rem // 3600:02d}h"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m"
    if m:
        return f"{m}m"
    return f"{sec}s"


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
    """For prose: `1h 05m`, `38 min`, `45 s`."""
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    h, m = divmod(minutes, 60)
    return f"{h}h {m:02d}m"


def ago(then: datetime | None, now: datetime) -> str:
    """`just now` (also for a time after `now`), `2m ago`, `30h ago` (under two days), `2d ago`; `never` for None."""
    if then is None:
        return "never"
    secs = (now - then).total_seconds()
    if secs < 60:
        return "just now"
    if secs < 3600:
        return f"{int(secs // 60)}m ago"
    if secs < AGO_HOURS_UNTIL:
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


def fmt_amount(value: float | None, unit: str | None = None) -> str:
    """A window amount in its unit: credits short (`8.2k`, `12k`, `950`, `1.2`), prompts and calls whole."""
    if value is None:
        return "—"
    if unit != "credits":
        return str(round(value))
    v = abs(value)
    for div, suffix in ((1_000_000, "M"), (1_000, "k")):
        if v >= div:
            return f"{value / div:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:.1f}".rstrip("0").rstrip(".") if v < 100 else str(round(value))
