"""Factory Droid (`@factory/cli`), offline with a custom model and no login: `droid exec`.

The wrapper `@factory/cli` 0.225.1 pins a `@factory/cli-linux-x64` 0.225.1 that is not on the registry, so
the platform package (0.225.2) is installed directly. `~/.factory/settings.json` declares the Z.ai model as
a `customModels` entry (Anthropic format, the fake's `/api/anthropic`, a fake key), `~/.factory/mcp.json`
the `web-search-prime` HTTP server. `--auto high` lets the tools run.
"""

from __future__ import annotations

import json

from conformance.clients.base import HEADLESS, Driver, mcp_server
from conformance.sandbox import FAKE_TOKEN, Sandbox
from conformance.server import FakeGlmServer

MODEL = "custom:GLM-4.6-[Z.AI]-0"


class Droid(Driver):
    tool = "droid"
    client = "Factory Droid"
    package = "@factory/cli-linux-x64"
    version = "0.225.2"
    binary = "@factory/cli-linux-x64/bin/droid"
    data_paths = (".factory/sessions", ".factory/settings.json", ".factory/mcp.json")

    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        settings = {
            "model": MODEL,
            "customModels": [
                {
                    "model": "glm-4.6",
                    "displayName": "GLM-4.6 [Z.AI]",
                    "baseUrl": srv.anthropic_url,
                    "apiKey": FAKE_TOKEN,
                    "provider": "anthropic",
                    "maxOutputTokens": 32000,
                }
            ],
        }
        box.write(".factory/settings.json", json.dumps(settings, indent=2))
        mcp = {"mcpServers": {"web-search-prime": mcp_server(srv, "http")}}
        box.write(".factory/mcp.json", json.dumps(mcp, indent=2))
        return box.env(FACTORY_DISABLE_TELEMETRY="1", DISABLE_AUTOUPDATER="1")

    session_keys = ("session_id", "sessionId")
    headless = HEADLESS
    refused_timeout = 180
    """0.225.2 makes 5 attempts over about 85 s before it writes the refusal; 90 s was too close under load."""

    def command(self, text: str, *extra: str) -> list[str]:
        return [str(self.exe), "exec", "-m", MODEL, "--auto", "high", "-o", "json", *extra, text]

    def resume_options(self, session: str) -> tuple[str, ...]:
        return ("-s", session)


DRIVER = Droid()
