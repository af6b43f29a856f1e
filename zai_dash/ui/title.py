"""The terminal's window title: the key figure (what is left, and when it comes back), for a glance from tmux."""

from __future__ import annotations

from datetime import datetime

from zai_dash.domain.windows import Headline
from zai_dash.text import fmt_amount, fmt_duration

UNIT_SHORT = {"credits": "cr", "prompts": "prompts", "calls": "calls"}

PUSH_TITLE = "\x1b[22;0t"
"""xterm: save the current window title on the terminal's title stack (restored on exit)."""
POP_TITLE = "\x1b[23;0t"
"""xterm: restore the title saved by `PUSH_TITLE`."""


def window_title(head: Headline | None, now: datetime) -> str:
    """`GLM 9.3k cr left · 3h13m`, `GLM 58% left · 1h02m`, `GLM blocked · 42m`, `GLM 12k cr left · idle`.

    Args:
        head: the snapshot's headline (None before the first snapshot or on a plan with no window).
        now: the instant the countdown is measured from.
    """
    if head is None:
        return "zai-dash"
    if head.blocked_until is not None and head.blocked_until > now:
        return f"GLM blocked · {fmt_duration((head.blocked_until - now).total_seconds())}"
    if head.unit == "percent" or head.percent_only:
        left = f"{max(0.0, 100 - head.percent):.0f}%"
    else:
        unit = UNIT_SHORT.get(head.unit or "", head.unit or "")
        left = f"{fmt_amount(head.left, head.unit)} {unit}".rstrip()
    countdown = fmt_duration((head.end - now).total_seconds()) if head.end is not None and head.end > now else "idle"
    week = " wk" if head.window == "weekly" else ""
    return f"GLM {left} left{week} · {countdown}"


def osc_title(text: str) -> str:
    """The escape sequence that sets the window (and tmux pane) title; control characters are dropped."""
    clean = "".join(ch for ch in text if ch.isprintable())
    return f"\x1b]2;{clean}\x07"
