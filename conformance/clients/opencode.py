"""OpenCode (`opencode-ai`), driven with `opencode run --format json` and, for `/compact`, its TUI on a pty.

Offline it cannot fetch models.dev, so the driver writes a one-provider catalogue (`zai-coding-plan`, as
models.dev names Z.ai's coding plan) and points `OPENCODE_MODELS_PATH` at it with
`OPENCODE_DISABLE_MODELS_FETCH=1`; `opencode.json` sets the provider's `baseURL` to the fake's
`/api/coding/paas/v4`, a fake `apiKey`, `model`/`small_model`, and the `web-search-prime` remote MCP
server. `--auto` approves tool calls. Kilo CLI (`kilo.py`) is the same program under other names.
"""

from __future__ import annotations

import json
from typing import Any

from conformance.clients.base import HEADLESS, Driver, RunLog, interactive_compact, mcp_server
from conformance.sandbox import FAKE_TOKEN, Sandbox
from conformance.server import FakeGlmServer


def _model(mid: str, name: str, context: int) -> dict[str, Any]:
    return {
        "id": mid,
        "name": name,
        "family": "glm",
        "attachment": False,
        "reasoning": True,
        "tool_call": True,
        "temperature": True,
        "release_date": "2025-09-30",
        "last_updated": "2025-09-30",
        "modalities": {"input": ["text"], "output": ["text"]},
        "open_weights": True,
        "cost": {"input": 0, "output": 0, "cache_read": 0, "cache_write": 0},
        "limit": {"context": context, "output": 32768},
    }


CATALOGUE = {
    "zai-coding-plan": {
        "id": "zai-coding-plan",
        "name": "Z.AI Coding Plan",
        "env": ["ZHIPU_API_KEY"],
        "npm": "@ai-sdk/openai-compatible",
        "api": "https://api.z.ai/api/coding/paas/v4",
        "models": {
            "glm-4.6": _model("glm-4.6", "GLM-4.6", 204800),
            "glm-4.5-air": _model("glm-4.5-air", "GLM-4.5-Air", 131072),
        },
    }
}
"""The models.dev entry the client would otherwise download."""


class OpenCode(Driver):
    tool = "opencode"
    client = "OpenCode"
    package = "opencode-ai"
    version = "1.18.33"
    binary = "opencode"
    data_paths = (".local/share/opencode/opencode.db", ".config/opencode/opencode.json")
    env_prefix = "OPENCODE"
    config_file = ".config/opencode/opencode.json"
    extra_env: dict[str, str] = {}  # noqa: RUF012 (a class constant)

    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        config = {
            "$schema": "https://opencode.ai/config.json",
            "autoupdate": False,
            "share": "disabled",
            "model": "zai-coding-plan/glm-4.6",
            "small_model": "zai-coding-plan/glm-4.5-air",
            "provider": {"zai-coding-plan": {"options": {"baseURL": srv.openai_url, "apiKey": FAKE_TOKEN}}},
            "mcp": {"web-search-prime": mcp_server(srv, "remote", enabled=True)},
        }
        box.write(self.config_file, json.dumps(config, indent=2))
        catalogue = box.write(".cache/conformance-models.json", json.dumps(CATALOGUE))
        p = self.env_prefix
        return box.env(
            **{
                f"{p}_DISABLE_AUTOUPDATE": "1",
                f"{p}_DISABLE_MODELS_FETCH": "1",
                f"{p}_MODELS_PATH": str(catalogue),
                f"{p}_DISABLE_LSP_DOWNLOAD": "1",
                f"{p}_DISABLE_SHARE": "1",
                **self.extra_env,
            }
        )

    session_keys = ("sessionID",)
    headless = HEADLESS

    def command(self, text: str, *extra: str) -> list[str]:
        return [str(self.exe), "run", "--format", "json", "--auto", *extra, text]

    def resume_options(self, session: str) -> tuple[str, ...]:
        return ("--session", session)

    def more_scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        text = "zd:plain with a model that does not exist"
        self.prompt(box, env, log, "unknown-model", self.command(text, "-m", "zai-coding-plan/glm-0"), text, "local")

    def interactive(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        ready = lambda pty: "Ask anything" in pty.output  # noqa: E731
        interactive_compact(box, srv, env, log, [str(self.exe)], ready, exit_keys=("\x03", "\x03"))


DRIVER = OpenCode()
