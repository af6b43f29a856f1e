"""Glyph sets for the charts: Unicode blocks and lines, or plain ASCII under a non-UTF-8 locale."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

COERCED = frozenset({"c.utf-8", "c.utf8", "utf-8"})
"""What Python writes into LC_CTYPE when it coerces a C locale to UTF-8 (PEP 538): not the user's choice."""


def _utf8(name: str) -> bool:
    return "utf8" in name.lower().replace("-", "")


def ascii_wanted(env: Mapping[str, str] | None = None, encoding: str | None = None) -> bool:
    """Whether the terminal was told a non-UTF-8 locale (`LANG=C`, `LC_ALL=POSIX`, `en_US.ISO-8859-1`).

    The first locale variable set decides, in POSIX order (LC_ALL, LC_CTYPE, LANG). An LC_CTYPE of
    `C.UTF-8` beside a LANG is Python's own coercion and is skipped. With none set, the output encoding decides.

    Args:
        env: the environment (default `os.environ`).
        encoding: the output encoding (default stdout's).
    """
    env = os.environ if env is None else env
    lang = env.get("LANG", "")
    ctype = env.get("LC_CTYPE", "")
    if ctype.lower() in COERCED and lang:
        ctype = ""
    chosen = env.get("LC_ALL") or ctype or lang
    if chosen:
        return not _utf8(chosen)
    enc = encoding if encoding is not None else (getattr(sys.__stdout__, "encoding", None) or "utf-8")
    return not _utf8(enc)


@dataclass(frozen=True, slots=True)
class Glyphs:
    """The characters one chart style draws with."""

    eighths: str
    """Bar tops from 1/8 to a full cell (the last is the full block)."""
    axis: str
    """The x axis under off-peak columns."""
    axis_peak: str
    """The x axis under peak columns (the peak cue without colour)."""
    y_tick: str
    """Where a y tick label meets the axis."""
    corner: str
    vertical: str
    """The y axis between ticks."""
    now_axis: str
    """The now marker where it meets the x axis."""
    used: str
    """The running total's legend mark (the area itself is drawn in `eighths`)."""
    pace: str
    """The projection's marker."""
    limit: str
    """The pool line."""
    now: str
    """The vertical now marker."""
    out: str
    """Where the projection meets the pool (runs out)."""
    dot: str
    """A separator in legends."""


UNICODE = Glyphs(
    eighths="▁▂▃▄▅▆▇█",
    axis="─",
    axis_peak="━",
    y_tick="┤",
    corner="└",
    vertical="│",
    now_axis="┴",
    used="█",
    pace="○",
    limit="═",
    now="│",
    out="✖",
    dot="·",
)
ASCII = Glyphs(
    eighths="....####",
    axis="-",
    axis_peak="=",
    y_tick="+",
    corner="+",
    vertical="|",
    now_axis="+",
    used="#",
    pace="o",
    limit="=",
    now="|",
    out="X",
    dot="-",
)
