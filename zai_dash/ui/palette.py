"""The 16-colour palette: calm when things are fine, the semantic colours only for what they mean.

Textual's `ansi-dark` makes the accent green and `ansi-light` makes warnings bright red, and a truecolor
theme squeezed into 16 colours turns its orange accent into red; either way a normal screen looks alarming.
This theme keeps ok text in the terminal's own foreground, with yellow for warning and red for critical.
"""

from __future__ import annotations

from textual.theme import Theme

ANSI_THEME = Theme(
    name="zai-ansi",
    ansi=True,
    primary="ansi_blue",
    secondary="ansi_cyan",
    accent="ansi_cyan",
    warning="ansi_yellow",
    error="ansi_red",
    success="ansi_green",
    foreground="ansi_default",
    background="ansi_default",
    surface="ansi_default",
    panel="ansi_default",
    boost="ansi_default",
    dark=True,
    variables={
        "ansi-background": "ansi_black",
        "ansi-foreground": "ansi_white",
        "border-blurred": "ansi_black",
        "block-cursor-foreground": "ansi_black",
        "block-cursor-background": "ansi_white",
        "screen-selection-background": "ansi_bright_blue",
        "screen-selection-foreground": "ansi_black",
    },
)
"""`zai-ansi`: the default on a terminal that has only 16 colours."""

SIXTEEN_COLOURS = frozenset({"standard", "windows"})
"""Rich's names for a 16-colour console."""


def default_theme(color_system: str | None, fallback: str) -> str:
    """The theme to start with when none was chosen: `zai-ansi` on a 16-colour terminal, else `fallback`."""
    return ANSI_THEME.name if color_system in SIXTEEN_COLOURS else fallback
