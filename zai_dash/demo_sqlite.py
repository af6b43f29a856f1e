"""OpenCode and Crush sessions written the way those tools write them, for `zai-dash --demo` and tests.

The table layouts are the tools' own (columns as their migrations create them):

- OpenCode: drizzle schema `packages/opencode/src/session/session.sql.ts` (anomalyco/opencode), as created
  by its migrations (backquoted names, epoch-ms `time_created`/`time_updated`, JSON `data`).
- Crush: `internal/db/migrations/*.sql` (charmbracelet/crush 37f36e9) folded into their final shape
  (epoch-seconds timestamps, `strftime('%s','now')` triggers, `parts` JSON, `provider`,
  `is_summary_message`).
- Goose: `crates/goose/src/session/{session_manager.rs,migrations.rs}` (schema v13: `message_id`,
  `provider_name`, `model_config_json`, `session_type`); `usage_ledger` as described by the reference
  (newer builds, not in v13 source) [unverified].

Every database is put in WAL mode, as the tools do.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import orjson

OPENCODE_DDL = """
CREATE TABLE IF NOT EXISTS `project` (
    `id` text PRIMARY KEY,
    `worktree` text NOT NULL,
    `vcs` text,
    `name` text,
    `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL
);
CREATE TABLE IF NOT EXISTS `session` (
    `id` text PRIMARY KEY,
    `project_id` text NOT NULL,
    `workspace_id` text,
    `parent_id` text,
    `slug` text NOT NULL,
    `directory` text NOT NULL,
    `path` text,
    `title` text NOT NULL,
    `version` text NOT NULL,
    `share_url` text,
    `summary_additions` integer,
    `summary_deletions` integer,
    `summary_files` integer,
    `summary_diffs` text,
    `cost` real DEFAULT 0 NOT NULL,
    `tokens_input` integer DEFAULT 0 NOT NULL,
    `tokens_output` integer DEFAULT 0 NOT NULL,
    `tokens_reasoning` integer DEFAULT 0 NOT NULL,
    `tokens_cache_read` integer DEFAULT 0 NOT NULL,
    `tokens_cache_write` integer DEFAULT 0 NOT NULL,
    `revert` text,
    `permission` text,
    `agent` text,
    `model` text,
    `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL,
    `time_compacting` integer,
    `time_archived` integer,
    CONSTRAINT `fk_session_project_id_project_id_fk` FOREIGN KEY (`project_id`) REFERENCES `project`(`id`)
        ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS `message` (
    `id` text PRIMARY KEY,
    `session_id` text NOT NULL,
    `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL,
    `data` text NOT NULL,
    CONSTRAINT `fk_message_session_id_session_id_fk` FOREIGN KEY (`session_id`) REFERENCES `session`(`id`)
        ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS `part` (
    `id` text PRIMARY KEY,
    `message_id` text NOT NULL,
    `session_id` text NOT NULL,
    `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL,
    `data` text NOT NULL,
    CONSTRAINT `fk_part_message_id_message_id_fk` FOREIGN KEY (`message_id`) REFERENCES `message`(`id`)
        ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS `session_project_idx` ON `session` (`project_id`);
CREATE INDEX IF NOT EXISTS `session_workspace_idx` ON `session` (`workspace_id`);
CREATE INDEX IF NOT EXISTS `session_parent_idx` ON `session` (`parent_id`);
CREATE INDEX IF NOT EXISTS `message_session_time_created_id_idx` ON `message` (`session_id`,`time_created`,`id`);
CREATE INDEX IF NOT EXISTS `part_message_id_id_idx` ON `part` (`message_id`,`id`);
CREATE INDEX IF NOT EXISTS `part_session_idx` ON `part` (`session_id`);
"""

OPENCODE_SESSION_MESSAGE_DDL = """
CREATE TABLE IF NOT EXISTS `session_message` (
    `id` text PRIMARY KEY,
    `session_id` text NOT NULL,
    `type` text NOT NULL,
    `time_created` integer NOT NULL,
    `time_updated` integer NOT NULL,
    `data` text NOT NULL
);
CREATE INDEX IF NOT EXISTS `session_message_session_idx` ON `session_message` (`session_id`);
"""
"""Newer event-sourced builds (packages/core `SessionMessageTable`)."""

CRUSH_DDL = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    parent_session_id TEXT,
    title TEXT NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    prompt_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    completion_tokens  INTEGER NOT NULL DEFAULT 0 CHECK (completion_tokens>= 0),
    cost REAL NOT NULL DEFAULT 0.0 CHECK (cost >= 0.0),
    updated_at INTEGER NOT NULL,  -- Unix timestamp in milliseconds
    created_at INTEGER NOT NULL,   -- Unix timestamp in milliseconds
    summary_message_id TEXT,
    todos TEXT
);
CREATE TRIGGER IF NOT EXISTS update_sessions_updated_at
AFTER UPDATE ON sessions
BEGIN
UPDATE sessions SET updated_at = strftime('%s', 'now')
WHERE id = new.id;
END;
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    path TEXT NOT NULL,
    content TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,  -- Unix timestamp in milliseconds
    updated_at INTEGER NOT NULL,  -- Unix timestamp in milliseconds
    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE,
    UNIQUE(path, session_id, version)
);
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    role TEXT NOT NULL,
    parts TEXT NOT NULL default '[]',
    model TEXT,
    created_at INTEGER NOT NULL,  -- Unix timestamp in milliseconds
    updated_at INTEGER NOT NULL,  -- Unix timestamp in milliseconds
    finished_at INTEGER,  -- Unix timestamp in milliseconds
    provider TEXT,
    is_summary_message INTEGER DEFAULT 0 NOT NULL,
    FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS idx_messages_session_id ON messages (session_id);
CREATE INDEX IF NOT EXISTS idx_sessions_created_at ON sessions (created_at);
CREATE INDEX IF NOT EXISTS idx_messages_created_at ON messages (created_at);
CREATE TRIGGER IF NOT EXISTS update_messages_updated_at
AFTER UPDATE ON messages
BEGIN
UPDATE messages SET updated_at = strftime('%s', 'now')
WHERE id = new.id;
END;
CREATE TRIGGER IF NOT EXISTS update_session_message_count_on_insert
AFTER INSERT ON messages
BEGIN
UPDATE sessions SET
    message_count = message_count + 1
WHERE id = new.session_id;
END;
CREATE TRIGGER IF NOT EXISTS update_session_message_count_on_delete
AFTER DELETE ON messages
BEGIN
UPDATE sessions SET
    message_count = message_count - 1
WHERE id = old.session_id;
END;
"""

GOOSE_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    user_set_name BOOLEAN DEFAULT FALSE,
    session_type TEXT NOT NULL DEFAULT 'user',
    working_dir TEXT NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    extension_data TEXT DEFAULT '{}',
    total_tokens INTEGER,
    input_tokens INTEGER,
    output_tokens INTEGER,
    accumulated_total_tokens INTEGER,
    accumulated_input_tokens INTEGER,
    accumulated_output_tokens INTEGER,
    schedule_id TEXT,
    recipe_json TEXT,
    user_recipe_values_json TEXT,
    provider_name TEXT,
    model_config_json TEXT,
    goose_mode TEXT NOT NULL DEFAULT 'auto',
    thread_id TEXT,
    archived_at TIMESTAMP,
    project_id TEXT,
    accumulated_cost REAL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    role TEXT NOT NULL,
    content_json TEXT NOT NULL,
    created_timestamp INTEGER NOT NULL,
    timestamp TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    tokens INTEGER,
    metadata_json TEXT,
    message_id TEXT
);
CREATE INDEX IF NOT EXISTS idx_messages_session ON messages(session_id);
CREATE INDEX IF NOT EXISTS idx_messages_timestamp ON messages(timestamp);
CREATE INDEX IF NOT EXISTS idx_sessions_updated ON sessions(updated_at DESC);
CREATE INDEX IF NOT EXISTS idx_sessions_type ON sessions(session_type);
CREATE INDEX IF NOT EXISTS idx_messages_message_id ON messages(message_id);
INSERT OR IGNORE INTO schema_version (version) VALUES (13);
"""

GOOSE_USAGE_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS usage_ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    created_timestamp INTEGER NOT NULL,
    model TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    cost REAL,
    cost_source TEXT,
    is_compaction INTEGER NOT NULL DEFAULT 0
);
"""
"""Newer Goose builds (one row per provider request) [unverified: not in the v13 source read]."""


def create_db(path: Path, ddl: str) -> sqlite3.Connection:
    """Create (or open) a database with `ddl`, in WAL mode like the tools; returns the writer connection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(ddl)
    return conn


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


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
    t0 = _ms(start)
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
    _write_config(
        home / ".config" / app / f"{app}.json",
        {
            "$schema": "https://opencode.ai/config.json",
            "model": f"{provider}/{model}",
            "mcp": {"web-search-prime": {"type": "remote", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp"}},
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
    conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (uid, session, at_ms, at_ms, _json(user)))
    conn.execute(
        "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
        (
            f"prt_{uuid.uuid4().hex[:24]}",
            uid,
            session,
            at_ms,
            at_ms,
            _json({"type": "text", "text": "add exponential backoff to getJson()"}),
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
        conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (aid, session, t, t + 2500, _json(info)))
        conn.execute(
            "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
            (f"prt_{uuid.uuid4().hex[:24]}", aid, session, t, t, _json({"type": "step-start"})),
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
                (f"prt_{uuid.uuid4().hex[:24]}", aid, session, t + 1000, t + 2000, _json(tool)),
            )
        finish = {"type": "step-finish", "reason": info["finish"], "cost": 0, "tokens": tokens}
        conn.execute(
            "INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)",
            (f"prt_{uuid.uuid4().hex[:24]}", aid, session, t + 2500, t + 2500, _json(finish)),
        )
        conn.execute("COMMIT")
        t += 3000


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
    _write_config(
        home / ".config" / "crush" / "crush.json",
        {
            "$schema": "https://charm.land/crush.json",
            "models": {
                "large": {"model": model, "provider": provider},
                "small": {"model": "glm-4.5-air", "provider": provider},
            },
            "mcp": {"web-search-prime": {"type": "http", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp"}},
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
            (str(uuid.uuid4()), session, role, _json(parts), mdl or "", prov, t, t, finished),
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


def _write_config(path: Path, data: dict[str, object]) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
