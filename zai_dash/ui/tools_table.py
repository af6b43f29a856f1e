"""The tools table: one row per tool found, updated in place.

With zai-dash exporters of other machines configured as proxies, their tools get rows too, and a
Machine column says where each count came from (only then: the default table is unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from zai_dash import text as fmt
from zai_dash.domain.snapshot import ToolRow
from zai_dash.ui.proxy_panel import MachineRow

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

MACHINE_COLUMN = ("machine", "Machine")
LOCAL_MACHINE = "local"
"""The Machine cell of the tools read from this machine's own logs."""
REMOTE_CUE = "⇄ remote"

Cell = str | Text

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
        self.remote: dict[str, MachineRow] = {}
        """Other machines' rows (from zai-dash exporters), by row key."""
        self.with_machines = False
        """Whether the Machine column is in the column set (only while other machines' rows exist)."""
        self._now: datetime | None = None
        self._on_screen = False
        self._ago_pending: datetime | None = None

    def columns_shown(self) -> tuple[tuple[str, str], ...]:
        """(key, label) of the columns for the current width and rows."""
        cols = COLUMNS[self.width_class]
        return (cols[0], MACHINE_COLUMN, *cols[1:]) if self.with_machines else cols

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        for key, label in self.columns_shown():
            self.add_column(label, key=key)

    def _rebuild(self, rows: Sequence[ToolRow], remote: Sequence[MachineRow]) -> None:
        """Drop every row and column, then add them again for the current column set."""
        self.clear(columns=True)
        self.rows_data = {}
        self.remote = {}
        self._add_columns()
        if self._now is not None:
            self.set_rows(rows, self._now, remote)

    def set_width_class(self, width_class: str) -> None:
        """Switch the column set (on resize only; a rare full rebuild)."""
        if width_class == self.width_class:
            return
        self.width_class = width_class
        self.with_machines = bool(self.remote) and width_class != "narrow"
        self._rebuild(list(self.rows_data.values()), list(self.remote.values()))

    def set_rows(self, rows: Sequence[ToolRow], now: datetime, remote: Sequence[MachineRow] = ()) -> None:
        """Show the found tools, and other machines' tools: update changed cells, add new rows, drop vanished ones."""
        self._now = now
        with_machines = bool(remote) and self.width_class != "narrow"
        if with_machines != self.with_machines:
            # The Machine column comes or goes (a remote exporter appeared or vanished): a rare full rebuild.
            self.with_machines = with_machines
            self._rebuild(rows, remote)
            return
        found = [r for r in rows if r.found]
        self._sync({r.tool: r for r in found}, self.rows_data, lambda r: self.cells(r, now))
        self._sync({m.key: m for m in remote}, self.remote, self.remote_cells)

    def _sync(self, wanted: dict[str, Any], shown: dict[str, Any], cells_of: Callable[[Any], dict[str, Cell]]) -> None:
        """Make the rows in `shown` match `wanted`, touching only the cells whose text changed."""
        for gone in [k for k in shown if k not in wanted]:
            self.remove_row(gone)
            del shown[gone]
        for key, row in wanted.items():
            cells = cells_of(row)
            if key not in shown:
                self.add_row(*cells.values(), key=key)
            else:
                old = cells_of(shown[key])
                for column, value in cells.items():
                    if str(value) != str(old[column]):
                        self.update_cell(key, column, value, update_width=True)
            shown[key] = row

    def on_show(self) -> None:
        """Came on screen (the breakpoints or `t` showed it): catch the "last activity" column up."""
        self._on_screen = True
        if self._ago_pending is not None:
            self.refresh_ago(self._ago_pending)

    def on_hide(self) -> None:
        """Off screen: the "ago" column waits (refreshing a hidden widget re-arranges the whole screen)."""
        self._on_screen = False

    def refresh_ago(self, now: datetime) -> None:
        """Advance the "last activity" column when the clock's minute changes; changed cells then repaint.

        Each row's minutes-ago figure turns over at its own second, so advancing every second would repaint the whole
        table once per row per minute; on the minute it repaints once, at most a minute late.
        """
        if not self._on_screen:
            self._ago_pending = now
            return
        if self._now is not None and _minute(now) == _minute(self._now):
            return
        self._ago_pending = None
        for tool, row in self.rows_data.items():
            before = fmt.ago(row.last_activity, self._now) if self._now else None
            after = fmt.ago(row.last_activity, now)
            if before != after:
                self.update_cell(tool, "last", after, update_width=True)
        self._now = now

    def cells(self, row: ToolRow, now: datetime) -> dict[str, Cell]:
        """The row's cells by column key, for the current column set."""
        model = row.model or "—"
        if row.model and row.model_source:
            model = f"{row.model} ({row.model_source})"
        status: str | Text = STATUS_CUES.get(row.status, row.status)
        if row.warning:
            # Pay-as-you-go endpoints are not drawn from the plan: say so on the row itself.
            cue = "⚠ pay-as-you-go" if self.width_class == "wide" else "⚠ PAYG"
            status = Text.assemble(str(status), " ", (cue, "bold"))
        every: dict[str, Cell] = {
            "tool": row.name,
            "model": model,
            "prompts": fmt.count(row.prompts),
            "calls": fmt.count(row.calls),
            "searches": fmt.count(row.searches),
            "last": fmt.ago(row.last_activity, now),
            "status": status,
            "machine": LOCAL_MACHINE,
        }
        return {key: every[key] for key, _ in self.columns_shown()}

    def remote_cells(self, row: MachineRow) -> dict[str, Cell]:
        """Another machine's tool: its counts this cycle as its exporter reported them."""
        status = Text.assemble((STATUS_CUES["stale"], "bold")) if row.stale else Text(REMOTE_CUE)
        every: dict[str, Cell] = {
            # Without room for a Machine column the machine rides on the tool's name.
            "tool": row.name if self.with_machines else f"{row.name} @{row.machine}",
            "machine": row.machine,
            "model": "—",
            "prompts": fmt.count(row.prompts),
            "calls": fmt.count(row.calls),
            "searches": fmt.count(row.searches),
            "last": "—",
            "status": status,
        }
        return {key: every[key] for key, _ in self.columns_shown()}


def _minute(at: datetime) -> datetime:
    """The instant's wall-clock minute."""
    return at.replace(second=0, microsecond=0)
