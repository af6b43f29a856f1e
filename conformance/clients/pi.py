"""Pi (`@mariozechner/pi-coding-agent`), driven with `pi -p` against the fake's OpenAI Chat Completions API.

Pi knows Z.ai as its built-in `zai` provider (key from `ZAI_API_KEY`, a fake value); `~/.pi/agent/models.json`
overrides that provider's `baseUrl` with the fake's `/api/coding/paas/v4`. Pi has no MCP client and no
sub-agents of its own, so those scenarios do not apply. `--offline` stops its startup network checks.
Sessions go to `~/.pi/agent/sessions/<cwd slug>/*.jsonl`.
"""

from __future__ import annotations

import json

from conformance.clients.base import HEADLESS, Driver
from conformance.sandbox import FAKE_TOKEN, Sandbox
from conformance.server import FakeGlmServer


class Pi(Driver):
    tool = "pi"
    client = "Pi"
    package = "@mariozechner/pi-coding-agent"
    version = "0.73.1"
    binary = "pi"
    data_paths = (".pi/agent/sessions", ".pi/agent/models.json", ".pi/agent/settings.json")

    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        box.write(".pi/agent/models.json", json.dumps({"providers": {"zai": {"baseUrl": srv.openai_url}}}, indent=2))
        box.write(".pi/agent/settings.json", json.dumps({"defaultProvider": "zai", "defaultModel": "glm-4.6"}))
        return box.env(ZAI_API_KEY=FAKE_TOKEN, PI_OFFLINE="1")

    headless = HEADLESS[:1]

    def command(self, text: str, *extra: str) -> list[str]:
        return [str(self.exe), "--offline", "--provider", "zai", "--model", "glm-4.6", "-p", *extra, text]

    def session_of(self, stdout: str) -> str | None:
        return "latest"  # Pi prints no session id; `--continue` resumes the folder's latest session

    def resume_options(self, session: str) -> tuple[str, ...]:
        return ("--continue",)


DRIVER = Pi()
