"""Codex CLI rollout files, written the way Codex writes them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.recorded import iso

SID = "01a23416-bdcf-7013-ba7a-5c72c4aba652"


def rec(at: datetime, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": iso(at), "type": kind, "payload": payload}


def usage(inp: int, cached: int, out: int) -> dict[str, int]:
    return {"input_tokens": inp, "cached_input_tokens": cached, "output_tokens": out, "total_tokens": inp + out}


def turn(at: datetime, n: int, inp: int = 1000, cached: int = 200, out: int = 20) -> list[dict[str, Any]]:
    """One prompt answered by one response, the way Codex 0.169 writes it."""
    one = usage(inp, cached, out)
    return [
        rec(at, "event_msg", {"type": "task_started"}),
        rec(at, "turn_context", {"model": "glm-4.6", "cwd": "/home/user/work"}),
        rec(at, "event_msg", {"type": "item_completed", "item": {"type": "UserMessage", "id": f"u{n}"}}),
        rec(at + timedelta(seconds=1), "token_usage_record", {"response_id": f"resp_{n}", "usage": one}),
        rec(
            at + timedelta(seconds=1),
            "event_msg",
            {
                "type": "token_count",
                "info": {"total_token_usage": usage(inp * n, cached * n, out * n), "last_token_usage": one},
            },
        ),
        rec(at + timedelta(seconds=2), "event_msg", {"type": "task_complete"}),
    ]


def write_rollout(home: Path, at: datetime, lines: list[dict[str, Any]], sid: str = SID) -> Path:
    path = home / ".codex" / "sessions" / f"{at:%Y/%m/%d}" / f"rollout-{at:%Y-%m-%dT%H-%M-%S}-{sid}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = rec(at, "session_meta", {"id": sid, "cwd": "/home/user/work", "cli_version": "0.169.0", "source": "exec"})
    with path.open("a") as fh:
        for line in ([meta] if not path.exists() or path.stat().st_size == 0 else []) + lines:
            fh.write(json.dumps(line) + "\n")
    return path


def write_codex_session(home: Path, at: datetime, tag: str) -> None:
    """A sample Codex session (two prompts, one MCP search) for the adapter contract test."""
    sid = f"01a23416-bdcf-7013-ba7a-5c72c4aba6{tag}"
    mcp = rec(
        at + timedelta(seconds=1),
        "event_msg",
        {
            "type": "item_completed",
            "item": {
                "type": "McpToolCall",
                "id": f"call_{tag}",
                "server": "web-search-prime",
                "tool": "webSearchPrime",
                "status": "completed",
            },
        },
    )
    write_rollout(home, at, [*turn(at, 1), mcp, *turn(at + timedelta(minutes=1), 2)], sid)
