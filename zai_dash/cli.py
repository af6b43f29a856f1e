"""The `zai-dash` console script: global options, one subcommand from `zai_dash.commands`, exit codes.

`status` runs on every status-bar refresh, so nothing on its path imports textual: each command imports
what it needs inside its own `run`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zai_dash import __version__
from zai_dash.commands import DASHBOARD, SUBCOMMANDS
from zai_dash.commands.base import (
    EXIT_CONFIG,
    EXIT_OK,
    GLOBAL_OPTIONS_NOTE,
    Command,
    checked_theme,
    registered_tool_ids,
)
from zai_dash.config import ConfigError, load_config

EXIT_BROKEN_PIPE = 141
"""What a shell reports for a process ended by SIGPIPE (128 + 13): `report | head` stopped reading."""

AT_COMMANDS = tuple(c.name for c in SUBCOMMANDS if c.takes_at)
"""The commands that evaluate one instant, so take `--at`; the live ones run on the wall clock."""


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after the command's name.

    argparse gives a subcommand's namespace the last word: a sub-parser that declares `--plan` with a
    default of None would overwrite `zai-dash --plan max status`'s `max`. So the sub-parsers' copies
    default to SUPPRESS (set only when given there) and the main parser's hold the defaults.
    """

    options: tuple[tuple[str, dict[str, Any]], ...] = (
        ("--config", {"type": Path, "help": "config file (default: $XDG_CONFIG_HOME/zai-dash/config.toml)"}),
        ("--plan", {"help": "plan to evaluate against (lite, pro, max or a custom one)"}),
        ("--at", {"help": f"evaluate as of this ISO 8601 instant ({', '.join(AT_COMMANDS)})"}),
        ("--theme", {"help": "Textual theme for the dashboard (an unknown one lists them)"}),
        ("--no-title", {"action": "store_true", "help": "leave the terminal's window title alone"}),
        ("--no-mouse", {"action": "store_true", "help": "leave the mouse to tmux"}),
    )
    for flag, spec in options:
        plain = False if spec.get("action") == "store_true" else None
        parser.add_argument(flag, default=argparse.SUPPRESS if suppress else plain, **spec)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zai-dash",
        description="Live dashboard for the Z.ai GLM Coding Plan: prompts left this 5-hour cycle, MCP searches, "
        "models per tool.",
        epilog=GLOBAL_OPTIONS_NOTE,
    )
    _add_global_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"zai-dash {__version__}")
    DASHBOARD.add_arguments(parser)
    sub = parser.add_subparsers(dest="command")
    for command in SUBCOMMANDS:
        child = sub.add_parser(command.name, help=command.help, description=command.help)
        _add_global_options(child, suppress=True)
        command.add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `zai-dash` console script."""
    try:
        code = _run(_parser().parse_args(argv))
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, at the last flush
    except BrokenPipeError:
        # The reader went away (`report | head -1`): nothing more to say, and no traceback at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _command(name: str | None) -> Command:
    return next((c for c in SUBCOMMANDS if c.name == name), DASHBOARD)


def _run(args: argparse.Namespace) -> int:
    command = _command(args.command)
    try:
        config = load_config(args.config, known_tools=registered_tool_ids)
        if args.plan:
            name = args.plan.lower()
            if name not in config.plans:
                raise ConfigError(f"--plan: unknown plan {name!r} (known: {', '.join(sorted(config.plans))})")
            from dataclasses import replace

            config = replace(config, plan=config.plans[name], plan_explicit=True)
        if args.at and not command.takes_at:
            raise ConfigError(f"--at applies to {', '.join(AT_COMMANDS)}; the {command.name or 'dashboard'} runs live")
        theme = checked_theme(args.theme, config)
        if not command.uses_theme:
            theme = None
    except ConfigError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return command.run(args, config, theme)
    except ValueError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
