"""Cline tasks (VS Code extension storage) written the way Cline writes them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from zai_dash.demo.common import (
    CODING_URL,
    DEMO_MODEL,
    FOLLOW_UPS,
    ms,
    search_server,
    write_json,
)


def cline_task_dir(home: Path, task_id: str) -> Path:
    """Where the VS Code (Linux `Code`) host keeps a Cline task."""
    return home / ".config" / "Code" / "User" / "globalStorage" / "saoudrizwan.claude-dev" / "tasks" / task_id


def _cline_turn(ts: datetime, text: str, first: bool, search: bool, model: str) -> list[dict[str, Any]]:
    info = {"providerId": "openai", "modelId": model}
    say = "text" if first else "user_feedback"
    records: list[dict[str, Any]] = [{"ts": ms(ts), "type": "say", "say": say, "text": text, "images": []}]
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
        {"ts": ms(ts) + 400, "type": "say", "say": "api_req_started", "text": json.dumps(req), "modelInfo": info}
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
                "ts": ms(ts) + 3_000,
                "type": "say",
                "say": "use_mcp_server",
                "text": json.dumps(use),
                "partial": False,
                "modelInfo": info,
            }
        )
        records.append({"ts": ms(ts) + 3_200, "type": "say", "say": "mcp_server_request_started"})
    req2 = dict(req, tokensIn=12_040, tokensOut=530, cacheReads=10_496)
    records.append(
        {"ts": ms(ts) + 9_000, "type": "say", "say": "api_req_started", "text": json.dumps(req2), "modelInfo": info}
    )
    records.append({"ts": ms(ts) + 15_000, "type": "say", "say": "text", "text": "Done.", "modelInfo": info})
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
    task_id = task_id or str(ms(times[0]))
    task = cline_task_dir(home, task_id)
    records: list[dict[str, Any]] = []
    for i, ts in enumerate(times):
        records.extend(_cline_turn(ts, FOLLOW_UPS[i % len(FOLLOW_UPS)], first=i == 0, search=i == 0, model=model))
    write_json(task / "ui_messages.json", records)
    write_json(
        task / "task_metadata.json",
        {
            "files_in_context": [],
            "model_usage": [
                {"ts": ms(times[0]) + 390, "model_id": model, "model_provider_id": "openai", "mode": "act"}
            ],
        },
    )
    write_json(
        home / ".cline" / "data" / "globalState.json",
        {"mode": "act", "actModeApiProvider": "openai", "actModeOpenAiModelId": model, "openAiBaseUrl": CODING_URL},
    )
    write_json(
        task.parent.parent / "settings" / "cline_mcp_settings.json",
        {"mcpServers": search_server("streamableHttp")},
    )
    return task


def append_cline_feedback(task: Path, ts: datetime, text: str | None = None, model: str = DEMO_MODEL) -> None:
    """Add one follow-up turn at `ts` to a task, rewriting `ui_messages.json` whole as Cline does."""
    path = task / "ui_messages.json"
    records = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    n = sum(1 for r in records if r.get("say") == "user_feedback") + 1
    records.extend(
        _cline_turn(ts, text or FOLLOW_UPS[n % len(FOLLOW_UPS)], first=not records, search=False, model=model)
    )
    write_json(path, records)
