"""Cline 2026 layouts under `~/.cline/data`: classic task folders and SDK session files.

- `<data>/tasks/<id>/ui_messages.json`: the CLI / JetBrains hosts keep classic task folders here; they
  are read exactly like the VS Code ones (`vscode_tasks.TaskFolders`).
- `<sessions>/<id>/<id>.messages.json` (Cline SDK, v4.x, and Cline CLI 3.x): one JSON document per
  session, rewritten whole on each persist: `{version, updated_at, agent: "lead"|"subagent"|"teammate",
  sessionId, messages: [{id, role, content[], ts?, modelInfo?{id, provider}, metrics?{inputTokens, …}}]}`.
  Each assistant message is one model call; a user message with text and no tool result is a prompt,
  counted only in `lead` sessions. MCP tools are named `<server>__<tool>`. `metrics.inputTokens`
  already includes the cache (`cacheReadTokens`, `cacheWriteTokens`).
- `<sessions>/<id>/agent_<agentId>.messages.json` (CLI 3.x): a sub-agent's conversation, the same
  document (indexed in `<data>/db/sessions.db` as `<id>__<agentId>`, `is_subagent = 1`): its calls are
  sub-agent calls of session `<id>`, its user turns are the lead agent's instructions, never prompts.
- `<data>/settings/providers.json` (CLI 3.x): `{lastUsedProvider, providers: {<id>: {settings:
  {provider, model, baseUrl, apiKey}}}}`: the configured model and endpoint (the key is never kept).

`<sessions>` is `CLINE_SESSION_DATA_DIR`, else `<data>/sessions`; `<data>` is `CLINE_DATA_DIR`, else
`$CLINE_DIR/data`, else `~/.cline/data` (cline `sdk/packages/shared/src/storage/paths.ts`). The VS Code
adapter reads `<data>/globalState.json` (older builds) for the configured model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import McpAliases, classify_mcp
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.redact import redact_url
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.configfiles import CachedJson
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, normalise_model, parse_iso
from zai_dash.sources.limits import limit_hit
from zai_dash.sources.rewritten import JsonVersion, RewrittenJson
from zai_dash.sources.tools.vscode_tasks import CLINE, CLINE_TOOL, TaskFolders, cline_data_dir, mcp_aliases

TOOL = "cline"
TOOLS = (CLINE_TOOL,)
MESSAGES_SUFFIX = ".messages.json"
SUBAGENT_PREFIX = "agent_"


@dataclass(frozen=True)
class ProviderSettings:
    """What `settings/providers.json` says of the provider in use (never its `apiKey`)."""

    provider: str | None = None
    model: str | None = None
    base_url: str | None = None


def extract_providers(doc: object) -> ProviderSettings:
    """The last-used provider's model and base URL; everything else in the document is dropped."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("providers"), Mapping):
        return ProviderSettings()
    providers: Mapping[str, Any] = doc["providers"]
    pick = doc.get("lastUsedProvider")
    entry = providers.get(pick) if isinstance(pick, str) else None
    if entry is None and len(providers) == 1:
        entry = next(iter(providers.values()))
    settings = entry.get("settings") if isinstance(entry, Mapping) else None
    if not isinstance(settings, Mapping):
        return ProviderSettings()

    def text(key: str) -> str | None:
        value = settings.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    return ProviderSettings(
        text("provider") or (pick if isinstance(pick, str) else None), text("model"), text("baseUrl")
    )


def session_data_dir(ctx: SourceContext) -> Path:
    """Where SDK sessions live: `CLINE_SESSION_DATA_DIR`, else `<data>/sessions`."""
    explicit = (ctx.env.get("CLINE_SESSION_DATA_DIR") or "").strip()
    return Path(explicit).expanduser() if explicit else cline_data_dir(ctx) / "sessions"


class ClineDataSource(ToolSource):
    """Cline's `~/.cline/data`: task folders (CLI / JetBrains) and SDK `*.messages.json` sessions."""

    name = "cline (~/.cline/data)"
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx)
        self.data_dir = cline_data_dir(ctx)
        self.sessions_dir = session_data_dir(ctx)
        self._tasks = TaskFolders(TOOL, ctx, self.skips, subtasks=False)
        self._reader = RewrittenJson(self.skips)
        self._config_reader = RewrittenJson(self.skips)
        self._sessions: set[Path] = set()
        self._refused: set[str] = set()
        self.refused = 0  # a refusal leaves Cline's error display in the session
        self._providers = CachedJson(
            self.data_dir / "settings" / "providers.json", extract_providers, ProviderSettings(), self.skips
        )

    def roots(self) -> list[Root]:
        """`<data>/tasks` and the sessions folder."""
        tasks = self.data_dir / "tasks"
        return [Root(tasks, tasks.is_dir()), Root(self.sessions_dir, self.sessions_dir.is_dir())]

    def file_count(self) -> int:
        """Task folders and session files in the window."""
        return self._tasks.file_count + len(self._sessions)

    def configs(self) -> dict[str, ToolConfigInfo]:
        """The model and endpoint of the provider in use, from `settings/providers.json` (CLI 3.x)."""
        settings = self._providers.get()
        if settings.model is None and settings.base_url is None:
            return {}
        base_url = redact_url(settings.base_url) if settings.base_url else None
        detail = f"settings/providers.json ({settings.provider})" if settings.provider else "settings/providers.json"
        return {
            TOOL: ToolConfigInfo(
                model=normalise_model(settings.model),
                model_detail=detail,
                base_url=base_url,
                endpoint=classify_base_url(base_url) if base_url else None,
            )
        }

    def aliases(self) -> McpAliases:
        """MCP servers from `<data>/settings/cline_mcp_settings.json`."""
        return mcp_aliases(self._config_reader, [self.data_dir / "settings" / CLINE.mcp_file])

    def poll(self) -> SourceBatch:
        """Re-read changed task files and session files."""
        aliases = self.aliases()
        batch = SourceBatch()
        batch.events.extend(self._tasks.poll([self.data_dir / "tasks"], aliases))
        current: set[Path] = set()
        for path in self._session_files():
            current.add(path)
            version = self._reader.changed(path)
            if version is not None:
                self._session_events(path, version, aliases, batch)
        self._sessions = current
        self._reader.retain(current)
        return batch

    def _session_files(self) -> list[Path]:
        """`<sessions>/<id>/<id>.messages.json` and its `agent_<agentId>.messages.json` sub-agents, modified
        inside the window."""
        found: list[Path] = []
        try:
            entries = list(os.scandir(self.sessions_dir))
        except OSError:
            return found
        for entry in entries:
            if not entry.is_dir():
                continue
            try:
                names = os.listdir(entry.path)
            except OSError:
                continue
            for name in names:
                lead = name == f"{entry.name}{MESSAGES_SUFFIX}"
                if lead or (name.startswith(SUBAGENT_PREFIX) and name.endswith(MESSAGES_SUFFIX)):
                    path = Path(entry.path) / name
                    if self.ctx.path_relevant(path):
                        found.append(path)
        return sorted(found)

    def _session_events(self, path: Path, version: JsonVersion, aliases: McpAliases, batch: SourceBatch) -> None:
        doc = version.value
        where = str(path)
        if not isinstance(doc, Mapping) or not isinstance(doc.get("messages"), list):
            self.skips.add("session file without a messages array", where)
            return
        subagent = path.name.startswith(SUBAGENT_PREFIX)
        # A sub-agent's events belong to its parent session; its own id keeps their keys apart.
        session = path.parent.name if subagent else _text(doc.get("sessionId")) or path.parent.name
        scope = f"{session}__{path.name[len(SUBAGENT_PREFIX) : -len(MESSAGES_SUFFIX)]}" if subagent else session
        lead = not subagent and doc.get("agent", "lead") == "lead"
        wall = self.ctx.clock()
        fallback = self._fallback_ts(doc, version, wall)
        messages: list[Any] = doc["messages"]
        # User messages carry no ts: a prompt happened just before the next assistant reply.
        next_ts: list[datetime | None] = [None] * len(messages)
        # Whether the next assistant message is the error Cline shows when every attempt failed (a 429).
        next_error = [False] * len(messages)
        upcoming: datetime | None = None
        error = False
        for i in range(len(messages) - 1, -1, -1):
            msg = messages[i]
            if isinstance(msg, Mapping) and msg.get("role") == "assistant":
                error = _is_error_display(msg)
                if msg.get("ts") is not None:
                    try:
                        upcoming = from_epoch(msg.get("ts"), wall, unit=1000)
                    except BadTimestamp:
                        pass
            next_ts[i] = upcoming
            next_error[i] = error
        events = batch.events
        for i, msg in enumerate(messages):
            if not isinstance(msg, Mapping) or not isinstance(msg.get("id"), str):
                self.skips.add("session message without an id", f"{where}[{i}]")
                continue
            role = msg.get("role")
            blocks = _blocks(msg.get("content"))
            if role == "user":
                if lead and _is_prompt(blocks) and next_error[i]:
                    self._refuse(f"{scope}:{msg['id']}")
                elif lead and _is_prompt(blocks):
                    ts = next_ts[i] or fallback
                    if ts is not None:
                        events.append(UsageEvent(EventKind.PROMPT, ts, TOOL, f"{scope}:{msg['id']}:prompt", session))
            elif role == "assistant" and _is_error_display(msg):
                self._error_display(msg, blocks, wall, batch)
            elif role == "assistant":
                events.extend(self._assistant(msg, blocks, (session, scope), lead, wall, aliases, f"{where}[{i}]"))

    def _refuse(self, key: str) -> None:
        """A prompt whose only answer is Cline's error display: every attempt was refused, none billed."""
        if key not in self._refused:
            self._refused.add(key)
            self.refused = len(self._refused)

    def _error_display(
        self, msg: Mapping[str, Any], blocks: list[Mapping[str, Any]], wall: datetime, batch: SourceBatch
    ) -> None:
        """Cline's error message (not a call): a Z.ai limit text names its reset time."""
        try:
            ts = from_epoch(msg.get("ts"), wall, unit=1000)
        except BadTimestamp:
            return
        text = "\n".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
        hit = limit_hit(text, ts)
        if hit is not None:
            batch.limit_hits.append(replace(hit, tool=TOOL))

    def _fallback_ts(self, doc: Mapping[str, Any], version: JsonVersion, wall: datetime) -> datetime | None:
        """The document's `updated_at`, else the file's mtime: when a just-typed prompt was saved."""
        try:
            return parse_iso(doc.get("updated_at"), wall)
        except BadTimestamp:
            try:
                return from_epoch(version.mtime, wall)
            except BadTimestamp:
                return None

    def _assistant(
        self,
        msg: Mapping[str, Any],
        blocks: list[Mapping[str, Any]],
        ids: tuple[str, str],
        lead: bool,
        wall: datetime,
        aliases: McpAliases,
        where: str,
    ) -> list[UsageEvent]:
        session, scope = ids
        try:
            ts = from_epoch(msg.get("ts"), wall, unit=1000)
        except BadTimestamp as exc:
            self.skips.add(f"assistant message: {exc}", where)
            return []
        info = msg.get("modelInfo")
        model = normalise_model(info.get("id")) if isinstance(info, Mapping) else None
        metrics: Mapping[str, Any] = msg["metrics"] if isinstance(msg.get("metrics"), Mapping) else {}
        # Cline CLI 3.x's `inputTokens` already includes cache reads and writes (metering.md §2).
        tokens_in = int_field(metrics.get("inputTokens"))
        tokens_out = int_field(metrics.get("outputTokens"))
        cached = min(int_field(metrics.get("cacheReadTokens")), tokens_in)
        events = [
            UsageEvent(
                EventKind.CALL,
                ts,
                TOOL,
                f"{scope}:{msg['id']}:call",
                session,
                model=model,
                role=CallRole.MAIN if lead else CallRole.SUBAGENT,
                tokens=tokens_in + tokens_out,
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cached_tokens=cached,
            )
        ]
        for n, block in enumerate(blocks):
            if block.get("type") != "tool_use" or not isinstance(block.get("name"), str):
                continue
            name: str = block["name"]
            server, _, tool = name.partition("__")
            service = classify_mcp(server, tool, aliases) if tool else classify_mcp(None, name, aliases)
            if service is not None:
                ident = block.get("id") if isinstance(block.get("id"), str) else f"{msg['id']}#{n}"
                events.append(UsageEvent(EventKind.MCP, ts, TOOL, f"{scope}:{ident}:mcp", session, service=service))
        return events


def _is_error_display(msg: Mapping[str, Any]) -> bool:
    """Cline's own error message in the conversation (`error_…` id, display-only): no model call."""
    meta = msg.get("metadata")
    if not isinstance(meta, Mapping) or meta.get("displayOnly") is not True:
        return False
    return meta.get("displayRole") == "error" or str(msg.get("id", "")).startswith("error_")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _blocks(content: object) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b for b in content if isinstance(b, Mapping)]
    return []


def _is_prompt(blocks: list[Mapping[str, Any]]) -> bool:
    """A user turn the human typed: some text, and no tool result riding along."""
    has_text = any(b.get("type") == "text" and str(b.get("text") or "").strip() for b in blocks)
    return has_text and not any(b.get("type") == "tool_result" for b in blocks)


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The `~/.cline/data` source."""
    return [ClineDataSource(ctx)]
