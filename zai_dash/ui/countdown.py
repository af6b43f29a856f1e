"""The refresh countdown: big digits when there is room, one line when not."""

from __future__ import annotations

from datetime import tzinfo

from textual.app import ComposeResult
from textual.widget import Widget

from zai_dash import text as fmt
from zai_dash.clock import Clock
from zai_dash.domain.snapshot import CycleView
from zai_dash.ui.live import LiveDigits, LiveStatic

NOT_STARTED = "not started — opens on your next prompt"
"""What the countdown says when no window is open."""


class RefreshCountdown(Widget):
    """Time left until the 5-hour cycle refreshes, recomputed from the deadline on every tick.

    Timers skip ticks and laptops sleep, so the remaining time is always `deadline − clock.now()`,
    never a decremented counter. The roomy form (Digits + caption) and the compact form (one line)
    are both kept up to date; the stylesheet shows one of them per breakpoint.
    """

    DEFAULT_CSS = """
    RefreshCountdown {
        height: auto;
        #countdown-digits { width: auto; }
        #countdown-caption { width: 1fr; }
        #countdown-line { width: 1fr; display: none; }
    }
    """

    def __init__(self, clock: Clock, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.clock = clock
        self.tz = tz
        self.cycle: CycleView | None = None
        """The cycle of the latest snapshot; None until the first one arrives."""
        self._state = ""
        self.text = ""
        """The one-line form (tests and the narrow layout read it)."""
        # Built here: a snapshot may come before they mount. Both forms are kept, and each paints only
        # while the breakpoints (and the hero, which usually hides this whole panel) let it be seen.
        self._digits = LiveDigits("-:--:--", id="countdown-digits")
        self._caption = LiveStatic("waiting for the first scan…", id="countdown-caption")
        self._line = LiveStatic("waiting for the first scan…", id="countdown-line")

    def compose(self) -> ComposeResult:
        yield self._digits
        yield self._caption
        yield self._line

    def set_cycle(self, cycle: CycleView) -> None:
        """Take the cycle from a new snapshot and repaint at once."""
        self.cycle = cycle
        self.tick()

    def seconds_left(self) -> float | None:
        """Seconds until the refresh as of now, or None when no window is open."""
        if self.cycle is None or self.cycle.state != "open" or self.cycle.end is None:
            return None
        return max(0.0, (self.cycle.end - self.clock.now()).total_seconds())

    def tick(self) -> None:
        """Recompute from the deadline; the live widgets repaint only what changed and is shown."""
        digits, caption, line, classes = self._render_parts()
        if classes != self._state:
            self._state = classes
            self.set_class(classes == "-blocked", "-blocked")
            self.set_class(classes == "-idle", "-idle")
            self.set_class(classes == "-ended", "-ended")
        self._digits.show_text(digits)
        self._caption.show_text(caption)
        self._line.show_text(line)
        self.text = line

    def _render_parts(self) -> tuple[str, str, str, str]:
        """(digits, caption, one-line form, state class)."""
        cycle = self.cycle
        if cycle is None:
            return "-:--:--", "waiting for the first scan…", "waiting for the first scan…", ""
        now = self.clock.now()
        if cycle.state != "open" or cycle.end is None:
            caption = NOT_STARTED
            if cycle.previous_end is not None:
                caption += f" (last cycle ended {fmt.hhmm(cycle.previous_end, self.tz)})"
            return "-:--:--", caption, NOT_STARTED, "-idle"
        left = (cycle.end - now).total_seconds()
        at = fmt.hhmm(cycle.end, self.tz)
        if cycle.blocked_until is not None and cycle.blocked_until > now:
            until = fmt.hhmm(cycle.blocked_until, self.tz)
            wait = (cycle.blocked_until - now).total_seconds()
            text = f"blocked until {until} — limit reached, requests fail until then"
            digits = fmt.clock_digits(wait)
            return digits, text, f"⛔ blocked until {until} ({digits})", "-blocked"
        if left <= 0:
            text = f"cycle ended at {at} — the next opens on your next prompt"
            return "0:00:00", text, text, "-ended"
        digits = fmt.clock_digits(left)
        return digits, f"refreshes at {at}", f"↻ refresh in {digits} at {at}", ""
