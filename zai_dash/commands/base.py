"""What every subcommand shares: the `Command` shape, exit codes, the clock of `--at`, the first-run note.

Nothing here imports the engine, the sources' adapters or textual at module level: `status` imports this
module on every status-bar refresh.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timezone
from typing import Protocol

from zai_dash import paths
from zai_dash.clock import Clock, FixedClock, SystemClock, local_zone
from zai_dash.config import Config, ConfigError, unknown_theme
from zai_dash.domain.bounds import EARLIEST, LATEST, instant_in_range
from zai_dash.exits import (  # noqa: F401  (re-exported: every command's codes)
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_EXHAUSTED,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_WARNING,
)

GLOBAL_OPTIONS_NOTE = "Options --config, --plan, --at, --theme, --no-title and --no-mouse go before or after a command."


class Command(Protocol):
    """One subcommand: its word, its arguments and how it runs (memray's `commands/` pattern).

    Attributes:
        name: the word on the command line (`report`); empty for the dashboard, which runs without one.
        help: one line for `zai-dash --help` and the command's own description.
        takes_at: whether the command evaluates one instant, so accepts `--at`; the others run live.
        uses_theme: whether it starts a dashboard, so is handed the theme (every command checks `--theme`).
    """

    name: str
    help: str
    takes_at: bool
    uses_theme: bool

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's own options on its (sub-)parser."""

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Run with the parsed line, the config in effect (`--plan` applied) and the checked theme; the exit code."""


def registered_tool_ids() -> tuple[str, ...]:
    """Every registered tool's id, for the config's `[tools.<id>]` check (the registry is imported on demand)."""
    from zai_dash.sources.tools import registered_tool_ids as ids

    return ids()


def checked_theme(name: str | None, config: Config) -> str | None:
    """`--theme` (else the config's `theme`, checked when the file was read), refused with the list of themes.

    Every command checks it, so a typo is not accepted silently by `report` and refused only later by the
    dashboard.
    """
    if name and (problem := unknown_theme(name)):
        raise ConfigError(f"--theme: {problem}")
    return name or config.theme


def clock_for(at: str | None) -> Clock:
    """The wall clock, or with `--at` a clock stopped at that instant (a naive time is the machine's local time)."""
    if not at:
        return SystemClock()
    text = at.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at: not an ISO 8601 time: {at!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=local_zone())
    try:
        sane = instant_in_range(when.astimezone(timezone.utc))
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past the end of time in UTC
        sane = False
    if not sane:
        raise ValueError(f"--at: {at!r} is outside {EARLIEST:%Y}–{LATEST:%Y}")
    return FixedClock(when)


def first_run_note(config: Config) -> str:
    """The one line every view shows while the plan or billing is assumed, with how to choose."""
    where = config.source_path or paths.config_file()
    return f"{config.assumption()} — press c in the dashboard to choose, or set plan and billing in {where}"
