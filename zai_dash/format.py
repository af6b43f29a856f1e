"""Small text formatters shared by the CLI views and the TUI (pure, no I/O)."""

from __future__ import annotations

from datetime import datetime, tzinfo


def fmt_duration(seconds: float | None) -> str:
    """`2d03h`, `1h23m`, `7m`, `45s`; `—` for None."""
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


def fmt_clock(ts: datetime | None, tz: tzinfo | None) -> str:
    """`HH:MM` in the user's timezone; `—` for None."""
    if ts is None:
        return "—"
    return ts.astimezone(tz).strftime("%H:%M")


def fmt_ago(ts: datetime | None, now: datetime) -> str:
    """`just now`, `2m ago`, `3h ago`, `4d ago`; `never` for None."""
    if ts is None:
        return "never"
    s = (now - ts).total_seconds()
    if s < 60:
        return "just now"
    if s < 3600:
        return f"{int(s // 60)}m ago"
    if s < 86400:
        return f"{int(s // 3600)}h ago"
    return f"{int(s // 86400)}d ago"


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
