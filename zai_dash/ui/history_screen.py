"""The history view (key `h`): past cycles, the days of this week and the last, credits by model and tool.

Every figure is the snapshot's (`Snapshot.history`, `Snapshot.credits`); the screen only lays them out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from zai_dash import text as fmt
from zai_dash.domain.history import CycleSummary
from zai_dash.domain.snapshot import Snapshot
from zai_dash.text import fmt_amount


def cycle_line(c: CycleSummary, unit: str, tz: tzinfo | None) -> str:
    """`last cycle 09:20–14:20 · 540/600 prompts · 90 % of the pool` (the main screen after a cycle ends)."""
    amount = f"{fmt_amount(c.used, unit)}/{fmt_amount(c.limit, unit)} {unit}"
    return f"last cycle {fmt.hhmm(c.start, tz)}–{fmt.hhmm(c.end, tz)} · {amount} · {c.share:.0f} % of the pool"


def top(amounts: Mapping[str, float], names: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(name, credits) largest first."""
    names = names or {}
    return [(names.get(k, k), fmt_amount(v, "credits")) for k, v in sorted(amounts.items(), key=lambda kv: -kv[1])]


class HistoryScreen(ModalScreen[None]):
    """Past cycles, days and credits, over the dashboard."""

    DEFAULT_CSS = """
    HistoryScreen {
        align: center middle;
        #history-body {
            width: 100%;
            max-width: 100;
            height: 100%;
            border: round $primary;
            background: $surface;
            padding: 0 1;
        }
        .history-title { text-style: bold; margin: 1 0 0 0; }
        DataTable { height: auto; }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,h,q", "dismiss_history", "Close", show=True),
    ]

    def __init__(self, snap: Snapshot, tz: tzinfo | None = None) -> None:
        super().__init__()
        self.snap = snap
        self.tz = tz

    def compose(self) -> ComposeResult:
        history, unit = self.snap.history, self.snap.history.unit
        with VerticalScroll(id="history-body"):
            yield Static(f"Past 5-hour cycles ({unit})", classes="history-title")
            cycles: DataTable[str] = DataTable(id="history-cycles", show_cursor=False)
            cycles.add_columns("Start", "End", "Used", "Share", "Prompts")
            for c in history.cycles:
                start = fmt.local(c.start, self.tz).strftime("%a %d %H:%M")
                used = f"{fmt_amount(c.used, unit)}/{fmt_amount(c.limit, unit)}"
                cycles.add_row(start, fmt.hhmm(c.end, self.tz), used, f"{c.share:.0f} %", fmt.count(c.prompts))
            yield cycles if history.cycles else Static("no closed cycle in the last 8 days", id="history-no-cycles")
            yield Static(f"Days: this week and the week before ({unit})", classes="history-title")
            days: DataTable[str] = DataTable(id="history-days", show_cursor=False)
            days.add_columns("Day", "Used", "Prompts", "Credits")
            for d in reversed(history.days):
                days.add_row(
                    d.day.strftime("%a %d %b"),
                    fmt_amount(d.used, unit),
                    fmt.count(d.prompts),
                    fmt_amount(d.credits, "credits"),
                )
            yield days
            credits = self.snap.credits
            yield Static("Credits this week by model", classes="history-title")
            models: DataTable[str] = DataTable(id="history-models", show_cursor=False)
            models.add_columns("Model", "Credits")
            models.add_rows(top(credits.by_model_week))
            yield models
            yield Static("Credits this week by tool", classes="history-title")
            tools: DataTable[str] = DataTable(id="history-tools", show_cursor=False)
            tools.add_columns("Tool", "Credits")
            tools.add_rows(top(credits.by_tool_week, self.snap.tool_names))
            yield tools

    def action_dismiss_history(self) -> None:
        """Close the history view."""
        self.dismiss(None)
