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

from conformance.clients.base import REFUSED, Driver, RunLog, interactive_compact, json_value, run_headless
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
            "mcpServers": {
                "web-search-prime": {
                    "type": "http",
                    "url": srv.mcp_url,
                    "headers": {"Authorization": f"Bearer {FAKE_TOKEN}"},
                }
            },
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

    def _p(self, *args: str) -> list[str]:
        return [str(self.exe), "-p", *args, "--output-format", "json"]

    def scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        yolo = "--dangerously-skip-permissions"
        run_headless(
            self,
            box,
            env,
            log,
            argv=lambda text: self._p(text, yolo),
            resume=lambda session, text: (self._p("--resume", session, text, yolo), None),
            session_of=lambda out: json_value(out, ("session_id",), last=True),
        )
        # Without permission the MCP call is denied by the client: a tool_use with an error result, no search.
        text = "zd:search look it up (the user denies the tool)"
        self.prompt(box, env, log, "mcp-denied", self._p(text, "--permission-mode", "default"), text)
        self.prompt(box, env, log, "refused", self._p(REFUSED, yolo), REFUSED, expect="refused")
        interactive_compact(
            box,
            srv,
            env,
            log,
            [str(self.exe)],
            ready=lambda pty: "for agents" in pty.output,
            exit_keys=("/exit", "\r"),
        )


DRIVER = ClaudeCode()
