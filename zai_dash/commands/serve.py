"""`zai-dash serve`: the same dashboard in a browser, through textual-serve.

Each browser tab gets its own `zai-dash` process (the TUI over Textual's web driver) with the options
this command was given. It listens on loopback by default: from another machine, forward the port
(`ssh -L 8000:127.0.0.1:8000 devbox`, then open http://127.0.0.1:8000). There is no password, so a
non-loopback address gets a warning.
"""

from __future__ import annotations

import argparse
import sys

from zai_dash.commands.base import EXIT_CONFIG, EXIT_OK
from zai_dash.config import Config
from zai_dash.domain.endpoints import is_loopback


class ServeCommand:
    """`serve [--host] [--port] [--public-url] [--demo]`."""

    name = "serve"
    help = "serve the dashboard to a browser (loopback: reach it over an SSH port-forward)"
    takes_at = False
    uses_theme = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Where to listen, the URL the browser uses, and `--demo` for every session."""
        parser.add_argument(
            "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)"
        )
        parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
        parser.add_argument(
            "--public-url",
            help="the URL the browser uses, when it differs (e.g. http://localhost:9000 for ssh -L 9000:…)",
        )
        parser.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help="serve the demo session")

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Serve until interrupted; each session re-reads the config itself."""
        return cmd_serve(args, host=args.host, port=args.port, public_url=args.public_url)


def app_command(args: argparse.Namespace) -> str:
    """The shell command textual-serve runs per browser session: this Python, this package, these options."""
    import shlex  # only `serve` needs it; `status` imports this module too

    words = [sys.executable, "-m", "zai_dash"]
    for flag, value in (("--config", args.config), ("--plan", args.plan), ("--theme", args.theme)):
        if value:
            words += [flag, str(value)]
    # A browser tab has no window title to set, and the page owns the mouse.
    words.append("--no-title")
    if getattr(args, "demo", False):
        words.append("--demo")
    return shlex.join(words)


def cmd_serve(args: argparse.Namespace, *, host: str, port: int, public_url: str | None) -> int:
    """Serve the dashboard on http://HOST:PORT until interrupted.

    Args:
        args: the parsed command line (its global options are passed on to each session).
        host: the address to listen on.
        port: the port to listen on.
        public_url: the URL the browser reaches the server at, when not http://HOST:PORT (a forwarded port).
    """
    try:
        from textual_serve.server import Server
    except ImportError:
        print("zai-dash: serve needs textual-serve (pip install textual-serve)", file=sys.stderr)
        return EXIT_CONFIG
    if not 0 < port < 65536:
        raise ValueError(f"--port: {port} is not a TCP port")
    if not is_loopback(host):
        print(
            f"zai-dash: warning: serving on {host}: anyone who can reach this port sees your usage (no password)",
            file=sys.stderr,
        )
    server = Server(app_command(args), host=host, port=port, title="zai-dash", public_url=public_url)
    print(f"zai-dash: serving the dashboard on {server.public_url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    server.serve()
    return EXIT_OK
