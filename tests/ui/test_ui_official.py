"""Pilot tests: the official quota and proxy metrics on screen (issue 6, view side).

Snapshots are built by the real domain functions (`parse_limits` → `row_json` → `reconcile`, real
`prometheus_client` expositions through `ProxyState` → `proxy_row`, the exporter's own `render`), then
shown at a fixed clock. The last tests run the real engine against a loopback quota server.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Static

from tests.support.http import FAKE_KEY, FAKE_SECRET, V1, V2_IDLE, V3_CREDIT, LoopbackServer, Reply, needs_auth
from tests.support.official_ui import make_app, text
from tests.support.ui import (
    NOW,
    Session,
    exporter_row,
    five_hour_limit,
    litellm_row,
    make_snapshot,
    official_rows,
    quota_payload,
    unauthorized_row,
    weekly_limit,
    with_official,
)
from zai_dash.clock import FixedClock
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.app import DashApp
from zai_dash.ui.official_panel import OfficialPanel
from zai_dash.ui.prompt_gauge import GaugeBar
from zai_dash.ui.proxy_panel import ProxyPanel
from zai_dash.ui.tools_table import ToolsTable

MONTHLY_V1 = V1["data"]["limits"][1]  # type: ignore[index]
"""V1's monthly MCP row: 28 of 100, search 20, reader 8, zread 0."""
RESET = NOW + timedelta(hours=1)
"""The official 5-hour reset in these tests (13:00Z), which anchors the cycle as the engine does."""


def local(prompts: int = 72, **kwargs: object) -> Snapshot:
    """A local snapshot anchored at the official reset: 72 prompts of Pro's 600 = 12 %."""
    kwargs.setdefault("official_reset", RESET)
    return make_snapshot(prompts=prompts, calls=0, searches={"search": 3}, **kwargs)  # type: ignore[arg-type]


def official(percent: float, *limits: dict[str, object], **kwargs: object) -> Snapshot:
    """The local snapshot with a fresh (unless told) official reading whose 5-hour row says `percent`."""
    payload = quota_payload(five_hour_limit(percent, RESET), *limits)
    ago = kwargs.get("fetched_ago", timedelta(seconds=20))
    rows = official_rows(payload, fetched_ago=ago, stale=bool(kwargs.get("stale", False)))  # type: ignore[arg-type]
    # The one builder holds the official rows against the windows; `with_official` adds the rest.
    snap = kwargs.pop("snap", None) or local(official=rows)
    return with_official(snap, payload, **kwargs)  # type: ignore[arg-type]


def visible(app: DashApp, selector: str) -> bool:
    w = app.query_one(selector)
    return w.display and w.region.height > 0 and app.screen.region.contains_region(w.region)


# --- the prompt gauge ----------------------------------------------------------------------------


async def test_fresh_official_is_the_primary_figure_with_local_beside_it() -> None:
    snap = official(42, MONTHLY_V1)
    assert snap.reconciliation["primary"] == "official" and snap.prompts.percent == 12.0
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        headline = text(app, "#gauge-headline")
        assert headline.startswith("official 42 % · local 12 % · 528 left by local count")
        assert "stale" not in headline
        assert app.query_one(GaugeBar).fraction == pytest.approx(0.42)
        assert text(app, "#hdr-badge").strip() == "official"
        assert "-official" in app.query_one("#hdr-badge").classes


async def test_official_percentage_sets_the_gauge_level() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(official(96))  # local is 12 %: only the official figure is critical
        await pilot.pause()
        assert "-critical" in app.query_one("#gauge").classes
        assert "‼ CRITICAL" in text(app, "#gauge-headline")


async def test_stale_official_is_marked_with_its_age_and_never_shown_as_fresh() -> None:
    clock = FixedClock(NOW)
    snap = official(42, stale=True, fetched_ago=timedelta(minutes=4), health=("stale", "HTTP 503 from 127.0.0.1"))
    assert snap.reconciliation["primary"] == "local"
    app = make_app(clock)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        headline = text(app, "#gauge-headline")
        # The local figures lead; the last official value follows, marked, never blank.
        assert headline.startswith("528 left · 72 / 600 used · 12.0 %")
        assert "official 42 % (stale, 4m old)" in headline
        assert text(app, "#hdr-badge").strip() == "local"
        assert app.query_one(GaugeBar).fraction == pytest.approx(0.12)
        panel = text(app, "#official")
        assert "5-hour: 42 % · resets in 1h 00m at 13:00 · ◌ stale, 4m old" in panel
        assert "⚠ last poll: HTTP 503 from 127.0.0.1" in panel
        # The age follows the clock between snapshots.
        clock.advance(timedelta(minutes=2))
        app.tick()
        await pilot.pause()
        assert "official 42 % (stale, 6m old)" in text(app, "#gauge-headline")
        assert "◌ stale, 6m old" in text(app, "#official")


async def test_drift_warning_shows_only_past_the_margin() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(official(42))
        await pilot.pause()
        note = app.query_one("#gauge-note", Static)
        assert note.display
        assert str(note.render()) == (
            "⚠ Z.ai says 42% used, local logs 12%: other machines or tools zai-dash cannot read are using the plan"
        )
        app.show(official(20))  # 8 points apart: within the 15-point margin
        await pilot.pause()
        assert not note.display


async def test_prompts_left_estimate_at_the_current_mix() -> None:
    # The meter moved 10 → 20 % while local prompt-equivalents went 30 → 90: 6 per point, 58 points left.
    snap = official(42, calibration=[(10, 30), (20, 90)])
    assert snap.reconciliation["prompts_left_estimate"] == 348
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        headline = text(app, "#gauge-headline")
        assert "official 42 % · local 12 % · ≈348 prompts left at your current mix" in headline
        assert "left by local count" not in headline


async def test_endpoint_on_without_a_reading_says_so_and_why() -> None:
    # Server text is shown literally: `[token]` must not be read as markup.
    detail = "127.0.0.1 rejected the API key …xyzQ: [token] expired"
    snap = with_official(local(), {"data": {}}, health=("error", detail))
    assert snap.official == ()
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        assert text(app, "#gauge-headline").endswith("· official: no reading yet")
        panel = app.query_one(OfficialPanel)
        assert panel.display
        assert text(app, "#official") == f"no reading from Z.ai yet\n⚠ last poll: {detail}"


# --- the official quota panel --------------------------------------------------------------------


async def test_official_panel_rows_resets_from_the_clock_and_weekly_block() -> None:
    clock = FixedClock(NOW)
    snap = official(42, weekly_limit(100, NOW + timedelta(days=3, hours=4)), MONTHLY_V1)
    app = make_app(clock)
    async with app.run_test(size=(120, 40)) as pilot:
        app.show(snap)
        await pilot.pause()
        panel = text(app, "#official")
        lines = panel.splitlines()
        assert lines[0] == "5-hour: 42 % · resets in 1h 00m at 13:00 · <1m old"
        assert lines[1] == "weekly: 100 % · resets Nov 29 16:00 · <1m old"
        # The weekly window blocks even though the 5-hour one has room.
        assert (
            "‼ weekly limit reached: requests are blocked until it resets even though the 5-hour window has room"
            in (" ".join(panel.split()))
        )
        assert "monthly MCP: 28 % (28 / 100) · resets Dec 16 12:00 · search 20 reader 8 zread 0" in " ".join(
            panel.split()
        )
        assert "-blocked" in app.query_one(OfficialPanel).classes
        assert "✖ WEEKLY LIMIT REACHED" in text(app, "#gauge-headline")
        assert "-exhausted" in app.query_one("#gauge").classes
        # Countdown = next_reset − clock, recomputed on the tick, no new snapshot needed.
        clock.advance(timedelta(minutes=25))
        app.tick()
        await pilot.pause()
        assert text(app, "#official").splitlines()[0] == "5-hour: 42 % · resets in 35 min at 13:00 · 25m old"
        # Below 100 % the weekly row is just a row.
        app.show(official(42, weekly_limit(99)))
        await pilot.pause()
        assert "weekly limit reached" not in text(app, "#official")
        assert "WEEKLY" not in text(app, "#gauge-headline")


async def test_short_screens_compress_the_panel_and_keep_the_weekly_block() -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        app.show(official(42, weekly_limit(100), stale=True, fetched_ago=timedelta(minutes=5)))
        await pilot.pause()
        assert text(app, "#official") == "5-hour 42 % ↻1h 00m ◌ stale · weekly 100 % ↻Nov 29 ‼ BLOCKS ◌ stale"
        assert "✖ WEEKLY LIMIT REACHED" in text(app, "#gauge-headline")


async def test_credit_and_unknown_rows_are_shown_generically() -> None:
    snap = with_official(local(), V3_CREDIT)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        panel = " ".join(text(app, "#official").split())
        # 1438 / 12000 exactly, not the rounded 11 the server sent.
        assert "5-hour: 12 % (1,438 / 12,000) · resets in 2h 00m at 14:00" in panel
        assert "weekly: 2 % (1,226 / 60,000) · resets Dec 1 12:00" in panel
        assert "CREDIT_LIMIT 30 days: 5 % (5 / 100)" in panel
        assert "MYSTERY_LIMIT unit 9 × 2: 100 %" in panel


async def test_idle_five_hour_window_reads_not_started() -> None:
    snap = with_official(local(), V2_IDLE)
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        first = text(app, "#official").splitlines()[0]
        assert first == "5-hour: 0 % · not started: opens on your next prompt · <1m old"


async def test_endpoint_off_leaves_the_default_screen_alone() -> None:
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(make_snapshot())
        await pilot.pause()
        assert not app.query_one(OfficialPanel).display
        assert not app.query_one(ProxyPanel).display
        assert not app.query_one("#gauge-note").display
        assert "official" not in text(app, "#gauge-headline")
        assert "official" not in text(app, "#search")
        assert [c.label.plain for c in app.query_one(ToolsTable).columns.values()][1] == "Model"


# --- search panel --------------------------------------------------------------------------------


async def test_search_panel_labels_the_official_month() -> None:
    snap = official(42, MONTHLY_V1)
    assert snap.searches.provenance == "official"
    app = make_app()
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(snap)
        await pilot.pause()
        search = text(app, "#search")
        assert search.startswith("official month 28/100 · 72 left · reset Dec 16")
        assert "month: search 20 reader 8 zread 0" in search
        # A stale monthly row does not feed the gauge: the local month, unlabelled.
        app.show(official(42, MONTHLY_V1, stale=True))
        await pilot.pause()
        assert text(app, "#search").startswith("month 3/1,000")


# --- proxies -------------------------------------------------------------------------------------


async def test_proxy_401_is_explained_in_one_line() -> None:
    snap = replace(local(), proxies=(unauthorized_row("litellm"),))
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        app.show(snap)
        await pilot.pause()
        panel = app.query_one(ProxyPanel)
        assert panel.display and "-error" in panel.classes
        lines = text(app, "#proxies").splitlines()
        assert lines[0] == "litellm (litellm) ✖ unauthorized · no values yet"
        # Shown literally: `[[proxy]]` and `${…}` are not markup.
        assert lines[1].strip() == (
            "401 from litellm: LiteLLM protects /metrics by default; add "
            'headers = { Authorization = "Bearer ${LITELLM_MASTER_KEY}" } to this [[proxy]] or set '
            "litellm_settings.require_auth_for_metrics_endpoint: false"
        )
        assert len(lines) == 2  # no counts: it was never read, which is not zero


async def test_proxy_deltas_rates_and_staleness() -> None:
    clock = FixedClock(NOW)
    row = litellm_row(calls={"glm-4.6": 12, "glm-4.5-air": 3})
    app = make_app(clock)
    async with app.run_test(size=(160, 40)) as pilot:
        app.show(replace(local(), proxies=(row,)))
        await pilot.pause()
        lines = text(app, "#proxies").splitlines()
        assert lines[0] == "litellm (litellm) ✔ ok · <1m old"
        # The baseline scrape came after the cycle opened: counts are since zai-dash started watching.
        assert lines[1] == "  this cycle: requests 15 · tokens 18,000 (since 11:54)"
        assert lines[2] == "  per minute: glm-4.6 2.4 req/min, 2,880 tok/min · glm-4.5-air 0.6 req/min, 720 tok/min"
        stale = litellm_row(scraped_ago=timedelta(minutes=4), status="network", message="cannot reach litellm")
        app.show(replace(local(), proxies=(stale,)))
        await pilot.pause()
        lines = text(app, "#proxies").splitlines()
        assert lines[0] == "litellm (litellm) ✖ network · ◌ stale, 4m old"
        assert lines[1] == "  cannot reach litellm"
        assert lines[2].startswith("  this cycle: requests 15")  # the last values are kept, flagged


async def test_two_machines_merged_with_the_machine_each_count_came_from() -> None:
    laptop = make_snapshot(prompts=12, calls=80, searches={})
    devbox = make_snapshot(prompts=30, calls=210, extra=[Session("opencode", 10, 40, {})])
    snap = replace(local(), proxies=(exporter_row("laptop", laptop), exporter_row("devbox", devbox)))
    app = make_app()
    async with app.run_test(size=(160, 50)) as pilot:
        app.show(snap)
        await pilot.pause()
        panel = text(app, "#proxies")
        assert "laptop (zai-dash) ✔ ok" in panel and "devbox (zai-dash) ✔ ok" in panel
        assert "  this cycle: prompts 12 · calls 80 · searches 0" in panel
        assert "prompts by machine: Claude Code 42 (devbox 30, laptop 12) · OpenCode 10 (devbox 10)" in panel
        table = app.query_one(ToolsTable)
        assert [c.label.plain for c in table.columns.values()][:2] == ["Tool", "Machine"]
        assert [str(c) for c in table.get_row("claude-code")][:3] == ["Claude Code", "local", "glm-4.6 (config)"]
        assert [str(c) for c in table.get_row("@devbox/claude-code")] == [
            "Claude Code", "devbox", "—", "30", "210", "21", "—", "⇄ remote",
        ]  # fmt: skip
        assert [str(c) for c in table.get_row("@devbox/opencode")][3] == "10"
        assert [str(c) for c in table.get_row("@laptop/claude-code")][3] == "12"
        # Narrow: no Machine column, the machine rides on the tool's name.
        await pilot.resize_terminal(60, 30)
        await pilot.pause()
        assert str(table.get_row("@devbox/claude-code")[0]) == "Claude Code @devbox"
        # The exporters go away: so do their rows and the Machine column.
        await pilot.resize_terminal(160, 50)
        app.show(local())
        await pilot.pause()
        assert table.row_count == 1
        assert "Machine" not in [c.label.plain for c in table.columns.values()]


# --- layout --------------------------------------------------------------------------------------


def everything() -> Snapshot:
    snap = official(42, weekly_limit(30), MONTHLY_V1, calibration=[(10, 30), (20, 90)])
    return replace(snap, proxies=(litellm_row(), unauthorized_row("team")))


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (60, 20), (40, 12)], ids=["120x36", "80x24", "60x20", "40x12"])
async def test_layouts_keep_prompts_left_and_the_countdown_with_the_panels_present(size: tuple[int, int]) -> None:
    app = make_app()
    async with app.run_test(size=size) as pilot:
        app.show(everything())
        await pilot.pause()
        assert visible(app, "#gauge-headline")
        assert "≈348 prompts left at your current mix" in text(app, "#gauge-headline")
        assert visible(app, "#hero-digits" if size[1] >= 16 and size[0] > 60 else "#hero-line")
        if size == (40, 12):
            assert not app.query_one("#row-extra").display
            assert not visible(app, "#official") and not visible(app, "#proxies")
            assert "↻ 1h 00m at 13:00" in text(app, "#hero-line")
        else:
            assert visible(app, "#official") and visible(app, "#proxies")
        if size in ((80, 24), (60, 20)):
            # Short screens: one line for all windows, one per endpoint.
            assert text(app, "#official") == "5-hour 42 % ↻1h 00m · weekly 30 % ↻Nov 29 · monthly MCP 28 % ↻Dec 16"
            assert app.query_one(OfficialPanel).compact and app.query_one(ProxyPanel).compact
            assert text(app, "#proxies").splitlines() == [
                "litellm ✔ requests 15 · tokens 18,000",
                "team ✖ unauthorized ◌ stale",
            ]


@pytest.mark.parametrize("size", [(120, 36), (80, 24), (40, 12)], ids=["120x36", "80x24", "40x12"])
def test_official_screen_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    """The screen with the endpoint and two proxies on (regenerate on purpose with `--snapshot-update`)."""
    app = make_app()
    snap = everything()

    async def run_before(pilot: Any) -> None:
        app.show(snap)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)


# --- the real engine against a loopback quota server ---------------------------------------------


async def wait_for(pilot, predicate, seconds: float = 10.0) -> None:
    """Liveness wait: poll `predicate` until true, failing after `seconds`."""
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"not true within {seconds} s")


def quota_engine(home: Path, base_url: str):
    from tests.support.ui import write_claude_history
    from zai_dash.config import ApiSettings, Config, builtin_plans
    from zai_dash.engine import Engine
    from zai_dash.sources.base import SourceContext

    write_claude_history(home, NOW, prompts=3)
    clock = FixedClock(NOW)
    ctx = SourceContext(home=home, env=dict(os.environ, ZAI_API_KEY=FAKE_KEY), clock=clock.now)
    # The V1 reading is a legacy V1 account: configured as one, its prompt gauge leads with the official %.
    plans = builtin_plans("legacy-v1")
    config = replace(
        Config(),
        billing="legacy-v1",
        plan=plans["pro"],
        plans=plans,
        timezone="UTC",
        api=ApiSettings(enabled=True, base_url=base_url),
    )
    engine = Engine(config, ctx=ctx, clock=clock)
    engine.publish_state = False
    return engine, clock


def screen_text(app: DashApp) -> str:
    """Every character on screen (the SVG export) plus each widget's plain text."""
    parts = [app.export_screenshot()]
    parts += [str(w.render()) for w in app.screen.query(Static)]
    return "\n".join(parts)


async def test_end_to_end_official_figure_from_a_loopback_server(home: Path) -> None:
    with LoopbackServer(needs_auth("raw", Reply(200, V1))) as server:
        engine, clock = quota_engine(home, server.base)
        app = DashApp(engine, clock, theme="textual-dark", tz=timezone.utc)
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_for(pilot, lambda: "official 12 %" in text(app, "#gauge-headline"))
            assert text(app, "#hdr-badge").strip() == "official"
            # V1's 5-hour reset (13:00) anchors the cycle; the countdown reads it from the clock.
            assert text(app, "#countdown-caption") == "refreshes at 13:00"
            assert text(app, "#official").startswith("5-hour: 12 % · resets in 1h 00m at 13:00")
            assert text(app, "#search").startswith("official month 28/100 · 72 left")
            assert FAKE_SECRET not in screen_text(app)
        assert server.requests and server.requests[0]["authorization"] == FAKE_KEY


async def test_end_to_end_key_echoed_by_the_server_never_reaches_the_screen(home: Path) -> None:
    def echo(headers: dict[str, str]) -> Reply:
        return Reply(200, {"success": False, "code": 1000, "msg": f"bad key {headers.get('authorization')}"})

    with LoopbackServer(echo) as server:
        engine, clock = quota_engine(home, server.base)
        app = DashApp(engine, clock, theme="textual-dark", tz=timezone.utc)
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(pilot, lambda: "rejected the API key" in app.query_one(OfficialPanel).text)
            assert "official: no reading yet" in text(app, "#gauge-headline")
            assert "…xyzQ" in text(app, "#official")  # the hint, at most
            assert FAKE_SECRET not in screen_text(app)
        assert any(FAKE_KEY in h.get("authorization", "") for h in server.requests)
