"""Small, realistic Cline and Factory Droid files for the demo, written the way each tool writes them.

Every function takes the (temporary) home to write into and the instants at which things happen, so
the demo can lay down history and then keep appending turns while the real engine watches.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

DEMO_MODEL = "glm-4.6"
CODING_URL = "https://api.z.ai/api/coding/paas/v4"
ANTHROPIC_URL = "https://api.z.ai/api/anthropic"
SEARCH_URL = "https://api.z.ai/api/mcp/web_search_prime/mcp"

_PROMPTS = (
    "add exponential backoff to getJson()",
    "also add jitter, and cap the delay at 30s",
    "write a unit test for the retry path",
    "rename the helper to fetch_with_retry",
)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _write_json(path: Path, value: Any, atomic: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(value)
    if atomic:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    else:
        path.write_text(data, encoding="utf-8")


# -- Cline ---------------------------------------------------------------------------------------------


def cline_task_dir(home: Path, task_id: str) -> Path:
    """Where the VS Code (Linux `Code`) host keeps a Cline task."""
    return home / ".config" / "Code" / "User" / "globalStorage" / "saoudrizwan.claude-dev" / "tasks" / task_id


def _cline_turn(ts: datetime, text: str, first: bool, search: bool, model: str) -> list[dict[str, Any]]:
    info = {"providerId": "openai", "modelId": model}
    say = "text" if first else "user_feedback"
    records: list[dict[str, Any]] = [{"ts": _ms(ts), "type": "say", "say": say, "text": text, "images": []}]
    if first:
        records[0]["modelInfo"] = info
    req = {
        "request": f"<task>\n{text}\n</task>",
        "tokensIn": 10_512,
        "tokensOut": 211,
        "cacheWrites": 0,
        "cacheReads": 9_984,
        "cost": 0,
    }
    records.append(
        {"ts": _ms(ts) + 400, "type": "say", "say": "api_req_started", "text": json.dumps(req), "modelInfo": info}
    )
    if search:
        use = {
            "type": "use_mcp_tool",
            "serverName": "web-search-prime",
            "toolName": "webSearchPrime",
            "arguments": json.dumps({"search_query": text}),
        }
        records.append(
            {
                "ts": _ms(ts) + 3_000,
                "type": "say",
                "say": "use_mcp_server",
                "text": json.dumps(use),
                "partial": False,
                "modelInfo": info,
            }
        )
        records.append({"ts": _ms(ts) + 3_200, "type": "say", "say": "mcp_server_request_started"})
    req2 = dict(req, tokensIn=12_040, tokensOut=530, cacheReads=10_496)
    records.append(
        {"ts": _ms(ts) + 9_000, "type": "say", "say": "api_req_started", "text": json.dumps(req2), "modelInfo": info}
    )
    records.append({"ts": _ms(ts) + 15_000, "type": "say", "say": "text", "text": "Done.", "modelInfo": info})
    return records


def write_cline_task(
    home: Path, times: Sequence[datetime], task_id: str | None = None, model: str = DEMO_MODEL
) -> Path:
    """Write a Cline task (VS Code host) whose user typed at each of `times`, plus Cline's settings.

    The first instant opens the task (`say:"text"`), each later one is a follow-up (`user_feedback`);
    every turn makes two model calls, and the first one a web search through `web-search-prime`.
    Settings go to `~/.cline/data/globalState.json` (OpenAI-compatible provider on the Coding Plan URL)
    and the MCP settings name the search server by URL.

    Returns:
        The task folder (pass it to `append_cline_feedback`).
    """
    if not times:
        raise ValueError("a task needs at least one prompt time")
    task_id = task_id or str(_ms(times[0]))
    task = cline_task_dir(home, task_id)
    records: list[dict[str, Any]] = []
    for i, ts in enumerate(times):
        records.extend(_cline_turn(ts, _PROMPTS[i % len(_PROMPTS)], first=i == 0, search=i == 0, model=model))
    _write_json(task / "ui_messages.json", records)
    _write_json(
        task / "task_metadata.json",
        {
            "files_in_context": [],
            "model_usage": [
                {"ts": _ms(times[0]) + 390, "model_id": model, "model_provider_id": "openai", "mode": "act"}
            ],
        },
    )
    _write_json(
        home / ".cline" / "data" / "globalState.json",
        {"mode": "act", "actModeApiProvider": "openai", "actModeOpenAiModelId": model, "openAiBaseUrl": CODING_URL},
    )
    _write_json(
        task.parent.parent / "settings" / "cline_mcp_settings.json",
        {"mcpServers": {"web-search-prime": {"type": "streamableHttp", "url": SEARCH_URL}}},
    )
    return task


def append_cline_feedback(task: Path, ts: datetime, text: str | None = None, model: str = DEMO_MODEL) -> None:
    """Add one follow-up turn at `ts` to a task, rewriting `ui_messages.json` whole as Cline does."""
    path = task / "ui_messages.json"
    records = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    n = sum(1 for r in records if r.get("say") == "user_feedback") + 1
    records.extend(_cline_turn(ts, text or _PROMPTS[n % len(_PROMPTS)], first=not records, search=False, model=model))
    _write_json(path, records)


# -- Factory Droid -------------------------------------------------------------------------------------


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
    session_id = session_id or str(uuid.UUID(int=_ms(times[0])))
    path = droid_session_file(home, session_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines: list[dict[str, Any]] = [
        {
            "type": "session_start",
            "id": session_id,
            "title": _PROMPTS[0],
            "owner": "u",
            "version": 2,
            "cwd": "/home/u/proj",
        },
    ]
    for i, ts in enumerate(times):
        lines.extend(_droid_turn(ts, _PROMPTS[i % len(_PROMPTS)], i, search=i == 0))
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    _write_droid_settings(path, turns=len(times))
    _write_json(
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
    servers = {"web-search-prime": {"type": "http", "url": SEARCH_URL}}
    _write_json(home / ".factory" / "mcp.json", {"mcpServers": servers})
    return path


def _write_droid_settings(session_file: Path, turns: int) -> None:
    _write_json(
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
    lines = _droid_turn(ts, text or _PROMPTS[index % len(_PROMPTS)], index, search=False)
    with open(session_file, "a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
    _write_droid_settings(session_file, turns=index + 1)
