"""Codex CLI (`@openai/codex`): rollout files (append-only JSONL) → prompts, model calls, Z.ai MCP calls.

Layout: `$CODEX_HOME` (default `~/.codex`) holds `sessions/YYYY/MM/DD/rollout-<time>-<uuid>.jsonl` and,
once archived, `archived_sessions/`; `exec resume` appends to the session's own file. Every line is
`{timestamp, type, payload}`. What is read (seen in Codex CLI 0.169.0 run against a recording server,
`tests/fixtures/real/codex/`; older shapes as ccusage's Codex reader documents them):

- Prompt: `event_msg` `item_completed` with a `UserMessage` item (older builds: `event_msg`
  `user_message`). It counts only once its turn got a model response: a turn refused with 429 (the
  client gives up after its retries, `task_complete.error`) leaves no usage and is not a billed prompt.
- Model call: one `token_usage_record` per response (`payload.response_id`, `payload.usage`). Builds
  without those records give one `event_msg` `token_count` per response instead, whose
  `info.total_token_usage` is cumulative and is repeated unchanged by some builds: a count is a call only
  when the cumulative total grew, and its tokens are `info.last_token_usage` (else the growth). Once a file
  has shown a `token_usage_record`, its `token_count` events are ignored (they repeat the same usage).
  Tokens are OpenAI-style: `input_tokens` includes `cached_input_tokens`.
- MCP call: `event_msg` `item_completed` with an `McpToolCall` item (`server`, `tool`, `status`); only
  `status: "completed"` reached the server (a call refused by the approval policy is `failed`). Older
  builds: `event_msg` `mcp_tool_call_end` with `invocation{server, tool}` and a `result.Ok`.
- Sub-agent: a rollout whose `session_meta` has `source.subagent` (`thread_source: "subagent"`), written
  by `spawn_agent`; its calls are sub-agent calls of `parent_thread_id`'s session, its task is no prompt.
- Model: the latest `turn_context.model` (or `thread_settings_applied.thread_settings.model`) of the file.
- Limit hits: error texts (`error`, `stream_error`, `task_complete.error`) carrying Z.ai's code or reset
  time. Codex itself writes only "exceeded retry limit, last status: 429", so a hit is seen only when a
  proxy passes Z.ai's body through.
- Config: `$CODEX_HOME/config.toml` `model`, `model_provider` → `[model_providers.<id>] base_url`, and
  `[mcp_servers.<name>]` (url or command + args) for the MCP aliases. Keys (`env_key`, headers) are never read.
  Codex 0.169 talks to providers only over the Responses API (`wire_api = "chat"` is rejected).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import tomllib

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import McpAliases, mcp_event
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.configfiles import MAX_CONFIG_BYTES, CachedJson, mcp_targets
from zai_dash.sources.jsonl_source import JsonlSource, find_jsonl
from zai_dash.sources.jsonutil import int_field, normalise_model
from zai_dash.sources.limits import limit_hit

TOOL = "codex"
TOOLS = (ToolInfo(TOOL, "Codex CLI", ("CODEX_HOME",), order=90),)

SESSION_DIRS = ("sessions", "archived_sessions")
MAX_DEPTH = 4
"""`sessions/YYYY/MM/DD/<file>`: how deep discovery walks."""
IGNORED_TYPES = frozenset({"response_item", "world_state", "compacted", "session_state"})
"""Record types that never make an event (the conversation itself, state snapshots)."""


@dataclass
class _Rollout:
    """What is known of one rollout file."""

    rollout: str
    """The file's own id (the uuid in its name): MCP keys use it, so a needle-only read keys them alike."""
    session: str
    model: str | None = None
    role: CallRole = CallRole.MAIN
    uses_records: bool = False
    """Whether the file has `token_usage_record` lines (then `token_count` repeats them)."""
    last_total: int = 0
    """The highest cumulative `total_tokens` of a `token_count` so far."""
    pending: list[UsageEvent] = field(default_factory=list)
    """Prompts of the current turn, waiting for the turn's first model response."""
    billed_turn: bool = False


@dataclass(frozen=True)
class CodexConfig:
    """What `config.toml` says (never keys)."""

    model: str | None = None
    base_url: str | None = None
    aliases: McpAliases = field(default_factory=McpAliases)


def read_config(path: Path) -> CodexConfig:
    """Model, provider base URL and MCP aliases from `config.toml`; an unreadable or broken file gives defaults."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
            return CodexConfig()
        return codex_config(_toml(path.read_bytes()))
    except (OSError, ValueError):
        return CodexConfig()


def _toml(raw: bytes) -> Any:
    return tomllib.loads(raw.decode("utf-8", errors="replace"))  # TOMLDecodeError is a ValueError


def codex_config(data: Any) -> CodexConfig:
    """What a parsed `config.toml` says zai-dash needs (the document itself, keys and all, is dropped)."""
    if not isinstance(data, dict):
        return CodexConfig()
    providers = data.get("model_providers")
    provider = providers.get(data.get("model_provider")) if isinstance(providers, dict) else None
    base_url = provider.get("base_url") if isinstance(provider, dict) else None
    return CodexConfig(
        model=normalise_model(data.get("model")),
        base_url=base_url if isinstance(base_url, str) else None,
        aliases=McpAliases.from_targets(mcp_targets(data.get("mcp_servers"))),
    )


def codex_homes(ctx: SourceContext) -> list[Path]:
    """`$CODEX_HOME` (else `~/.codex`), then configured extra roots."""
    raw = ctx.env.get("CODEX_HOME", "").strip()
    return ctx.with_extra_roots(TOOL, [Path(raw).expanduser() if raw else ctx.home / ".codex"])


class CodexSource(JsonlSource):
    """Codex CLI rollouts under every Codex home."""

    name = TOOL
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        # Every MCP-call line names its server.
        super().__init__(ctx, needle=b'"server":')
        self._homes = codex_homes(ctx)
        self._files: dict[Path, _Rollout] = {}
        self._config = CodexConfig()
        # Every poll and every snapshot ask: parsed again only when the file changed.
        self._config_file = CachedJson(self._homes[0] / "config.toml", codex_config, CodexConfig(), parse=_toml)

    def roots(self) -> list[Root]:
        """`sessions/` and `archived_sessions/` of every Codex home, found or not."""
        return [Root(h / d, (h / d).is_dir()) for h in self._homes for d in SESSION_DIRS]

    def configs(self) -> dict[str, ToolConfigInfo]:
        """The configured model and provider base URL from `config.toml`."""
        cfg = self._config_file.get()
        if cfg.model is None and cfg.base_url is None:
            return {}
        return {
            TOOL: ToolConfigInfo(
                model=cfg.model,
                model_detail="config.toml model" if cfg.model else None,
                base_url=cfg.base_url,
                endpoint=classify_base_url(cfg.base_url) if cfg.base_url else None,
            )
        }

    def _refresh(self) -> None:
        self._config = self._config_file.get()

    def _discover(self) -> list[Path]:
        found: list[Path] = []
        for home in self._homes:
            for sub in SESSION_DIRS:
                find_jsonl(home / sub, MAX_DEPTH, self.ctx, found)
        return found

    def _state(self, path: Path) -> _Rollout:
        state = self._files.get(path)
        if state is None:
            # `rollout-<time>-<uuid>.jsonl`: the session id is the uuid, until `session_meta` says.
            stem = path.stem
            rollout = stem[-36:] if len(stem) > 36 else stem
            state = self._files[path] = _Rollout(rollout=rollout, session=rollout)
        return state

    def _record(self, path: Path, rec: dict[str, Any], where: str, batch: SourceBatch) -> None:
        kind, payload = rec["type"], rec.get("payload")
        if kind in IGNORED_TYPES or not isinstance(payload, dict):
            return
        state = self._state(path)
        if kind == "session_meta":
            self._session_meta(state, payload)
        elif kind == "turn_context":
            state.model = normalise_model(payload.get("model")) or state.model
        elif kind == "token_usage_record":
            ts = self._stamp(rec, where)
            if ts is not None:
                state.uses_records = True
                self._call(state, payload.get("usage"), f"resp:{payload.get('response_id')}", ts, batch)
        elif kind == "event_msg":
            self._event(state, payload, rec, where, batch)

    def _session_meta(self, state: _Rollout, payload: dict[str, Any]) -> None:
        session = payload.get("id")
        if isinstance(session, str) and session:
            state.session = session
        source = payload.get("source")
        if (isinstance(source, dict) and "subagent" in source) or payload.get("thread_source") == "subagent":
            # A spawned agent writes its own rollout; its calls belong to the parent's conversation.
            state.role = CallRole.SUBAGENT
            parent = payload.get("parent_thread_id")
            if isinstance(parent, str) and parent:
                state.session = parent

    def _event(
        self, state: _Rollout, payload: dict[str, Any], rec: dict[str, Any], where: str, batch: SourceBatch
    ) -> None:
        kind = payload.get("type")
        if kind == "task_started":
            state.pending, state.billed_turn = [], False
            return
        if kind == "thread_settings_applied":
            settings = payload.get("thread_settings")
            if isinstance(settings, dict):
                state.model = normalise_model(settings.get("model")) or state.model
            return
        if kind not in ("item_completed", "user_message", "token_count", "mcp_tool_call_end", "error",
                        "stream_error", "task_complete"):  # fmt: skip
            return
        ts = self._stamp(rec, where)
        if ts is None:
            return
        if kind == "item_completed":
            item = payload.get("item")
            if isinstance(item, dict) and item.get("type") == "UserMessage":
                self._prompt(state, f"prompt:{item.get('id')}", ts, batch)
            elif isinstance(item, dict) and item.get("type") == "McpToolCall" and item.get("status") == "completed":
                self._mcp(state, item.get("server"), item.get("tool"), item.get("id"), ts, batch)
        elif kind == "user_message":
            self._prompt(state, f"prompt:{state.session}:{ts.isoformat()}", ts, batch)
        elif kind == "token_count" and not state.uses_records:
            self._token_count(state, payload.get("info"), ts, batch)
        elif kind == "mcp_tool_call_end":
            invocation, result = payload.get("invocation"), payload.get("result")
            if isinstance(invocation, dict) and isinstance(result, dict) and "Ok" in result:
                self._mcp(state, invocation.get("server"), invocation.get("tool"), payload.get("call_id"), ts, batch)
        else:
            error = payload.get("error") if kind == "task_complete" else payload
            message = error.get("message") if isinstance(error, dict) else None
            hit = limit_hit(message, ts) if isinstance(message, str) else None
            if hit is not None:
                batch.limit_hits.append(replace(hit, tool=TOOL))

    def _prompt(self, state: _Rollout, key: str, ts: datetime, batch: SourceBatch) -> None:
        if state.role is not CallRole.MAIN:
            return
        event = UsageEvent(kind=EventKind.PROMPT, ts=ts, tool=TOOL, key=key, session=state.session)
        if state.billed_turn:
            batch.events.append(event)  # typed while the turn was already answered: a steering prompt
        else:
            state.pending.append(event)

    def _token_count(self, state: _Rollout, info: object, ts: datetime, batch: SourceBatch) -> None:
        if not isinstance(info, dict) or not isinstance(info.get("total_token_usage"), dict):
            return
        total = info["total_token_usage"]
        grand = int_field(total.get("total_tokens")) or (
            int_field(total.get("input_tokens")) + int_field(total.get("output_tokens"))
        )
        if grand <= state.last_total:
            return  # a repeat of the same cumulative count
        previous, state.last_total = state.last_total, grand
        usage = info.get("last_token_usage")
        if not isinstance(usage, dict):
            usage = {"input_tokens": grand - previous}
        self._call(state, usage, f"tc:{state.session}:{grand}", ts, batch)

    def _call(self, state: _Rollout, usage: object, key: str, ts: datetime, batch: SourceBatch) -> None:
        if not isinstance(usage, dict):
            return
        inp = int_field(usage.get("input_tokens"))
        out = int_field(usage.get("output_tokens"))
        cached = min(int_field(usage.get("cached_input_tokens")), inp)
        if inp + out == 0:
            return
        if not state.billed_turn:
            state.billed_turn = True
            batch.events += state.pending
            state.pending = []
        batch.events.append(
            UsageEvent(
                kind=EventKind.CALL, ts=ts, tool=TOOL, key=key, session=state.session,
                model=state.model or self._config.model, role=state.role, tokens=inp + out,
                input_tokens=inp, output_tokens=out, cached_tokens=cached,
            )
        )  # fmt: skip

    def _mcp(
        self, state: _Rollout, server: object, tool: object, call_id: object, ts: datetime, batch: SourceBatch
    ) -> None:
        if not isinstance(server, str) or not isinstance(tool, str):
            return
        key = f"mcp:{state.rollout}:{call_id}"
        aliases = self._config.aliases
        mcp = mcp_event(server, tool, aliases, ts=ts, tool=TOOL, key=key, session=state.session, model=state.model)
        if mcp is not None:
            batch.events.append(mcp)


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The Codex CLI source (one, covering every Codex home)."""
    return [CodexSource(ctx)]


__all__ = ["TOOLS", "CodexSource", "codex_homes", "create_sources", "read_config"]
