"""The hero: the binding window's amount left, in its unit, as the largest thing on screen, with its countdown.

Everything comes from the snapshot's `headline` and its binding `WindowRow`; the widget only formats. While
a limit blocks, the hero says "blocked until HH:MM" and the big digits count down to it instead.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Digits, Static

from zai_dash import text as fmt
from zai_dash.domain.windows import Headline, WindowRow
from zai_dash.text import fmt_amount

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
        self.line = ""
        """The one-line form as last shown."""
        self._now: datetime | None = None
        self.figure = ""
        """The big figure as last shown (amount left, or the blocked countdown)."""
        self.label = ""
        """What the figure is (`credits left · 5-hour window`, `BLOCKED until 16:00`)."""
        self.countdown = ""
        """The countdown line as last shown."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="hero-big"):
            yield Digits("—", id="hero-digits")
            with Vertical(id="hero-side"):
                yield Static("waiting for the first scan…", id="hero-label")
                yield Static("", id="hero-countdown")
        yield Static("waiting for the first scan…", id="hero-line")

    def on_mount(self) -> None:
        # A snapshot that came before the children mounted is painted now.
        if self._now is not None:
            self.figure = self.label = self.countdown = self.line = ""
            self.tick(self._now)

    def set_headline(self, head: Headline | None, row: WindowRow | None, now: datetime) -> None:
        """Take the headline and binding row of a new snapshot and repaint."""
        self.head, self.row = head, row
        level = head.level if head is not None else "ok"
        for name in LEVELS:
            self.set_class(name == level, f"-{name}")
        self.tick(now)

    def tick(self, now: datetime) -> None:
        """Recompute the countdown from the deadline; touch widgets only when their text changed."""
        self._now = now
        figure, label, countdown, line = self.parts(now)
        self.set_class(self.head is not None and self.head.blocked_until is not None, "-blocked")
        if figure != self.figure:
            self.figure = figure
            for digits in self.query("#hero-digits").results(Digits):
                digits.update(figure)
        for attr, selector, value in (
            ("label", "#hero-label", label),
            ("countdown", "#hero-countdown", countdown),
            ("line", "#hero-line", line),
        ):
            old = getattr(self, attr)
            if old != value:
                setattr(self, attr, value)
                # A screen-wide layout pass only when the length changes (an idle tick keeps it).
                for static in self.query(selector).results(Static):
                    static.update(value, layout=len(old) != len(value))

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
            left = fmt.clock_digits((head.end - now).total_seconds())
            countdown = f"↻ {left} at {fmt.hhmm(head.end, self.tz)}"
        joined = unit if unit.startswith(("k ", "M ", "% ")) else f" {unit}"
        return number, label, countdown, f"[b]{number}{joined}[/b] · {countdown}"
