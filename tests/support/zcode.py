"""ZCode's `model_usage` database, in the layout its public readers describe."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.paths import FIXTURE_DIR

LAYOUT = (FIXTURE_DIR / "real" / "zcode" / "layout.sql").read_text()


def open_db(zcode_home: Path, ddl: str = LAYOUT) -> sqlite3.Connection:
    path = zcode_home / "cli" / "db" / "db.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    if fresh:
        conn.executescript(ddl)
    return conn


def insert(conn: sqlite3.Connection, rid: str, at: datetime, **cols: Any) -> None:
    row: dict[str, Any] = {
        "id": rid,
        "session_id": "sess-a",
        "started_at": int(at.timestamp() * 1000),
        "model_id": "GLM-5.3",
        "status": "completed",
        "input_tokens": 16507,
        "output_tokens": 59,
        "reasoning_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 11712,
    }
    row.update(cols)
    row.setdefault("computed_total_tokens", row["input_tokens"] + row["output_tokens"])
    names = ", ".join(row)
    conn.execute(f"INSERT INTO model_usage ({names}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))


def write_zcode_session(home: Path, at: datetime, tag: str) -> None:
    """A sample ZCode session (two turns, three calls, a title call) for the adapter contract test."""
    conn = open_db(home / ".zcode")
    s = timedelta(seconds=1)
    for n, (turn, source) in enumerate(
        [("t1", "main_turn"), ("t1", "main_turn"), ("t1", "title"), ("t2", "main_turn")]
    ):
        insert(conn, f"mu-{tag}-{n}", at + n * s, session_id=f"sess-{tag}", turn_id=turn, query_source=source)
    conn.close()
