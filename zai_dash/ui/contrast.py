"""Legible text in every theme: WCAG contrast, and the theme variables adjusted to reach it.

Several built-in Textual themes draw text colours that fall short of WCAG AA (4.5:1) on their own
backgrounds: `$error` as text is 3.4:1 in textual-dark, `$warning` 1.5:1 in textual-light, the muted text
of the header 4.3:1 on `$panel` in nord. The dashboard's numbers are drawn in those colours, so
`legible_variables` moves each text colour toward white (dark themes) or black (light themes) just far
enough to pass on every background the dashboard draws text on, keeping its hue. One place for the rule:
`DashApp.get_css_variables` applies it to whichever theme is active.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from textual.color import Color

AA = 4.5
"""WCAG 2 AA for normal-size text."""
BACKGROUNDS = ("background", "surface", "panel")
"""What the dashboard draws text on (the screen, the panels and tables, the header); `surface` second."""
SOLID_TEXT = ("foreground", "error", "warning", "success", "text-error", "text-warning", "text-success")
"""Concrete text colours the dashboard's numbers use (the semantic levels, and the tables' foreground)."""
AUTO_TEXT = (("text-muted", 0.60), ("text", 0.87))
"""`auto N%` text (the contrast colour at an alpha) and Textual's default alpha for each."""
STEPS = 40
"""How finely a colour is moved toward white or black."""


def luminance(color: Color) -> float:
    """WCAG relative luminance of an opaque colour (0 black … 1 white)."""

    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.r) + 0.7152 * channel(color.g) + 0.0722 * channel(color.b)


def contrast(a: Color, b: Color) -> float:
    """WCAG contrast ratio of two opaque colours (1 … 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _passes(fg: Color, backgrounds: Iterable[Color], ratio: float) -> bool:
    return all(contrast(bg + fg, bg) >= ratio for bg in backgrounds)


def legible(fg: Color, backgrounds: Iterable[Color], ratio: float = AA) -> Color:
    """`fg`, or the nearest blend of it toward white or black that reaches `ratio` on every background.

    Args:
        fg: the text colour (its alpha is kept; it is judged blended over each background).
        backgrounds: opaque backgrounds the text is drawn on.
        ratio: the contrast to reach.
    """
    grounds = list(backgrounds)
    if not grounds or _passes(fg, grounds, ratio):
        return fg
    dark = sum(luminance(bg) for bg in grounds) / len(grounds) < 0.4
    target = Color(255, 255, 255, fg.a) if dark else Color(0, 0, 0, fg.a)
    for step in range(1, STEPS + 1):
        candidate = fg.blend(target, step / STEPS, alpha=fg.a)
        if _passes(candidate, grounds, ratio):
            return candidate
    return target


def auto_alpha(backgrounds: Iterable[Color], alpha: float, ratio: float = AA) -> float:
    """The least alpha at or above `alpha` at which `auto` text (the contrast colour) reaches `ratio`."""
    grounds = list(backgrounds)
    for step in range(round(alpha * 100), 101):
        a = step / 100
        if all(contrast(bg + bg.get_contrast_text(a), bg) >= ratio for bg in grounds):
            return a
    return 1.0


def legible_variables(variables: Mapping[str, str], ratio: float = AA) -> dict[str, str]:
    """A theme's CSS variables with every text colour the dashboard uses made legible (≥ `ratio`).

    ANSI themes are returned unchanged: the terminal's palette decides their colours.

    Args:
        variables: the variables Textual generated for the theme.
        ratio: the contrast to reach.
    """
    out = dict(variables)
    grounds: list[Color] = []
    for name in BACKGROUNDS:
        try:
            color = Color.parse(variables[name])
        except (KeyError, Exception):  # an ANSI colour or a missing variable: nothing to measure against
            return out
        if color.ansi is not None:
            return out
        grounds.append(color.with_alpha(1.0))
    # A focused DataTable (the tools table) tints its surface with 5 % of the foreground.
    foreground = Color.parse(variables.get("foreground", "white"))
    if foreground.ansi is None:
        grounds.append(grounds[1].tint(foreground.with_alpha(0.05)))
    for name in SOLID_TEXT:
        if name in variables:
            color = Color.parse(variables[name])
            if color.ansi is None:
                out[name] = legible(color, grounds, ratio).hex
    for name, default in AUTO_TEXT:
        value = variables.get(name, "")
        if value.startswith("auto"):
            percent = value.removeprefix("auto").strip().rstrip("%")
            alpha = float(percent) / 100 if percent else default
            out[name] = f"auto {round(auto_alpha(grounds, alpha, ratio) * 100)}%"
    return out
