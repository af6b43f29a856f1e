"""The tools table: one row per tool found, updated in place."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import DataTable

from zai_dash.domain.snapshot import ToolRow
from zai_dash.ui import fmt

COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "wide": (
        ("tool", "Tool"),
        ("model", "Model"),
        ("prompts", "Prompts"),
        ("calls", "Calls"),
        ("searches", "Searches"),
        ("last", "Last"),
        ("status", "Status"),
    ),
    "medium": (
        ("tool", "Tool"),
        ("model", "Model"),
        ("prompts", "Prompts"),
        ("searches", "MCP"),
        ("last", "Last"),
        ("status", "Status"),
    ),
    "narrow": (
        ("tool", "Tool"),
        ("model", "Model"),
        ("prompts", "Pr"),
        ("last", "Last"),
        ("status", "Status"),
    ),
}
"""(key, label) of the columns per width class; keyed so cells can be updated in place."""

STATUS_CUES = {"live": "● live", "idle": "○ idle", "stale": "◌ stale", "error": "✖ error", "absent": "absent"}


class ToolsTable(DataTable[str | Text]):
    """Tool, model in use (and where it came from), counts this cycle, last activity, status."""

    DEFAULT_CSS = """
    ToolsTable { height: auto; max-height: 12; overflow-x: hidden; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=False)
        self.rows_data: dict[str, ToolRow] = {}
        """The rows shown, by tool id."""
        self.width_class = "wide"
        """Which column set is shown: `wide`, `medium` or `narrow`."""
        self._now: datetime | None = None

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label in COLUMNS[self.width_class]:
            self.add_column(label, key=key)

    def set_width_class(self, width_class: str) -> None:
        """Switch the column set (on resize only; a rare full rebuild)."""
        if width_class == self.width_class:
            return
        self.width_class = width_class
        rows = list(self.rows_data.values())
        self.clear(columns=True)
        self.rows_data = {}
        self._add_columns()
        if self._now is not None:
            self.set_rows(rows, self._now)

    def set_rows(self, rows: list[ToolRow] | tuple[ToolRow, ...], now: datetime) -> None:
        """Show the found tools: update changed cells, add new rows, drop vanished ones."""
        self._now = now
        found = [r for r in rows if r.found]
        keep = {r.tool for r in found}
        for gone in [t for t in self.rows_data if t not in keep]:
            self.remove_row(gone)
            del self.rows_data[gone]
        for row in found:
            cells = self.cells(row, now)
            if row.tool not in self.rows_data:
                self.add_row(*cells.values(), key=row.tool)
            else:
                old = self.cells(self.rows_data[row.tool], now)
                for key, value in cells.items():
                    if str(value) != str(old[key]):
                        self.update_cell(row.tool, key, value, update_width=True)
            self.rows_data[row.tool] = row

    def refresh_ago(self, now: datetime) -> None:
        """Advance the "last activity" column; cells repaint only when their text changes (once a minute)."""
        for tool, row in self.rows_data.items():
            before = fmt.ago(row.last_activity, self._now) if self._now else None
            after = fmt.ago(row.last_activity, now)
            if before != after:
                self.update_cell(tool, "last", after, update_width=True)
        self._now = now

    def cells(self, row: ToolRow, now: datetime) -> dict[str, str | Text]:
        """The row's cells by column key, for the current column set."""
        model = row.model or "—"
        if row.model and row.model_source:
            model = f"{row.model} ({row.model_source})"
        status: str | Text = STATUS_CUES.get(row.status, row.status)
        if row.warning:
            # Pay-as-you-go endpoints are not drawn from the plan: say so on the row itself.
            cue = "⚠ pay-as-you-go" if self.width_class == "wide" else "⚠ PAYG"
            status = Text.assemble(str(status), " ", (cue, "bold"))
        every: dict[str, str | Text] = {
            "tool": row.name,
            "model": model,
            "prompts": fmt.count(row.prompts),
            "calls": fmt.count(row.calls),
            "searches": fmt.count(row.searches),
            "last": fmt.ago(row.last_activity, now),
            "status": status,
        }
        return {key: every[key] for key, _ in COLUMNS[self.width_class]}
