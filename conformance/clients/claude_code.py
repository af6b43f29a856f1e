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

from conformance.clients.base import Driver, RunLog, wait_idle
from conformance.sandbox import FAKE_TOKEN, PtySession, Sandbox
from conformance.server import FakeGlmServer
from conformance.truth import Typed


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
        text = "zd:plain say hello"
        proc = self.prompt(box, env, log, "plain", self._p(text, yolo), text)
        session = _session_id(proc.stdout)
        if session:
            text = "zd:plain and once more"
            self.prompt(box, env, log, "resumed", self._p("--resume", session, text, yolo), text)
        for scenario, text in (
            ("multi-call", "zd:multi run a command, then answer"),
            ("sub-agent", "zd:agent delegate this to a sub-agent"),
            ("mcp-search", "zd:search look this up on the web"),
        ):
            self.prompt(box, env, log, scenario, self._p(text, yolo), text)
        # Without permission the MCP call is denied by the client: a tool_use with an error result, no search.
        text = "zd:search look it up (the user denies the tool)"
        self.prompt(box, env, log, "mcp-denied", self._p(text, "--permission-mode", "default"), text)
        text = "zd:refuse this one hits the 5-hour limit"
        self.prompt(box, env, log, "refused", self._p(text, yolo), text, expect="refused")
        self._interactive(box, srv, env, log)

    def _interactive(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        """An interactive session: one prompt, `/compact`, `/exit` (title and compaction are hidden calls)."""
        pty = PtySession([str(self.exe)], box.workdir, env)
        try:
            pty.wait_quiet(3, 60)
            before = len(srv.recorder.snapshot())
            text = "zd:plain hello from the terminal"
            pty.send(text)
            pty.send("\r", pause=0.5)
            log.typed.append(Typed(text, "billed", "interactive", interactive=True))
            answered = wait_idle(srv, pty, before, 90)
            before = len(srv.recorder.snapshot())
            pty.send("/compact")
            pty.send("\r", pause=0.5)
            compacted = wait_idle(srv, pty, before, 120)
            pty.send("/exit")
            pty.send("\r", pause=1)
            log.scenarios.append("interactive+compact")
            log.interactive_sessions += 1
            if not (answered and compacted):
                log.failures.append(f"interactive: answered={answered} compacted={compacted}")
        finally:
            pty.close()
            (box.root / "interactive.screen.txt").write_text(pty.output)


def _session_id(stdout: str) -> str | None:
    try:
        return json.loads(stdout.strip().splitlines()[-1]).get("session_id")
    except (ValueError, IndexError, AttributeError):
        return None


DRIVER = ClaudeCode()
