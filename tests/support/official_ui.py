"""The dashboard app with official and proxy readings, under Textual's pilot."""

from __future__ import annotations

from datetime import timezone

from tests.support.ui import (
    NOW,
    shown,
)
from zai_dash.clock import FixedClock
from zai_dash.ui.app import DashApp


def make_app(clock: FixedClock | None = None, **kwargs: object) -> DashApp:
    kwargs.setdefault("theme", "textual-dark")
    kwargs.setdefault("ascii_only", False)  # the snapshots draw Unicode whatever the locale the tests run in
    return DashApp(clock=clock or FixedClock(NOW), tz=timezone.utc, **kwargs)  # type: ignore[arg-type]


def text(app: DashApp, selector: str) -> str:
    """The plain text a Static shows."""
    return shown(app.query_one(selector))
