"""The hero: the binding window's amount left, in its unit, as the largest thing on screen, with its countdown.

Everything comes from the snapshot's `headline` and its binding `WindowRow`; the widget only formats. While
a limit blocks, the hero says "blocked until HH:MM" and the big digits count down to it instead.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget

from zai_dash import text as fmt
from zai_dash.domain.windows import Headline, WindowRow
from zai_dash.text import fmt_amount
from zai_dash.ui.live import LiveDigits, LiveStatic

WINDOW_NAMES = {"5h": "5-hour", "weekly": "weekly", "monthly-mcp": "monthly MCP"}
LEVELS = ("ok", "warning", "critical", "exhausted")
LEVEL_GLYPHS = {"ok": "", "warning": "▲", "critical": "‼", "exhausted": "✖"}
"""A glyph per level, so the state reads under NO_COLOR and in 16 colours, not by colour alone."""


def split_amount(value: float, unit: str) -> tuple[str, str]:
    """`fmt_amount` split into what the big digits can draw and its suffix: `11.6k` → (`11.6`, `k`)."""
    text = fmt_amount(value, unit)
    if text and text[-1] in "kM":
        return text[:-1], text[-1]
    return text, ""


class Hero(Widget):
    """The binding figure: big digits of what is left, its unit and window, and the countdown to its reset."""

    DEFAULT_CSS = """
    Hero {
        height: auto;
        #hero-big { height: auto; }
        #hero-digits { width: auto; }
        #hero-side { width: 1fr; height: auto; padding: 0 0 0 2; }
        #hero-line { width: 1fr; display: none; }
    }
    """

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.head: Headline | None = None
        """The headline of the latest snapshot."""
        self.row: WindowRow | None = None
        """The binding window's row."""
        self.figure = "—"
        """The big figure (amount left, or the blocked countdown)."""
        self.label = "waiting for the first scan…"
        """What the figure is (`credits left · 5-hour window`, `BLOCKED until 16:00`)."""
        self.countdown = ""
        """The countdown line."""
        self.line = "waiting for the first scan…"
        """The one-line form (small screens)."""
        # Built here, not in compose: a snapshot may come before they mount (they paint on `Show`).
        self._figure = LiveDigits(self.figure, id="hero-digits")
        self._label = LiveStatic(self.label, id="hero-label")
        self._countdown = LiveStatic(self.countdown, id="hero-countdown")
        self._line = LiveStatic(self.line, id="hero-line")

    def compose(self) -> ComposeResult:
        with Horizontal(id="hero-big"):
            yield self._figure
            with Vertical(id="hero-side"):
                yield self._label
                yield self._countdown
        yield self._line

    def set_headline(self, head: Headline | None, row: WindowRow | None, now: datetime) -> None:
        """Take the headline and binding row of a new snapshot and repaint."""
        self.head, self.row = head, row
        level = head.level if head is not None else "ok"
        for name in LEVELS:
            self.set_class(name == level, f"-{name}")
        self.set_class(head is not None and head.blocked_until is not None, "-blocked")
        self.tick(now)

    def tick(self, now: datetime) -> None:
        """Recompute the countdown from the deadline; the live widgets repaint only what changed and is shown."""
        parts = self.parts(now)
        if parts == (self.figure, self.label, self.countdown, self.line):
            return  # the common idle tick when the countdown shows minutes, or nothing moves
        self.figure, self.label, self.countdown, self.line = parts
        self._figure.show_text(self.figure)
        self._label.show_text(self.label)
        self._countdown.show_text(self.countdown)
        self._line.show_text(self.line)

    def parts(self, now: datetime) -> tuple[str, str, str, str]:
        """(big figure, what it is, countdown, the one-line form for small screens)."""
        head, row = self.head, self.row
        if head is None or head.window is None or head.unit is None:
            return "—", "no metered window", "", "no metered window"
        window = WINDOW_NAMES.get(head.window, head.window)
        if head.blocked_until is not None and head.blocked_until > now:
            wait = fmt.clock_digits((head.blocked_until - now).total_seconds())
            label = f"✖ BLOCKED until {fmt.hhmm(head.blocked_until, self.tz)}"
            return wait, label, f"{window} limit reached · requests fail", f"[b]{label}[/b] ({wait})"
        if head.percent_only:
            number, unit = f"{max(0.0, 100 - head.percent):.0f}", "% left"
        else:
            number, suffix = split_amount(head.left, head.unit)
            unit = f"{suffix} {head.unit} left" if suffix else f"{head.unit} left"
        label = f"{unit} · {window} {LEVEL_GLYPHS.get(head.level, '')}".rstrip()
        if head.source != "local":
            label += f" · {head.source}"
        if row is not None and row.state == "not-started":
            countdown = "opens on your next prompt"
        elif head.end is None:
            countdown = "reset time unknown (last 7 days)"
        else:
            left = fmt.countdown((head.end - now).total_seconds())
            countdown = f"↻ {left} at {fmt.hhmm(head.end, self.tz)}"
        joined = unit if unit.startswith(("k ", "M ", "% ")) else f" {unit}"
        return number, label, countdown, f"[b]{number}{joined}[/b] · {countdown}"
