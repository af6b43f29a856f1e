"""Every metered window as one labelled row: name, bar, used/limit, left, reset time, source, stale marker.

The rows are the snapshot's `windows` as they are; the widget formats them and decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

from zai_dash import text as fmt
from zai_dash.domain.windows import OFFICIAL_KINDS, WindowRow
from zai_dash.text import fmt_amount
from zai_dash.ui.hero import LEVEL_GLYPHS, LEVELS, WINDOW_NAMES
from zai_dash.ui.live import set_text
from zai_dash.ui.prompt_gauge import UNIT_SHORT, GaugeBar


def stale_windows(official: Sequence[Mapping[str, Any]]) -> frozenset[str]:
    """Window ids whose official reading is stale (the row then shows local figures, or an old block)."""
    out = set()
    for row in official:
        window = row.get("window") or OFFICIAL_KINDS.get(str(row.get("kind")))
        if row.get("stale") and window:
            out.add(str(window))
    return frozenset(out)


def reset_text(w: WindowRow, tz: tzinfo | None) -> str:
    """`⟳ 14:50`, `⟳ Thu 09:00`, `blocked → 16:00`, `not started`, `rolling 7 d`."""
    if w.blocked_until is not None:
        return f"blocked → {fmt.hhmm(w.blocked_until, tz)}"
    if w.state == "not-started":
        return "not started"
    if w.end is None:
        return "rolling 7 d"
    if w.id == "5h":
        return f"⟳ {fmt.hhmm(w.end, tz)}"
    return f"⟳ {fmt.local(w.end, tz).strftime('%a %H:%M')}" if w.id == "weekly" else f"⟳ {w.end:%d %b}"


SHORT_NAMES = {"5h": "5h", "weekly": "week", "monthly-mcp": "MCP"}
SOURCE_SHORT = {"official": "off", "local": "loc", "estimate": "est"}


def short_when(when: str) -> str:
    """`reset_text` for a narrow pane: `⟳14:50`, `✖→16:00`, `7d`."""
    return when.replace("⟳ ", "⟳").replace("blocked → ", "✖→").replace("rolling 7 d", "7d")


def row_text(w: WindowRow, tz: tzinfo | None, stale: bool, *, short: bool = False) -> str:
    """`402/12k cr · 11.6k left · ⟳ 14:50 · official · stale ▲` (everything right of the bar); `short` drops
    the unit and abbreviates the source for narrow panes: `402/12k · 11.6k left · ⟳ 14:50 · off`."""
    unit = "" if short else " " + UNIT_SHORT.get(w.unit, w.unit)
    if w.unit == "percent":
        amount, left = f"{w.percent:.0f} %", f"{max(0.0, 100 - w.percent):.0f} % left"
    else:
        amount = f"{fmt_amount(w.used, w.unit)}/{fmt_amount(w.limit, w.unit)}{unit}"
        left = f"[b]{fmt_amount(w.left, w.unit)}[/b] left"
    when = reset_text(w, tz)
    parts = [amount, left, short_when(when) if short else when]
    parts.append(SOURCE_SHORT.get(w.source, w.source) if short else w.source)
    if stale:
        parts.append("[b]stale[/b]")
    glyph = LEVEL_GLYPHS.get(w.level, "")
    return (" " if short else " · ").join(parts) + (f" {glyph}" if glyph else "")


class WindowRowView(Horizontal):
    """One window: its name, a bar, and the figures."""

    DEFAULT_CSS = """
    WindowRowView {
        height: 1;
        .wr-name { width: 12; }
        .wr-short-name { width: 5; display: none; }
        GaugeBar { width: 1fr; min-width: 4; max-width: 30; }
        .wr-text { width: auto; padding: 0 0 0 1; }
        .wr-short { width: auto; padding: 0 0 0 1; display: none; }
    }
    """

    def __init__(self, wid: str) -> None:
        super().__init__(classes=f"window-row -window-{wid}")
        self.wid = wid
        self.text = ""
        """The figures last shown (markup)."""
        self.pending: tuple[WindowRow, tzinfo | None, bool] | None = None
        """What to paint once mounted (a row is given its window before its children exist)."""

    def compose(self) -> ComposeResult:
        yield Static(WINDOW_NAMES.get(self.wid, self.wid), classes="wr-name")
        yield Static(SHORT_NAMES.get(self.wid, self.wid), classes="wr-short-name")
        yield GaugeBar()
        yield Static("", classes="wr-text")
        yield Static("", classes="wr-short")

    def on_mount(self) -> None:
        if self.pending is not None:
            self.show(*self.pending)

    def show(self, w: WindowRow, tz: tzinfo | None, stale: bool) -> None:
        """Paint the row (a no-op for the bar and text when they are unchanged)."""
        self.pending = (w, tz, stale)
        if not self.query(GaugeBar):
            return  # not composed yet: `on_mount` paints it
        for name in LEVELS:
            self.set_class(name == w.level, f"-{name}")
        self.query_one(GaugeBar).fraction = 1.0 if w.blocked_until is not None else w.percent / 100
        text = row_text(w, tz, stale)
        if text != self.text:
            self.text = text
            # Same-length text keeps its size: no layout pass (a full re-arrange of the screen) for it.
            set_text(self.query_one(".wr-text", Static), text)
            set_text(self.query_one(".wr-short", Static), row_text(w, tz, stale, short=True))


class WindowRows(Widget):
    """The plan's windows, one row each, in the snapshot's order."""

    DEFAULT_CSS = """
    WindowRows { height: auto; }
    """

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.rows: tuple[WindowRow, ...] = ()
        """The windows last shown."""

    def set_windows(self, windows: Sequence[WindowRow], official: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """Show the snapshot's windows; rows are mounted or removed only when the set of windows changes."""
        del now  # reset times are absolute; nothing here counts down
        self.rows = tuple(windows)
        stale = stale_windows(official)
        views = {v.wid: v for v in self.query(WindowRowView)}
        if list(views) != [w.id for w in windows]:
            for view in views.values():
                view.remove()
            views = {w.id: WindowRowView(w.id) for w in windows}
            self.mount_all(views.values())
        for w in windows:
            views[w.id].show(w, self.tz, w.id in stale)
