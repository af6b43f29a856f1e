"""The Search MCP panel: the month's pool (search + reader + zread) and this cycle's count."""

from __future__ import annotations

from datetime import tzinfo

from textual.widgets import Static

from zai_dash import text as fmt
from zai_dash.domain.snapshot import SearchGauge, Thresholds
from zai_dash.ui.live import set_text

SERVICES = ("search", "reader", "zread", "vision")


class SearchPanel(Static):
    """Month used / limit with the reset date, the cycle's count, and per-service counts."""

    DEFAULT_CSS = """
    SearchPanel { height: auto; width: 1fr; }
    """

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.tz = tz
        self.text = ""
        """The text last shown."""

    def set_gauge(self, data: SearchGauge, thresholds: Thresholds) -> None:
        """Show the search counts; a no-op when the text is unchanged."""
        text, level = search_text(data, thresholds, self.tz)
        for cls in ("-warning", "-critical"):
            self.set_class(f"-{level}" == cls, cls)
        if text != self.text:
            self.text = text
            set_text(self, text)


def search_text(data: SearchGauge, thresholds: Thresholds, tz: tzinfo | None) -> tuple[str, str]:
    """The panel text and its level (`ok`, `warning`, `critical`)."""
    # month_end is the first instant of the next month window; the reset date is that day.
    end = fmt.local(data.month_end, tz)
    resets = f"{end:%b} {end.day}"
    # Z.ai's own monthly MCP row fed the month figures: say so (local counts are only a lower bound).
    label = "official month" if data.provenance == "official" else "month"
    if data.month_limit <= 0:
        first = f"{label} {fmt.count(data.month)} · no search quota on this plan · reset {resets}"
        level = "ok"
    else:
        frac = data.month / data.month_limit
        level = "ok"
        if frac >= thresholds.critical:
            level = "critical"
        elif frac >= thresholds.warning:
            level = "warning"
        cue = {"warning": "  ▲ LOW", "critical": "  ‼ VERY LOW"}.get(level, "")
        first = (
            f"{label} [b]{fmt.count(data.month)}/{fmt.count(data.month_limit)}[/b]"
            f" · {fmt.count(data.month_left)} left · reset {resets}{cue}"
        )
    services = " ".join(f"{s} {fmt.count(data.by_service.get(s, 0))}" for s in SERVICES)
    second = f"cycle {fmt.count(data.cycle)} · month: {services}"
    return f"{first}\n{second}", level
