"""SVG snapshots of the dashboard at the four sizes the layout promises, at a fixed clock and timezone.

Regenerate on purpose (after reviewing `snapshot_report.html`) with `pytest --snapshot-update`.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest

from tests.support.ui import NOW, Session, at_percent, empty_snapshot, make_snapshot
from tests.support.windows import NOW as WEEK_NOW
from tests.support.windows import WEEKLY_RESET, ledger, week_of_credits
from tests.support.windows import snapshot as week_snapshot
from zai_dash.clock import FixedClock
from zai_dash.config import packaged_tariff
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.app import DashApp

SIZES = [(120, 36), (80, 24), (60, 20), (60, 45), (50, 15), (40, 12)]
"""Wide, the classic terminal, a narrow split, a tall narrow pane, a small tmux pane, the smallest."""


def busy() -> Snapshot:
    return make_snapshot(
        prompts=310,
        calls=3400,
        opened_ago=timedelta(hours=2, minutes=40),
        extra=[Session("opencode", 24, 180, {"search": 6}, model="glm-4.5-air", first=40, last=18)],
        payg_tool="opencode",
    )


def blocked() -> Snapshot:
    """Every prompt used and a 1308 limit hit naming the reset 40 minutes ahead: the hero says blocked."""
    return at_percent(100, limit_hit_reset=NOW + timedelta(minutes=40))


def app_showing(snap: Snapshot, *, keys: str = "", **kwargs: Any) -> tuple[DashApp, Any]:
    """The app showing `snap` at the snapshot's instant, after pressing `keys`."""
    kwargs.setdefault("theme", "textual-dark")
    # Unicode whatever the locale the tests run in (LANG=C has its own snapshot), and the packaged tariff's
    # peak hours shaded in the usage chart.
    kwargs.setdefault("ascii_only", False)
    kwargs.setdefault("tariff", packaged_tariff())
    app = DashApp(clock=FixedClock(snap.at), tz=timezone.utc, **kwargs)

    async def run_before(pilot: Any) -> None:
        app.show(snap)
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()

    return app, run_before


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_dashboard(snap_compare: Any, size: tuple[int, int]) -> None:
    app, run_before = app_showing(busy())
    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (40, 12)], ids=["80x24", "40x12"])
def test_critical_demo(snap_compare: Any, size: tuple[int, int]) -> None:
    app, run_before = app_showing(at_percent(93), demo=True)
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_empty_state(snap_compare: Any) -> None:
    app, run_before = app_showing(empty_snapshot())
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (40, 12)], ids=["80x24", "40x12"])
def test_blocked_hero(snap_compare: Any, size: tuple[int, int]) -> None:
    app, run_before = app_showing(blocked())
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_no_color_blocked(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: the blocked line is bold and reversed (the brightest on screen, not the dimmest)."""
    monkeypatch.setenv("NO_COLOR", "1")
    app, run_before = app_showing(blocked())
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("which", ["ok", "critical"])
def test_sixteen_colours(snap_compare: Any, which: str) -> None:
    """The 16-colour palette: the terminal's own colours when fine, yellow/red only for what they mean."""
    app, run_before = app_showing(busy() if which == "ok" else at_percent(93), theme="zai-ansi")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


@pytest.mark.parametrize("size", [(120, 36), (80, 24)], ids=["120x36", "80x24"])
def test_history_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    """`h`: the past cycles, the days of this week and the week before, credits per model and per tool."""
    snap = week_snapshot(ledger(week_of_credits()), WEEK_NOW, weekly_reset=WEEKLY_RESET)
    app, run_before = app_showing(snap, keys="h")
    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_lang_c_draws_ascii_charts(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """LANG=C: the charts in plain ASCII (the locale decides; nothing passed in)."""
    monkeypatch.setenv("LANG", "C")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    app, run_before = app_showing(busy(), ascii_only=None)
    assert app.ascii_only
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


@pytest.mark.parametrize("which", ["ok", "warning"])
def test_light_theme(snap_compare: Any, which: str) -> None:
    """textual-light: numbers at AA contrast (`test_ui_contrast`), charts with dark axes on the light ground."""
    app, run_before = app_showing(busy() if which == "ok" else at_percent(80), theme="textual-light")
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
