"""Cline CLI (`cline` 3.x), driven with `cline --json "<prompt>"` (act mode, tools auto-approved).

Setup as a user would do it: `cline auth -p openai -k <key> -m glm-4.6 -b <base URL>` (Cline stores it as
the `openai-compatible` provider in `~/.cline/data/settings/providers.json`) and the `web-search-prime`
server in `~/.cline/data/settings/cline_mcp_settings.json`. It starts a hub daemon that outlives the
command (`cline --cline-hub-daemon --cwd <project>`); the suite ends it after the run.
"""

from __future__ import annotations

import json

from conformance.clients.base import REFUSED, Driver, RunLog, json_value, run_headless
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
                "web-search-prime": {
                    "type": "streamableHttp",
                    "url": srv.mcp_url,
                    "headers": {"Authorization": f"Bearer {FAKE_TOKEN}"},
                    "disabled": False,
                    "autoApprove": ["webSearchPrime"],
                }
            }
        }
        box.write(".cline/data/settings/cline_mcp_settings.json", json.dumps(mcp, indent=2))
        return env

    def _run(self, text: str, *extra: str) -> list[str]:
        return [str(self.exe), "--json", *extra, text]

    def scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        run_headless(
            self,
            box,
            env,
            log,
            argv=self._run,
            # With `--id` the positional prompt is not taken in JSON mode; piped stdin is.
            resume=lambda session, text: ([str(self.exe), "--json", "--id", session], text + "\n"),
            session_of=lambda out: json_value(out, ("sessionId", "session_id", "taskId")),
        )
        self.prompt(box, env, log, "refused", self._run(REFUSED, "--retries", "1"), REFUSED, "refused", timeout=90)


DRIVER = Cline()
