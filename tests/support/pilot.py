"""The dashboard app under Textual's pilot: building it, waiting, reading its text and toasts."""

from __future__ import annotations

from datetime import timezone

from textual.widgets._toast import Toast

from tests.support.ui import NOW, shown
from zai_dash.clock import FixedClock
from zai_dash.ui.app import DashApp


def make_app(clock: FixedClock | None = None, **kwargs: object) -> DashApp:
    kwargs.setdefault("theme", "textual-dark")
    return DashApp(clock=clock or FixedClock(NOW), tz=timezone.utc, **kwargs)  # type: ignore[arg-type]


def text(app: DashApp, selector: str) -> str:
    """The plain text a Static/Label shows."""
    return shown(app.query_one(selector))


def toasts(app: DashApp) -> list[str]:
    return [str(t.render()) for t in app.screen.query(Toast)]


async def wait_for(pilot, predicate, seconds: float = 5.0) -> None:
    """Liveness wait: poll `predicate` until true, failing after `seconds`."""
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"not true within {seconds} s")
