"""OpenCode (and Kilo) sessions in their SQLite layout: drizzle schema `packages/opencode/src/session/session.sql.ts`
(anomalyco/opencode), as created by its migrations (backquoted names, epoch-ms `time_created`/`time_updated`,
JSON `data`), in WAL mode as the tool runs it.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from zai_dash.demo.common import (
    create_db,
    dumps,
    layout,
    ms,
    search_server,
    write_config,
)

OPENCODE_DDL = layout("opencode")

OPENCODE_SESSION_MESSAGE_DDL = layout("opencode_session_message")
"""Newer event-sourced builds (packages/core `SessionMessageTable`)."""


def opencode_db_path(home: Path, app: str = "opencode") -> Path:
    """Where OpenCode (or Kilo, `app="kilo"`) keeps its database under a home dir (XDG defaults)."""
    return home / ".local" / "share" / app / f"{app}.db"


def write_opencode_session(
    home: Path,
    start: datetime,
    prompts: int,
    steps_per_prompt: int = 3,
    searches: int = 1,
    model: str = "glm-4.6",
    provider: str = "zai-coding-plan",
    app: str = "opencode",
    gap: timedelta = timedelta(minutes=4),
    session_id: str | None = None,
) -> Path:
    """Write one OpenCode session into `home`'s `opencode.db` (created if needed), as OpenCode writes it.

    Each prompt is a user message with a text part, followed by `steps_per_prompt` assistant steps
    (`step-start` … `step-finish` parts); the first `searches` prompts also call the Z.ai web-search MCP
    (`web-search-prime_webSearchPrime`). Also writes `~/.config/<app>/<app>.json` with the model and the
    MCP server if missing.

    Args:
        home: the (temp) home directory.
        start: time of the first prompt (aware).
        prompts: how many prompts.
        steps_per_prompt: model calls per prompt.
        searches: how many prompts make one web-search call.
        model: model id; provider: provider id (`zai-coding-plan` = Coding Plan).
        app: `opencode` or `kilo` (Kilo CLI writes the same layout to `kilo.db`).
        gap: time between prompts.
        session_id: the session id (default: a fresh `ses_…`).

    Returns:
        The database path.
    """
    path = opencode_db_path(home, app)
    conn = create_db(path, OPENCODE_DDL)
    sid = session_id or f"ses_{uuid.uuid4().hex[:24]}"
    t0 = ms(start)
    try:
        conn.execute("BEGIN")
        conn.execute("INSERT OR IGNORE INTO project VALUES (?, ?, 'git', NULL, ?, ?)", ("prj_demo", str(home), t0, t0))
        conn.execute(
            "INSERT OR IGNORE INTO session (id, project_id, slug, directory, title, version, time_created, "
            "time_updated) VALUES (?, 'prj_demo', 'demo', ?, 'Demo session', '1.0.0', ?, ?)",
            (sid, str(home / "proj"), t0, t0),
        )
        conn.execute("COMMIT")
        for n in range(prompts):
            at = t0 + int(gap.total_seconds() * 1000) * n
            add_opencode_turn(conn, sid, at, steps_per_prompt, search=n < searches, model=model, provider=provider)
    finally:
        conn.close()
    write_config(
        home / ".config" / app / f"{app}.json",
        {
            "$schema": "https://opencode.ai/config.json",
            "model": f"{provider}/{model}",
            "mcp": search_server("remote"),
        },
    )
    return path


def add_opencode_turn(
    conn: sqlite3.Connection,
    session: str,
    at_ms: int,
    steps: int,
    search: bool = False,
    model: str = "glm-4.6",
    provider: str = "zai-coding-plan",
) -> None:
    """Append one user prompt and its assistant steps to an open OpenCode database."""
    uid = f"msg_{uuid.uuid4().hex[:24]}"
    user = {
        "role": "user",
        "time": {"created": at_ms},
        "agent": "build",
        "model": {"providerID": provider, "modelID": model},
    }
    conn.execute("BEGIN")
    conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (uid, session, at_ms, at_ms, dumps(user)))
    conn.execute(
        "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
        (
            f"prt_{uuid.uuid4().hex[:24]}",
            uid,
            session,
            at_ms,
            at_ms,
            dumps({"type": "text", "text": "add exponential backoff to getJson()"}),
        ),
    )
    conn.execute("COMMIT")
    t = at_ms + 50
    for step in range(steps):
        aid = f"msg_{uuid.uuid4().hex[:24]}"
        tokens = {"input": 10234 + 900 * step, "output": 321, "reasoning": 0, "cache": {"read": 8192, "write": 0}}
        info = {
            "role": "assistant",
            "time": {"created": t, "completed": t + 2500},
            "parentID": uid,
            "modelID": model,
            "providerID": provider,
            "mode": "build",
            "agent": "build",
            "path": {"cwd": "/home/u/proj", "root": "/home/u/proj"},
            "cost": 0,
            "tokens": tokens,
            "finish": "tool-calls" if step < steps - 1 else "stop",
        }
        conn.execute("BEGIN")
        conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (aid, session, t, t + 2500, dumps(info)))
        conn.execute(
            "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
            (f"prt_{uuid.uuid4().hex[:24]}", aid, session, t, t, dumps({"type": "step-start"})),
        )
        if search and step == 0:
            tool = {
                "type": "tool",
                "callID": "call_7d1e",
                "tool": "web-search-prime_webSearchPrime",
                "state": {
                    "status": "completed",
                    "input": {"search_query": "backoff jitter"},
                    "output": "[…]",
                    "title": "",
                    "metadata": {},
                    "time": {"start": t + 1000, "end": t + 2000},
                },
            }
            conn.execute(
                "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
                (f"prt_{uuid.uuid4().hex[:24]}", aid, session, t + 1000, t + 2000, dumps(tool)),
            )
        finish = {"type": "step-finish", "reason": info["finish"], "cost": 0, "tokens": tokens}
        conn.execute(
            "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
            (f"prt_{uuid.uuid4().hex[:24]}", aid, session, t + 2500, t + 2500, dumps(finish)),
        )
        conn.execute("COMMIT")
        t += 3000
