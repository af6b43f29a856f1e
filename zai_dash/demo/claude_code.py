"""Claude Code session files (`~/.claude/projects/<slug>/<session>.jsonl`) and settings, as Claude Code writes them."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from zai_dash.demo.common import (
    iso,
)

DEMO_PROJECT = "/home/demo/shop-api"


class ClaudeCodeWriter:
    """Appends records to a Claude Code session file the way Claude Code does (one line per block)."""

    def __init__(self, home: Path, session: str, cwd: str = DEMO_PROJECT) -> None:
        slug = "".join(c if c.isalnum() else "-" for c in cwd)
        self.dir = home / ".claude" / "projects" / slug
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{session}.jsonl"
        self.session = session
        self.cwd = cwd
        self._n = 0
        self._parent: str | None = None

    def _base(self, ts: datetime, kind: str) -> dict[str, Any]:
        self._n += 1
        uid = str(uuid.UUID(int=random.Random(f"{self.session}{self._n}").getrandbits(128)))
        rec = {
            "parentUuid": self._parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session,
            "version": "2.0.14",
            "gitBranch": "main",
            "type": kind,
            "uuid": uid,
            "timestamp": iso(ts),
        }
        self._parent = uid
        return rec

    def _append(self, *records: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def prompt(self, ts: datetime, text: str) -> None:
        """A human prompt."""
        rec = self._base(ts, "user")
        rec["message"] = {"role": "user", "content": text}
        self._append(rec)

    def call(self, ts: datetime, model: str, *, tool: str | None = None, text: str = "Done.") -> str | None:
        """One model call: a thinking line and a text or tool_use line sharing the message id."""
        msg_id = f"msg_{ts:%Y%m%d%H%M%S}{self._n:06d}"
        usage = {
            "input_tokens": 900 + self._n % 700,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 12000 + 37 * self._n,
            "output_tokens": 60 + self._n % 400,
        }
        tool_id = None
        blocks: list[dict[str, Any]] = [{"type": "thinking", "thinking": "Let me look at this."}]
        if tool:
            tool_id = f"call_{self.session[:4]}{self._n:05d}"
            blocks.append({"type": "tool_use", "id": tool_id, "name": tool, "input": {"query": "demo"}})
        else:
            blocks.append({"type": "text", "text": text})
        lines = []
        for block in blocks:
            rec = self._base(ts, "assistant")
            rec["message"] = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": "tool_use" if tool else "end_turn",
                "usage": usage,
            }
            rec["requestId"] = f"req_{msg_id[4:]}"
            lines.append(rec)
        self._append(*lines)
        return tool_id

    def tool_result(self, ts: datetime, tool_id: str) -> None:
        """The result of a tool call (not a prompt)."""
        rec = self._base(ts, "user")
        rec["message"] = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]}
        rec["toolUseResult"] = {"stdout": "ok"}
        self._append(rec)


def write_claude_settings(home: Path, model: str = "glm-5.3") -> None:
    """Claude Code pointed at the Coding Plan with the Z.ai MCP servers, as Z.ai's set-up guide does."""
    claude = home / ".claude"
    claude.mkdir(parents=True, exist_ok=True)
    settings = {"env": {"ANTHROPIC_BASE_URL": "https://api.z.ai/api/anthropic", "ANTHROPIC_MODEL": model}}
    (claude / "settings.json").write_text(json.dumps(settings, indent=2))
    mcp = {
        "mcpServers": {
            "web-search-prime": {"type": "http", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp"},
            "zread": {"type": "http", "url": "https://api.z.ai/api/mcp/zread/mcp"},
            "zai-mcp-server": {"type": "stdio", "command": "npx", "args": ["-y", "@z_ai/mcp-server"]},
        }
    }
    (home / ".claude.json").write_text(json.dumps(mcp, indent=2))
