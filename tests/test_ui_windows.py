"""The dashboard shows each window of a credit plan as the snapshot has it (the redesign is another issue)."""

from __future__ import annotations

from datetime import timedelta

from tests.test_ui_official import make_app, text
from tests.test_windows import NOW, WEEK_END, WEEKLY_RESET, ledger, snapshot, week_of_credits
from zai_dash.clock import FixedClock
from zai_dash.domain.events import LimitHit
from zai_dash.ui.prompt_gauge import GaugeBar


async def test_a_credit_plan_leads_with_the_binding_window_and_lists_the_week() -> None:
    clock = FixedClock(NOW)
    app = make_app(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snapshot(ledger(week_of_credits()), NOW, weekly_reset=WEEKLY_RESET))
        await pilot.pause()
        head = text(app, "#gauge-headline")
        assert head.startswith("12k credits left (5-hour) · 4.4 / 12k used · 0.0 %"), head
        windows = text(app, "#gauge-windows")
        assert windows == "5-hour 4.4/12k cr ⟳4h00m · weekly 16.4/60k cr ⟳2d22h", windows
        assert text(app, "#hdr-plan") == "Pro plan · 12k cr/5h · 60k cr/weekly"
        assert app.query_one("#gauge").border_title == "Prompts this cycle" or "credits" in str(
            app.query_one("#gauge").border_title
        )
        # The week's countdown follows the clock.
        clock.advance(timedelta(hours=1))
        app.tick()
        await pilot.pause()
        assert text(app, "#gauge-windows").endswith("weekly 16.4/60k cr ⟳2d21h")
        # Without a weekly anchor the row says so instead of inventing a reset.
        app.show(snapshot(ledger(week_of_credits()), NOW))
        await pilot.pause()
        assert "weekly 23.6/60k cr last 7 days, reset unknown" in text(app, "#gauge-windows")


async def test_a_weekly_block_leads_the_gauge_even_with_room_in_the_5h_window() -> None:
    led = ledger(week_of_credits())
    led.add_limit_hit(LimitHit(NOW - timedelta(hours=20), "claude-code", 1310, WEEK_END))
    app = make_app(FixedClock(NOW))
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snapshot(led, NOW))
        await pilot.pause()
        head = text(app, "#gauge-headline")
        assert head.startswith("0 credits left (weekly)") and "✖ WEEKLY LIMIT REACHED" in head, head
        assert "-exhausted" in app.query_one("#gauge").classes
        assert app.query_one(GaugeBar).fraction == 0 or app.query_one(GaugeBar).fraction < 0.01
        assert "weekly 16.4/60k cr blocked" in text(app, "#gauge-windows")


async def test_alerts_follow_the_binding_window_in_its_unit() -> None:
    from tests.test_ui_app import toasts

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
