"""The monthly MCP window: from one subscription renewal day to the next, in the user's timezone."""

from __future__ import annotations

import calendar
from datetime import datetime, timezone, tzinfo


def _renewal(year: int, month: int, day: int, tz: tzinfo) -> datetime:
    """Local midnight of the renewal day in that month, clamped to the month's last day."""
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, min(day, last), tzinfo=tz).astimezone(timezone.utc)


def month_window(now: datetime, renewal_day: int, tz: tzinfo) -> tuple[datetime, datetime]:
    """The [start, end) month window holding `now`, as aware UTC datetimes.

    Local midnights are built in `tz` and converted, so a DST change inside the month shifts the
    UTC length of the window, not the local renewal instant.

    Args:
        now: aware instant.
        renewal_day: day of month the plan renews (1–31; clamped in short months).
        tz: the user's timezone.
    """
    local = now.astimezone(tz)
    year, month = local.year, local.month
    start = _renewal(year, month, renewal_day, tz)
    if now < start:
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
        start = _renewal(year, month, renewal_day, tz)
    ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
    return start, _renewal(ny, nm, renewal_day, tz)
