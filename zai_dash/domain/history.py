"""History from the ledger: the past 5-hour cycles and the days of this week and the week before.

Pure: the ledger keeps eight days (detail for the last day, minute buckets before it), so a cycle or day
older than that shows what is left of it. Amounts are in the 5-hour pool's unit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from zai_dash.domain.cycle import CycleWindow
from zai_dash.domain.ledger import Counts, Ledger

CYCLES_SHOWN = 8
"""Closed cycles the history lists (newest first)."""


@dataclass(frozen=True, slots=True)
class CycleSummary:
    """One closed 5-hour cycle.

    Attributes:
        start, end: the window.
        used: what it used, in `unit`.
        limit: the pool.
        share: `100 × used / limit`, the share of the pool the cycle reached at its peak (usage only grows
            inside a window, so its end is its peak).
        prompts: prompts sent in it.
    """

    start: datetime
    end: datetime
    used: float
    limit: float
    share: float
    prompts: int


@dataclass(frozen=True, slots=True)
class DaySummary:
    """One local calendar day: what it used in the pool's unit, its prompts and credits."""

    day: date
    used: float
    prompts: int
    credits: float


@dataclass(frozen=True, slots=True)
class History:
    """Past cycles (newest first), the days from the Monday of last week to today, and the pool's unit."""

    unit: str = "prompts"
    cycles: tuple[CycleSummary, ...] = ()
    days: tuple[DaySummary, ...] = ()

    @property
    def last_cycle(self) -> CycleSummary | None:
        """The most recent closed cycle."""
        return self.cycles[0] if self.cycles else None


def build_history(
    ledger: Ledger,
    windows: Sequence[CycleWindow],
    now: datetime,
    tz: tzinfo,
    *,
    unit: str,
    limit: float,
    used_of: Callable[[Counts], float],
) -> History:
    """Summaries of the closed cycles in `windows` and of the days of this week and the last.

    Args:
        ledger: the events.
        windows: every 5-hour window the history opened (`chain_windows`), oldest first.
        now: the instant.
        tz: the user's timezone (calendar days).
        unit: the 5-hour pool's unit.
        limit: the 5-hour pool.
        used_of: a window's usage in `unit` from its counts (`window_used`).
    """
    closed = [w for w in windows if w.end <= now][-CYCLES_SHOWN:]
    cycles = []
    for w in reversed(closed):
        counts = ledger.count(w.start, w.end)
        used = used_of(counts)
        share = round(100.0 * used / limit, 1) if limit > 0 else 0.0
        cycles.append(CycleSummary(w.start, w.end, used, limit, share, counts.prompts))
    today = now.astimezone(tz).date()
    first = today - timedelta(days=today.weekday() + 7)
    days = []
    for i in range((today - first).days + 1):
        day = first + timedelta(days=i)
        start = datetime.combine(day, time(), tz)
        end = min(datetime.combine(day + timedelta(days=1), time(), tz), now + timedelta(microseconds=1))
        counts = ledger.count(start, end)
        days.append(DaySummary(day, used_of(counts), counts.prompts, round(counts.credits, 3)))
    return History(unit, tuple(cycles), tuple(days))
