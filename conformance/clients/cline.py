"""Cline CLI (`cline` 3.x), driven with `cline --json "<prompt>"` (act mode, tools auto-approved).

Setup as a user would do it: `cline auth -p openai -k <key> -m glm-4.6 -b <base URL>` (Cline stores it as
the `openai-compatible` provider in `~/.cline/data/settings/providers.json`) and the `web-search-prime`
server in `~/.cline/data/settings/cline_mcp_settings.json`. It starts a hub daemon that outlives the
command (`cline --cline-hub-daemon --cwd <project>`); the suite ends it after the run.
"""

from __future__ import annotations

import json

from conformance.clients.base import HEADLESS, Driver, mcp_server
from conformance.sandbox import FAKE_TOKEN, Sandbox
from conformance.server import FakeGlmServer


class Cline(Driver):
    tool = "cline"
    client = "Cline CLI"
    package = "cline"
    version = "3.0.65"
    binary = "cline"
    data_paths = (
        ".cline/data/sessions",
        ".cline/data/db/sessions.db",
        ".cline/data/settings/providers.json",
        ".cline/data/settings/cline_mcp_settings.json",
    )

    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        env = box.env()
        auth = [str(self.exe), "auth", "-p", "openai", "-k", FAKE_TOKEN, "-m", "glm-4.6", "-b", srv.openai_url]
        proc = box.run(auth, env, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"cline auth failed: {proc.stderr[-300:]}")
        mcp = {
            "mcpServers": {
                "web-search-prime": mcp_server(srv, "streamableHttp", disabled=False, autoApprove=["webSearchPrime"])
            }
        }
        box.write(".cline/data/settings/cline_mcp_settings.json", json.dumps(mcp, indent=2))
        return env

    no_resume = "resume not run: `cline --id <session>` always opens the TUI (JSON mode refuses, plain needs a TTY)"
    headless = HEADLESS

    def command(self, text: str, *extra: str) -> list[str]:
        return [str(self.exe), "--json", *extra, text]


DRIVER = Cline()
