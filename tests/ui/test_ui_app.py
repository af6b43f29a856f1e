"""Pilot tests: the dashboard fed real snapshots (a real Ledger through `build_snapshot`) at a fixed clock."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from pathlib import Path

import pytest
from textual.widgets import Digits, Static

from tests.support.pilot import make_app, text, toasts, wait_for
from tests.support.ui import NOW, Session, at_percent, empty_snapshot, make_snapshot, not_started_snapshot, shown
from zai_dash.clock import FixedClock
from zai_dash.domain.snapshot import Thresholds
from zai_dash.paths import ui_memory_file
from zai_dash.ui.app import DashApp
from zai_dash.ui.countdown import NOT_STARTED, RefreshCountdown
from zai_dash.ui.help_screen import HelpScreen
from zai_dash.ui.hero import Hero
from zai_dash.ui.prompt_gauge import PromptGauge
from zai_dash.ui.state import load_state
from zai_dash.ui.timeline import TimelinePanel
from zai_dash.ui.tools_table import ToolsTable


def busy_snapshot():
    return make_snapshot(
        extra=[Session("opencode", 20, 150, {"search": 4}, model="glm-4.5-air", first=30, last=25)],
        payg_tool="opencode",
    )


async def test_every_panel_shows_the_snapshot_numbers() -> None:
    snap = busy_snapshot()
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        # Header: plan, window in the display timezone, provenance badge.
        assert text(app, "#hdr-plan") == "Pro plan · 600/cycle"
        assert text(app, "#hdr-window") == "cycle 09:50–14:50"
        assert text(app, "#hdr-badge").strip() == "local"
        assert not app.query_one("#hdr-demo").display
        # Countdown from the deadline: 14:50 − 12:00.
        assert shown(app.query_one("#countdown-digits")) == "2:50:00"
        assert text(app, "#countdown-caption") == "refreshes at 14:50"
        # Gauge: equivalents = max(140 prompts, ceil(1050/15)=70) + 3 vision = 143.
        assert snap.prompts.equivalents == 143
        headline = text(app, "#gauge-headline")
        assert "457 left" in headline and "143 / 600 used" in headline and "23.8 %" in headline
        detail = text(app, "#gauge-detail")
        assert "prompts 140" in detail and "calls 1,050 (105 sub)" in detail
        assert "7.5/prompt" in detail and "vision 3" in detail
        # Forecast and search.
        assert snap.forecast is not None and snap.forecast.left_at_reset is not None
        left = round(snap.forecast.left_at_reset)
        assert text(app, "#forecast").startswith(f"✔ on pace: ~{left} left at refresh · now ")
        search = text(app, "#search")
        assert "month 25/1,000 · 975 left · reset Dec 1" in search
        assert "cycle 25 · month: search 18 reader 5 zread 2 vision 3" in search
        # Tools: only found tools, with model source, counts, last activity and the PAYG warning.
        table = app.query_one(ToolsTable)
        assert table.row_count == 2
        cc = [str(c) for c in table.get_row("claude-code")]
        assert cc == ["Claude Code", "glm-4.6 (log)", "120", "900", "21", "1m ago", "● live"]
        oc = [str(c) for c in table.get_row("opencode")]
        assert oc[1] == "glm-4.5-air (log)" and oc[5] == "25m ago"
        assert oc[6] == "○ idle ⚠ pay-as-you-go"


@pytest.mark.parametrize(
    ("percent", "thresholds", "cls", "cue"),
    [
        (50, None, None, None),
        (80, None, "-warning", "▲ WARNING"),
        (95, None, "-critical", "‼ CRITICAL"),
        (100, None, "-exhausted", "✖ LIMIT REACHED"),
        (55, Thresholds(0.5, 0.6), "-warning", "▲ WARNING"),
        (65, Thresholds(0.5, 0.6), "-critical", "‼ CRITICAL"),
    ],
    ids=["ok", "warning", "critical", "exhausted", "custom-warning", "custom-critical"],
)
async def test_thresholds_switch_classes_and_text_cues(
    percent: int, thresholds: Thresholds | None, cls: str | None, cue: str | None
) -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(at_percent(percent, thresholds=thresholds))
        await pilot.pause()
        gauge = app.query_one(PromptGauge)
        levels = {c for c in gauge.classes if c in {"-warning", "-critical", "-exhausted"}}
        assert levels == ({cls} if cls else set())
        headline = text(app, "#gauge-headline")
        if cue:
            assert cue in headline
        else:
            assert not any(c in headline for c in ("WARNING", "CRITICAL", "LIMIT"))


async def test_no_color_keeps_the_critical_state_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(at_percent(95))
        await pilot.pause()
        assert app.no_color
        headline = app.query_one("#gauge-headline", Static)
        assert headline.styles.text_style.reverse and headline.styles.text_style.bold
        assert "‼ CRITICAL" in str(headline.render())


async def test_countdown_recomputes_from_the_deadline_each_tick() -> None:
    clock = FixedClock(NOW)
    app = make_app(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(make_snapshot())
        await pilot.pause()
        digits = app.query_one("#countdown-digits", Digits)
        assert shown(digits) == "2:50:00"
        # A laptop asleep for 65 minutes: the next tick jumps, it does not count down by one.
        clock.advance(timedelta(minutes=65, seconds=1))
        app.tick()
        await pilot.pause()
        assert shown(digits) == "1:44:59"
        # The real 1 Hz timer does the same without being called. Wait for it with a hang guard, not a
        # fixed pause: a loaded machine may run the timer late, but never computes a different value.
        clock.advance(timedelta(seconds=30))
        for _ in range(300):
            if shown(digits) == "1:44:29":
                break
            await pilot.pause(0.1)
        assert shown(digits) == "1:44:29"


async def test_countdown_not_started_and_blocked() -> None:
    app = make_app()
    async with app.run_test(size=(60, 20)) as pilot:
        app.show(not_started_snapshot())
        await pilot.pause()
        countdown = app.query_one(RefreshCountdown)
        assert countdown.text == NOT_STARTED == "not started — opens on your next prompt"
        assert "-idle" in countdown.classes
        app.show(at_percent(100, limit_hit_reset=NOW + timedelta(minutes=40)))
        await pilot.pause()
        assert countdown.text == "⛔ blocked until 12:40 (0:40:00)"
        assert "-blocked" in countdown.classes


async def test_key_t_toggles_the_tools_table() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(busy_snapshot())
        await pilot.pause()
        table = app.query_one(ToolsTable)
        assert table.display and table.region.height > 0
        await pilot.press("t")
        await pilot.pause()
        assert not table.display
        await pilot.press("t")
        await pilot.pause()
        assert table.display


async def test_key_question_mark_opens_and_closes_help() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quit_keys_exit_with_code_zero(key: str) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.show(make_snapshot())
        await pilot.press(key)
        await pilot.pause()
    assert app.return_code == 0


async def test_alerts_on_crossing_warning_and_critical_once(monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(bell=True)
    rings: list[int] = []
    monkeypatch.setattr(app, "bell", lambda: rings.append(1))
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        app.show(at_percent(70, searches={}))
        app.show(at_percent(72, searches={}))
        await pilot.pause()
        assert toasts(app) == [] and rings == []
        app.show(at_percent(80, searches={}))
        await pilot.pause()
        assert any("80 % of this cycle's prompts used — 120 left" in t for t in toasts(app))
        app.show(at_percent(81, searches={}))
        app.show(at_percent(92, searches={}))
        await pilot.pause()
        assert any("92 % used — only 48 prompts left" in t for t in toasts(app))
        assert len(rings) == 2


async def test_alert_when_the_cycle_refreshes() -> None:
    clock = FixedClock(NOW)
    app = make_app(clock)
    async with app.run_test(size=(120, 36), notifications=True) as pilot:
        first = make_snapshot(opened_ago=timedelta(hours=4, minutes=59))
        app.show(first)
        await pilot.pause()
        assert toasts(app) == []
        # The deadline passes between snapshots: the countdown's tick notices it first.
        clock.advance(timedelta(minutes=2))
        app.tick()
        await pilot.pause()
        assert any("Cycle refreshed at 12:01 — 600 prompts available" in t for t in toasts(app))
        # The engine's next snapshot confirms it; no second toast.
        app.show(make_snapshot(opened_ago=timedelta(hours=5, minutes=1), now=NOW + timedelta(minutes=2)))
        await pilot.pause()
        assert sum("Cycle refreshed" in t for t in toasts(app)) == 1


async def test_empty_state_lists_locations_and_offers_the_demo() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.show(empty_snapshot())
        await pilot.pause()
        empty = app.query_one("#empty", Static)
        assert empty.display and empty.region.height > 0
        body = str(empty.render())
        assert "No coding-tool usage found yet." in body
        assert "✖ Claude Code   /home/u/.claude/projects  (not found)" in body
        assert "✖ OpenCode      /home/u/.local/share/opencode  (not found)" in body
        assert "[tools.claude-code]" in body and "CLAUDE_CONFIG_DIR" in body
        assert "zai-dash --demo" in body
        assert not app.query_one(ToolsTable).display
        assert not app.query_one(TimelinePanel).display
        # Data arrives: the empty state goes.
        app.show(make_snapshot())
        await pilot.pause()
        assert not empty.display and app.query_one(ToolsTable).display


@pytest.mark.parametrize("demo", [True, False])
async def test_demo_label(demo: bool) -> None:
    app = make_app(demo=demo)
    async with app.run_test(size=(100, 30)) as pilot:
        app.show(make_snapshot())
        await pilot.pause()
        assert app.query_one("#hdr-demo").display is demo
        if demo:
            assert text(app, "#hdr-demo").strip() == "DEMO"


async def test_snapshot_demo_flag_also_shows_the_label() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.show(make_snapshot(demo=True))
        await pilot.pause()
        assert app.query_one("#hdr-demo").display


async def test_theme_choice_is_remembered(home: Path) -> None:
    path = ui_memory_file()
    assert str(path).startswith(str(home))  # conftest isolates XDG_STATE_HOME
    app = DashApp(clock=FixedClock(NOW))
    async with app.run_test(size=(80, 24)) as pilot:
        app.theme = "nord"
        await pilot.pause()
    assert load_state(path) == {"theme": "nord"}
    assert json.loads(path.read_text())["theme"] == "nord"
    again = DashApp(clock=FixedClock(NOW))
    async with again.run_test(size=(80, 24)):
        assert again.theme == "nord"
    # A theme given for one run (--theme) is used but not remembered.
    once = DashApp(clock=FixedClock(NOW), theme="gruvbox")
    async with once.run_test(size=(80, 24)) as pilot:
        assert once.theme == "gruvbox"
        once.theme = "dracula"
        await pilot.pause()
    assert load_state(path)["theme"] == "nord"


async def test_corrupt_state_file_falls_back_to_the_default_theme() -> None:
    path = ui_memory_file()
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    app = DashApp(clock=FixedClock(NOW))
    async with app.run_test(size=(80, 24)):
        assert app.theme == "textual-dark"


async def test_timeline_replots_only_when_data_changes() -> None:
    clock = FixedClock(NOW)
    app = make_app(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        panel = app.query_one(TimelinePanel)
        snap = make_snapshot()
        app.show(snap)
        await pilot.pause()
        assert panel.replots == 1
        app.show(snap)
        for _ in range(3):
            clock.advance(timedelta(seconds=1))
            app.tick()
        await pilot.pause()
        assert panel.replots == 1
        app.show(make_snapshot(prompts=200))
        await pilot.pause()
        assert panel.replots == 2


async def test_tools_table_updates_rows_in_place() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(busy_snapshot())
        await pilot.pause()
        table = app.query_one(ToolsTable)
        table.move_cursor(row=1)
        app.show(make_snapshot(prompts=130, extra=[Session("opencode", 22, 150, {}, first=30, last=25)]))
        await pilot.pause()
        assert table.row_count == 2 and table.cursor_row == 1
        assert str(table.get_cell("claude-code", "prompts")) == "130"
        assert str(table.get_cell("opencode", "prompts")) == "22"
        app.show(make_snapshot())
        await pilot.pause()
        assert table.row_count == 1 and str(table.get_cell("claude-code", "prompts")) == "120"


@pytest.mark.parametrize(
    ("size", "charts", "digits"),
    [((120, 36), "-both", True), ((80, 24), "-spark", True), ((60, 20), "-spark", False), ((40, 12), "-spark", False)],
    ids=["120x36", "80x24", "60x20", "40x12"],
)
async def test_layout_keeps_the_essentials_on_screen(size: tuple[int, int], charts: str, digits: bool) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        app.show(busy_snapshot())
        await pilot.pause()
        screen = app.screen.region

        def visible(selector: str) -> bool:
            w = app.query_one(selector)
            return w.display and w.region.height > 0 and screen.contains_region(w.region)

        assert visible("#gauge-headline")  # prompts left
        # The hero: big digits of what is left where there is room, one line where not.
        assert visible("#hero-digits" if digits else "#hero-line")
        assert app.query_one(Hero).figure == text(app, "#gauge-headline").split()[0]
        # The timeline shows what fits its own size: both charts, the pool chart alone, or the bar strip.
        assert app.query_one(TimelinePanel).has_class(charts)
        shown_charts = {"-both": ("#chart-usage", "#chart-pool"), "-spark": ("#timeline-spark",)}[charts]
        for sel in shown_charts:
            assert visible(sel), sel
        if size == (80, 24):
            for sel in ("#forecast", "#search", "#tools"):
                assert visible(sel), sel
        if size == (40, 12):
            assert not app.query_one(ToolsTable).display


# --- with the real engine over a temp HOME holding a Claude Code transcript -----------------------


def real_engine(home: Path):
    import os
    from datetime import datetime

    from tests.support.ui import write_claude_history
    from zai_dash.config import Config
    from zai_dash.engine import Engine
    from zai_dash.sources.base import SourceContext

    now = datetime.now(timezone.utc).replace(microsecond=0)
    path = write_claude_history(home, now, prompts=3)
    clock = FixedClock(now)
    engine = Engine(Config(), ctx=SourceContext(home=home, env=dict(os.environ)), clock=clock)
    engine.publish_state = False
    return engine, clock, path


@pytest.mark.wall_clock
async def test_first_scan_runs_in_a_worker_then_appends_show_up(home: Path) -> None:
    from tests.support.ui import claude_call_line, claude_prompt_line

    engine, clock, path = real_engine(home)
    app = DashApp(engine, clock, theme="textual-dark")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        await wait_for(pilot, lambda: not app.query("#scanning"))  # the spinner goes once the scan is done
        assert app.snap is not None and app.snap.prompts.used == 3
        assert "prompts 3" in text(app, "#gauge-detail")
        with path.open("a", encoding="utf-8") as fh:
            fh.write(claude_prompt_line(clock.now(), 99) + "\n" + claude_call_line(clock.now(), 99) + "\n")
        await wait_for(pilot, lambda: "prompts 4" in text(app, "#gauge-detail"), seconds=5)


async def test_key_p_previews_plans_without_touching_config(home: Path) -> None:
    engine, clock, _ = real_engine(home)
    app = DashApp(engine, clock, theme="textual-dark")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None)
        # The default plan is Pro on credits: its 5-hour and weekly pools (the tariff's).
        assert text(app, "#hdr-plan") == "Pro plan · 12k cr/5h · 60k cr/weekly"
        expected = [
            ("Lite plan · 2k cr/5h · 10k cr/weekly", True),
            ("Pro plan · 12k cr/5h · 60k cr/weekly", True),
            ("Max plan · 28k cr/5h · 140k cr/weekly", True),
            ("Pro plan · 12k cr/5h · 60k cr/weekly", False),
        ]
        for header in expected:  # each preview is built in a worker: wait for it to land
            await pilot.press("p")
            await wait_for(pilot, lambda h=header: (text(app, "#hdr-plan"), app.query_one("#hdr-preview").display) == h)
        assert engine.config.plan.name == "pro"


async def test_key_r_asks_the_engine_to_rescan(home: Path) -> None:
    engine, clock, _ = real_engine(home)
    scans_before: list[int] = []
    app = DashApp(engine, clock, theme="textual-dark")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: app.snap is not None and engine._rescan is not None)
        scans_before.append(engine.scans)
        await pilot.press("r")
        await wait_for(pilot, lambda: engine.scans > scans_before[0], seconds=5)
