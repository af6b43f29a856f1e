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


VERSION = "2.0.14"
"""The Claude Code version the records carry (one seen writing this layout, log-formats.md §1)."""


def _stamp(ts: datetime | str) -> str:
    return ts if isinstance(ts, str) else iso(ts)


def record(
    kind: str,
    ts: datetime | str,
    *,
    session: str,
    cwd: str,
    uuid: str,
    parent: str | None = None,
    git_branch: str | None = "main",
    message: dict[str, Any] | None = None,
    request_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A transcript line in Claude Code's own key order; `extra` keys follow, as `toolUseResult` does.

    Claude Code writes `message` (and `requestId`) before `type` on assistant lines and after it on user
    lines, and `timestamp` last of the envelope; readers that look at a line's tail rely on that.

    Args:
        kind: `user`, `assistant`, `system`, ... (`type`).
        ts: the instant, or a `timestamp` string written as is (tests write odd ones on purpose).
        session: `sessionId`.
        cwd: the project directory.
        uuid: this line's `uuid`.
        parent: `parentUuid`.
        git_branch: `gitBranch` (None leaves it out, as outside a repository).
        message: the `message` object, if the line has one.
        request_id: `requestId` (None leaves it out, as some builds do).
        **extra: further keys, after `timestamp`.
    """
    rec: dict[str, Any] = {"parentUuid": parent, "isSidechain": False, "userType": "external", "cwd": cwd}
    rec["sessionId"] = session
    rec["version"] = VERSION
    if git_branch is not None:
        rec["gitBranch"] = git_branch
    if kind == "assistant" and message is not None:
        rec["message"] = message
        if request_id is not None:
            rec["requestId"] = request_id
    rec["type"] = kind
    if kind != "assistant" and message is not None:
        rec["message"] = message
    rec["uuid"] = uuid
    rec["timestamp"] = _stamp(ts)
    rec.update(extra)
    return rec


def user_record(ts: datetime | str, content: Any, **envelope: Any) -> dict[str, Any]:
    """A `user` line: a human prompt (`content` a string or text blocks) or tool results (blocks)."""
    return record("user", ts, message={"role": "user", "content": content}, **envelope)


def usage(input_tokens: int, output_tokens: int, *, cache_read: int = 0, cache_creation: int = 0) -> dict[str, int]:
    """An Anthropic `usage` object as Claude Code logs it."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
    }


def assistant_record(
    ts: datetime | str,
    *,
    message_id: str,
    model: str,
    content: list[dict[str, Any]],
    tokens: dict[str, int],
    stop_reason: str | None = None,
    **envelope: Any,
) -> dict[str, Any]:
    """An `assistant` line: one content block of a model call (a call's blocks share `message_id`).

    Args:
        ts: the instant (or a timestamp string).
        message_id: `message.id`.
        model: `message.model`.
        content: `message.content` (Claude Code writes one block per line).
        tokens: `message.usage` (see `usage`).
        stop_reason: `message.stop_reason`.
        **envelope: `record`'s keyword arguments (`request_id`, `session`, ...) and any further keys.
    """
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": tokens,
    }
    return record("assistant", ts, message=message, **envelope)


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

    def _next(self) -> dict[str, Any]:
        """The envelope keywords for the next line (a fresh `uuid`, chained to the last one)."""
        self._n += 1
        uid = str(uuid.UUID(int=random.Random(f"{self.session}{self._n}").getrandbits(128)))
        keys = {"session": self.session, "cwd": self.cwd, "uuid": uid, "parent": self._parent}
        self._parent = uid
        return keys

    def _append(self, *records: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def prompt(self, ts: datetime, text: str) -> None:
        """A human prompt."""
        self._append(user_record(ts, text, **self._next()))

    def call(self, ts: datetime, model: str, *, tool: str | None = None, text: str = "Done.") -> str | None:
        """One model call: a thinking line and a text or tool_use line sharing the message id."""
        msg_id = f"msg_{ts:%Y%m%d%H%M%S}{self._n:06d}"
        tokens = usage(900 + self._n % 700, 60 + self._n % 400, cache_read=12000 + 37 * self._n)
        tool_id = None
        blocks: list[dict[str, Any]] = [{"type": "thinking", "thinking": "Let me look at this."}]
        if tool:
            tool_id = f"call_{self.session[:4]}{self._n:05d}"
            blocks.append({"type": "tool_use", "id": tool_id, "name": tool, "input": {"query": "demo"}})
        else:
            blocks.append({"type": "text", "text": text})
        stop = "tool_use" if tool else "end_turn"
        lines = [
            assistant_record(
                ts,
                message_id=msg_id,
                model=model,
                content=[block],
                tokens=tokens,
                request_id=f"req_{msg_id[4:]}",
                stop_reason=stop,
                **self._next(),
            )
            for block in blocks
        ]
        self._append(*lines)
        return tool_id

    def tool_result(self, ts: datetime, tool_id: str) -> None:
        """The result of a tool call (not a prompt)."""
        result = [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]
        self._append(user_record(ts, result, toolUseResult={"stdout": "ok"}, **self._next()))


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
