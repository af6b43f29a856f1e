"""Factory Droid (closed source): `~/.factory/sessions/**/<uuid>.jsonl` plus `<uuid>.settings.json`.

`~/.factory` is `$FACTORY_DIR` when set. Sessions are found by walking `sessions/` and through the discovery
index `sessions-index.json` (whose layout is unpublished: any `.jsonl` path it names).

The JSONL is appended one record per message and tailed by byte offset (`TailSet`). Line 1 is
`{"type":"session_start", id, title, cwd, callingSessionId?, …}`; then
`{"type":"message", id, timestamp, visibility?, message:{role, content[], model?, usage?, visibility?}}`.

- Prompt: a user message with text and no `tool_result`, neither `llm_only` (context for the model) nor
  `user_only` (a notice for the user: never sent) — the flag sits on the record or inside `message` —, not
  only `<system-reminder>` blocks, and not in a Task sub-session (its `session_start` has
  `callingSessionId`, or its title / first text starts `# Task Tool Invocation`). It counts once an
  assistant message answers it.
- Limit hit and refusal (0.225.2): once every retry of a 429 failed, Droid writes the error as a *user*
  message shown only to the user, then the turn's outcome:
  `{"type":"message","id":…,"parentId":<prompt id>,"timestamp":…,"message":{"role":"user","content":[{"type":
  "text","text":"BYOK Error: 429 {\\"type\\":\\"error\\",\\"error\\":{\\"type\\":\\"1308\\",\\"message\\":\\"Usage limit
  reached for 5 hour. Your limit will reset at 2026-12-03 05:43:49\\"}}\\n\\nIf this persists, …"}],
  "visibility":"user_only"}}` and `{"type":"agent_turn_outcome","turnId":<prompt id>,"reason":
  "model_rate_limited"}`. The `user_only` message's text gives the limit hit (`sources/limits.py`), dated by
  its record; the outcome counts the prompt as refused (`refused` stays None until one is seen: older
  builds left no trace).
- Model call: each assistant message. Tokens: per-message `usage` when present; otherwise growth of the
  cumulative `tokenUsage` in `<uuid>.settings.json` between polls is added to the session's latest call.
- MCP: `tool_use` parts; Droid names MCP tools `<server>___<tool>` (three underscores, seen in public
  Droid custom-droid configs), classified with aliases from `~/.factory/mcp.json`.
- Model: the session's `settings.json` `model`; BYOK ids `custom:<display name>-<index>` are resolved
  through `~/.factory/settings.json` `customModels` (legacy `~/.factory/config.json` `custom_models`),
  which also gives the base URL for the Coding-Plan endpoint check. API keys there are never read out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.events import CallRole, EventKind, LimitHit, UsageEvent
from zai_dash.domain.mcp import McpAliases, classify_mcp
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.safeio import listing_problem, open_regular
from zai_dash.sources.base import CallTokens, Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import BadTimestamp, int_field, loads, normalise_model, parse_iso
from zai_dash.sources.limits import limit_hit
from zai_dash.sources.rewritten import RewrittenJson
from zai_dash.sources.tail import TailSet

TOOL = "droid"
TOOLS = (ToolInfo(TOOL, "Factory Droid", ("FACTORY_DIR",), order=80),)
TASK_MARKER = "# Task Tool Invocation"
"""How Droid opens a Task-tool sub-session (its title or first prompt)."""
SETTINGS_SUFFIX = ".settings.json"
INDEX_NAME = "sessions-index.json"
HEADER_MAX_BYTES = 1024 * 1024
BORN_SLACK = timedelta(minutes=1)
"""A session whose first message is at most this much older than our first poll is new to us."""

_REMINDER = re.compile(r"\s*<system-reminder>.*?</system-reminder>\s*", re.DOTALL)
_CUSTOM_ID = re.compile(r"^custom:(?P<name>.*)-(?P<index>\d+)$")
_BRACKETS = re.compile(r"\[[^\]]*\]")
USER_ONLY = "user_only"
"""The visibility of what Droid shows the user but never sends to the model (its own error notices)."""
RATE_LIMITED = "model_rate_limited"
"""The `agent_turn_outcome` reason of a turn every attempt of which the server refused with 429 (0.225.2)."""
_TOKEN_KEYS = ("inputTokens", "outputTokens", "cacheCreationTokens", "cacheReadTokens", "thinkingTokens")


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A Droid model id resolved against the BYOK list: the model id sent and the base URL used."""

    model: str | None
    base_url: str | None = None


def resolve_model(raw: object, custom_models: list[Mapping[str, Any]]) -> ResolvedModel:
    """Resolve a session's `model`, following `custom:<display name>-<index>` into `customModels`.

    The index is trusted when its entry's display name agrees (or has none); otherwise the entry is
    found by display name, since editing the list shifts indexes. Without a match, the display name
    is normalised the way peers do (`custom:` and `[…]` dropped, lower-cased).
    """
    if not isinstance(raw, str) or not raw.strip():
        return ResolvedModel(None)
    match = _CUSTOM_ID.match(raw.strip())
    if not match:
        return ResolvedModel(normalise_model(raw))
    name, index = match.group("name"), int(match.group("index"))

    def display(entry: Mapping[str, Any]) -> str | None:
        # Droid puts the display name in the id with spaces turned into dashes.
        value = entry.get("displayName", entry.get("model_display_name"))
        return _slug(value) if isinstance(value, str) else None

    wanted = _slug(name)
    entry: Mapping[str, Any] | None = None
    if index < len(custom_models) and display(custom_models[index]) in (None, wanted):
        entry = custom_models[index]
    else:
        entry = next((e for e in custom_models if display(e) == wanted), None)
    if entry is not None and isinstance(entry.get("model"), str):
        base = entry.get("baseUrl", entry.get("base_url"))
        return ResolvedModel(normalise_model(entry["model"]), base if isinstance(base, str) else None)
    return ResolvedModel(normalise_model(_BRACKETS.sub("", name).strip(" -_")))


def _slug(text: str) -> str:
    return re.sub(r"\s+", "-", text.strip()).lower()


@dataclass
class _Session:
    """What is known of one session file."""

    session: str
    subagent: bool = False
    settled: bool = False
    """Whether the first records were seen (sub-agent status is decided there)."""
    model: str | None = None
    has_usage: bool = False
    last_call: UsageEvent | None = None
    token_base: tuple[int, ...] | None = None
    pending: CallTokens = field(default_factory=CallTokens)
    """Token growth not yet attached to a call."""
    first_ts: datetime | None = None
    """When the session's first message was written."""
    prompt: UsageEvent | None = None
    """The last prompt, until an assistant message shows it was sent, or its turn's outcome that it was
    refused (a prompt the client never sent leaves nothing but its user message)."""
    held: bool = False
    """Whether `last_call` is still held back from the batch, waiting for this poll's token growth."""


class DroidSource(ToolSource):
    """Factory Droid sessions."""

    name = "droid"
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx)
        self.factory_dir = factory_dir(ctx)
        self.sessions_dir = self.factory_dir / "sessions"
        self._tails = TailSet(self._discover, self.skips, since=ctx.since)
        self._settings = RewrittenJson(self.skips)
        self._config = RewrittenJson(self.skips)
        self._sessions: dict[Path, _Session] = {}
        self._bad_dirs: set[str] = set()
        """Directories already reported as unlistable."""
        self._primed_at: datetime | None = None
        """Wall time of the first poll: sessions that began after it count their tokens from zero."""
        self._refused: set[str] = set()
        """Turns (`session:prompt id`) refused: a line read again (a rolled-back poll) counts once."""

    # -- where -----------------------------------------------------------------------------------

    def _session_roots(self) -> list[Path]:
        return self.ctx.with_extra_roots(TOOL, [self.sessions_dir])

    def roots(self) -> list[Root]:
        """`~/.factory/sessions` (and extra roots from config)."""
        return [Root(p, p.is_dir()) for p in self._session_roots()]

    def _discover(self) -> list[Path]:
        """Every `<uuid>.jsonl` below the roots (older builds wrote them flat) or named by the session
        discovery index, modified in the window."""
        found: list[Path] = []
        for root in self._session_roots():
            # os.walk passes over a directory it cannot list; say so, or its sessions vanish without a word.
            for dirpath, _dirs, files in os.walk(root, onerror=self._unlistable):
                for name in files:
                    if not name.endswith(".jsonl"):
                        continue
                    path = Path(dirpath) / name
                    if self.ctx.path_relevant(path):
                        found.append(path)
        seen = set(found)
        for path in self._indexed():
            if path not in seen and self.ctx.path_relevant(path):
                seen.add(path)
                found.append(path)
        return found

    def _unlistable(self, exc: OSError) -> None:
        """Report a directory under a root that could not be listed, once per path (not on every poll)."""
        problem = listing_problem(exc)
        where = str(exc.filename)
        if problem is not None and where not in self._bad_dirs:
            self._bad_dirs.add(where)
            self.skips.add_file(problem, where)

    def _indexed(self) -> list[Path]:
        """Session files `sessions-index.json` names (a catalogue Droid keeps beside `sessions/`).

        Its layout is not published [unverified]: every string in it that names a `.jsonl` file is
        taken, absolute or relative to the Droid dir or its `sessions/`, so a session kept outside
        `sessions/` is still found. Files that do not exist are passed over.
        """
        version = self._config.current(self.factory_dir / INDEX_NAME)
        if version is None:
            return []
        out: list[Path] = []
        stack: list[Any] = [version.value]
        while stack:
            value = stack.pop()
            if isinstance(value, Mapping):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, str) and value.endswith(".jsonl"):
                raw = Path(value).expanduser()
                for path in (raw,) if raw.is_absolute() else (self.factory_dir / raw, self.sessions_dir / raw):
                    if path.is_file():
                        out.append(path)
                        break
        return out

    def file_count(self) -> int:
        """Session files being tailed."""
        return len(self._tails.tails)

    def tail_sets(self) -> list[TailSet]:
        """The JSONL tails, so the on-disk cache can resume them at their offsets."""
        return [self._tails]

    # -- settings --------------------------------------------------------------------------------

    def custom_models(self) -> list[Mapping[str, Any]]:
        """BYOK entries: `settings.json` `customModels`, else legacy `config.json` `custom_models`."""
        for name, key in (("settings.json", "customModels"), ("config.json", "custom_models")):
            version = self._config.current(self.factory_dir / name)
            models = version.value.get(key) if version and isinstance(version.value, Mapping) else None
            if isinstance(models, list) and models:
                return [m if isinstance(m, Mapping) else {} for m in models]
        return []

    def aliases(self) -> McpAliases:
        """MCP servers from `~/.factory/mcp.json`."""
        version = self._config.current(self.factory_dir / "mcp.json")
        if version is None or not isinstance(version.value, Mapping):
            return McpAliases()
        return McpAliases.from_servers(version.value.get("mcpServers"))

    def configs(self) -> dict[str, ToolConfigInfo]:
        """The model of the most recently active session, resolved through the BYOK list."""
        newest: tuple[float, Path] | None = None
        for path in self._tails.tails:
            settings = _settings_path(path)
            try:
                mtime = settings.stat().st_mtime
            except OSError:
                continue
            if newest is None or mtime > newest[0]:
                newest = (mtime, settings)
        if newest is None:
            return {}
        version = self._settings.current(newest[1])
        raw = version.value.get("model") if version and isinstance(version.value, Mapping) else None
        resolved = resolve_model(raw, self.custom_models())
        if resolved.model is None:
            return {}
        return {
            TOOL: ToolConfigInfo(
                model=resolved.model,
                model_detail=f"{newest[1].name} model {raw}",
                base_url=resolved.base_url,
                endpoint=classify_base_url(resolved.base_url) if resolved.base_url else None,
            )
        }

    # -- reading ---------------------------------------------------------------------------------

    def poll(self) -> SourceBatch:
        """New JSONL lines, then token growth from the settings files."""
        batch = SourceBatch()
        aliases = self.aliases()
        custom = self.custom_models()
        wall = self.ctx.clock()
        for tail, line in self._tails.poll():
            state = self._sessions.get(tail.path)
            fresh = state is None
            if state is None:
                state = self._sessions[tail.path] = _Session(session=tail.path.stem)
            where = f"{tail.path}:{line.number}"
            try:
                rec = loads(line.data)
            except ValueError:
                rec = None
            if fresh and not (isinstance(rec, dict) and rec.get("type") == "session_start"):
                # Resumed from the cache or seeked past old lines: the header still decides sub-agency.
                header = _read_header(tail.path)
                if header is not None:
                    self._record(header, state, aliases, wall, f"{tail.path}:1", batch.limit_hits)
            if rec is None:
                self.skips.add("malformed JSON line", where)
                continue
            if not isinstance(rec, dict):
                self.skips.add("JSON line is not an object", where)
                continue
            if state.model is None:
                state.model = self._session_model(tail.path, custom)
            batch.events.extend(self._record(rec, state, aliases, wall, where, batch.limit_hits))
        for gone in [p for p in self._sessions if p not in self._tails.tails]:
            state = self._sessions.pop(gone)
            if state.held and state.last_call is not None:
                batch.events.append(state.last_call)
        batch.events.extend(self._token_growth(custom))
        if self._primed_at is None:
            self._primed_at = wall
        return batch

    def _session_model(self, path: Path, custom: list[Mapping[str, Any]]) -> str | None:
        version = self._settings.current(_settings_path(path))
        raw = version.value.get("model") if version and isinstance(version.value, Mapping) else None
        return resolve_model(raw, custom).model

    def _record(
        self,
        rec: Mapping[str, Any],
        state: _Session,
        aliases: McpAliases,
        wall: datetime,
        where: str,
        hits: list[LimitHit],
    ) -> list[UsageEvent]:
        """The events of one record; a limit hit it names goes to `hits`."""
        kind = rec.get("type")
        if kind == "session_start":
            title = rec["title"] if isinstance(rec.get("title"), str) else ""
            state.subagent = bool(rec.get("callingSessionId")) or title.lstrip().startswith(TASK_MARKER)
            if isinstance(rec.get("id"), str) and rec["id"]:
                state.session = rec["id"]
            return []
        if kind == "agent_turn_outcome":
            self._outcome(rec, state)
            return []
        if kind != "message":
            return []  # todo_state, session_event, …
        msg = rec.get("message")
        ident = rec.get("id")
        if not isinstance(msg, Mapping) or not isinstance(ident, str):
            self.skips.add("message record without message or id", where)
            return []
        try:
            ts = parse_iso(rec.get("timestamp"), wall)
        except BadTimestamp as exc:
            self.skips.add(f"message: {exc}", where)
            return []
        if state.first_ts is None or ts < state.first_ts:
            state.first_ts = ts
        parts = _parts(msg.get("content"))
        role = msg.get("role")
        session = state.session
        if role == "user":
            if USER_ONLY in (rec.get("visibility"), msg.get("visibility")):
                # The client's own notice (an API error once retries gave up): never sent, maybe a limit.
                hit = limit_hit(_joined_text(parts), ts, TOOL)
                if hit is not None:
                    hits.append(hit)
                return []
            text = _prompt_text(rec, msg, parts)
            if text is None:
                return []
            if not state.settled and text.startswith(TASK_MARKER):
                state.subagent = True
            state.settled = True
            if state.subagent:
                return []
            # Counted once answered: a prompt the server refused (429) or the client never sent leaves
            # only its user message, and the next prompt replaces it unanswered.
            state.prompt = UsageEvent(EventKind.PROMPT, ts, TOOL, f"{session}:{ident}:prompt", session)
            return []
        if role != "assistant":
            return []
        state.settled = True
        answered, state.prompt = state.prompt, None
        usage = msg.get("usage") if isinstance(msg.get("usage"), Mapping) else None
        tokens_in = tokens_out = cached = 0
        if usage is not None:
            state.has_usage = True
            # Anthropic-style: `input_tokens` excludes the cache, which is added back in.
            cached = int_field(usage.get("cache_read_input_tokens", usage.get("cacheReadTokens")))
            tokens_in = (
                int_field(usage.get("input_tokens", usage.get("inputTokens")))
                + cached
                + int_field(usage.get("cache_creation_input_tokens", usage.get("cacheCreationTokens")))
            )
            tokens_out = int_field(usage.get("output_tokens", usage.get("outputTokens")))
        model = normalise_model(msg.get("model")) or state.model
        call = UsageEvent(
            EventKind.CALL,
            ts,
            TOOL,
            f"{session}:{ident}:call",
            session,
            model=model,
            role=CallRole.SUBAGENT if state.subagent else CallRole.MAIN,
            tokens=tokens_in + tokens_out,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cached_tokens=cached,
        )
        events = [] if answered is None else [answered]
        if state.last_call is None or call.ts >= state.last_call.ts:
            if state.held and state.last_call is not None:
                events.append(state.last_call)  # no longer the latest: the growth will not go to it
            state.last_call, state.held = call, usage is None
            if usage is not None:
                events.append(call)
        else:
            events.append(call)
        for n, part in enumerate(parts):
            if part.get("type") != "tool_use" or not isinstance(part.get("name"), str):
                continue
            service = _classify(part["name"], aliases)
            if service is not None:
                use_id = part.get("id") if isinstance(part.get("id"), str) else f"{ident}#{n}"
                events.append(UsageEvent(EventKind.MCP, ts, TOOL, f"{session}:{use_id}:mcp", session, service=service))
        return events

    def _outcome(self, rec: Mapping[str, Any], state: _Session) -> None:
        """A turn's end: one the server refused (`RATE_LIMITED`) is a refused prompt, never billed."""
        turn = rec.get("turnId")
        if rec.get("reason") != RATE_LIMITED or not isinstance(turn, str) or state.subagent:
            return
        key = f"{state.session}:{turn}:prompt"
        if state.prompt is not None and state.prompt.key == key:
            state.prompt = None  # an assistant message later on (a retry by hand) does not answer it
        if key not in self._refused:
            self._refused.add(key)
            self.refused = len(self._refused)

    def _token_growth(self, custom: list[Mapping[str, Any]]) -> list[UsageEvent]:
        """Attach growth of each session's cumulative `tokenUsage` to its latest call, and hand that call on.

        A session's latest call without per-message usage is held back by `_record` until here, so it
        reaches the ledger once, with its tokens. Sent early with none and then again grown, it relied on
        the ledger replacing the first copy: a copy older than the ledger's detail day is folded on
        arrival, and only the last `RECENT_FOLDS_KEPT` folds can still be replaced, so a cold scan of a
        few hundred day-old sessions kept their calls at zero tokens.
        """
        events: list[UsageEvent] = []
        for path, state in self._sessions.items():
            version = self._settings.current(_settings_path(path))
            if version is not None and isinstance(version.value, Mapping):
                resolved = resolve_model(version.value.get("model"), custom).model
                state.model = resolved or state.model
                usage = version.value.get("tokenUsage")
                if isinstance(usage, Mapping):
                    totals = tuple(int_field(usage.get(k)) for k in _TOKEN_KEYS)
                    if state.token_base is None:
                        # Totals of a session that began before we started are history: baseline only.
                        # One that began while we watch counts from zero.
                        # So does one that began inside the cycle horizon: a cold `report` must see its
                        # tokens, which no message record carries (0.225.2 writes usage only here).
                        horizon = self.ctx.calls_since
                        born_later = state.first_ts is not None and (
                            (self._primed_at is not None and state.first_ts >= self._primed_at - BORN_SLACK)
                            or (horizon is not None and state.first_ts >= horizon)
                        )
                        state.token_base = (0,) * len(_TOKEN_KEYS) if born_later else totals
                    if totals != state.token_base and not state.has_usage:
                        d = [max(0, now - was) for now, was in zip(totals, state.token_base, strict=False)]
                        # _TOKEN_KEYS: input, output, cache creation, cache read, thinking.
                        state.pending = state.pending.plus(CallTokens(d[0] + d[2] + d[3], d[1] + d[4], d[3]))
                    state.token_base = totals
            if state.last_call is not None and any(state.pending):
                grow = state.pending
                call = state.last_call
                state.last_call = replace(
                    call,
                    tokens=call.tokens + grow.total,
                    input_tokens=call.input_tokens + grow.input,
                    output_tokens=call.output_tokens + grow.output,
                    cached_tokens=call.cached_tokens + grow.cached,
                    model=call.model or state.model,
                )
                state.pending = CallTokens()
                events.append(state.last_call)
            elif state.held and state.last_call is not None:
                events.append(state.last_call)
            state.held = False
        return events


def _read_header(path: Path) -> dict[str, Any] | None:
    """The file's first line when it is a `session_start` record, else None."""
    try:
        with open_regular(path) as handle:
            first = handle.readline(HEADER_MAX_BYTES)
        rec = loads(first)
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("type") == "session_start" else None


def _settings_path(jsonl: Path) -> Path:
    return jsonl.with_name(jsonl.stem + SETTINGS_SUFFIX)


def _parts(content: object) -> list[Mapping[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [p for p in content if isinstance(p, Mapping)]
    return []


def _joined_text(parts: list[Mapping[str, Any]]) -> str:
    return "\n".join(p["text"] for p in parts if p.get("type") == "text" and isinstance(p.get("text"), str))


def _prompt_text(rec: Mapping[str, Any], msg: Mapping[str, Any], parts: list[Mapping[str, Any]]) -> str | None:
    """The typed text of a user message that is a human prompt, or None when it is not one."""
    if "llm_only" in (rec.get("visibility"), msg.get("visibility")):
        return None  # context injected for the model, never shown to the user
    if any(p.get("type") == "tool_result" for p in parts):
        return None
    text = _joined_text(parts)
    while True:
        stripped = _REMINDER.sub("", text, count=1) if text.lstrip().startswith("<system-reminder>") else text
        if stripped == text:
            break
        text = stripped
    text = text.strip()
    return text or None


def _classify(name: str, aliases: McpAliases) -> Any:
    server, sep, tool = name.partition("___")
    if sep and tool:
        return classify_mcp(server, tool, aliases)
    return classify_mcp(None, name, aliases)


def factory_dir(ctx: SourceContext) -> Path:
    """Droid's home: `$FACTORY_DIR`, else `~/.factory` (sessions, settings, BYOK models, MCP servers)."""
    explicit = (ctx.env.get("FACTORY_DIR") or "").strip()
    return Path(explicit).expanduser() if explicit else ctx.home / ".factory"


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The Factory Droid source."""
    return [DroidSource(ctx)]
