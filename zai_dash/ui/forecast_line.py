"""The forecast line: will the pool last until the refresh at the current pace?"""

from __future__ import annotations

from datetime import tzinfo

from textual.widgets import Static

from zai_dash import text as fmt
from zai_dash.domain.series import pace_verdict, pool_left
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.live import set_text


class ForecastLine(Static):
    """When the pool runs dry at this pace (or what is left at the refresh), and the safe pace."""

    DEFAULT_CSS = """
    ForecastLine { height: auto; width: 1fr; }
    """

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.tz = tz
        self.text = ""
        """The plain text last shown."""

    def set_snapshot(self, snap: Snapshot) -> None:
        """Describe the snapshot's forecast; a no-op when the text is unchanged."""
        text, level = forecast_text(snap, self.tz)
        self.set_class(level == "critical", "-critical")
        self.set_class(level == "ok", "-ok")
        if text != self.text:
            self.text = text
            set_text(self, text)


def forecast_text(snap: Snapshot, tz: tzinfo | None) -> tuple[str, str]:
    """The sentence and its level: the forecast's verdict (`pace_verdict`, which colours the pace line too)."""
    verdict = pace_verdict(snap)
    f = snap.forecast
    cycle = snap.cycle
    if verdict == "none" or f is None or cycle.end is None:
        return "no forecast until the cycle opens", "none"
    pace = f"safe pace {fmt.rate(f.safe_pace)}" if f.safe_pace is not None else ""
    now_rate = f"now {fmt.rate(f.rate_recent)}"
    if pool_left(snap) <= 0:
        return f"✖ pool used up — wait for the refresh at {fmt.hhmm(cycle.end, tz)}", "critical"
    if f.exhausted_at is not None:
        before = fmt.duration((f.minutes_before_reset or 0) * 60)
        text = (
            f"▼ at this pace you run out at {fmt.hhmm(f.exhausted_at, tz)}, {before} before the refresh"
            f" · {now_rate} · {pace}"
        )
        return text, verdict
    left = f.left_at_reset if f.left_at_reset is not None else snap.prompts.left
    text = f"✔ on pace: ~{fmt.count(left)} left at refresh · {now_rate}"
    if pace:
        text += f" · {pace}"
    return text, verdict
