"""Numbers at ≥ 4.5:1 (WCAG AA) in every built-in theme, measured on what the dashboard draws.

Every cell that shows a digit (and every cell of the big Digits) is read from the rendered screen with its
foreground and background colour, and its WCAG contrast computed. ANSI themes are left out: their colours
are the terminal's palette, which only the terminal knows.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from textual.app import App
from textual.color import Color
from textual.widgets import Digits

from tests.support.ui import NOW, at_percent, make_snapshot
from tests.support.windows import NOW as WEEK_NOW
from tests.support.windows import WEEKLY_RESET, ledger, week_of_credits
from tests.support.windows import snapshot as week_snapshot
from zai_dash.clock import FixedClock
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.app import DashApp
from zai_dash.ui.contrast import AA, contrast, legible, legible_variables


def states() -> dict[str, Snapshot]:
    """On pace, warning, critical and blocked: each level colours the numbers differently."""
    return {
        "ok": make_snapshot(prompts=60, calls=0, opened_ago=timedelta(hours=2)),
        "warning": at_percent(80),
        "critical": at_percent(93),
        "blocked": at_percent(100, limit_hit_reset=NOW + timedelta(minutes=40)),
    }


def low_contrast_numbers(app: App[object]) -> dict[tuple[str, str, str], float]:
    """(text, fg, bg) → contrast for every drawn run holding a digit, or inside Digits, below AA."""
    digits = [w.region for w in app.query(Digits) if w.display]
    found: dict[tuple[str, str, str], float] = {}
    for y, strip in enumerate(app.screen._compositor.render_strips()):
        x = 0
        for segment in strip:
            text, style = segment.text, segment.style
            number = any(c.isdigit() for c in text) or (text.strip() and any(r.contains(x, y) for r in digits))
            x += segment.cell_length
            if not number or style is None or style.color is None or style.bgcolor is None:
                continue
            fg, bg = style.color.get_truecolor(), style.bgcolor.get_truecolor()
            ratio = contrast(Color(*fg), Color(*bg))
            if ratio < AA:
                found[(text.strip(), fg.hex, bg.hex)] = round(ratio, 2)
    return found


async def test_every_built_in_theme_draws_its_numbers_at_aa_contrast() -> None:
    app = DashApp(clock=FixedClock(NOW), tz=timezone.utc, theme="textual-dark", ascii_only=False)
    failures: dict[str, dict[tuple[str, str, str], float]] = {}
    async with app.run_test(size=(120, 36)) as pilot:
        themes = sorted(name for name, theme in app.available_themes.items() if not theme.ansi)
        assert {"textual-dark", "textual-light", "nord", "solarized-light"} <= set(themes)
        for name in themes:
            app.theme = name
            for state, snap in states().items():
                app.show(snap)
                await pilot.pause()
                if low := low_contrast_numbers(app):
                    failures[f"{name}/{state}"] = low
    assert not failures, failures


async def test_the_history_screen_and_a_small_pane_keep_aa_contrast_in_every_theme() -> None:
    """A credits plan with past cycles: the history tables (`h`) and the 40x12 main screen."""
    snap = week_snapshot(ledger(week_of_credits()), WEEK_NOW, weekly_reset=WEEKLY_RESET)
    failures: dict[str, dict[tuple[str, str, str], float]] = {}
    for size, keys in (((40, 12), ""), ((80, 24), "h")):
        app = DashApp(clock=FixedClock(WEEK_NOW), tz=timezone.utc, theme="textual-dark", ascii_only=False)
        async with app.run_test(size=size) as pilot:
            app.show(snap)
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            for name in sorted(name for name, theme in app.available_themes.items() if not theme.ansi):
                app.theme = name
                await pilot.pause()
                if low := low_contrast_numbers(app):
                    failures[f"{size}{keys}/{name}"] = low
    assert not failures, failures


def test_contrast_is_the_wcag_ratio() -> None:
    black, white = Color(0, 0, 0), Color(255, 255, 255)
    assert contrast(black, white) == pytest.approx(21.0)
    assert contrast(white, white) == pytest.approx(1.0)
    # WCAG's own example: #777777 on white is 4.48:1, just short of AA.
    assert contrast(Color.parse("#777777"), white) == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(
    ("fg", "bg"),
    [("#ffa62b", "#e0e0e0"), ("#b93c5b", "#121212"), ("#be616a", "#2e3440")],
    ids=["light-warning", "dark-error", "nord-error"],
)
def test_a_failing_text_colour_moves_just_far_enough_toward_white_or_black(fg: str, bg: str) -> None:
    before, ground = Color.parse(fg), Color.parse(bg)
    assert contrast(before, ground) < AA
    after = legible(before, [ground])
    assert contrast(after, ground) >= AA
    # Still the same colour family, not plain white or black.
    assert after.hsl.h == pytest.approx(before.hsl.h, abs=0.05)
    assert legible(after, [ground]) == after  # already legible: unchanged


def test_ansi_themes_are_left_to_the_terminal() -> None:
    variables = {"background": "ansi_default", "surface": "ansi_default", "panel": "ansi_default", "error": "ansi_red"}
    assert legible_variables(variables) == variables
