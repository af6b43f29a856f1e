"""Text widgets for an idle dashboard: they repaint only when their text changes, and only while on screen.

Why: refreshing a widget the compositor is not showing (a form the breakpoints hide, the 5-hour countdown
behind the hero) makes Textual throw away its whole layout map and arrange the screen again
(`Compositor.update` invalidates the full map for any widget outside the visible set). Ticked once a second,
that was most of the dashboard's idle CPU. Off screen, the newest text waits in `wanted` and is painted on
Textual's `Show` event.
"""

from __future__ import annotations

from datetime import datetime

from textual.widgets import Digits, Static


class _OnScreenText:
    """The rule both widgets share; `_apply(old, new)` is how each one paints."""

    wanted: str
    """The newest text: what the widget shows, or will show when it next comes on screen."""
    _painted: str
    _on_screen: bool

    def _start(self, text: str) -> None:
        self.wanted = self._painted = text
        self._on_screen = False

    def show_text(self, text: str) -> None:
        """Ask for `text`: painted now when on screen and different, else when the widget is next shown."""
        self.wanted = text
        if self._on_screen and text != self._painted:
            self._paint()

    def _paint(self) -> None:
        old, self._painted = self._painted, self.wanted
        self._apply(old, self.wanted)

    def _apply(self, old: str, new: str) -> None:
        raise NotImplementedError

    def on_show(self) -> None:
        """Came on screen: paint what was asked for meanwhile."""
        self._on_screen = True
        if self.wanted != self._painted:
            self._paint()

    def on_hide(self) -> None:
        """Left the screen: later text waits for the next `Show`."""
        self._on_screen = False


class LiveStatic(_OnScreenText, Static):
    """A Static that takes new text through `show_text`: skipped when equal, deferred while off screen."""

    def __init__(self, text: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(text, id=id, classes=classes)
        self._start(text)

    def _apply(self, old: str, new: str) -> None:
        # A layout pass only when the length changes: a ticking countdown keeps its width.
        self.update(new, layout=len(old) != len(new))


class LiveDigits(_OnScreenText, Digits):
    """`Digits` on the same rule as `LiveStatic`."""

    def __init__(self, value: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(value, id=id, classes=classes)
        self._start(value)

    def _apply(self, old: str, new: str) -> None:
        self.update(new)  # Digits asks for a layout pass itself when the width changes


def set_text(widget: Static, text: str) -> None:
    """`widget.update(text)` unless it already shows `text`: a snapshot that changes nothing paints nothing.

    A layout pass only when the length changes (the same text length keeps the same size here, since these
    widgets wrap at fixed widths only when the length changes).
    """
    old = widget.content
    if old == text:
        return
    widget.update(text, layout=not isinstance(old, str) or len(old) != len(text))


class ClockedPanel(Static):
    """A panel whose text follows the clock (countdowns, ages): `tick` recomputes it and repaints on change.

    Subclasses say what they show at an instant (`text_at`; None while there is nothing to show).
    `compact` is the one-line-per-item form for short and narrow screens.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.compact = False
        self.text = ""
        """The text last shown."""

    def text_at(self, now: datetime) -> str | None:
        """What to show at `now` (None: nothing, keep what is there)."""
        raise NotImplementedError

    def set_compact(self, compact: bool, now: datetime) -> None:
        """Switch between the full and the compact form."""
        if compact != self.compact:
            self.compact = compact
            self.tick(now)

    def tick(self, now: datetime) -> None:
        """Recompute from the clock; repaint only when the text changed."""
        text = self.text_at(now)
        if text is not None and text != self.text:
            self.text = text
            self.update(text)
