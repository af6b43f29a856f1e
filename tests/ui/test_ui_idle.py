"""The idle budget, as behaviour: an idle tick repaints only text that changed, and nothing off screen.

Idle CPU itself is a bench figure (`bench/tui_bench.py`); these tests pin the rules that keep it low:
refreshing a widget the compositor is not showing makes Textual re-arrange the whole screen, and a
countdown that shows seconds repaints every second.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta, timezone
from typing import Any

import pytest
from textual.widget import Widget

from tests.support.ui import NOW, Session, make_snapshot, shown
from zai_dash import text as fmt
from zai_dash.clock import FixedClock
from zai_dash.ui.app import DashApp
from zai_dash.ui.tools_table import ToolsTable


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 min"),
        (1, "1 min"),
        (59 * 60 + 1, "1h 00m"),
        (4 * 3600, "4h 00m"),
        (2 * 3600 + 29 * 60 + 59, "2h 30m"),
        (6 * 86400 + 23 * 3600 + 5, "6d 23h"),
        (-30, "0 min"),
    ],
)
def test_countdown_rounds_up_to_the_minute(seconds: float, text: str) -> None:
    assert fmt.countdown(seconds) == text


def spy_refreshes(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count `refresh` calls per widget id from now on."""
    seen: Counter[str] = Counter()
    original = Widget.refresh

    def refresh(self: Widget, *args: Any, **kwargs: Any) -> Any:
        seen[self.id or type(self).__name__] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Widget, "refresh", refresh)
    return seen


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (40, 12)], ids=["120x36", "80x24", "40x12"])
async def test_idle_ticks_repaint_only_the_visible_countdown_when_its_minute_changes(
    monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    clock = FixedClock(NOW + timedelta(seconds=5))
    app = DashApp(clock=clock, tz=timezone.utc, theme="textual-dark")
    async with app.run_test(size=size) as pilot:
        app.show(make_snapshot())
        await pilot.pause()
        seen = spy_refreshes(monkeypatch)
        for _ in range(50):  # 50 s inside one displayed minute
            clock.advance(timedelta(seconds=1))
            app.tick()
        await pilot.pause()
        assert seen == Counter()
        clock.advance(timedelta(seconds=10))  # the shown minute changes
        app.tick()
        await pilot.pause()
        # Only the countdown form the layout shows repaints; the hidden forms (the one-line hero, the
        # 5-hour panel behind the hero) keep their text waiting for a Show event.
        # The tools table (shown but at 40x12) advances its "ago" column in the same minute.
        visible = {"hero-line"} if size[1] < 16 else {"hero-countdown", "tools"}
        assert set(seen) == visible
        hidden = app.query_one("#countdown-caption")
        assert shown(hidden) == "refreshes at 14:50"


async def test_the_ago_column_repaints_the_table_once_a_minute_not_once_per_row(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows last active at different seconds turn their "ago" over at different seconds: one repaint a minute."""
    clock = FixedClock(NOW)
    app = DashApp(clock=clock, tz=timezone.utc, theme="textual-dark")
    extra = [
        Session("opencode", 4, 20, {}, first=10, last=3.25),
        Session("crush", 3, 12, {}, first=20, last=7.5),
        Session("droid", 2, 8, {}, first=30, last=11.75),
    ]
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(make_snapshot(extra=extra))
        await pilot.pause()
        seen = spy_refreshes(monkeypatch)
        repainting_ticks = 0
        for _ in range(120):  # two minutes, a tick a second
            before = seen["tools"]
            clock.advance(timedelta(seconds=1))
            app.tick()
            await pilot.pause()
            repainting_ticks += seen["tools"] > before  # refreshes within one tick make one repaint
        # Without the minute rule: 4 rows × 2 minutes = 8 ticks that repaint the whole table.
        assert repainting_ticks == 2
        table = app.query_one(ToolsTable)
        # Caught up on the minute: at 12:02:00 OpenCode's 11:56:45 is 5 min 15 s ago.
        assert table.get_cell("opencode", "last") == "5m ago"
