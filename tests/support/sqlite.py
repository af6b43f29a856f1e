"""The real table layouts of the SQLite-backed tools, and helpers that write rows the way each tool does.

The DDL lives in `zai_dash.demo` (one module per tool) (the demo needs it at run time, and tests must not be imported by
the package); this module re-exports it for tests and adds writer helpers.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from zai_dash.demo.common import create_db
from zai_dash.demo.crush import CRUSH_DDL
from zai_dash.demo.goose import GOOSE_DDL, GOOSE_USAGE_LEDGER_DDL
from zai_dash.demo.opencode import OPENCODE_DDL, OPENCODE_SESSION_MESSAGE_DDL
from zai_dash.domain.events import EventKind, UsageEvent

__all__ = [
    "CRUSH_DDL",
    "GOOSE_DDL",
    "GOOSE_USAGE_LEDGER_DDL",
    "OPENCODE_DDL",
    "OPENCODE_SESSION_MESSAGE_DDL",
    "create_db",
    "dir_listing",
    "hold_write_lock",
    "js",
]


def js(value: object) -> str:
    """Compact JSON text, as the tools store it."""
    return orjson.dumps(value).decode()


def dir_listing(path: Path) -> set[str]:
    """File names in a directory (to prove a reader created nothing there)."""
    return set(os.listdir(path))


@contextmanager
def hold_write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Hold an exclusive lock on a WAL database from another connection, as a tool mid-write or mid-
    migration can (`locking_mode=EXCLUSIVE`; a plain `BEGIN EXCLUSIVE` does not block WAL readers).

    No other connection may have the database open. A read-only connection touches it first, so the
    `-wal`/`-shm` files exist (as while the tool runs) and the reader reads it in place, not a copy.
    """
    probe = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    probe.execute("SELECT count(*) FROM sqlite_master").fetchall()
    probe.close()
    conn = sqlite3.connect(str(db), isolation_level=None)
    conn.execute("PRAGMA locking_mode = EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def summary(events: list[UsageEvent]) -> Counter[str]:
    """Counts by kind (and service / role), after dedup by key as the ledger does."""
    out: Counter[str] = Counter()
    for e in {e.key: e for e in events}.values():
        out[e.kind.value] += 1
        if e.service:
            out[e.service.value] += 1
        if e.kind is EventKind.CALL:
            out[f"call:{e.role.value}"] += 1
    return out
