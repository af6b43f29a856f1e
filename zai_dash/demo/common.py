"""What every demo writer shares: timestamps as the tools write them, JSON and database set-up.

The writers (`claude_code`, `cline`, `droid`, `opencode`, `crush`) write each tool's real on-disk layout;
the demo, the tests and the benchmarks all use them, so a format is written down in one place.
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

DEMO_MODEL = "glm-4.6"
CODING_URL = "https://api.z.ai/api/coding/paas/v4"
ANTHROPIC_URL = "https://api.z.ai/api/anthropic"
SEARCH_URL = "https://api.z.ai/api/mcp/web_search_prime/mcp"


def search_server(transport: str) -> dict[str, dict[str, str]]:
    """Z.ai's Web Search MCP server as a tool's config names it (`transport` in the tool's own word)."""
    return {"web-search-prime": {"type": transport, "url": SEARCH_URL}}


FOLLOW_UPS = (
    "add exponential backoff to getJson()",
    "also add jitter, and cap the delay at 30s",
    "write a unit test for the retry path",
    "rename the helper to fetch_with_retry",
)
"""A short conversation: the prompts the Cline and Droid writers cycle through."""


def ms(ts: datetime) -> int:
    """Epoch milliseconds, as Cline, Droid and OpenCode store instants."""
    return int(ts.timestamp() * 1000)


def iso(ts: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a trailing Z, as Claude Code writes `timestamp`."""
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: object) -> str:
    """Compact JSON text (the tools' JSON columns)."""
    return orjson.dumps(value).decode()


def write_json(path: Path, value: Any, atomic: bool = False) -> None:
    """Write a JSON file, optionally by rename as tools that rewrite whole files do."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(value)
    if atomic:
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    else:
        path.write_text(data, encoding="utf-8")


def write_config(path: Path, data: dict[str, object]) -> None:
    """A tool's config file, left alone when one is already there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))


def create_db(path: Path, ddl: str) -> sqlite3.Connection:
    """Create (or open) a database with `ddl`, in WAL mode like the tools; returns the writer connection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(ddl)
    return conn


def layout(name: str) -> str:
    """A tool's table layout (`layouts/<name>.sql`: the DDL its migrations leave, kept as data beside us)."""
    return (resources.files("zai_dash.demo") / "layouts" / f"{name}.sql").read_text(encoding="utf-8")
