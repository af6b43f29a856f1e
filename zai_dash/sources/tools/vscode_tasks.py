"""Cline, Roo Code and Kilo Code (legacy) VS Code extensions: task folders of rewritten JSON files.

Each task is a folder `<storage>/tasks/<task id>/` whose `ui_messages.json` (a JSON array rewritten whole
on every save) records what the UI showed: `say:"api_req_started"` once per model request (its `text`
is a JSON string with the token counts, filled in when the stream ends), `say:"text"` for the task the
user typed (and for assistant text later on), `say:"user_feedback"` for every follow-up the user types,
and `use_mcp_server` for MCP tool calls. Records are identified by their `ts` (epoch ms); a partial
record is replaced in place with the same `ts`, so every event key is `<task id>:<ts>:<kind>` and the
ledger's dedup makes re-reading a file any number of times harmless.

Storage (`<storage>`): `<VS Code user data>/User/globalStorage/<extension id>/` for every VS Code-like
host, or Roo/Kilo's `<section>.customStoragePath` setting. Settings (model, base URL) come from VS Code's
global state (`state.vscdb`, read-only) or, for Cline from Feb 2026, `~/.cline/data/globalState.json`.
`secrets.json` and VS Code's secret storage are never read.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zai_dash.clock import seconds_since_mtime
from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import McpAliases, classify_mcp
from zai_dash.domain.snapshot import SourceHealth, ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import Root, Skips, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.configfiles import CachedJson
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, loads, normalise_model
from zai_dash.sources.rewritten import RewrittenJson
from zai_dash.sources.vscode import GlobalStateCache, VscodeHost, existing_hosts

UI_MESSAGES = "ui_messages.json"
TASK_METADATA = "task_metadata.json"
API_HISTORY = "api_conversation_history.json"
HISTORY_ITEM = "history_item.json"

PARENT_SETTLE_SECONDS = 10.0
"""A Roo/Kilo task whose parent is still unknown this long after its last save is taken as top-level.

Roo writes `history_item.json` (which names the parent) right after `ui_messages.json`; deciding before
it lands could count a sub-task's agent-written opening message as a human prompt, and a counted prompt
is never taken back.
"""
MODEL_SLACK_MS = 5_000
"""`task_metadata.json` records a model switch at about the time of the request it applies to."""

_MODEL_TAG = re.compile(r"<model>\s*([^<\s][^<]*?)\s*</model>")


@dataclass(frozen=True)
class Extension:
    """One VS Code extension of the Cline family.

    Attributes:
        tool: the zai-dash tool id.
        ext_id: the extension id as spelled in its package.json (state.vscdb key).
        section: the VS Code settings section holding `customStoragePath`, if the extension has one.
        mcp_file: the MCP settings file name under `<storage>/settings/`.
        subtasks: whether tasks can be sub-tasks (`parentTaskId`) whose opening text is agent-written.
    """

    tool: str
    ext_id: str
    section: str | None
    mcp_file: str
    subtasks: bool


CLINE = Extension("cline", "saoudrizwan.claude-dev", None, "cline_mcp_settings.json", subtasks=False)
ROO = Extension("roo-code", "RooVeterinaryInc.roo-cline", "roo-cline", "mcp_settings.json", subtasks=True)
KILO = Extension("kilo-code", "kilocode.kilo-code", "kilo-code", "mcp_settings.json", subtasks=True)
EXTENSIONS: tuple[Extension, ...] = (CLINE, ROO, KILO)
CLINE_TOOL = ToolInfo("cline", "Cline", ("CLINE_SESSION_DATA_DIR", "CLINE_DATA_DIR", "CLINE_DIR"), order=20)
"""Cline, extension and CLI (`cline_sdk` reads the CLI's sessions under the same id)."""
TOOLS = (CLINE_TOOL, ToolInfo(ROO.tool, "Roo Code", order=30))
"""Kilo Code is declared by `opencode` (its CLI); its legacy extension's task files are read here."""


# -- settings → configured model and endpoint ---------------------------------------------------------

CLINE_ZAI_URLS = {"china": "https://open.bigmodel.cn/api/paas/v4"}
"""Cline's built-in `zai` provider: the *general* (pay-as-you-go) API on both lines."""
CLINE_ZAI_DEFAULT = "https://api.z.ai/api/paas/v4"

ROO_ZAI_URLS = {
    "international_coding": "https://api.z.ai/api/coding/paas/v4",
    "china_coding": "https://open.bigmodel.cn/api/coding/paas/v4",
    "international_api": "https://api.z.ai/api/paas/v4",
    "china_api": "https://open.bigmodel.cn/api/paas/v4",
    # Lines of older Roo builds, before the coding lines were split out.
    "international": "https://api.z.ai/api/paas/v4",
    "china": "https://open.bigmodel.cn/api/paas/v4",
}
"""Roo Code / Kilo Code `zaiApiLine` → base URL (Roo `packages/types/src/providers/zai.ts`)."""
ROO_ZAI_DEFAULT_LINE = "international_coding"

_PROVIDER_ALIASES = {"openai-compatible": "openai", "openai_compatible": "openai"}
"""Cline 2026 writes SDK provider ids in places; fold them back to the extension's spelling."""

_MODEL_KEY_BY_PROVIDER = {
    "openai": "OpenAiModelId",
    "openrouter": "OpenRouterModelId",
    "litellm": "LiteLlmModelId",
    "ollama": "OllamaModelId",
    "lmstudio": "LmStudioModelId",
    "requesty": "RequestyModelId",
    "together": "TogetherModelId",
    "fireworks": "FireworksModelId",
    "groq": "GroqModelId",
}
"""Provider → suffix of the model key; every other provider uses `ApiModelId`."""

_BASE_URL_KEY_BY_PROVIDER = {
    "openai": "openAiBaseUrl",
    "anthropic": "anthropicBaseUrl",
    "litellm": "liteLlmBaseUrl",
    "ollama": "ollamaBaseUrl",
    "lmstudio": "lmStudioBaseUrl",
    "gemini": "geminiBaseUrl",
    "requesty": "requestyBaseUrl",
}


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _config(model: str | None, detail: str, base_url: str | None) -> ToolConfigInfo:
    return ToolConfigInfo(
        model=normalise_model(model),
        model_detail=detail,
        base_url=base_url,
        endpoint=classify_base_url(base_url) if base_url else None,
    )


def cline_config(state: Mapping[str, Any], where: str) -> ToolConfigInfo:
    """Cline's configured model and endpoint from its global state (classic or `globalState.json`).

    The current mode's keys win (`actMode*` unless `mode` is `plan`); builds before the plan/act split
    kept unprefixed `apiProvider` / `apiModelId`.
    """
    mode = "plan" if state.get("mode") == "plan" else "act"
    prefix = f"{mode}Mode"

    def pick(suffix: str) -> str | None:
        # `actModeApiModelId`, then the pre-split `apiModelId`.
        return _text(state.get(prefix + suffix)) or _text(state.get(suffix[0].lower() + suffix[1:]))

    provider = pick("ApiProvider") or ""
    provider = _PROVIDER_ALIASES.get(provider, provider)
    model_key = _MODEL_KEY_BY_PROVIDER.get(provider, "ApiModelId")
    model = pick(model_key)
    if provider == "zai":
        line = _text(state.get("zaiApiLine")) or "international"
        base_url: str | None = CLINE_ZAI_URLS.get(line, CLINE_ZAI_DEFAULT)
    else:
        key = _BASE_URL_KEY_BY_PROVIDER.get(provider)
        base_url = _text(state.get(key)) if key else None
    detail = f"{where} {prefix}{model_key}" + (f" (provider {provider})" if provider else "")
    return _config(model, detail, base_url)


def roo_config(state: Mapping[str, Any], where: str) -> ToolConfigInfo:
    """Roo Code's (and legacy Kilo Code's) configured model and endpoint from its global state.

    The active profile's non-secret settings live flat in global state (`apiProvider`, `apiModelId`,
    `openAiBaseUrl`, `zaiApiLine`, …); `listApiConfigMeta` names each profile's provider and model.
    """
    provider = _text(state.get("apiProvider"))
    model = _text(state.get("openAiModelId")) if provider == "openai" else _text(state.get("apiModelId"))
    detail_key = "openAiModelId" if provider == "openai" else "apiModelId"
    current = _text(state.get("currentApiConfigName"))
    metas = state.get("listApiConfigMeta")
    if isinstance(metas, list) and current:
        for meta in metas:
            if isinstance(meta, Mapping) and meta.get("name") == current:
                provider = provider or _text(meta.get("apiProvider"))
                if model is None and _text(meta.get("modelId")):
                    model, detail_key = _text(meta.get("modelId")), f"listApiConfigMeta[{current}].modelId"
    if provider == "zai":
        line = _text(state.get("zaiApiLine")) or ROO_ZAI_DEFAULT_LINE
        base_url = ROO_ZAI_URLS.get(line)
    else:
        key = _BASE_URL_KEY_BY_PROVIDER.get(provider or "")
        base_url = _text(state.get(key)) if key else None
    detail = f"{where} {detail_key}" + (f" (provider {provider})" if provider else "")
    return _config(model, detail, base_url)


def cline_data_dir(ctx: SourceContext) -> Path:
    """Cline's 2026 data dir: `CLINE_DATA_DIR`, else `$CLINE_DIR/data`, else `~/.cline/data`."""
    explicit = (ctx.env.get("CLINE_DATA_DIR") or "").strip()
    if explicit:
        return Path(explicit).expanduser()
    cline_dir = (ctx.env.get("CLINE_DIR") or "").strip()
    return (Path(cline_dir).expanduser() if cline_dir else ctx.home / ".cline") / "data"


def mcp_aliases(reader: RewrittenJson, files: Iterable[Path]) -> McpAliases:
    """Merge the `mcpServers` of every MCP settings file that exists (later files win)."""
    aliases = McpAliases()
    for path in files:
        version = reader.current(path)
        if version is not None and isinstance(version.value, Mapping):
            aliases = aliases.merged(McpAliases.from_servers(version.value.get("mcpServers")))
    return aliases


# -- one task folder → events --------------------------------------------------------------------------


@dataclass
class _TaskState:
    stamps: tuple[object, ...] = ()
    undecided: bool = False


@dataclass
class TaskFolders:
    """Reads task folders (`<tasks>/<id>/ui_messages.json`) of one tool into events.

    Shared by the VS Code adapter and the Cline `~/.cline/data/tasks` layout.

    Args:
        tool: the tool id events are tagged with.
        ctx: the source context (clock, `since`).
        skips: where bad records are counted.
        subtasks: whether tasks can have a parent (Roo/Kilo), making their opening text agent-written.
    """

    tool: str
    ctx: SourceContext
    skips: Skips
    subtasks: bool
    reader: RewrittenJson = field(init=False)
    _tasks: dict[Path, _TaskState] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.reader = RewrittenJson(self.skips)

    @property
    def file_count(self) -> int:
        """Task files currently tracked."""
        return len(self._tasks)

    def poll(
        self,
        tasks_dirs: Iterable[Path],
        aliases: McpAliases,
        parent_of: Callable[[str], str | None] | None = None,
    ) -> list[UsageEvent]:
        """Events of every task folder that changed (or whose parent became known) since the last poll.

        Args:
            tasks_dirs: `tasks/` folders to scan.
            aliases: MCP server aliases for classifying MCP calls.
            parent_of: for sub-task tools, a fallback lookup of a task's parent id from global state:
                returns the parent id, `""` for a known top-level task, or None when unknown.
        """
        events: list[UsageEvent] = []
        seen: set[Path] = set()
        for tasks_dir in tasks_dirs:
            for task_dir in _task_dirs(tasks_dir):
                ui = task_dir / UI_MESSAGES
                try:
                    mtime = ui.stat().st_mtime  # also passed on: the task's last save
                except OSError:
                    continue
                if not self.ctx.mtime_relevant(mtime):
                    continue
                seen.add(task_dir)
                events.extend(self._poll_task(task_dir, mtime, aliases, parent_of))
        for gone in [d for d in self._tasks if d not in seen]:
            del self._tasks[gone]
        keep = {d / name for d in seen for name in (UI_MESSAGES, TASK_METADATA, API_HISTORY, HISTORY_ITEM)}
        self.reader.retain(keep)
        return events

    def _poll_task(
        self,
        task_dir: Path,
        mtime: float,
        aliases: McpAliases,
        parent_of: Callable[[str], str | None] | None,
    ) -> list[UsageEvent]:
        state = self._tasks.setdefault(task_dir, _TaskState())
        ui = self.reader.current(task_dir / UI_MESSAGES)
        if ui is None:
            return []
        aux_names = (HISTORY_ITEM, API_HISTORY) if self.subtasks else (TASK_METADATA,)
        aux = {name: self.reader.current(task_dir / name) for name in aux_names}
        stamps = (ui.stamp, *(v.stamp if v else None for v in aux.values()), aliases)
        if stamps == state.stamps and not state.undecided:
            return []
        state.stamps = stamps
        task_id = task_dir.name
        top_level = True
        state.undecided = False
        if self.subtasks:
            item = aux[HISTORY_ITEM]
            parent = _parent_from_history_item(item.value if item is not None else None)
            if parent is None and parent_of is not None:
                parent = parent_of(task_id)
            if parent is None and seconds_since_mtime(mtime) < PARENT_SETTLE_SECONDS:
                state.undecided = True  # decide on a later poll, once history_item.json has landed
            top_level = not parent
        if self.tool == "cline":
            meta = aux[TASK_METADATA]
            model_at = _ModelTimeline.from_task_metadata(meta.value if meta else None)
        else:
            history = aux[API_HISTORY]
            model_at = _ModelTimeline.from_api_history(history.value if history else None)
        return self._events(
            task_id,
            ui.value,
            top_level and not state.undecided,
            state.undecided,
            model_at,
            aliases,
            str(task_dir / UI_MESSAGES),
        )

    def _events(
        self,
        task_id: str,
        records: object,
        top_level: bool,
        hold_first: bool,
        model_at: _ModelTimeline,
        aliases: McpAliases,
        where: str,
    ) -> list[UsageEvent]:
        if not isinstance(records, list):
            self.skips.add("ui_messages.json is not a JSON array", where)
            return []
        wall = self.ctx.clock()
        role = CallRole.MAIN if top_level or hold_first else CallRole.SUBAGENT
        events: list[UsageEvent] = []
        seen_request = False
        opening_done = False
        open_mcp: UsageEvent | None = None
        for index, rec in enumerate(records):
            if not isinstance(rec, dict):
                self.skips.add("ui message is not an object", f"{where}[{index}]")
                continue
            kind = rec.get("say") if rec.get("type") == "say" else rec.get("ask")
            if not isinstance(kind, str):
                continue
            try:
                ts = from_epoch(rec.get("ts"), wall, unit=1000)
            except BadTimestamp as exc:
                self.skips.add(f"ui message: {exc}", f"{where}[{index}]")
                continue
            raw_ts = int(rec["ts"])
            base: dict[str, Any] = {"ts": ts, "tool": self.tool, "session": task_id}
            if kind == "text" and rec.get("type") == "say" and not opening_done and not seen_request:
                # The task text: `startTask` says it before the first request; later texts are the model's.
                opening_done = True
                if top_level:
                    events.append(UsageEvent(EventKind.PROMPT, key=f"{task_id}:{raw_ts}:prompt", **base))
            elif kind in ("user_feedback", "user_feedback_diff"):
                events.append(UsageEvent(EventKind.PROMPT, key=f"{task_id}:{raw_ts}:prompt", **base))
            elif kind == "api_req_started" and rec.get("type") == "say":
                seen_request = True
                events.append(self._call(task_id, raw_ts, rec, model_at, role, base))
            elif kind == "use_mcp_server":
                if rec.get("partial") is True:
                    continue  # still streaming: the complete record replaces it with the same ts
                open_mcp = self._mcp(task_id, raw_ts, rec, aliases, base, f"{where}[{index}]")
            elif kind in ("mcp_server_request_started", "mcp_server_response") and open_mcp is not None:
                # Only a call that actually ran counts (a denied approval ask never reaches the server).
                events.append(open_mcp)
                open_mcp = None
        return events

    def _call(
        self,
        task_id: str,
        raw_ts: object,
        rec: Mapping[str, Any],
        model_at: _ModelTimeline,
        role: CallRole,
        base: dict[str, Any],
    ) -> UsageEvent:
        info = _json_text(rec.get("text"))
        tokens_in = int_field(info.get("tokensIn"))
        tokens_out = int_field(info.get("tokensOut"))
        cached = int_field(info.get("cacheReads"))
        cache = cached + int_field(info.get("cacheWrites"))
        model_info = rec.get("modelInfo")
        model = normalise_model(model_info.get("modelId")) if isinstance(model_info, Mapping) else None
        if model is None and isinstance(raw_ts, (int, float)):
            model = model_at.at(int(raw_ts))
        # Anthropic-style handlers put the uncached input in `tokensIn`, the cache in `cacheReads`/`cacheWrites`.
        # Some OpenAI-style handlers may report `prompt_tokens` (cache included) as `tokensIn` [unverified];
        # input then over-counts by the cache, which only matters for credits of those providers.
        return UsageEvent(
            EventKind.CALL,
            key=f"{task_id}:{raw_ts}:call",
            model=model,
            role=role,
            tokens=tokens_in + tokens_out + cache,
            input_tokens=tokens_in + cache,
            output_tokens=tokens_out,
            cached_tokens=cached,
            **base,
        )

    def _mcp(
        self,
        task_id: str,
        raw_ts: object,
        rec: Mapping[str, Any],
        aliases: McpAliases,
        base: dict[str, Any],
        where: str,
    ) -> UsageEvent | None:
        info = _json_text(rec.get("text"))
        if not info:
            self.skips.add("use_mcp_server text is not JSON", where)
            return None
        if info.get("type") not in (None, "use_mcp_tool"):
            return None  # access_mcp_resource: a resource read, not a tool call
        server, tool = info.get("serverName"), info.get("toolName")
        if not isinstance(tool, str):
            self.skips.add("use_mcp_server without toolName", where)
            return None
        service = classify_mcp(server if isinstance(server, str) else None, tool, aliases)
        if service is None:
            return None
        return UsageEvent(EventKind.MCP, key=f"{task_id}:{raw_ts}:mcp", service=service, **base)


def _task_dirs(tasks_dir: Path) -> list[Path]:
    try:
        entries = list(tasks_dir.iterdir())
    except OSError:
        return []
    # `_index.json` and friends sit beside the task folders.
    return sorted(p for p in entries if not p.name.startswith(("_", ".")) and p.is_dir())


def _json_text(text: object) -> dict[str, Any]:
    """A record's `text` that holds a JSON object, or {} when absent or not JSON."""
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _parent_from_history_item(item: object) -> str | None:
    """`""` for a top-level task, the parent id for a sub-task, None when the file says nothing."""
    if not isinstance(item, Mapping):
        return None
    parent = item.get("parentTaskId")
    return parent if isinstance(parent, str) and parent else ""


@dataclass
class _ModelTimeline:
    """Model in use over a task's life: `(ts, model)` points, looked up by a call's `ts`."""

    points: list[tuple[int, str]]
    nearest: bool = False
    """Pick the point closest in time (Roo's env details are written just after the request starts)."""

    @classmethod
    def from_task_metadata(cls, meta: object) -> _ModelTimeline:
        """Cline `task_metadata.json` `model_usage[{ts, model_id}]`."""
        points: list[tuple[int, str]] = []
        usage = meta.get("model_usage") if isinstance(meta, Mapping) else None
        for entry in usage if isinstance(usage, list) else []:
            if isinstance(entry, Mapping) and isinstance(entry.get("ts"), (int, float)):
                model = normalise_model(entry.get("model_id"))
                if model:
                    points.append((int(entry["ts"]), model))
        return cls(sorted(points))

    @classmethod
    def from_api_history(cls, history: object) -> _ModelTimeline:
        """Roo/Kilo `api_conversation_history.json`: `<model>` in each user turn's environment details."""
        points: list[tuple[int, str]] = []
        for index, message in enumerate(history if isinstance(history, list) else []):
            if not isinstance(message, Mapping) or message.get("role") != "user":
                continue
            model = _model_tag(message.get("content"))
            if model:
                ts = message.get("ts")
                points.append((int(ts) if isinstance(ts, (int, float)) else index, model))
        return cls(sorted(points), nearest=True)

    def at(self, ts: int) -> str | None:
        """The model in use at `ts`, or None when nothing is known."""
        if not self.points:
            return None
        keys = [p[0] for p in self.points]
        if self.nearest:
            i = bisect.bisect_left(keys, ts)
            near = [c for c in (i - 1, i) if 0 <= c < len(keys)]
            return self.points[min(near, key=lambda c: abs(keys[c] - ts))][1]
        i = bisect.bisect_right(keys, ts + MODEL_SLACK_MS)
        return self.points[max(i - 1, 0)][1]


def _model_tag(content: object) -> str | None:
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        texts.extend(b["text"] for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str))
    for text in reversed(texts):  # environment details come last
        match = _MODEL_TAG.search(text)
        if match:
            return normalise_model(match.group(1))
    return None


# -- the adapter ---------------------------------------------------------------------------------------


class _ToolSkips(Skips):
    """One tool's skip counts that also add to the source-wide counts the engine sums."""

    def __init__(self, parent: Skips) -> None:
        super().__init__()
        self._parent = parent

    def add(self, reason: str, where: str = "", n: int = 1) -> None:
        super().add(reason, where, n)
        self._parent.add(reason, where, n)

    def add_file(self, reason: str, where: str) -> None:
        self.files += 1
        self._parent.files += 1
        self.add(reason, where)


class VscodeTasksSource(ToolSource):
    """Task folders of the Cline, Roo Code and Kilo Code extensions in every VS Code-like host."""

    name = "vscode-tasks"
    tools = tuple(e.tool for e in EXTENSIONS)

    def __init__(self, ctx: SourceContext, extensions: tuple[Extension, ...] = EXTENSIONS) -> None:
        super().__init__(ctx)
        self.extensions = extensions
        self.tools = tuple(e.tool for e in extensions)
        self._skips = {e.tool: _ToolSkips(self.skips) for e in extensions}
        self._folders = {e.tool: TaskFolders(e.tool, ctx, self._skips[e.tool], e.subtasks) for e in extensions}
        self._state = GlobalStateCache()
        self._config_reader = RewrittenJson(self.skips)
        self._user_settings: dict[Path, CachedJson[dict[str, str]]] = {}
        """Each host's user `settings.json` (roots and polls ask it): parsed again only when it changed."""

    # -- where -----------------------------------------------------------------------------------

    def storage_dirs(self, ext: Extension, hosts: list[VscodeHost] | None = None) -> list[Path]:
        """Every storage folder of `ext` (holding `tasks/` and `settings/`), found or not."""
        hosts = existing_hosts(self.ctx) if hosts is None else hosts
        dirs: list[Path] = []
        for host in hosts:
            dirs.append(host.extension_dir(ext.ext_id))
            if ext.section:
                custom = self._storage_paths(host).get(f"{ext.section}.customStoragePath")
                if isinstance(custom, str) and custom.strip():
                    dirs.append(Path(custom.strip()).expanduser())
        return self.ctx.with_extra_roots(ext.tool, dirs)

    def _storage_paths(self, host: VscodeHost) -> dict[str, str]:
        """`<section>.customStoragePath` → value, from the host's user settings."""
        path = host.user_settings
        reader = self._user_settings.get(path)
        if reader is None:
            reader = self._user_settings[path] = CachedJson(path, _custom_storage_paths, {}, jsonc=True)
        return reader.get()

    def _tool_roots(self, ext: Extension, hosts: list[VscodeHost]) -> list[Root]:
        dirs = self.storage_dirs(ext, hosts)
        if not dirs:
            default = self.ctx.xdg("XDG_CONFIG_HOME", ".config") / "Code" / "User" / "globalStorage"
            dirs = [default / ext.ext_id.lower()]
        return [Root(d / "tasks", (d / "tasks").is_dir()) for d in dirs]

    def roots(self) -> list[Root]:
        """The `tasks/` folder of each extension in each host that exists (plus custom storage)."""
        hosts = existing_hosts(self.ctx)
        return [root for ext in self.extensions for root in self._tool_roots(ext, hosts)]

    # -- reading ---------------------------------------------------------------------------------

    def poll(self) -> SourceBatch:
        """Re-read every task file that changed since the last poll."""
        hosts = existing_hosts(self.ctx)
        batch = SourceBatch()
        for ext in self.extensions:
            dirs = self.storage_dirs(ext, hosts)
            parent_of = self._parent_lookup(ext, hosts) if ext.subtasks else None
            batch.events.extend(
                self._folders[ext.tool].poll([d / "tasks" for d in dirs], self.aliases(ext, dirs), parent_of)
            )
        return batch

    def aliases(self, ext: Extension, dirs: list[Path] | None = None) -> McpAliases:
        """MCP server aliases from the extension's MCP settings (and Cline's 2026 data dir)."""
        dirs = self.storage_dirs(ext) if dirs is None else dirs
        files = [d / "settings" / ext.mcp_file for d in dirs]
        if ext is CLINE or ext.tool == "cline":
            files.append(cline_data_dir(self.ctx) / "settings" / ext.mcp_file)
        return mcp_aliases(self._config_reader, files)

    def _parent_lookup(self, ext: Extension, hosts: list[VscodeHost]) -> Callable[[str], str | None]:
        """Parent ids from the `taskHistory` in global state, for tasks without `history_item.json`."""
        parents: dict[str, str] = {}
        for host in hosts:
            state = self._state.get(host.state_db, ext.ext_id)
            history = state.get("taskHistory") if isinstance(state, Mapping) else None
            for item in history if isinstance(history, list) else []:
                if isinstance(item, Mapping) and isinstance(item.get("id"), str):
                    parent = item.get("parentTaskId")
                    parents[item["id"]] = parent if isinstance(parent, str) else ""
        return parents.get

    def file_count(self) -> int:
        """Task folders being read, all extensions together."""
        return sum(f.file_count for f in self._folders.values())

    # -- settings --------------------------------------------------------------------------------

    def configs(self) -> dict[str, ToolConfigInfo]:
        """Each extension's configured model and base URL (never secrets)."""
        hosts = existing_hosts(self.ctx)
        found: dict[str, ToolConfigInfo] = {}
        for ext in self.extensions:
            conf = self._config(ext, hosts)
            if conf is not None:
                found[ext.tool] = conf
        return found

    def _config(self, ext: Extension, hosts: list[VscodeHost]) -> ToolConfigInfo | None:
        if ext.tool == "cline":
            # From Feb 2026 Cline keeps its state in ~/.cline/data, which then is the truth.
            path = cline_data_dir(self.ctx) / "globalState.json"
            version = self._config_reader.current(path)
            if version is not None and isinstance(version.value, Mapping):
                return cline_config(version.value, "globalState.json")
        interpret = cline_config if ext.tool == "cline" else roo_config
        # The most recently used host first: its state is what the user runs now.
        for host in sorted(hosts, key=lambda h: _mtime(h.state_db), reverse=True):
            state = self._state.get(host.state_db, ext.ext_id)
            if isinstance(state, Mapping):
                conf = interpret(state, f"state.vscdb ({host.name})")
                if conf.model or conf.base_url:
                    return conf
        return None

    # -- health ----------------------------------------------------------------------------------

    def health(self) -> list[SourceHealth]:
        """One line per extension, so each tool shows its own roots and state."""
        hosts = existing_hosts(self.ctx)
        rows: list[SourceHealth] = []
        state_errors = "; ".join(sorted(set(self._state.errors.values())))
        for ext in self.extensions:
            roots = self._tool_roots(ext, hosts)
            files = self._folders[ext.tool].file_count
            if self.error:
                status, detail = "error", self.error
            elif any(r.exists for r in roots):
                status, detail = "ok", f"{files} task(s) in window"
                if state_errors:
                    detail += f"; settings: {state_errors}"
            else:
                status, detail = "absent", "no task folders found"
            rows.append(
                SourceHealth(
                    name=f"{ext.tool} (VS Code)",
                    tool=ext.tool,
                    status=status,
                    detail=detail,
                    roots=tuple((str(r.path), r.exists) for r in roots),
                    files=files,
                    skipped=dict(self._skips[ext.tool].counts),
                )
            )
        return rows


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The VS Code task-folder source for Cline, Roo Code and Kilo Code."""
    return [VscodeTasksSource(ctx)]


def _custom_storage_paths(doc: Any) -> dict[str, str]:
    """The `*.customStoragePath` settings (dotted keys are flat in VS Code's settings.json); nothing else."""
    if not isinstance(doc, dict):
        return {}
    return {k: v for k, v in doc.items() if k.endswith(".customStoragePath") and isinstance(v, str)}
