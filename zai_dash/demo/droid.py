"""Factory Droid sessions (`~/.factory/sessions`) written the way Droid writes them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from zai_dash.demo.common import (
    ANTHROPIC_URL,
    DEMO_MODEL,
    FOLLOW_UPS,
    ms,
    search_server,
    write_json,
)


def droid_session_file(home: Path, session_id: str, cwd: str = "/home/u/proj") -> Path:
    """`~/.factory/sessions/<cwd slug>/<session id>.jsonl`."""
    return home / ".factory" / "sessions" / cwd.replace("/", "-") / f"{session_id}.jsonl"


def _droid_turn(ts: datetime, text: str, index: int, search: bool) -> list[dict[str, Any]]:
    iso = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731 - local shorthand
    lines: list[dict[str, Any]] = [
        {
            "type": "message",
            "id": f"u{index}",
            "timestamp": iso(ts),
            "message": {"role": "user", "content": [{"type": "text", "text": text}]},
        },
    ]
    content: list[dict[str, Any]] = [{"type": "text", "text": "Looking into it."}]
    if search:
        content.append(
            {
                "type": "tool_use",
                "id": f"call_{index}",
                "name": "web-search-prime___webSearchPrime",
                "input": {"search_query": text},
            }
        )
    lines.append(
        {
            "type": "message",
            "id": f"a{index}",
            "parentId": f"u{index}",
            "timestamp": iso(ts + timedelta(seconds=4)),
            "message": {"role": "assistant", "content": content},
        }
    )
    lines.append(
        {
            "type": "message",
            "id": f"a{index}b",
            "parentId": f"a{index}",
            "timestamp": iso(ts + timedelta(seconds=12)),
            "message": {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
        }
    )
    return lines


def write_droid_session(home: Path, times: Sequence[datetime], session_id: str | None = None) -> Path:
    """Write a Droid session whose user typed at each of `times`, with its settings and BYOK config.

    Each turn is a prompt and two assistant messages (model calls); the first calls Z.ai web search.
    The session's `settings.json` names `custom:GLM-4.6-[Z.AI]-0`, resolved through
    `~/.factory/settings.json` `customModels` to `glm-4.6` on Z.ai's Anthropic endpoint.

    Returns:
        The session `.jsonl` (pass it to `append_droid_turn`).
    """
    if not times:
        raise ValueError("a session needs at least one prompt time")
    session_id = session_id or str(uuid.UUID(int=ms(times[0])))
    path = droid_session_file(home, session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, Any]] = [
        {
            "type": "session_start",
            "id": session_id,
            "title": FOLLOW_UPS[0],
            "owner": "u",
            "version": 2,
            "cwd": "/home/u/proj",
        },
    ]
    for i, ts in enumerate(times):
        lines.extend(_droid_turn(ts, FOLLOW_UPS[i % len(FOLLOW_UPS)], i, search=i == 0))
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    _write_droid_settings(path, turns=len(times))
    write_json(
        home / ".factory" / "settings.json",
        {
            "customModels": [
                {
                    "model": DEMO_MODEL,
                    "displayName": "GLM-4.6 [Z.AI]",
                    "baseUrl": ANTHROPIC_URL,
                    "provider": "anthropic",
                    "maxOutputTokens": 16384,
                }
            ]
        },
    )
    servers = search_server("http")
    write_json(home / ".factory" / "mcp.json", {"mcpServers": servers})
    return path


def _write_droid_settings(session_file: Path, turns: int) -> None:
    write_json(
        session_file.with_name(session_file.stem + ".settings.json"),
        {
            "model": "custom:GLM-4.6-[Z.AI]-0",
            "reasoningEffort": "none",
            "autonomyMode": "auto-low",
            "providerLock": "anthropic",
            "tokenUsage": {
                "inputTokens": 20_000 * turns,
                "outputTokens": 700 * turns,
                "cacheCreationTokens": 0,
                "cacheReadTokens": 15_000 * turns,
                "thinkingTokens": 0,
            },
        },
        atomic=True,
    )


def append_droid_turn(session_file: Path, ts: datetime, text: str | None = None) -> None:
    """Append one turn at `ts` to a Droid session and grow its cumulative token usage."""
    existing = session_file.read_text(encoding="utf-8").splitlines() if session_file.exists() else []
    index = sum(1 for line in existing if '"role": "user"' in line)
    lines = _droid_turn(ts, text or FOLLOW_UPS[index % len(FOLLOW_UPS)], index, search=False)
    with open(session_file, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
    _write_droid_settings(session_file, turns=index + 1)
