"""Crush (charmbracelet/crush): one SQLite `crush.db` per project, listed in `projects.json`.

Rules (log-formats.md §6, checked against crush 37f36e9 `internal/db`, `internal/message`,
`internal/projects`, `internal/config/load.go`):

- Prompt: a `role='user'` row in a session with `parent_session_id IS NULL`.
- Model call: each `role='assistant'` row (one per agent step); `is_summary_message=1` → auxiliary;
  sessions with a parent → sub-agent. Crush stores no per-message tokens.
- MCP call: a `tool_call` part named `mcp_<server>_<tool>`, classified with the `mcp` sections of the
  `crush.json` files (server name → URL / command).
- Times are epoch **seconds**. `UpdateMessage` rewrites `parts` in place and bumps `updated_at`, so the
  watermark is on `updated_at` and rows are keyed on their uuid `id`.
"""

from __future__ import annotations

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
from zai_dash.sources.configfiles import CachedJson, kept_entries, mcp_targets
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, loads, normalise_model
from zai_dash.sources.sqlite_reader import DbState, SqliteSource, TableCursor, db_files, require_columns

if TYPE_CHECKING:
    import sqlite3  # annotations only: the reader opens the databases, and `status` may have none

TOOLS = (ToolInfo("crush", "Crush", ("CRUSH_GLOBAL_DATA", "CRUSH_GLOBAL_CONFIG"), order=60),)
OVERLAP_S = 10
"""Watermark overlap in seconds (Crush's timestamps have one-second resolution)."""

PROVIDER_BASE_URLS = {"zai": "https://api.z.ai/api/coding/paas/v4"}
"""Catwalk's built-in `zai` provider uses the Coding Plan endpoint (catwalk `configs/zai.json`)."""


@dataclass
class _CrushDb(DbState):
    cursor: TableCursor = field(default_factory=lambda: TableCursor("messages", "updated_at", "id", OVERLAP_S))
    parents: dict[str, str | None] = field(default_factory=dict)


class CrushSource(SqliteSource[_CrushDb]):
    """Every Crush project database named in `projects.json` (plus configured extra roots)."""

    name = "crush"
    tools = ("crush",)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx, _CrushDb)
        # Roots, polls and snapshots all ask for these: parsed again only when a file changed.
        self._listing: CachedJson[list[tuple[Path, Path]]] = CachedJson(
            self.data_dir() / "projects.json", _projects, [], jsonc=True
        )
        self._configs: dict[Path, CachedJson[dict[str, Any]]] = {}
        self._aliases = McpAliases()

    # -- locations -----------------------------------------------------------------------------------

    def data_dir(self) -> Path:
        """Crush's global data dir: `$CRUSH_GLOBAL_DATA`, else `$XDG_DATA_HOME/crush`, else ~/.local/share/crush."""
        env = self.ctx.env.get("CRUSH_GLOBAL_DATA")
        return Path(env) if env else self.ctx.xdg("XDG_DATA_HOME", ".local/share") / "crush"

    def projects(self) -> list[tuple[Path, Path]]:
        """(project dir, data dir) pairs from `projects.json`, most recently used first."""
        return self._listing.get()

    def db_paths(self) -> list[Path]:
        own = [data_dir / "crush.db" for _, data_dir in self.projects()]
        return db_files(own, self.ctx.extra_roots.get("crush", ()), "crush.db")

    def roots(self) -> list[Root]:
        listing = self.data_dir() / "projects.json"
        return [Root(listing, listing.is_file()), *super().roots()]

    # -- config ----------------------------------------------------------------------------------------

    def config_paths(self) -> list[Path]:
        """`crush.json` files, lowest priority first (global, global data, then the latest project's)."""
        env = self.ctx.env
        base = Path(env["CRUSH_GLOBAL_CONFIG"]) if env.get("CRUSH_GLOBAL_CONFIG") else None
        glob_cfg = (base or self.ctx.xdg("XDG_CONFIG_HOME", ".config") / "crush") / "crush.json"
        paths = [glob_cfg, self.data_dir() / "crush.json"]
        projects = self.projects()
        if projects:
            project, data_dir = projects[0]
            paths += [project / "crush.json", project / ".crush.json", data_dir / "crush.json"]
        return paths

    def _config(self, path: Path) -> dict[str, Any]:
        """The parts of one `crush.json` zai-dash uses (see `_config_subset`), {} when absent or unusable."""
        reader = self._configs.get(path)
        if reader is None:
            reader = self._configs[path] = CachedJson(path, _config_subset, {}, jsonc=True)
        return reader.get()

    def _merged_config(self) -> tuple[dict[str, Any], dict[str, str]]:
        merged: dict[str, Any] = {"models": {}, "providers": {}, "mcp": {}}
        origin: dict[str, str] = {}
        for path in self.config_paths():
            data = self._config(path)
            if not data:
                continue
            for section in ("models", "providers", "mcp"):
                value = data.get(section)
                if isinstance(value, Mapping):
                    for key, item in value.items():
                        merged[section][key] = item
                        origin[f"{section}.{key}"] = path.name
        return merged, origin

    def configs(self) -> dict[str, ToolConfigInfo]:
        merged, origin = self._merged_config()
        large = merged["models"].get("large")
        if not isinstance(large, Mapping) or not isinstance(large.get("model"), str):
            return {}
        provider = large.get("provider") if isinstance(large.get("provider"), str) else None
        base_url = None
        spec = merged["providers"].get(provider) if provider else None
        if isinstance(spec, Mapping) and isinstance(spec.get("base_url"), str):
            base_url = spec["base_url"]
        elif provider:
            base_url = PROVIDER_BASE_URLS.get(provider)
        return {
            "crush": ToolConfigInfo(
                model=normalise_model(large["model"]),
                model_detail=f"{origin.get('models.large', 'crush.json')} models.large",
                base_url=base_url,
                endpoint=classify_base_url(base_url) if base_url else None,
            )
        }

    # -- polling ---------------------------------------------------------------------------------------

    def poll(self) -> SourceBatch:
        batch = SourceBatch()
        merged, _ = self._merged_config()
        self._aliases = McpAliases.from_targets(mcp_targets(merged["mcp"]))
        self.poll_dbs(batch)
        return batch

    def _parent(self, conn: sqlite3.Connection, state: _CrushDb, session: str) -> str | None:
        if session not in state.parents:
            row = conn.execute("SELECT parent_session_id FROM sessions WHERE id = ?", (session,)).fetchone()
            if row is None:
                return None
            state.parents[session] = row[0] or None
        return state.parents[session]

    def _read_db(self, state: _CrushDb, batch: SourceBatch) -> None:
        found: list[UsageEvent] = []
        where = state.db.path.name
        floor = int(self.ctx.since.timestamp()) if self.ctx.since else None
        with state.db.read() as conn:
            require_columns(conn, "sessions", ("id", "parent_session_id"), state.db.path)
            have = require_columns(
                conn,
                "messages",
                ("id", "session_id", "role", "parts", "model", "created_at", "updated_at"),
                state.db.path,
            )
            cols = ["session_id", "role", "parts", "model", "created_at"]
            cols.append("provider" if "provider" in have else "NULL AS provider")
            cols.append("is_summary_message" if "is_summary_message" in have else "0 AS is_summary_message")
            for row in state.cursor.rows(conn, cols, floor=floor):
                mid = str(row["_id"])
                if not state.memo.fresh(mid, hash(row["parts"]), int(row["_t"])):
                    continue
                try:
                    found += self._events(conn, state, row, mid)
                except BadTimestamp as exc:
                    self.skips.add(f"message: {exc}", f"{where}:{mid}")
                except ValueError:
                    self.skips.add("message: parts is not JSON", f"{where}:{mid}")
        batch.events += found
        if state.cursor.high is not None:
            state.memo.prune(state.cursor.high - 2 * OVERLAP_S)

    def _events(self, conn: sqlite3.Connection, state: _CrushDb, row: sqlite3.Row, mid: str) -> list[UsageEvent]:
        role, session = row["role"], str(row["session_id"])
        ts = from_epoch(row["created_at"], self.ctx.clock())
        parent = self._parent(conn, state, session)
        if role == "user":
            if parent:
                return []
            return [UsageEvent(kind=EventKind.PROMPT, ts=ts, tool="crush", key=f"prompt:{mid}", session=session)]
        if role != "assistant":
            return []
        model = normalise_model(row["model"])
        call_role = CallRole.AUXILIARY if row["is_summary_message"] else CallRole.SUBAGENT if parent else CallRole.MAIN
        out = [
            UsageEvent(
                kind=EventKind.CALL,
                ts=ts,
                tool="crush",
                key=f"call:{mid}",
                session=session,
                model=model,
                role=call_role,
            )
        ]
        parts = loads(row["parts"]) if row["parts"] else []
        for part in parts if isinstance(parts, list) else []:
            data = part.get("data") if isinstance(part, Mapping) and part.get("type") == "tool_call" else None
            if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
                continue
            name = data["name"]
            if not name.startswith("mcp_"):
                continue
            key = f"mcp:{mid}:{data.get('id')}"
            mcp = mcp_event(None, name[4:], self._aliases, ts=ts, tool="crush", key=key, session=session)
            if mcp is not None:
                out.append(mcp)
        return out


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The Crush source."""
    return [CrushSource(ctx)]


def _projects(doc: Any) -> list[tuple[Path, Path]]:
    """(project dir, data dir) pairs of a `projects.json` document."""
    items = doc.get("projects") if isinstance(doc, dict) else None
    out: list[tuple[Path, Path]] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            continue
        project = Path(item["path"])
        data_dir = item.get("data_dir")
        out.append((project, Path(data_dir) if isinstance(data_dir, str) and data_dir else project / ".crush"))
    return out


_KEPT = {"models": ("model", "provider"), "providers": ("base_url",), "mcp": MCP_TARGET_KEYS}
"""Per section of `crush.json`, the only keys of each entry kept (never `api_key`, `headers` or `env`)."""


def _config_subset(doc: Any) -> dict[str, Any]:
    """The `models`, `providers` and `mcp` entries of a `crush.json`, cut down to the keys in `_KEPT`.

    The cached value outlives the parse, so it holds nothing a secret could hide in.
    """
    if not isinstance(doc, dict):
        return {}
    out: dict[str, Any] = {}
    for section, keys in _KEPT.items():
        kept = kept_entries(doc.get(section), keys)
        if kept is not None:
            out[section] = kept
    return out
