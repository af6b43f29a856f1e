"""Goose session databases and messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.support.sqlite import GOOSE_DDL, GOOSE_USAGE_LEDGER_DDL, create_db, js


def db_path(home: Path) -> Path:
    return home / ".local" / "share" / "goose" / "sessions" / "sessions.db"


def new_db(home: Path, ledger: bool = False) -> sqlite3.Connection:
    conn = create_db(db_path(home), GOOSE_DDL + (GOOSE_USAGE_LEDGER_DDL if ledger else ""))
    for sid, kind in (("20261126_1", "user"), ("20261126_2", "sub_agent"), ("20261126_3", "hidden")):
        conn.execute(
            "INSERT INTO sessions (id, name, session_type, working_dir, provider_name, model_config_json) "
            "VALUES (?, 'n', ?, '/p', 'custom_zai', ?)",
            (sid, kind, js({"model_name": "GLM-4.6", "temperature": None})),
        )
    return conn


def msg(
    conn: sqlite3.Connection,
    sid: str,
    role: str,
    at: int,
    content: list[object],
    meta: object = None,
    mid: str | None = None,
) -> None:
    meta = meta or {"userVisible": True, "agentVisible": True}
    conn.execute(
        "INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (mid or f"msg_{sid}_{at}_{role}", sid, role, js(content), at, js(meta)),
    )


TEXT = [{"type": "text", "text": "add exponential backoff"}]
