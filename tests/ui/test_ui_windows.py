"""The hero and the window rows: what the snapshot's `headline` and `windows` say, formatted, nothing computed."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import DataTable

from tests.support.official_ui import make_app, text
from tests.support.windows import NOW, WEEK_END, WEEKLY_RESET, ledger, snapshot, week_of_credits
from zai_dash.clock import FixedClock
from zai_dash.domain.events import LimitHit
from zai_dash.ui.hero import Hero
from zai_dash.ui.history_screen import HistoryScreen
from zai_dash.ui.palette import ANSI_THEME, default_theme
from zai_dash.ui.window_rows import WindowRowView


def rows(app) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Window id → the figures its row shows (plain text)."""
    return {v.wid: str(v.query_one(".wr-text").render()) for v in app.query(WindowRowView)}


async def test_the_hero_is_the_binding_windows_left_in_its_unit_with_its_countdown() -> None:
    clock = FixedClock(NOW)
    app = make_app(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        snap = snapshot(ledger(week_of_credits()), NOW, weekly_reset=WEEKLY_RESET)
        app.show(snap)
        await pilot.pause()
        hero = app.query_one(Hero)
        assert snap.headline is not None and snap.headline.window == "5h"
        # 12k − 4.4 credits left → "12k": the digits draw "12", the suffix sits in the label.
        assert (hero.figure, hero.label) == ("12", "k credits left · 5-hour")
        assert hero.countdown == "↻ 4h 00m at 13:00"
        assert rows(app) == {
            "5h": "4.4/12k cr · 12k left · ⟳ 13:00 · local",
            "weekly": "16.4/60k cr · 60k left · ⟳ Tue 07:30 · local",
        }
        assert text(app, "#hdr-plan") == "Pro plan · 12k cr/5h · 60k cr/weekly"
        # The countdown follows the clock (absolute deadline), the rows keep their reset times.
        clock.advance(timedelta(hours=1, minutes=30, seconds=1))
        app.tick()
        await pilot.pause()
        assert hero.countdown == "↻ 2h 30m at 13:00"  # 2:29:59, rounded up to the minute
        # Without a weekly anchor the row says so instead of inventing a reset.
        app.show(snapshot(ledger(week_of_credits()), NOW))
        await pilot.pause()
        assert rows(app)["weekly"] == "23.6/60k cr · 60k left · rolling 7 d · local"


async def test_a_weekly_block_makes_the_hero_say_blocked_until_with_its_countdown() -> None:
    led = ledger(week_of_credits())
    led.add_limit_hit(LimitHit(NOW - timedelta(hours=20), "claude-code", 1310, WEEK_END))
    app = make_app(FixedClock(NOW))
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snapshot(led, NOW))
        await pilot.pause()
        hero = app.query_one(Hero)
        # Blocked until Tue 07:30: 70.5 hours from Sat 09:00.
        assert hero.label == "✖ BLOCKED until 07:30"
        assert hero.figure == "70:30:00"
        assert {"-blocked", "-exhausted"} <= set(hero.classes)
        assert rows(app)["weekly"] == "16.4/60k cr · 0 left · blocked → 07:30 · local ✖"
        assert "-exhausted" in app.query_one(".-window-weekly").classes
    # The small-screen form says the same in one line.
    app = make_app(FixedClock(NOW))
    async with app.run_test(size=(40, 12)) as pilot:
        app.show(snapshot(led, NOW))
        await pilot.pause()
        assert text(app, "#hero-line") == "✖ BLOCKED until 07:30 (70:30:00)"
        assert app.query_one("#hero-line").display


async def test_h_opens_the_history_and_an_ended_cycle_leaves_its_summary() -> None:
    app = make_app(FixedClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        snap = snapshot(ledger(week_of_credits()), NOW + timedelta(hours=6), weekly_reset=WEEKLY_RESET)
        assert snap.cycle.state == "not-started" and snap.history.last_cycle is not None
        app.show(snap)
        await pilot.pause()
        # The timeline frame gives way to the last cycle's summary.
        assert text(app, "#timeline-summary").startswith("last cycle 08:00–13:00 · 4.4/12k credits · 0 % of the pool")
        assert app.query_one("#timeline").border_title == "Last cycle"
        await pilot.press("h")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        cycles = screen.query_one("#history-cycles", DataTable)
        assert cycles.row_count == len(snap.history.cycles) >= 1
        assert screen.query_one("#history-days", DataTable).row_count == len(snap.history.days)
        assert screen.query_one("#history-models", DataTable).row_count == len(snap.credits.by_model_week)
        await pilot.press("h")
        await pilot.pause()
        assert not isinstance(app.screen, HistoryScreen)


def test_a_sixteen_colour_terminal_starts_in_the_calm_palette() -> None:
    assert default_theme("standard", "textual-dark") == "zai-ansi"
    assert default_theme("truecolor", "textual-dark") == "textual-dark"
    assert default_theme(None, "textual-dark") == "textual-dark"
    # Ok is the terminal's own foreground; only warning and error are coloured, and not by the accent.
    assert (ANSI_THEME.warning, ANSI_THEME.error, ANSI_THEME.accent) == ("ansi_yellow", "ansi_red", "ansi_cyan")


async def test_alerts_follow_the_binding_window_in_its_unit() -> None:
    from tests.support.pilot import toasts

    def at(used: float) -> dict[str, object]:
        return {"window": "5h", "unit": "credits", "used": used, "limit": 12_000.0, "percent": used / 120,
                "stale": False, "next_reset": NOW + timedelta(hours=2), "type": "CREDIT_LIMIT"}  # fmt: skip

    app = make_app(FixedClock(NOW))
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        app.show(snapshot(ledger(week_of_credits()), NOW, official=[at(1_000)]))
        await pilot.pause()
        app.show(snapshot(ledger(week_of_credits()), NOW, official=[at(9_600)]))
        await pilot.pause()
        assert any("80 % of the 5-hour credits used — 2.4k credits left" in t for t in toasts(app)), toasts(app)
