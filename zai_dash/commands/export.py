"""`zai-dash export`: serve this machine's snapshot as Prometheus metrics until interrupted."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from zai_dash.commands.base import EXIT_OK
from zai_dash.config import Config

if TYPE_CHECKING:
    from zai_dash.domain.snapshot import Snapshot


class ExportCommand:
    """`export [--listen HOST:PORT] [--machine NAME]`."""

    name = "export"
    help = "serve this machine's snapshot as Prometheus metrics"
    takes_at = False
    uses_theme = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Where to listen, and the machine label."""
        parser.add_argument("--listen", default="127.0.0.1:9464", help="HOST:PORT to serve /metrics on")
        parser.add_argument("--machine", help="the machine label (default: host name)")

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Watch and serve until Ctrl+C or SIGTERM."""
        return cmd_export(config, listen=args.listen, machine=args.machine)


def cmd_export(config: Config, *, listen: str, machine: str | None) -> int:
    """`zai-dash export`: keep watching and serve the latest snapshot on `/metrics` until interrupted.

    Another zai-dash reads it with a `[[proxy]]` of `preset = "zai-dash"`, so one dashboard can show a
    laptop and a dev box together. Like the TUI, it publishes the state file, so it also serves as a
    headless daemon for a fast `zai-dash status`.
    """
    import asyncio
    import signal

    from zai_dash.domain.listen import parse_listen
    from zai_dash.engine import Engine
    from zai_dash.exporter import Exporter

    parse_listen(listen)  # a bad address is a usage error (ValueError → exit 2) before any scanning
    latest: list[Snapshot | None] = [None]
    engine = Engine(config, use_cache=True)  # reads the cache only; the scan comes after the bind
    try:  # bind before scanning: a port in use is a one-line error now, not a traceback after a scan
        exporter = Exporter(listen, provider=lambda: latest[0], machine=machine or engine.machine)
    except OSError as exc:
        raise ValueError(f"--listen {listen}: cannot listen there ({exc.strerror or exc})") from None
    engine.scan()
    engine.refresh_pollers()
    latest[0] = engine.snapshot()
    exporter.start()
    print(f"zai-dash: serving {exporter.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)

    async def follow() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async for snap in engine.watch(stop):
            latest[0] = snap

    try:
        asyncio.run(follow())
    finally:
        exporter.close()
    return EXIT_OK
