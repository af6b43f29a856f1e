"""`zai-dash status`: one short line for a status bar, and an exit code that says how things stand.

It runs on every status-bar refresh, so it is built to start fast: a running dashboard's fresh state file
is the answer when there is one, and nothing on its path imports textual or an HTTP client.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash.clock import Clock, SystemClock
from zai_dash.commands.base import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_EXHAUSTED,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_WARNING,
    GLOBAL_OPTIONS_NOTE,
    clock_for,
)
from zai_dash.config import Config
from zai_dash.statusline import (  # the line itself: shared with the fast path (`statusline.fast_status`)
    DEFAULT_STATUS,
    DEFAULT_STATUS_ASCII,
    LEVEL_GLYPHS,
    LEVEL_GLYPHS_ASCII,
    OFFICIAL_AGE_SHOWN_AFTER,
    STATUS_FIELDS,
    WEEKLY_STATUS,
    WEEKLY_STATUS_ASCII,
    fill_template,
    print_status,
    status_exit,
    status_fields,
    usable,
)

if TYPE_CHECKING:
    from zai_dash.domain.snapshot import Snapshot

__all__ = [
    "DEFAULT_STATUS",
    "DEFAULT_STATUS_ASCII",
    "LEVEL_GLYPHS",
    "LEVEL_GLYPHS_ASCII",
    "OFFICIAL_AGE_SHOWN_AFTER",
    "STATUS_EXITS",
    "STATUS_FIELDS",
    "WEEKLY_STATUS",
    "WEEKLY_STATUS_ASCII",
    "StatusCommand",
    "cmd_status",
    "fill_template",
    "status_exit",
    "status_fields",
]

STATUS_EXITS = (
    (EXIT_OK, "ok"),
    (EXIT_CONFIG, "a config or usage error"),
    (EXIT_WARNING, "warning or critical: a window is past its threshold"),
    (EXIT_EXHAUSTED, "exhausted, or a limit hit blocks a window"),
    (EXIT_NO_DATA, "no tool data found"),
    (EXIT_ERROR, "an error: a source could not be read (`zai-dash doctor` says which), or no line could be made"),
)


def _status_epilog() -> str:
    fields = "\n".join(f"  {{{name}}}{'':<{15 - len(name)}}{text}" for name, text in STATUS_FIELDS.items())
    exits = "\n".join(f"  {code:<4}{text}" for code, text in STATUS_EXITS)
    return (
        f"template fields (for --format):\n{fields}\n\nexit codes (tmux ignores them; the glyph shows the level):"
        f"\n{exits}\n\n{GLOBAL_OPTIONS_NOTE}"
    )


class StatusCommand:
    """`status [--format TEMPLATE] [--ascii]`."""

    name = "status"
    help = "one short line for tmux or Claude Code's statusLine"
    takes_at = True
    uses_theme = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The template and ASCII options; the help ends with every template field and exit code."""
        parser.epilog = _status_epilog()
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.add_argument("--format", dest="template", help="template, e.g. '{glyph} {left} left, reset {reset}'")
        parser.add_argument("--ascii", action="store_true", help="ASCII only (also under a non-UTF-8 locale)")

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Print the line; the exit code is the level."""
        return cmd_status(
            config, template=args.template, ascii_only=args.ascii, at=args.at, config_arg=args.config, plan=args.plan
        )


StatusRefresh = Callable[[], object] | None
"""What `status` starts once its line is out: the detached refresh of a stale official reading, or nothing."""


def _status_scan(config: Config, clock: Clock) -> tuple[Snapshot, StatusRefresh]:
    """`status`'s scan: the cache and the logs, with the saved official reading; never the network.

    A status bar must not wait on an endpoint, nor pay for an HTTP client (httpx is not even imported):
    the last reading any zai-dash process saved is shown with its age, and when it is stale a detached
    child refreshes it for the next call (`official_memory.refresh_in_background`), started after the
    line is printed so it does not compete with it. Proxy and fleet rows are not on the line, so they
    are not polled. A replay (`--at`) shows no reading of today's.
    """
    from zai_dash.engine import Engine

    engine = Engine(config, clock=clock, use_cache=isinstance(clock, SystemClock))
    if engine.use_cache:
        engine.restore_official()
    engine.scan()
    engine.save_cache()
    refresh: StatusRefresh = None
    if engine.use_cache and engine.quota is not None:
        from functools import partial

        from zai_dash import official_memory

        now, env = clock.now(), engine.ctx.env
        if official_memory.refresh_due(engine.quota, env, now):
            refresh = partial(official_memory.refresh_in_background, engine.quota, env, now, config.source_path)
    return engine.snapshot(), refresh


def _status_doc(
    config: Config, at: str | None, config_arg: Path | None = None, plan: str | None = None
) -> tuple[dict[str, Any], datetime, list[Callable[[], object]]]:
    """The snapshot document for `status`: a running dashboard's fresh state file, else one scan.

    Returns:
        The document, the instant it is read at, and what to start once the line is out: the official
        reading's refresh, and the lingering publisher (`_publisher_start`) after a scan.
    """
    clock = clock_for(at)
    now = clock.now()
    if at is None:
        from zai_dash import statefile

        doc = statefile.read_fresh(config.fingerprint(), now)
        if doc is not None and usable(doc, now, config.tz()):
            return doc, now, []
    snap, refresh = _status_scan(config, clock)
    after = [] if refresh is None else [refresh]
    if at is None:
        start = _publisher_start(config, now, config_arg, plan)
        if start is not None:
            after.append(start)
    return snap.to_json(config.tz()), now, after


def _publisher_start(
    config: Config, now: datetime, config_arg: Path | None, plan: str | None
) -> Callable[[], object] | None:
    """The detached publisher's start (`zai_dash.publisher`), unless it is off or something publishes already.

    A live process's fresh state file of another config (a dashboard with another `--plan`) is left
    alone: a second publisher would only take turns with it.
    """
    from zai_dash import publisher, statefile

    if not config.status.publisher or publisher.switched_off():
        return None
    from zai_dash.paths import dashboard_state_file

    path = dashboard_state_file()
    if statefile.live_writer(now, path) is not None:
        return None
    from functools import partial

    return partial(publisher.start_in_background, path, config_arg, plan)


def cmd_status(
    config: Config,
    *,
    template: str | None,
    ascii_only: bool,
    at: str | None,
    config_arg: Path | None = None,
    plan: str | None = None,
) -> int:
    """`zai-dash status`: one line; the exit code says ok / warning / exhausted / no data / error.

    It never waits on the network (see `_status_scan`). After a scan it starts the lingering publisher
    (`zai_dash.publisher`), so the next calls read a state file instead of scanning again.

    Args:
        config: the config in effect.
        template: `--format`.
        ascii_only: `--ascii`.
        at: `--at` (a replay: no state file, no publisher).
        config_arg: `--config` as given (for the publisher, which loads the same config).
        plan: `--plan` as given (likewise).
    """
    try:
        doc, now, after = _status_doc(config, at, config_arg, plan)
    except ValueError:
        raise
    except Exception as exc:  # a status bar must get a line, not a traceback
        print(f"GLM error: {type(exc).__name__}")
        return EXIT_ERROR
    code = print_status(doc, now, config.tz(), template=template, ascii_only=ascii_only)
    if code != EXIT_CONFIG:  # the line is out: what starts now does not delay it
        for start in after:
            start()
    return code
