"""Claude Code (`@anthropic-ai/claude-code`), driven with `-p` and, for `/compact`, on a pty.

Environment a driver needs (set in `~/.claude/settings.json` `env`, the way Z.ai's guide does it):
`ANTHROPIC_BASE_URL` (the fake's `/api/anthropic`), `ANTHROPIC_AUTH_TOKEN` (a fake value),
`ANTHROPIC_DEFAULT_{OPUS,SONNET,HAIKU}_MODEL`. In the process environment: `DISABLE_AUTOUPDATER`,
`DISABLE_TELEMETRY`, `DISABLE_ERROR_REPORTING` (no traffic to the internet), `CLAUDE_CODE_MAX_RETRIES=1`
(a refused prompt is two attempts, not eleven over three minutes) and `IS_SANDBOX=1` (it refuses
`--dangerously-skip-permissions` as root otherwise). `~/.claude.json` marks onboarding done, trusts the
project folder and declares the `web-search-prime` MCP server (HTTP).
"""

from __future__ import annotations

import json

from conformance.clients.base import HEADLESS, Driver, RunLog, interactive_compact, mcp_server
from conformance.sandbox import FAKE_TOKEN, Sandbox
from conformance.server import FakeGlmServer


class ClaudeCode(Driver):
    tool = "claude-code"
    client = "Claude Code"
    package = "@anthropic-ai/claude-code"
    version = "2.1.332"
    binary = "claude"
    data_paths = (".claude/projects", ".claude/settings.json", ".claude.json")

    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        settings = {
            "env": {
                "ANTHROPIC_BASE_URL": srv.anthropic_url,
                "ANTHROPIC_AUTH_TOKEN": FAKE_TOKEN,
                "API_TIMEOUT_MS": "60000",
                "ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.6",
                "ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.6",
                "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air",
            }
        }
        box.write(".claude/settings.json", json.dumps(settings, indent=2))
        user = {
            "hasCompletedOnboarding": True,
            "mcpServers": {"web-search-prime": mcp_server(srv, "http")},
            "projects": {str(box.workdir): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}},
        }
        box.write(".claude.json", json.dumps(user, indent=2))
        return box.env(
            DISABLE_AUTOUPDATER="1",
            DISABLE_TELEMETRY="1",
            DISABLE_ERROR_REPORTING="1",
            CLAUDE_CODE_MAX_RETRIES="1",
            IS_SANDBOX="1",
        )

    session_keys = ("session_id",)
    headless = HEADLESS

    def command(self, text: str, *extra: str) -> list[str]:
        options = extra or ("--dangerously-skip-permissions",)
        return [str(self.exe), "-p", text, *options, "--output-format", "json"]

    def resume_options(self, session: str) -> tuple[str, ...]:
        return ("--resume", session, "--dangerously-skip-permissions")

    def more_scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        # Without permission the MCP call is denied by the client: a tool_use with an error result, no search.
        text = "zd:search look it up (the user denies the tool)"
        self.prompt(box, env, log, "mcp-denied", self.command(text, "--permission-mode", "default"), text)

    def interactive(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        ready = lambda pty: "for agents" in pty.output  # noqa: E731
        interactive_compact(box, srv, env, log, [str(self.exe)], ready, exit_keys=("/exit", "\r"))


DRIVER = ClaudeCode()
