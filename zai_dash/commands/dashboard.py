"""`zai-dash` with no command: the live dashboard (over the simulated session with `--demo`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zai_dash import paths
from zai_dash.clock import SystemClock
from zai_dash.commands.base import EXIT_CONFIG, registered_tool_ids
from zai_dash.config import Config, load_config


class DashboardCommand:
    """`zai-dash [--demo]`: what runs when no command is named."""

    name = ""
    help = "the live dashboard"
    takes_at = False
    uses_theme = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """`--demo`, on the main parser (the dashboard has no command word)."""
        parser.add_argument("--demo", action="store_true", help="run the dashboard over a simulated coding session")

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Start the TUI; it returns when the user quits."""
        return cmd_dashboard(
            config,
            demo=args.demo,
            mouse=not args.no_mouse,
            theme=theme,
            title=not args.no_title and config.title,
            config_path=args.config,
        )


def cmd_dashboard(
    config: Config, *, demo: bool, mouse: bool, theme: str | None, title: bool = True, config_path: Path | None = None
) -> int:
    """Start the TUI (over the demo when asked).

    Args:
        config: the configuration in effect (with `--plan` applied).
        demo: run over the simulated session instead of the real logs.
        mouse: False leaves the mouse to tmux.
        theme: a checked theme name, else the remembered one.
        title: put the key figure in the terminal's window title.
        config_path: where the plan chooser (`c`) writes; the `--config` file or the default location.
    """
    from zai_dash.engine import Engine
    from zai_dash.ui.app import needs_terminal_message, run_dashboard

    problem = needs_terminal_message()
    if problem:
        print(f"zai-dash: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    clock = SystemClock()
    if demo:
        from zai_dash.demo.app import run_demo

        return run_demo(config, mouse=mouse, theme=theme, title=title)
    path = config_path or config.source_path or paths.config_file()

    def reload() -> Engine:
        # After the chooser wrote the file: the file's plan and billing, not a `--plan` given at start.
        return Engine(load_config(path, known_tools=registered_tool_ids), clock=clock, use_cache=True)

    engine = Engine(config, clock=clock, use_cache=True)
    return run_dashboard(
        engine, clock, bell=config.bell, theme=theme, mouse=mouse, title=title, config_path=path, reload=reload
    )
