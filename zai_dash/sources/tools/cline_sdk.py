"""Cline 2026 layouts under `~/.cline/data`: classic task folders and SDK session files.

- `<data>/tasks/<id>/ui_messages.json`: the CLI / JetBrains hosts keep classic task folders here; they
  are read exactly like the VS Code ones (`vscode_tasks.TaskFolders`).
- `<sessions>/<id>/<id>.messages.json` (Cline SDK, v4.x): one JSON document per session, rewritten
  whole on each persist: `{version, updated_at, agent: "lead"|"subagent"|"teammate", sessionId,
  messages: [{id, role, content[], ts?, modelInfo?{id, provider}, metrics?{inputTokens, …}}]}`.
  Each assistant message is one model call; a user message with text and no tool result is a prompt,
  counted only in `lead` sessions. MCP tools are named `<server>__<tool>`.

`<data>` is `CLINE_DATA_DIR`, else `$CLINE_DIR/data`, else `~/.cline/data`; `<sessions>` is
`CLINE_SESSION_DATA_DIR`, else `<data>/sessions` (cline `sdk/packages/shared/src/storage/paths.ts`).
The configured model is reported by the VS Code adapter, which reads `<data>/globalState.json` too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import McpAliases, classify_mcp
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, normalise_model, parse_iso
from zai_dash.sources.rewritten import JsonVersion, RewrittenJson
from zai_dash.sources.tools.vscode_tasks import CLINE, CLINE_TOOL, TaskFolders, cline_data_dir, mcp_aliases

TOOL = "cline"
TOOLS = (CLINE_TOOL,)
MESSAGES_SUFFIX = ".messages.json"


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

    def roots(self) -> list[Root]:
        """`<data>/tasks` and the sessions folder."""
        tasks = self.data_dir / "tasks"
        return [Root(tasks, tasks.is_dir()), Root(self.sessions_dir, self.sessions_dir.is_dir())]

    def file_count(self) -> int:
        """Task folders and session files in the window."""
        return self._tasks.file_count + len(self._sessions)

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
                batch.events.extend(self._session_events(path, version, aliases))
        self._sessions = current
        self._reader.retain(current)
        return batch

    def _session_files(self) -> list[Path]:
        """`<sessions>/<id>/<id>.messages.json` modified inside the window."""
        found: list[Path] = []
        try:
            entries = list(os.scandir(self.sessions_dir))
        except OSError:
            return found
        for entry in entries:
            if not entry.is_dir():
                continue
            path = Path(entry.path) / f"{entry.name}{MESSAGES_SUFFIX}"
            if self.ctx.path_relevant(path):
                found.append(path)
        return sorted(found)

    def _session_events(self, path: Path, version: JsonVersion, aliases: McpAliases) -> list[UsageEvent]:
        doc = version.value
        where = str(path)
        if not isinstance(doc, Mapping) or not isinstance(doc.get("messages"), list):
            self.skips.add("session file without a messages array", where)
            return []
        session: str = doc["sessionId"] if isinstance(doc.get("sessionId"), str) else path.parent.name
        lead = doc.get("agent", "lead") == "lead"
        wall = self.ctx.clock()
        fallback = self._fallback_ts(doc, version, wall)
        messages: list[Any] = doc["messages"]
        # User messages carry no ts: a prompt happened just before the next assistant reply.
        next_ts: list[datetime | None] = [None] * len(messages)
        upcoming: datetime | None = None
        for i in range(len(messages) - 1, -1, -1):
            msg = messages[i]
            if isinstance(msg, Mapping) and msg.get("role") == "assistant" and msg.get("ts") is not None:
                try:
                    upcoming = from_epoch(msg.get("ts"), wall, unit=1000)
                except BadTimestamp:
                    pass
            next_ts[i] = upcoming
        events: list[UsageEvent] = []
        for i, msg in enumerate(messages):
            if not isinstance(msg, Mapping) or not isinstance(msg.get("id"), str):
                self.skips.add("session message without an id", f"{where}[{i}]")
                continue
            role = msg.get("role")
            blocks = _blocks(msg.get("content"))
            if role == "user":
                if lead and _is_prompt(blocks):
                    ts = next_ts[i] or fallback
                    if ts is not None:
                        events.append(UsageEvent(EventKind.PROMPT, ts, TOOL, f"{session}:{msg['id']}:prompt", session))
            elif role == "assistant":
                events.extend(self._assistant(msg, blocks, session, lead, wall, aliases, f"{where}[{i}]"))
        return events

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
        session: str,
        lead: bool,
        wall: datetime,
        aliases: McpAliases,
        where: str,
    ) -> list[UsageEvent]:
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
                f"{session}:{msg['id']}:call",
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
                events.append(UsageEvent(EventKind.MCP, ts, TOOL, f"{session}:{ident}:mcp", session, service=service))
        return events


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
