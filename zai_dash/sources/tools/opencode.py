"""OpenCode and Kilo CLI / new Kilo Code (an OpenCode fork): SQLite `opencode.db` / `kilo.db` and the
legacy `storage/{session,message,part}` JSON tree.

Rules (log-formats.md §5, §4b):

- Prompt: a `role:"user"` message in a top-level session (`session.parent_id IS NULL`) whose parts are not
  all `synthetic` text, that carries no `compaction` part, and that an assistant message answers
  (`parentID`): OpenCode writes the user message even when it sends nothing (an unknown model, seen in
  1.18.33). Until its parts and answer are written it is held back and decided on a later poll; a
  message every answer of which is an error without tokens (429 after retries) is counted apart as
  refused, not as a prompt.
- Title call: the session-title request leaves no message row, but a top-level session whose title is no
  longer the default `New session - <ISO time>` had exactly one (1.18.33, Kilo CLI 7.7.9): one
  estimated auxiliary call (`origin="estimate:title"`) at the session's creation.
- Model call: each `step-finish` part (one LLM request). In the legacy JSON tree only, a completed
  assistant message with tokens but no step parts at all (very old builds) counts once instead; SQLite
  builds always write step parts, and a message-level fallback there could double count.
  Sub-sessions → sub-agent calls; compaction / summary / title messages → auxiliary.
- MCP call: a `tool` part whose `tool` is `<server>_<tool>` and whose state is completed or errored,
  classified with the `mcp` section of the tool's config (server name → URL / command).
- Limit hit: an assistant message whose `error` names a Z.ai limit code or reset time (`sources/limits.py`).
  1.18.33 retries a 429 in place and, once it gives up, writes the error on the assistant message (no parts,
  zero tokens, `time.completed` set): `{"name":"APIError","data":{"message":"Usage limit reached for 5 hour.
  Your limit will reset at 2026-12-03 05:42:00","statusCode":429,"isRetryable":true,"responseHeaders":{…},
  "responseBody":"{\\"error\\": {\\"code\\": \\"1308\\", …}}","metadata":{"url":…}}}`. One hit per
  message, dated when the error was written (`time.completed`).
- Newer builds also write `session_message` (an event-sourced table, types `user` / `assistant` / …).
  Those rows are read only for sessions that have no `message` rows, so a build that dual-writes is
  counted once [unverified which builds stop writing `message`]. 1.18.33 creates `session_message` but
  leaves it empty, and also writes an `event` table (`session.created.1`, `message.updated.1`,
  `message.part.updated.1`) next to full `message`/`part` rows: `event` repeats them and is not read.
- The Kilo extension and the Kilo CLI share one `kilo.db`; every database is read once however many
  paths reach it.

Dedup keys are the tools' own ids (`prt_…`, `msg_…`), so rows updated in place, the legacy JSON copies
that OpenCode migrated into its database, and rows re-read in the watermark overlap count once.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, LimitHit, UsageEvent
from zai_dash.domain.mcp import MCP_TARGET_KEYS, McpAliases, mcp_event
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import CallTokens, Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.configfiles import CachedJson, first_existing, kept_entries, mcp_targets, read_json
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, loads, normalise_model
from zai_dash.sources.limits import limit_hit
from zai_dash.sources.sqlite_reader import DbState, SqliteSource, TableCursor, json_field, require_columns
from zai_dash.sources.stamp import FileStamp, file_stamp

if TYPE_CHECKING:
    import sqlite3  # annotations only: the reader opens the databases, and `status` may have none

OVERLAP_MS = 30_000
"""Watermark overlap: rows updated or committed up to this long before the newest row are re-read."""
PENDING_MS = 3_600_000
"""A user message still without parts after this long (relative to newer rows) is dropped."""

PROVIDER_BASE_URLS = {
    "zai-coding-plan": "https://api.z.ai/api/coding/paas/v4",
    "zai": "https://api.z.ai/api/paas/v4",
    "zhipuai-coding-plan": "https://open.bigmodel.cn/api/coding/paas/v4",
    "zhipuai": "https://open.bigmodel.cn/api/paas/v4",
}
"""The built-in (models.dev) providers' API URLs, for the endpoint check when no baseURL is configured."""

AUX_AGENTS = frozenset({"compaction", "title", "summary"})


@dataclass(frozen=True)
class Flavor:
    """What differs between OpenCode and its Kilo fork: names of dirs, files and env vars."""

    tool: str
    app: str
    db_env: str
    data_env: str
    db_names: tuple[str, ...]
    channel_globs: tuple[str, ...]
    config_names: tuple[str, ...]
    config_env: str


OPENCODE = Flavor(
    tool="opencode",
    app="opencode",
    db_env="OPENCODE_DB",
    data_env="OPENCODE_DATA_DIR",
    db_names=("opencode.db",),
    channel_globs=("opencode-*.db",),
    config_names=("opencode.jsonc", "opencode.json", "config.json"),
    config_env="OPENCODE_CONFIG",
)
KILO = Flavor(
    tool="kilo-code",
    app="kilo",
    db_env="KILO_DB",
    data_env="KILO_DATA_DIR",
    db_names=("kilo.db",),
    channel_globs=("kilo-*.db", "opencode-*.db"),
    config_names=("kilo.jsonc", "kilo.json", "opencode.jsonc", "opencode.json", "config.json"),
    config_env="KILO_CONFIG",
)
TOOLS = (
    ToolInfo(OPENCODE.tool, "OpenCode", (OPENCODE.db_env, OPENCODE.data_env, OPENCODE.config_env), order=50),
    ToolInfo(KILO.tool, "Kilo Code", (KILO.db_env, KILO.data_env, KILO.config_env), order=40),
)
"""OpenCode and Kilo (its CLI and the new extension built on it); the legacy Kilo extension is read by
`vscode_tasks` under the same id."""


# ---------------------------------------------------------------------------------------------------
# Record rules, shared by the SQLite and JSON readers


@dataclass
class Store:
    """What the rules need to look up beyond one row: a session's parent, a message, its parts."""

    parent_of: Callable[[str], str | None]
    message: Callable[[str], dict[str, Any] | None]
    parts_of: Callable[[str], list[dict[str, Any]] | None]
    replies_to: Callable[[str], list[Mapping[str, Any]]]
    """The assistant messages answering a user message (`parentID`)."""


BILLED, REFUSED = "billed", "refused"


def answer_state(replies: list[Mapping[str, Any]]) -> str | None:
    """What became of a user message, from the assistant messages answering it.

    `BILLED` once one has tokens or completed without an error; `REFUSED` when every one ended in an
    error without tokens (a 429 every retry of which failed); None while none exists or one is still
    running. A message nothing answers was never sent (an unknown model): no request, no prompt.
    """
    if not replies:
        return None
    errors = 0
    for reply in replies:
        if _tokens(reply.get("tokens")).total:
            return BILLED
        time = reply.get("time")
        done = isinstance(time, Mapping) and time.get("completed") is not None
        if reply.get("error"):
            errors += 1
        elif done:
            return BILLED
    return REFUSED if errors == len(replies) else None


def _sanitise_server(name: str) -> str:
    # OpenCode builds tool names as `<server>_<tool>` with anything outside [A-Za-z0-9_-] replaced by `_`.
    return re.sub(r"[^a-zA-Z0-9_-]", "_", name)


def _ts_ms(value: object, fallback: object, wall: datetime) -> datetime:
    try:
        return from_epoch(value, wall, unit=1000)
    except BadTimestamp:
        return from_epoch(fallback, wall, unit=1000)


def _call_role(session: str, info: Mapping[str, Any], store: Store) -> CallRole:
    if info.get("summary") is True or info.get("mode") in AUX_AGENTS or info.get("agent") in AUX_AGENTS:
        return CallRole.AUXILIARY
    if store.parent_of(session):
        return CallRole.SUBAGENT
    return CallRole.MAIN


def _tokens(tokens: object) -> CallTokens:
    """An OpenCode `tokens` object, normalised: its `input` excludes the cache (`cache.read`/`write`)."""
    if not isinstance(tokens, Mapping):
        return CallTokens()
    cache = tokens.get("cache")
    read = write = 0
    if isinstance(cache, Mapping):
        read, write = int_field(cache.get("read")), int_field(cache.get("write"))
    return CallTokens(
        int_field(tokens.get("input")) + read + write,
        int_field(tokens.get("output")) + int_field(tokens.get("reasoning")),
        read,
    )


def prompt_state(parts: list[dict[str, Any]] | None) -> bool | None:
    """Whether a user message's parts make it a human prompt; None when the parts are not written yet."""
    if not parts:
        return None
    if any(p.get("type") == "compaction" for p in parts):
        return False
    real = [p for p in parts if not (p.get("type") == "text" and p.get("synthetic") is True)]
    return bool(real)


class Rules:
    """Turns OpenCode messages and parts into usage events for one tool id."""

    def __init__(self, tool: str, aliases: Callable[[], McpAliases], wall: Callable[[], datetime]) -> None:
        self.tool = tool
        self.aliases = aliases
        self.wall = wall

    def user_message(
        self, mid: str, session: str, data: Mapping[str, Any], created: object, store: Store
    ) -> UsageEvent | str | bool | None:
        """A prompt event, None (not a prompt), `REFUSED` (the server refused every attempt) or False
        (parts or answer not written yet: ask again later)."""
        if store.parent_of(session):
            return None
        state = prompt_state(store.parts_of(mid))
        if state is None:
            return False
        if not state:
            return None
        answer = answer_state(store.replies_to(mid))
        if answer is None:
            return False
        if answer == REFUSED:
            return REFUSED
        time = data.get("time")
        ts = _ts_ms(time.get("created") if isinstance(time, Mapping) else None, created, self.wall())
        model = data.get("model")
        model_id = normalise_model(model.get("modelID")) if isinstance(model, Mapping) else None
        return UsageEvent(
            kind=EventKind.PROMPT, ts=ts, tool=self.tool, key=f"prompt:{mid}", session=session, model=model_id
        )

    def assistant_limit(self, data: Mapping[str, Any], created: object) -> LimitHit | None:
        """The limit hit an assistant message's `error` names, else None (any other error, or none).

        Only the error object is read, never the conversation: a prompt that mentions 1308 is no refusal.
        """
        error = data.get("error")
        if not isinstance(error, Mapping):
            return None
        time = data.get("time")
        # The error is written when the client gives up retrying, with `time.completed`.
        when = (time.get("completed") or time.get("created")) if isinstance(time, Mapping) else None
        # The response body sits in the error as a string of JSON: dumped, it is escaped once, which
        # `limit_hit` reads; ensure_ascii=False keeps a Chinese reset notice ("将在 … 重置") readable.
        text = json.dumps(error, ensure_ascii=False, default=str)
        return limit_hit(text, _ts_ms(when, created, self.wall()), self.tool)

    def assistant_fallback(
        self, mid: str, session: str, data: Mapping[str, Any], created: object, store: Store
    ) -> UsageEvent | None:
        """One call for a completed assistant message with tokens but no step parts (old builds)."""
        time = data.get("time")
        if not isinstance(time, Mapping) or time.get("completed") is None:
            return None
        tokens = _tokens(data.get("tokens"))
        if tokens.total == 0:
            return None
        parts = store.parts_of(mid) or []
        if any(p.get("type") in ("step-start", "step-finish") for p in parts):
            return None
        ts = _ts_ms(time.get("created"), created, self.wall())
        return self._call(f"call:{mid}", ts, session, data, tokens, store)

    def _call(
        self,
        key: str,
        ts: datetime,
        session: str,
        info: Mapping[str, Any],
        tokens: CallTokens,
        store: Store,
        model: str | None = None,
    ) -> UsageEvent:
        """A model-call event; `info` is the assistant message that carries model and agent.

        `model` overrides `info["modelID"]` where a layout keeps the model elsewhere (`session_message`).
        """
        return UsageEvent(
            kind=EventKind.CALL,
            ts=ts,
            tool=self.tool,
            key=key,
            session=session,
            model=model or normalise_model(info.get("modelID")),
            role=_call_role(session, info, store),
            tokens=tokens.total,
            input_tokens=tokens.input,
            output_tokens=tokens.output,
            cached_tokens=tokens.cached,
        )

    def part(
        self, pid: str, mid: str, session: str, data: Mapping[str, Any], created: object, store: Store
    ) -> UsageEvent | None:
        """A call (step-finish) or MCP call (tool part) event, else None."""
        kind = data.get("type")
        if kind == "step-finish":
            info = store.message(mid) or {}
            ts = _ts_ms(None, created, self.wall())
            return self._call(f"call:{pid}", ts, session, info, _tokens(data.get("tokens")), store)
        if kind == "tool":
            state = data.get("state")
            name = data.get("tool")
            if not isinstance(name, str) or not isinstance(state, Mapping):
                return None
            if state.get("status") not in ("completed", "error"):
                return None
            span = state.get("time")
            start = span.get("start") if isinstance(span, Mapping) else None
            ts = _ts_ms(start, created, self.wall())
            return mcp_event(None, name, self.aliases(), ts=ts, tool=self.tool, key=f"mcp:{pid}", session=session)
        return None

    def session_message(
        self, sid: str, session: str, kind: str, data: Mapping[str, Any], created: object, store: Store
    ) -> list[UsageEvent]:
        """Events from one `session_message` row (newer event-sourced builds) [unverified]."""
        time = data.get("time")
        ts = _ts_ms(time.get("created") if isinstance(time, Mapping) else None, created, self.wall())
        if kind == "user":
            if store.parent_of(session):
                return []
            return [UsageEvent(kind=EventKind.PROMPT, ts=ts, tool=self.tool, key=f"prompt:{sid}", session=session)]
        if kind != "assistant":
            return []
        out: list[UsageEvent] = []
        model = data.get("model")
        model_id = None
        if isinstance(model, Mapping):
            model_id = normalise_model(model.get("id") or model.get("modelID"))
        completed = isinstance(time, Mapping) and time.get("completed") is not None
        tokens = _tokens(data.get("tokens"))
        if completed or tokens.total:
            out.append(self._call(f"call:{sid}", ts, session, data, tokens, store, model=model_id))
        content = data.get("content")
        for item in content if isinstance(content, list) else []:
            if not isinstance(item, Mapping) or item.get("type") != "tool":
                continue
            state = item.get("state")
            name = item.get("name")
            if not isinstance(name, str) or not isinstance(state, Mapping):
                continue
            if state.get("status") not in ("completed", "error"):
                continue
            key = f"mcp:{sid}:{item.get('id')}"
            mcp = mcp_event(None, name, self.aliases(), ts=ts, tool=self.tool, key=key, session=session)
            if mcp is not None:
                out.append(mcp)
        return out


# ---------------------------------------------------------------------------------------------------
# The SQLite reader


def _str(value: object, default: str) -> str:
    return value if isinstance(value, str) and value else default


def _json_obj(text: object) -> dict[str, Any] | None:
    if not isinstance(text, (str, bytes)):
        return None
    try:
        value = loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@dataclass
class _DbState(DbState):
    messages: TableCursor = field(default_factory=lambda: TableCursor("message", "time_updated", "id", OVERLAP_MS))
    parts: TableCursor = field(default_factory=lambda: TableCursor("part", "time_updated", "id", OVERLAP_MS))
    events2: TableCursor = field(
        default_factory=lambda: TableCursor("session_message", "time_created", "id", OVERLAP_MS)
    )
    sessions: TableCursor = field(default_factory=lambda: TableCursor("session", "time_updated", "id", OVERLAP_MS))
    parents: dict[str, str | None] = field(default_factory=dict)
    pending: dict[str, tuple[str, dict[str, Any], int]] = field(default_factory=dict)


class _DbStore(Store):
    """Look-ups against one open connection, with a session-parent cache that outlives it."""

    def __init__(self, conn: sqlite3.Connection, parents: dict[str, str | None]) -> None:
        self.conn = conn
        self.parents = parents
        self._messages: dict[str, dict[str, Any] | None] = {}
        super().__init__(self._parent_of, self._message, self._parts_of, self._replies_to)

    def _replies_to(self, mid: str) -> list[Mapping[str, Any]]:
        rows = self.conn.execute(
            "SELECT json_extract(data, '$.tokens') AS tokens, json_extract(data, '$.time') AS time, "
            "json_extract(data, '$.error') AS error FROM message "
            "WHERE json_extract(data, '$.parentID') = ? AND json_extract(data, '$.role') = 'assistant'",
            (mid,),
        ).fetchall()
        return [{"tokens": _json_obj(r["tokens"]), "time": _json_obj(r["time"]), "error": r["error"]} for r in rows]

    def _parent_of(self, session: str) -> str | None:
        if session not in self.parents:
            row = self.conn.execute("SELECT parent_id FROM session WHERE id = ?", (session,)).fetchone()
            # A session row not written yet is treated as top-level; its parent never changes later.
            if row is None:
                return None
            self.parents[session] = row[0] or None
        return self.parents[session]

    def _message(self, mid: str) -> dict[str, Any] | None:
        if mid not in self._messages:
            row = self.conn.execute("SELECT data FROM message WHERE id = ?", (mid,)).fetchone()
            self._messages[mid] = _json_obj(row[0]) if row else None
        return self._messages[mid]

    def _parts_of(self, mid: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            f"SELECT {json_field('data', '$.type')} AS type, {json_field('data', '$.synthetic')} AS synthetic "
            "FROM part WHERE message_id = ?",
            (mid,),
        ).fetchall()
        return [{"type": r["type"], "synthetic": r["synthetic"] == 1} for r in rows]


class OpenCodeSource(SqliteSource[_DbState]):
    """One OpenCode-family tool: its SQLite databases (release and channel variants) and legacy JSON."""

    def __init__(self, ctx: SourceContext, flavor: Flavor = OPENCODE) -> None:
        super().__init__(ctx, _DbState)
        self.flavor = flavor
        self.name = flavor.tool
        self.tools = (flavor.tool,)
        self._aliases: McpAliases | None = None
        self._configs: dict[Path, CachedJson[dict[str, Any]]] = {}
        self._channels: dict[Path, tuple[FileStamp | None, list[Path]]] = {}
        """Config and state files, parsed again only when they changed (every snapshot asks for the model)."""
        self.rules = Rules(flavor.tool, self.aliases, ctx.clock)
        self._json = LegacyJsonTree(self)
        self._refused: set[str] = set()
        self._limited: set[str] = set()
        """Messages whose limit hit was handed over: a row updated in place or re-read does not repeat it."""

    def note_limit(self, mid: str, hit: LimitHit, batch: SourceBatch) -> None:
        """Hand over `hit`, read from message `mid`, unless that message's hit was already handed over."""
        if mid not in self._limited:
            self._limited.add(mid)
            batch.limit_hits.append(hit)

    def note_refused(self, mid: str) -> None:
        """A user message every request of which the server refused: counted once, never as a prompt.

        `refused` stays None until one is seen: a client stopped while retrying writes no error, which
        looks like a prompt never sent (1.18.33), so a 0 would claim more than the files say.
        """
        if mid not in self._refused:
            self._refused.add(mid)
            self.refused = (self.refused or 0) + 1

    # -- locations -----------------------------------------------------------------------------------

    def data_dirs(self) -> list[Path]:
        """The tool's data dir (XDG), its env override, and extra roots that are directories."""
        env = self.ctx.env
        dirs = [self.ctx.xdg("XDG_DATA_HOME", ".local/share") / self.flavor.app]
        if env.get(self.flavor.data_env):
            dirs.insert(0, Path(env[self.flavor.data_env]))
        dirs += [p for p in self.ctx.extra_roots.get(self.flavor.tool, ()) if p.suffix != ".db"]
        return list(dict.fromkeys(dirs))

    def db_paths(self) -> list[Path]:
        """Every database to read: `$<TOOL>_DB`, the release db, channel variants, extra `.db` roots."""
        found: list[Path] = []
        override = self.ctx.env.get(self.flavor.db_env)
        data = self.data_dirs()
        if override and override != ":memory:":
            path = Path(override)
            found.append(path if path.is_absolute() else data[0] / path)
        for d in data:
            found += [d / n for n in self.flavor.db_names]
            found += self._channel_dbs(d)
        found += [p for p in self.ctx.extra_roots.get(self.flavor.tool, ()) if p.suffix == ".db"]
        # The Kilo extension and the Kilo CLI share one kilo.db, often reached by more than one path
        # (`$KILO_DB`, the data dir, a configured root, a symlink): each file is read once.
        unique: dict[str, Path] = {}
        for path in found:
            unique.setdefault(os.path.realpath(path), path)
        return list(unique.values())

    def _channel_dbs(self, folder: Path) -> list[Path]:
        """Channel variants (`opencode-*.db`) in `folder`, listed again only when the folder changed.

        Roots, polls and snapshots all ask; a folder's stamp moves whenever an entry is added, removed or
        renamed, which is all a flat pattern can see.
        """
        stamp = file_stamp(folder)
        cached = self._channels.get(folder)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        found: list[Path] = []
        for pattern in self.flavor.channel_globs:
            try:
                found += sorted(folder.glob(pattern))
            except OSError:
                continue
        self._channels[folder] = (stamp, found)
        return found

    def roots(self) -> list[Root]:
        return super().roots() + [Root(p, p.is_dir()) for p in self._json.dirs()]

    def file_count(self) -> int:
        return super().file_count() + self._json.file_count()

    # -- config ----------------------------------------------------------------------------------------

    def config_paths(self) -> list[Path]:
        """Global config files, highest priority first."""
        base = self.ctx.xdg("XDG_CONFIG_HOME", ".config") / self.flavor.app
        paths = [base / n for n in self.flavor.config_names]
        explicit = self.ctx.env.get(self.flavor.config_env)
        if explicit:
            paths.insert(0, Path(explicit))
        return paths

    def _config(self) -> tuple[dict[str, Any], Path | None]:
        path = first_existing(self.config_paths())
        return (self._read(path, _config_subset) if path else {}), path

    def _read(self, path: Path, extract: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        reader = self._configs.get(path)
        if reader is None:
            reader = self._configs[path] = CachedJson(path, extract, {}, jsonc=True)
        return reader.get()

    def aliases(self) -> McpAliases:
        """MCP server aliases from the config's `mcp` section (names sanitised as OpenCode does)."""
        if self._aliases is None:
            config, _ = self._config()
            targets = mcp_targets(config.get("mcp"))
            self._aliases = McpAliases.from_targets({_sanitise_server(k): v for k, v in targets.items()})
        return self._aliases

    def configs(self) -> dict[str, ToolConfigInfo]:
        config, path = self._config()
        model_ref = config.get("model") if isinstance(config.get("model"), str) else None
        detail = f"{path.name} model" if model_ref and path else None
        if not model_ref:
            model_ref, detail = self._state_model()
        if not model_ref:
            return {}
        provider = model_ref.split("/", 1)[0] if "/" in model_ref else None
        base_url = None
        providers = config.get("provider")
        if provider and isinstance(providers, Mapping):
            spec = providers.get(provider)
            options = spec.get("options") if isinstance(spec, Mapping) else None
            if isinstance(options, Mapping) and isinstance(options.get("baseURL"), str):
                base_url = options["baseURL"]
        if base_url is None and provider:
            base_url = PROVIDER_BASE_URLS.get(provider)
        return {
            self.flavor.tool: ToolConfigInfo(
                model=normalise_model(model_ref.split("/", 1)[-1]),
                model_detail=detail,
                base_url=base_url,
                endpoint=classify_base_url(base_url) if base_url else None,
            )
        }

    def _state_model(self) -> tuple[str | None, str | None]:
        path = self.ctx.xdg("XDG_STATE_HOME", ".local/state") / self.flavor.app / "model.json"
        recent = self._read(path, _recent_models).get("recent")
        if isinstance(recent, list) and recent and isinstance(recent[0], Mapping):
            provider, model = recent[0].get("providerID"), recent[0].get("modelID")
            if isinstance(model, str):
                ref = f"{provider}/{model}" if isinstance(provider, str) else model
                return ref, "state model.json (last used)"
        return None, None

    # -- polling ---------------------------------------------------------------------------------------

    def poll(self) -> SourceBatch:
        batch = SourceBatch()
        self._aliases = None  # config edits take effect on the next poll
        self.poll_dbs(batch)
        self._json.poll(batch)
        return batch

    def _floor_ms(self) -> int | None:
        return int(self.ctx.since.timestamp() * 1000) if self.ctx.since else None

    def _read_db(self, state: _DbState, batch: SourceBatch) -> None:
        found: list[UsageEvent] = []
        hits: list[tuple[str, LimitHit]] = []
        path = state.db.path
        with state.db.read() as conn:
            require_columns(conn, "session", ("id", "parent_id"), path)
            require_columns(conn, "message", ("id", "session_id", "time_created", "time_updated", "data"), path)
            part_cols = ("id", "message_id", "session_id", "time_created", "time_updated", "data")
            require_columns(conn, "part", part_cols, path)
            store = _DbStore(conn, state.parents)
            found += self._read_messages(conn, state, store, hits)
            found += self._read_parts(conn, state, store)
            found += self._read_pending(state, store)
            found += self._read_session_messages(conn, state, store)
            found += self._read_titles(conn, state)
        # Only a read that finished hands its events over, so a failed one is simply repeated.
        batch.events += found
        for mid, hit in hits:
            self.note_limit(mid, hit, batch)
        highs = [c.high for c in (state.messages, state.parts, state.events2, state.sessions) if c.high is not None]
        if highs:
            state.memo.prune(min(highs) - 2 * OVERLAP_MS)

    def _read_messages(
        self, conn: sqlite3.Connection, state: _DbState, store: Store, hits: list[tuple[str, LimitHit]]
    ) -> list[UsageEvent]:
        """Prompt events of new or changed message rows; limit hits of assistant errors go to `hits`."""
        out: list[UsageEvent] = []
        rows = self._json_rows(conn, state, state.messages, ("session_id", "time_created", "data"), "message", "m")
        for row, mid, data in rows:
            out += self._message_events(state, mid, str(row["session_id"]), data, row["time_created"], store)
            if data.get("role") == "assistant" and data.get("error") and mid not in self._limited:
                try:
                    hit = self.rules.assistant_limit(data, row["time_created"])
                except BadTimestamp as exc:
                    self.skips.add(f"message: {exc}", f"{state.db.path.name}:{mid}")
                    continue
                if hit is not None:
                    hits.append((mid, hit))
        return out

    def _json_rows(
        self,
        conn: sqlite3.Connection,
        state: _DbState,
        cursor: TableCursor,
        cols: tuple[str, ...],
        table: str,
        memo: str,
        where: str = "",
        version: Callable[[sqlite3.Row], object] = lambda row: row["_t"],
    ) -> Iterator[tuple[sqlite3.Row, str, dict[str, Any]]]:
        """New or changed rows of `cursor`'s table with their id and decoded `data` object.

        A row whose `data` is not a JSON object is skipped and counted (one bad row, never the table);
        `version` is what makes a re-read row count as changed (`RowMemo`).
        """
        for row in cursor.rows(conn, cols, floor=self._floor_ms(), where=where):
            rid = str(row["_id"])
            if not state.memo.fresh(f"{memo}:{rid}", version(row), int(row["_t"])):
                continue
            data = _json_obj(row["data"])
            if data is None:
                self.skips.add(f"{table} row: data is not a JSON object", f"{state.db.path.name}:{rid}")
                continue
            yield row, rid, data

    def _message_events(
        self, state: _DbState, mid: str, session: str, data: dict[str, Any], created: object, store: Store
    ) -> list[UsageEvent]:
        try:
            if data.get("role") == "user":
                result = self.rules.user_message(mid, session, data, created, store)
                if result is False:
                    state.pending[mid] = (session, data, int(created) if isinstance(created, int) else 0)
                    return []
                state.pending.pop(mid, None)
                if result == REFUSED:
                    self.note_refused(mid)
                return [result] if isinstance(result, UsageEvent) else []
        except BadTimestamp as exc:
            self.skips.add(f"message: {exc}", f"{state.db.path.name}:{mid}")
        return []

    def _read_parts(self, conn: sqlite3.Connection, state: _DbState, store: Store) -> list[UsageEvent]:
        out: list[UsageEvent] = []
        cols = ("message_id", "session_id", "time_created", "data")
        # Only the part types that can make events: text deltas rewrite other parts many times a second.
        where = f"{json_field('data', '$.type')} IN ('step-finish', 'tool')"
        for row, pid, data in self._json_rows(conn, state, state.parts, cols, "part", "p", where):
            try:
                event = self.rules.part(
                    pid, str(row["message_id"]), str(row["session_id"]), data, row["time_created"], store
                )
            except BadTimestamp as exc:
                self.skips.add(f"part: {exc}", f"{state.db.path.name}:{pid}")
                continue
            if event is not None:
                out.append(event)
        return out

    def _read_pending(self, state: _DbState, store: Store) -> list[UsageEvent]:
        out: list[UsageEvent] = []
        newest = state.messages.high or 0
        for mid, (session, data, created) in list(state.pending.items()):
            if created and newest - created > PENDING_MS:
                del state.pending[mid]
                continue
            out += self._message_events(state, mid, session, data, created, store)
        return out

    def _read_titles(self, conn: sqlite3.Connection, state: _DbState) -> list[UsageEvent]:
        """One title call per top-level session that no longer has its default title (metering.md §4).

        The title call leaves no message row; a session keeps `New session - <ISO time>` until it is made.
        """
        have = {str(r[1]) for r in conn.execute("PRAGMA table_info(session)")}
        if not {"title", "time_created", "time_updated"} <= have:
            return []
        out: list[UsageEvent] = []
        where = "parent_id IS NULL AND title NOT LIKE 'New session - %'"
        for row in state.sessions.rows(conn, ("title", "time_created"), floor=self._floor_ms(), where=where):
            sid = str(row["_id"])
            if not state.memo.fresh(f"t:{sid}", 0, int(row["_t"])):
                continue
            try:
                ts = from_epoch(row["time_created"], self.ctx.clock(), unit=1000)
            except BadTimestamp as exc:
                self.skips.add(f"session: {exc}", f"{state.db.path.name}:{sid}")
                continue
            out.append(
                UsageEvent(
                    kind=EventKind.CALL, ts=ts, tool=self.tool_id, key=f"estimate:title:{sid}", session=sid,
                    role=CallRole.AUXILIARY, origin="estimate:title",
                )
            )  # fmt: skip
        return out

    @property
    def tool_id(self) -> str:
        """This flavor's tool id."""
        return self.flavor.tool

    def _read_session_messages(self, conn: sqlite3.Connection, state: _DbState, store: Store) -> list[UsageEvent]:
        have = {str(r[1]) for r in conn.execute("PRAGMA table_info(session_message)")}
        if not {"id", "session_id", "type", "time_created", "data"} <= have:
            return []
        out: list[UsageEvent] = []
        # Sessions that have `message` rows are counted from those (a dual-writing build counts once).
        where = "NOT EXISTS (SELECT 1 FROM message m WHERE m.session_id = session_message.session_id)"
        cols = ("session_id", "type", "data")
        rows = self._json_rows(
            conn, state, state.events2, cols, "session_message", "s", where, version=lambda row: hash(row["data"])
        )
        for row, sid, data in rows:
            try:
                out += self.rules.session_message(sid, str(row["session_id"]), str(row["type"]), data, row["_t"], store)
            except BadTimestamp as exc:
                self.skips.add(f"session_message: {exc}", f"{state.db.path.name}:{sid}")
        return out


# ---------------------------------------------------------------------------------------------------
# The legacy JSON tree (pre-SQLite builds): storage/session/<project>/<ses>.json,
# storage/message/<ses>/<msg>.json, storage/part/<msg>/<prt>.json, each rewritten whole on update.


class LegacyJsonTree:
    """Re-parses changed files of the legacy tree; torn files are retried on the next poll."""

    def __init__(self, owner: OpenCodeSource) -> None:
        self.owner = owner
        self._stamps: dict[Path, FileStamp] = {}
        self._sessions: dict[str, str | None] = {}
        self._messages: dict[str, dict[str, Any]] = {}
        self._parts: dict[str, dict[str, dict[str, Any]]] = {}
        self._pending: set[str] = set()
        self.store = Store(self._parent_of, self._messages.get, self._parts_of, self._replies_to)

    def _replies_to(self, mid: str) -> list[Mapping[str, Any]]:
        return [m for m in self._messages.values() if m.get("parentID") == mid and m.get("role") == "assistant"]

    def dirs(self) -> list[Path]:
        return [d / "storage" for d in self.owner.data_dirs()]

    def file_count(self) -> int:
        return len(self._stamps)

    def _parent_of(self, session: str) -> str | None:
        return self._sessions.get(session)

    def _parts_of(self, mid: str) -> list[dict[str, Any]] | None:
        parts = self._parts.get(mid)
        return list(parts.values()) if parts else None

    def _changed(self, kind: str) -> Iterable[tuple[Path, dict[str, Any]]]:
        for storage in self.dirs():
            base = storage / kind
            if not base.is_dir():
                continue
            for path in base.glob("*/*.json"):
                try:
                    st = path.stat()
                except OSError:
                    continue
                stamp = FileStamp.of(st)
                if self._stamps.get(path) == stamp or not self.owner.ctx.mtime_relevant(st.st_mtime):
                    continue
                data = read_json(path)
                if data is None:
                    # Rewritten in place: a torn read is retried when the file changes again or next poll.
                    self.owner.skips.add(f"legacy {kind} file: not a JSON object (torn write?)", str(path))
                    continue
                self._stamps[path] = stamp
                yield path, data

    def poll(self, batch: SourceBatch) -> None:
        """Changed files' events and limit hits into `batch`."""
        rules, out = self.owner.rules, batch.events
        for _, data in self._changed("session"):
            if isinstance(data.get("id"), str):
                parent = data.get("parentID")
                self._sessions[data["id"]] = parent if isinstance(parent, str) and parent else None
        for path, data in self._changed("message"):
            mid = _str(data.get("id"), path.stem)
            self._messages[mid] = data
            self._pending.add(mid)
        for path, data in self._changed("part"):
            pid = _str(data.get("id"), path.stem)
            mid = _str(data.get("messageID"), path.parent.name)
            self._parts.setdefault(mid, {})[pid] = {"type": data.get("type"), "synthetic": data.get("synthetic")}
            self._pending.add(mid)
            session = _str(data.get("sessionID"), "")
            try:
                event = rules.part(pid, mid, session, data, self._part_created(data), self.store)
            except BadTimestamp as exc:
                self.owner.skips.add(f"legacy part: {exc}", str(path))
                continue
            if event is not None:
                out.append(event)
        for mid in list(self._pending):
            message = self._messages.get(mid)
            if message is None:
                continue
            data = message
            session = _str(data.get("sessionID"), "")
            try:
                if data.get("role") == "user":
                    result = rules.user_message(mid, session, data, None, self.store)
                    if result is False:
                        continue
                    if isinstance(result, UsageEvent):
                        out.append(result)
                    elif result == REFUSED:
                        self.owner.note_refused(mid)
                elif data.get("role") == "assistant":
                    event = rules.assistant_fallback(mid, session, data, None, self.store)
                    if event is not None:
                        out.append(event)
                    hit = rules.assistant_limit(data, None) if data.get("error") else None
                    if hit is not None:
                        self.owner.note_limit(mid, hit, batch)
            except BadTimestamp as exc:
                self.owner.skips.add(f"legacy message: {exc}", mid)
            self._pending.discard(mid)

    def _part_created(self, data: Mapping[str, Any]) -> object:
        # Legacy parts carry no row time; a tool part has state.time, a step-finish only its message's time.
        state = data.get("state")
        span = state.get("time") if isinstance(state, Mapping) else None
        if isinstance(span, Mapping) and span.get("start") is not None:
            return span.get("start")
        msg = self._messages.get(str(data.get("messageID")))
        time = msg.get("time") if msg else None
        if isinstance(time, Mapping):
            return time.get("completed") or time.get("created")
        return None


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """OpenCode and Kilo CLI (tool id `kilo-code`)."""
    return [OpenCodeSource(ctx, OPENCODE), OpenCodeSource(ctx, KILO)]


def _config_subset(doc: Any) -> dict[str, Any]:
    """What zai-dash reads of an `opencode.json(c)`: `model`, each provider's `options.baseURL`, and the
    `mcp` entries cut down to `MCP_TARGET_KEYS` (the cached value must hold no API key or header)."""
    if not isinstance(doc, dict):
        return {}
    out: dict[str, Any] = {}
    if "model" in doc:
        out["model"] = doc["model"]
    providers = doc.get("provider")
    if isinstance(providers, Mapping):
        out["provider"] = {
            name: {"options": {"baseURL": spec["options"]["baseURL"]}}
            for name, spec in providers.items()
            if isinstance(spec, Mapping) and isinstance(spec.get("options"), Mapping) and "baseURL" in spec["options"]
        }
    mcp = kept_entries(doc.get("mcp"), MCP_TARGET_KEYS)
    if mcp is not None:
        out["mcp"] = mcp
    return out


def _recent_models(doc: Any) -> dict[str, Any]:
    """The first `recent` entry's `providerID` and `modelID` of the state `model.json`."""
    recent = doc.get("recent") if isinstance(doc, dict) else None
    if not isinstance(recent, list) or not recent or not isinstance(recent[0], Mapping):
        return {}
    return {"recent": [{k: recent[0][k] for k in ("providerID", "modelID") if k in recent[0]}]}
