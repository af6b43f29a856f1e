"""The `zai-dash` console script: global options, one subcommand from `zai_dash.commands`, exit codes.

`status` runs on every status-bar refresh, so nothing on its path imports textual: each command imports
what it needs inside its own `run`. Before any of that, a plain `status` line (`_status_words`) tries
`statusline.fast_status`: a live publisher's state file made from the same raw inputs answers without
argparse, the commands or the config being imported; on any doubt the full path below runs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse

    from zai_dash.commands.base import Command

EXIT_BROKEN_PIPE = 141
"""What a shell reports for a process ended by SIGPIPE (128 + 13): `report | head` stopped reading."""


def _at_commands() -> tuple[str, ...]:
    """The commands that evaluate one instant, so take `--at`; the live ones run on the wall clock."""
    from zai_dash.commands import SUBCOMMANDS

    return tuple(c.name for c in SUBCOMMANDS if c.takes_at)


_STATUS_FLAGS = ("--no-title", "--no-mouse")
"""Global flags a status line may carry: they change nothing `status` prints."""
_STATUS_VALUES = ("--config", "--plan", "--format")


def _status_words(argv: Sequence[str]) -> dict[str, Any] | None:
    """The options of a plain `status` line, or None for anything the full parser must judge.

    Accepts the word `status` once, `--config`, `--plan` and the flags above anywhere, `--format` and
    `--ascii` after the word, each value given once, as `--opt VALUE` or `--opt=VALUE`. Anything else
    (`--at`, `--theme`, `--help`, an abbreviation, a repeat, a value that looks like an option) is None:
    argparse then parses it as always, errors included.
    """
    words: dict[str, Any] = {}
    seen = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "status" and not seen:
            seen = True
            continue
        if arg in _STATUS_FLAGS:
            continue
        if arg == "--ascii" and seen and "ascii" not in words:
            words["ascii"] = True
            continue
        name, eq, value = arg.partition("=")
        if name not in _STATUS_VALUES or name in words or (name == "--format" and not seen):
            return None
        if not eq:
            if i >= len(argv):
                return None
            value = argv[i]
            i += 1
            if value.startswith("-"):
                return None  # argparse reads it as an option, not a value
        words[name] = value
    return words if seen else None


def _fast_status(argv: Sequence[str]) -> int | None:
    """`status` answered from a matching live state file, or None (nothing printed: parse as usual)."""
    words = _status_words(argv)
    if words is None or os.environ.get("ZAI_DASH_STATUS_FAST") == "0":
        return None
    from zai_dash.statusline import fast_status

    return fast_status(
        words.get("--config"), words.get("--plan"), template=words.get("--format"), ascii_only="ascii" in words
    )


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after the command's name.

    argparse gives a subcommand's namespace the last word: a sub-parser that declares `--plan` with a
    default of None would overwrite `zai-dash --plan max status`'s `max`. So the sub-parsers' copies
    default to SUPPRESS (set only when given there) and the main parser's hold the defaults.
    """

    import argparse
    from pathlib import Path

    options: tuple[tuple[str, dict[str, Any]], ...] = (
        ("--config", {"type": Path, "help": "config file (default: $XDG_CONFIG_HOME/zai-dash/config.toml)"}),
        ("--plan", {"help": "plan to evaluate against (lite, pro, max or a custom one)"}),
        ("--at", {"help": f"evaluate as of this ISO 8601 instant ({', '.join(_at_commands())})"}),
        ("--theme", {"help": "Textual theme for the dashboard (an unknown one lists them)"}),
        ("--no-title", {"action": "store_true", "help": "leave the terminal's window title alone"}),
        ("--no-mouse", {"action": "store_true", "help": "leave the mouse to tmux"}),
    )
    for flag, spec in options:
        plain = False if spec.get("action") == "store_true" else None
        parser.add_argument(flag, default=argparse.SUPPRESS if suppress else plain, **spec)


def _parser() -> argparse.ArgumentParser:
    import argparse

    from zai_dash import __version__
    from zai_dash.commands import DASHBOARD, SUBCOMMANDS
    from zai_dash.commands.base import GLOBAL_OPTIONS_NOTE

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
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _fast_status(words) if "status" in words else None
        if code is None:
            code = _run(_parser().parse_args(words))
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, at the last flush
    except BrokenPipeError:
        # The reader went away (`report | head -1`): nothing more to say, and no traceback at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _command(name: str | None) -> Command:
    from zai_dash.commands import DASHBOARD, SUBCOMMANDS

    return next((c for c in SUBCOMMANDS if c.name == name), DASHBOARD)


def _run(args: argparse.Namespace) -> int:
    from zai_dash import statefile
    from zai_dash.commands.base import EXIT_CONFIG, EXIT_OK, checked_theme, registered_tool_ids
    from zai_dash.config import ConfigError, load_config

    command = _command(args.command)
    # Before the file is read: a file edited meanwhile then gives a digest no `status` matches, never the reverse.
    digest = statefile.inputs_digest(None if args.config is None else str(args.config), args.plan)
    try:
        config = load_config(args.config, known_tools=registered_tool_ids)
        if args.plan:
            name = args.plan.lower()
            if name not in config.plans:
                raise ConfigError(f"--plan: unknown plan {name!r} (known: {', '.join(sorted(config.plans))})")
            from dataclasses import replace

            config = replace(config, plan=config.plans[name], plan_explicit=True)
        if args.at and not command.takes_at:
            at_commands = ", ".join(_at_commands())
            raise ConfigError(f"--at applies to {at_commands}; the {command.name or 'dashboard'} runs live")
        theme = checked_theme(args.theme, config)
        if not command.uses_theme:
            theme = None
    except ConfigError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    statefile.note_inputs(digest, config)  # what a dashboard or `export` publishes beside its snapshots
    try:
        return command.run(args, config, theme)
    except ValueError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK
