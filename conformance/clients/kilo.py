"""Kilo CLI (`@kilocode/cli`), an OpenCode fork: the same driver under Kilo's names.

The wrapper `@kilocode/cli` 7.8.1 pins a `@kilocode/cli-linux-x64` 7.8.1 that is not on the registry, so
the platform package (7.7.9, the newest there) is installed directly. Config `~/.config/kilo/kilo.json`,
data `~/.local/share/kilo/kilo.db`, env prefix `KILO_`.
"""

from __future__ import annotations

from conformance.clients.base import RunLog
from conformance.clients.opencode import OpenCode
from conformance.sandbox import Sandbox
from conformance.server import FakeGlmServer


class Kilo(OpenCode):
    tool = "kilo-code"
    client = "Kilo CLI"
    package = "@kilocode/cli-linux-x64"
    version = "7.7.9"
    binary = "@kilocode/cli-linux-x64/bin/kilo"
    data_paths = (".local/share/kilo/kilo.db", ".config/kilo/kilo.json")
    env_prefix = "KILO"
    config_file = ".config/kilo/kilo.json"
    extra_env = {"KILO_SESSION_RETRY_LIMIT": "2", "KILO_TELEMETRY_LEVEL": "off", "KILO_DISABLE_SESSION_INGEST": "1"}  # noqa: RUF012

    def interactive(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        # Kilo 7.7.9's TUI, on this pty, drew its input box but never sent what was typed (twice); rather
        # than a scenario that measures nothing, none.
        log.notes.append("interactive not run: the Kilo TUI on a pty did not send the typed prompt")


DRIVER = Kilo()
