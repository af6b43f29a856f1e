"""Goose (block/goose): `<data>/sessions/sessions.db` (SQLite, WAL) and legacy `sessions/*.jsonl`.

Rules (log-formats.md §7, checked against goose `session_manager.rs` (schema v5) and `migrations.rs`
(v13: `message_id`, `provider_name`, `model_config_json`, session types incl. `acp`)):

- Prompt: a `user` row with a `text` item and no `toolResponse` item, `metadata.userVisible` not false,
  in a session of type `user` or `acp` (ACP = Zed and other editors; still a human typing).
- Model call: a `usage_ledger` row when that table exists (newer builds, one row per provider request;
  `is_compaction=1` → auxiliary) [unverified: not in the v13 source]; otherwise each `assistant` row.
  `sub_agent` sessions → sub-agent, `hidden` → auxiliary.
- MCP call: a `toolRequest` whose `toolCall.value.name` is `<extension>__<tool>`, classified with the
  `extensions` of `config.yaml` (key → uri / cmd + args).
- `replace_conversation()` deletes and re-inserts a session's messages (new autoincrement ids), so events
  are keyed on `message_id` (or session + time + role + content hash on pre-v7 databases), never on `id`.
- `created_timestamp` is epoch seconds (some clients wrote ms: values above 1e10 are read as ms).
- Legacy JSONL sessions are read only when there is no `sessions.db` (Goose imports them into it once,
  under different ids, so reading both would double count).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import MCP_TARGET_KEYS, McpAliases, mcp_event
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.configfiles import CachedJson, kept_entries, mcp_targets, parse_yaml_lite
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, loads, normalise_model
from zai_dash.sources.sqlite_reader import DbState, SqliteSource, TableCursor, db_files, require_columns
from zai_dash.sources.tail import TailSet, decoded

if TYPE_CHECKING:
    import sqlite3  # annotations only: the reader opens the databases, and `status` may have none

TOOLS = (ToolInfo("goose", "Goose", ("GOOSE_PATH_ROOT", "GOOSE_PROVIDER", "GOOSE_MODEL"), order=70),)
OVERLAP_S = 30
PROMPT_SESSIONS = frozenset({"user", "acp"})
ROLE_BY_SESSION = {"sub_agent": CallRole.SUBAGENT, "hidden": CallRole.AUXILIARY}
PROVIDER_BASE_URLS = {"zai": "https://api.z.ai/api/paas/v4"}
"""Goose's built-in `zai` provider [unverified]; Z.ai documents a custom Anthropic-compatible provider."""


def _epoch(value: object, wall: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1e10:
        return from_epoch(value, wall, unit=1000)
    return from_epoch(value, wall)


def _ext_key(name: str) -> str:
    # goose `name_to_key`: lower-cased, whitespace removed.
    return re.sub(r"\s", "", name).lower()


@dataclass
class _GooseDb(DbState):
    messages: TableCursor = field(default_factory=lambda: TableCursor("messages", "created_timestamp", "id", OVERLAP_S))
    ledger: TableCursor = field(
        default_factory=lambda: TableCursor("usage_ledger", "created_timestamp", "id", OVERLAP_S)
    )
    sessions: dict[str, tuple[str, str | None]] = field(default_factory=dict)


class GooseSource(SqliteSource[_GooseDb]):
    """Goose's session database, or its legacy JSONL sessions."""

    name = "goose"
    tools = ("goose",)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx, _GooseDb)
        self._aliases = McpAliases()
        self._legacy = TailSet(self._legacy_files, self.skips)
        # Every poll and every snapshot ask: parsed again only when a file changed.
        self._yaml: CachedJson[dict[str, Any]] = CachedJson(
            self.config_dir() / "config.yaml", _config_subset, {}, parse=_yaml
        )
        self._custom: dict[Path, CachedJson[str | None]] = {}
        self._legacy_meta: dict[Path, bool] = {}

    # -- locations -----------------------------------------------------------------------------------

    def _dir(self, kind: str, xdg: str, default: str) -> Path:
        root = self.ctx.env.get("GOOSE_PATH_ROOT")
        return Path(root) / kind if root else self.ctx.xdg(xdg, default) / "goose"

    def sessions_dir(self) -> Path:
        return self._dir("data", "XDG_DATA_HOME", ".local/share") / "sessions"

    def config_dir(self) -> Path:
        return self._dir("config", "XDG_CONFIG_HOME", ".config")

    def db_paths(self) -> list[Path]:
        return db_files([self.sessions_dir() / "sessions.db"], self.ctx.extra_roots.get("goose", ()), "sessions.db")

    def _legacy_files(self) -> list[Path]:
        if any(p.is_file() for p in self.db_paths()):
            return []
        try:
            files = list(self.sessions_dir().glob("*.jsonl"))
        except OSError:
            return []
        out = []
        for path in files:
            try:
                if self.ctx.mtime_relevant(path.stat().st_mtime):
                    out.append(path)
            except OSError:
                continue
        return out

    def roots(self) -> list[Root]:
        return [*super().roots(), Root(self.sessions_dir(), self.sessions_dir().is_dir())]

    def file_count(self) -> int:
        return super().file_count() + len(self._legacy.tails)

    # -- config ----------------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return self._yaml.get()

    def _custom_base_url(self, provider: str) -> str | None:
        path = self.config_dir() / "custom_providers" / f"{provider}.json"
        reader = self._custom.get(path)
        if reader is None:
            reader = self._custom[path] = CachedJson(path, _custom_base_url, None, jsonc=True)
        return reader.get()

    def configs(self) -> dict[str, ToolConfigInfo]:
        config = self._config()
        env = self.ctx.env
        provider = env.get("GOOSE_PROVIDER") or config.get("GOOSE_PROVIDER")
        model = env.get("GOOSE_MODEL") or config.get("GOOSE_MODEL")
        if not isinstance(model, str):
            return {}
        detail = "GOOSE_MODEL (env)" if env.get("GOOSE_MODEL") else "config.yaml GOOSE_MODEL"
        base_url = None
        if isinstance(provider, str):
            base_url = self._custom_base_url(provider) or PROVIDER_BASE_URLS.get(provider)
        return {
            "goose": ToolConfigInfo(
                model=normalise_model(model),
                model_detail=detail,
                base_url=base_url,
                endpoint=classify_base_url(base_url) if base_url else None,
            )
        }

    # -- polling ---------------------------------------------------------------------------------------

    def poll(self) -> SourceBatch:
        batch = SourceBatch()
        extensions = self._config().get("extensions")
        self._aliases = McpAliases.from_targets({_ext_key(k): v for k, v in mcp_targets(extensions).items()})
        self.poll_dbs(batch)
        batch.events += self._poll_legacy()
        return batch

    def _session(self, conn: sqlite3.Connection, state: _GooseDb, sid: str) -> tuple[str, str | None]:
        if sid not in state.sessions:
            cols = {str(r[1]) for r in conn.execute("PRAGMA table_info(sessions)")}
            model_col = "model_config_json" if "model_config_json" in cols else "NULL"
            type_col = "session_type" if "session_type" in cols else "'user'"
            row = conn.execute(f"SELECT {type_col}, {model_col} FROM sessions WHERE id = ?", (sid,)).fetchone()
            if row is None:
                return ("user", None)
            config = loads(row[1]) if isinstance(row[1], str) and row[1].startswith("{") else {}
            model = normalise_model(config.get("model_name")) if isinstance(config, dict) else None
            state.sessions[sid] = (str(row[0] or "user"), model)
        return state.sessions[sid]

    def _read_db(self, state: _GooseDb, batch: SourceBatch) -> None:
        found: list[UsageEvent] = []
        floor = int(self.ctx.since.timestamp()) if self.ctx.since else None
        with state.db.read() as conn:
            require_columns(conn, "sessions", ("id",), state.db.path)
            have = require_columns(
                conn, "messages", ("id", "session_id", "role", "content_json", "created_timestamp"), state.db.path
            )
            ledger_cols = {str(r[1]) for r in conn.execute("PRAGMA table_info(usage_ledger)")}
            use_ledger = {"id", "session_id", "created_timestamp"} <= ledger_cols
            cols = ["session_id", "role", "content_json", "created_timestamp"]
            cols.append("metadata_json" if "metadata_json" in have else "NULL AS metadata_json")
            cols.append("message_id" if "message_id" in have else "NULL AS message_id")
            for row in state.messages.rows(conn, cols, floor=floor):
                try:
                    found += self._message_events(conn, state, row, calls=not use_ledger)
                except (BadTimestamp, ValueError) as exc:
                    self.skips.add(f"message: {exc}", f"{state.db.path.name}:{row['_id']}")
            if use_ledger:
                found += self._ledger_events(conn, state, ledger_cols, floor)
        batch.events += found
        highs = [c.high for c in (state.messages, state.ledger) if c.high is not None]
        if highs:
            state.memo.prune(min(highs) - 2 * OVERLAP_S)

    def _message_events(
        self, conn: sqlite3.Connection, state: _GooseDb, row: sqlite3.Row, calls: bool
    ) -> list[UsageEvent]:
        sid = str(row["session_id"])
        content_text = row["content_json"] or "[]"
        digest = hashlib.sha1(f"{content_text}".encode(), usedforsecurity=False).hexdigest()[:16]
        key = row["message_id"] or f"{sid}:{row['created_timestamp']}:{row['role']}:{digest}"
        if not state.memo.fresh(str(key), digest, int(row["_t"])):
            return []
        session_type, session_model = self._session(conn, state, sid)
        content = loads(content_text)
        metadata = loads(row["metadata_json"]) if row["metadata_json"] else {}
        return self._events(
            str(key),
            sid,
            row["role"],
            content,
            metadata,
            row["created_timestamp"],
            session_type,
            session_model,
            calls,
        )

    def _events(
        self,
        key: str,
        sid: str,
        role: object,
        content: object,
        metadata: object,
        created: object,
        session_type: str,
        session_model: str | None,
        calls: bool,
    ) -> list[UsageEvent]:
        items = [c for c in content if isinstance(c, Mapping)] if isinstance(content, list) else []
        meta = metadata if isinstance(metadata, Mapping) else {}
        ts = _epoch(created, self.ctx.clock())
        if role == "user":
            kinds = {c.get("type") for c in items}
            if session_type not in PROMPT_SESSIONS or "text" not in kinds or "toolResponse" in kinds:
                return []
            if meta.get("userVisible") is False:
                return []
            return [UsageEvent(kind=EventKind.PROMPT, ts=ts, tool="goose", key=f"prompt:{key}", session=sid)]
        if role != "assistant":
            return []
        out: list[UsageEvent] = []
        if calls:
            inference = meta.get("inference")
            model = None
            if isinstance(inference, Mapping):
                model = normalise_model(inference.get("resolvedModel") or inference.get("requestedModel"))
            out.append(
                UsageEvent(
                    kind=EventKind.CALL,
                    ts=ts,
                    tool="goose",
                    key=f"call:{key}",
                    session=sid,
                    model=model or session_model,
                    role=ROLE_BY_SESSION.get(session_type, CallRole.MAIN),
                )
            )
        for item in items:
            if item.get("type") != "toolRequest":
                continue
            call = item.get("toolCall")
            value = call.get("value") if isinstance(call, Mapping) else None
            name = value.get("name") if isinstance(value, Mapping) else None
            if not isinstance(name, str) or "__" not in name:
                continue
            server, tool = name.split("__", 1)
            mcp_key = f"mcp:{key}:{item.get('id')}"
            mcp = mcp_event(_ext_key(server), tool, self._aliases, ts=ts, tool="goose", key=mcp_key, session=sid)
            if mcp is not None:
                out.append(mcp)
        return out

    def _ledger_events(
        self, conn: sqlite3.Connection, state: _GooseDb, have: set[str], floor: int | None
    ) -> list[UsageEvent]:
        def col(name: str) -> str:
            return name if name in have else f"NULL AS {name}"

        cols = [
            "session_id",
            "created_timestamp",
            col("model"),
            col("input_tokens"),
            col("output_tokens"),
            col("cache_read_tokens"),
            col("cache_write_tokens"),
            col("is_compaction"),
        ]
        out: list[UsageEvent] = []
        for row in state.ledger.rows(conn, cols, floor=floor):
            sid = str(row["session_id"])
            tin = int_field(row["input_tokens"])
            tout = int_field(row["output_tokens"])
            cached = min(int_field(row["cache_read_tokens"]), tin)
            # A stable key from the row's content: ids are autoincrement and may be reassigned.
            key = f"ledger:{sid}:{row['created_timestamp']}:{row['model']}:{tin}:{tout}"
            if not state.memo.fresh(key, 0, int(row["_t"])):
                continue
            try:
                ts = _epoch(row["created_timestamp"], self.ctx.clock())
            except BadTimestamp as exc:
                self.skips.add(f"usage_ledger: {exc}", f"{state.db.path.name}:{row['_id']}")
                continue
            session_type, session_model = self._session(conn, state, sid)
            role = CallRole.AUXILIARY if row["is_compaction"] else ROLE_BY_SESSION.get(session_type, CallRole.MAIN)
            # Goose's input_tokens already include cached ones [unverified]; cache columns are not added again.
            out.append(
                UsageEvent(
                    kind=EventKind.CALL,
                    ts=ts,
                    tool="goose",
                    key=key,
                    session=sid,
                    model=normalise_model(row["model"]) or session_model,
                    role=role,
                    tokens=tin + tout,
                    input_tokens=tin,
                    output_tokens=tout,
                    cached_tokens=cached,
                )
            )
        return out

    def _poll_legacy(self) -> list[UsageEvent]:
        out: list[UsageEvent] = []
        for tail, line, where, record in decoded(self._legacy.poll(), self.skips, "legacy session line: not JSON"):
            if not isinstance(record, Mapping) or "role" not in record:
                continue  # line 1 is the session's metadata
            sid = tail.path.stem
            mid = record.get("id")
            digest = hashlib.sha1(line.data, usedforsecurity=False).hexdigest()[:16]
            key = f"legacy:{sid}:{mid}" if isinstance(mid, str) and mid else f"legacy:{sid}:{line.number}:{digest}"
            try:
                out += self._events(
                    key,
                    sid,
                    record.get("role"),
                    record.get("content"),
                    record.get("metadata"),
                    record.get("created"),
                    "user",
                    None,
                    calls=True,
                )
            except BadTimestamp as exc:
                self.skips.add(f"legacy session line: {exc}", where)
        return out


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The Goose source."""
    return [GooseSource(ctx)]


def _yaml(raw: bytes) -> dict[str, Any]:
    return parse_yaml_lite(raw.decode("utf-8", errors="replace"))


def _config_subset(doc: Any) -> dict[str, Any]:
    """`GOOSE_PROVIDER`, `GOOSE_MODEL` and the `extensions` cut down to `MCP_TARGET_KEYS` (never their envs)."""
    if not isinstance(doc, dict):
        return {}
    out = {k: doc[k] for k in ("GOOSE_PROVIDER", "GOOSE_MODEL") if k in doc}
    extensions = kept_entries(doc.get("extensions"), MCP_TARGET_KEYS)
    if extensions is not None:
        out["extensions"] = extensions
    return out


def _custom_base_url(doc: Any) -> str | None:
    """A custom provider file's `base_url` (or `api_url`, `host`): the first that is a string."""
    if not isinstance(doc, dict):
        return None
    return next((doc[k] for k in ("base_url", "api_url", "host") if isinstance(doc.get(k), str)), None)
