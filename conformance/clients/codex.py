"""Codex CLI (`@openai/codex`), driven with `codex exec --json`, against the fake's OpenAI Responses API.

`~/.codex/config.toml` declares a `zai` model provider (`wire_api = "responses"`, the fake's
`/api/coding/paas/v4`, the key read from `ZAI_API_KEY`, a fake value) and the `web-search-prime`
streamable-HTTP MCP server. Approvals and the sandbox are bypassed (the sandbox needs namespaces).
Rollouts go to `~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl`.
"""

from __future__ import annotations

from conformance.clients.base import HEADLESS, Driver
from conformance.sandbox import FAKE_TOKEN, Sandbox
from conformance.server import FakeGlmServer

CONFIG = """model = "glm-4.6"
model_provider = "zai"
check_for_update_on_startup = false

[model_providers.zai]
name = "Z.ai GLM Coding Plan"
base_url = "{base}"
env_key = "ZAI_API_KEY"
wire_api = "responses"
request_max_retries = 1
stream_max_retries = 1

[mcp_servers.web-search-prime]
url = "{mcp}"
http_headers = {{ Authorization = "Bearer {token}" }}

[projects."{workdir}"]
trust_level = "trusted"
"""


class Codex(Driver):
    tool = "codex"
    client = "Codex CLI"
    package = "@openai/codex"
    version = "0.171.0"
    binary = "codex"
    data_paths = (".codex/sessions", ".codex/config.toml")

    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        box.write(
            ".codex/config.toml",
            CONFIG.format(base=srv.openai_url, mcp=srv.mcp_url, token=FAKE_TOKEN, workdir=box.workdir),
        )
        return box.env(ZAI_API_KEY=FAKE_TOKEN, CODEX_HOME=str(box.home / ".codex"))

    session_keys = ("thread_id", "session_id")
    headless = tuple(s for s in HEADLESS if s[0] != "sub-agent")

    def command(self, text: str, *sub: str) -> list[str]:
        flags = ["--json", "--skip-git-repo-check", "--dangerously-bypass-approvals-and-sandbox"]
        return [str(self.exe), "exec", *sub, *flags, text]

    def resume_options(self, session: str) -> tuple[str, ...]:
        return ("resume", session)


DRIVER = Codex()
