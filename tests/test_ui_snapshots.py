"""SVG snapshots of the dashboard at the four sizes the layout promises, at a fixed clock and timezone.

Regenerate on purpose (after reviewing `snapshot_report.html`) with `pytest --snapshot-update`.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest

from tests.ui_factories import NOW, Session, at_percent, empty_snapshot, make_snapshot
from zai_dash.clock import FixedClock
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.app import DashApp

SIZES = [(120, 36), (80, 24), (60, 20), (40, 12)]


def busy() -> Snapshot:
    return make_snapshot(
        prompts=310,
        calls=3400,
        opened_ago=timedelta(hours=2, minutes=40),
        extra=[Session("opencode", 24, 180, {"search": 6}, model="glm-4.5-air", first=40, last=18)],
        payg_tool="opencode",
    )


def app_showing(snap: Snapshot, **kwargs: Any) -> tuple[DashApp, Any]:
    app = DashApp(clock=FixedClock(NOW), tz=timezone.utc, theme="textual-dark", **kwargs)

    async def run_before(pilot: Any) -> None:
        app.show(snap)
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
