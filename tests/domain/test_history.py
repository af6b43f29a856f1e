"""Known answers for the history figures: past cycles and the days of this week and the last."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from zai_dash.domain.cycle import chain_windows
from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.domain.history import build_history
from zai_dash.domain.ledger import Counts, Ledger

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
FIVE = timedelta(hours=5)


def prompt(at: datetime, key: str) -> UsageEvent:
    return UsageEvent(EventKind.PROMPT, at, "claude-code", key)


def test_closed_cycles_newest_first_and_every_day_from_monday_last_week() -> None:
    led = Ledger()
    # Three cycles: Mon 08:00 (3 prompts), Wed 20:00 (2 prompts), and the open one from 10:00 today (1).
    times = [
        NOW - timedelta(days=3, hours=4),
        NOW - timedelta(days=3, hours=3),
        NOW - timedelta(days=3, hours=1),
        NOW - timedelta(hours=16),
        NOW - timedelta(hours=13),
        NOW - timedelta(hours=2),
    ]
    led.add_all(prompt(t, f"p{i}") for i, t in enumerate(times))
    windows = chain_windows(times, [], NOW, FIVE)
    assert [w.start for w in windows] == [times[0], times[3], times[5]]

    def used(c: Counts) -> float:
        return float(c.prompts)

    history = build_history(led, windows, NOW, UTC, unit="prompts", limit=10, used_of=used)
    assert [(c.start, c.end, c.used, c.share, c.prompts) for c in history.cycles] == [
        (times[3], times[3] + FIVE, 2.0, 20.0, 2),
        (times[0], times[0] + FIVE, 3.0, 30.0, 3),
    ]
    assert history.last_cycle == history.cycles[0]
    # Monday 16 Nov (last week) to Thursday 26 Nov: 11 days; prompts on Mon 23 (3), Wed 25 (2), Thu 26 (1).
    assert history.days[0].day == date(2026, 11, 16) and history.days[-1].day == date(2026, 11, 26)
    assert len(history.days) == 11
    by_day = {d.day.day: d.prompts for d in history.days if d.prompts}
    assert by_day == {23: 3, 25: 2, 26: 1}
    assert sum(d.used for d in history.days) == 6
