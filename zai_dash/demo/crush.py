"""Crush sessions in their SQLite layout: `internal/db/migrations/*.sql` (charmbracelet/crush 37f36e9) folded
into their final shape (epoch-seconds timestamps, `strftime('%s','now')` triggers, `parts` JSON, `provider`,
`is_summary_message`), in WAL mode as the tool runs it.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import orjson

from zai_dash.demo.common import (
    create_db,
    dumps,
    layout,
    search_server,
    write_config,
)

CRUSH_DDL = layout("crush")


def crush_project_db(project: Path) -> Path:
    """A project's Crush database (`<project>/.crush/crush.db`)."""
    return project / ".crush" / "crush.db"


def register_crush_project(home: Path, project: Path) -> None:
    """Add a project to `~/.local/share/crush/projects.json`, as Crush does on start."""
    path = home / ".local" / "share" / "crush" / "projects.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, ValueError):
        data = {"projects": []}
    projects = [p for p in data.get("projects", []) if p.get("path") != str(project)]
    projects.insert(
        0, {"path": str(project), "data_dir": str(project / ".crush"), "last_accessed": "2026-11-26T10:00:00Z"}
    )
    path.write_bytes(orjson.dumps({"projects": projects}, option=orjson.OPT_INDENT_2))


def write_crush_session(
    home: Path,
    start: datetime,
    prompts: int,
    steps_per_prompt: int = 2,
    searches: int = 1,
    model: str = "glm-4.6",
    provider: str = "zai",
    project: Path | None = None,
    gap: timedelta = timedelta(minutes=5),
) -> Path:
    """Write one Crush session into a project's `.crush/crush.db`, as Crush writes it, and register it.

    Each prompt is a `user` row, then `steps_per_prompt` `assistant` rows (one per agent step; the
    first of the first `searches` prompts calls `mcp_web-search-prime_webSearchPrime`, answered by a
    `tool` row). Writes `~/.config/crush/crush.json` (model + MCP server) if missing.

    Args:
        home: the (temp) home directory.
        start: time of the first prompt (aware).
        prompts: how many prompts.
        steps_per_prompt: assistant steps (model calls) per prompt.
        searches: how many prompts make one web-search call.
        model, provider: what the assistant rows record (`zai` is Crush's Coding-Plan provider).
        project: project dir (default `home/proj`).
        gap: time between prompts.

    Returns:
        The database path.
    """
    project = project or home / "proj"
    path = crush_project_db(project)
    conn = create_db(path, CRUSH_DDL)
    sid = str(uuid.uuid4())
    t0 = int(start.timestamp())
    try:
        conn.execute(
            "INSERT INTO sessions (id, parent_session_id, title, updated_at, created_at) "
            "VALUES (?, NULL, 'Backoff for getJson', ?, ?)",
            (sid, t0, t0),
        )
        for n in range(prompts):
            add_crush_turn(
                conn,
                sid,
                t0 + int(gap.total_seconds()) * n,
                steps_per_prompt,
                search=n < searches,
                model=model,
                provider=provider,
            )
    finally:
        conn.close()
    register_crush_project(home, project)
    write_config(
        home / ".config" / "crush" / "crush.json",
        {
            "$schema": "https://charm.land/crush.json",
            "models": {
                "large": {"model": model, "provider": provider},
                "small": {"model": "glm-4.5-air", "provider": provider},
            },
            "mcp": search_server("http"),
        },
    )
    return path


def add_crush_turn(
    conn: sqlite3.Connection,
    session: str,
    at: int,
    steps: int,
    search: bool = False,
    model: str = "glm-4.6",
    provider: str = "zai",
) -> None:
    """Append one user prompt and its assistant steps (epoch-seconds times) to an open Crush database."""

    def insert(
        role: str,
        parts: list[object],
        t: int,
        mdl: str | None = None,
        prov: str | None = None,
        finished: int | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO messages (id, session_id, role, parts, model, provider, is_summary_message, created_at, "
            "updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (str(uuid.uuid4()), session, role, dumps(parts), mdl or "", prov, t, t, finished),
        )

    insert(
        "user",
        [
            {"type": "text", "data": {"text": "add exponential backoff to getJson()"}},
            {"type": "finish", "data": {"reason": "stop", "time": 0}},
        ],
        at,
    )
    t = at + 1
    for step in range(steps):
        parts: list[object] = [{"type": "reasoning", "data": {"thinking": "…", "signature": ""}}]
        if search and step == 0:
            call = {
                "id": "call_7d1e",
                "name": "mcp_web-search-prime_webSearchPrime",
                "input": '{"search_query":"backoff jitter"}',
                "provider_executed": False,
                "finished": True,
            }
            parts.append({"type": "tool_call", "data": call})
        parts.append(
            {"type": "finish", "data": {"reason": "tool_use" if step < steps - 1 else "end_turn", "time": t + 2}}
        )
        insert("assistant", parts, t, model, provider, t + 2)
        if search and step == 0:
            insert(
                "tool",
                [
                    {
                        "type": "tool_result",
                        "data": {
                            "tool_call_id": "call_7d1e",
                            "name": "mcp_web-search-prime_webSearchPrime",
                            "content": "[…]",
                            "is_error": False,
                        },
                    }
                ],
                t + 3,
            )
        t += 4
    conn.execute(
        "UPDATE sessions SET prompt_tokens = prompt_tokens + 20468, completion_tokens = completion_tokens "
        "+ 642 WHERE id = ?",
        (session,),
    )
