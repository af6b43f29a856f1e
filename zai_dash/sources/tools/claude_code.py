"""Claude Code: session transcripts (append-only JSONL) → prompts, model calls, Z.ai MCP calls, limit hits.

Layout (log-formats.md §1): `<root>/projects/<slug>/<session>.jsonl`, sub-agents in
`<root>/projects/<slug>/<session>/subagents/agent-<id>.jsonl` (older: `agent-<id>.jsonl` beside the
session). Roots: every entry of `$CLAUDE_CONFIG_DIR` (comma-separated), else `$XDG_CONFIG_HOME/claude`
and `~/.claude`, plus configured extra roots.

Dedup rules (see `_call`):

* Claude Code writes one line per streamed content block, repeating `message.id`, `requestId` and a
  growing `usage`. A call's key is `message.id:requestId` (`message.id` alone without a request id);
  a repeat is only re-emitted when its token total grew, and the ledger keeps the largest copy.
* `/btw` side conversations replay parent messages: same `message.id`, a new `requestId`, in a
  sidechain. Rule: per session, the first copy of a `message.id` owns it. A sidechain copy of a
  message first seen in the main chain is dropped; a main-chain copy of a message first seen in a
  sidechain (files read out of order) is folded into the sidechain copy's key, so the ledger holds one
  call. Two main-chain (or two sidechain) copies with different request ids stay separate calls.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from zai_dash.domain.events import CallRole, EventKind, LimitHit, UsageEvent
from zai_dash.domain.mcp import McpAliases, classify_mcp
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import BadTimestamp, int_field, loads, parse_iso
from zai_dash.sources.safeio import entry_is_dir, list_dir
from zai_dash.sources.tail import JsonlTail, TailLine, TailSet
from zai_dash.sources.tools.claude_code_config import ENV_KEYS, ClaudeSettings, McpConfig, clean_model

TOOL = "claude-code"
TOOLS = (ToolInfo(TOOL, "Claude Code", ("CLAUDE_CONFIG_DIR", *ENV_KEYS), order=10),)

LEGIT_TYPES = frozenset(
    {
        "summary", "system", "progress", "queue-operation", "file-history-snapshot", "attachment",
        "ai-title", "custom-title", "agent-name", "agent-setting", "pr-link", "last-prompt", "mode",
        "permission-mode", "tag", "bridge-session", "cost-state", "worktree-state", "x-ai-title",
    }
)  # fmt: skip
"""Record types Claude Code writes that are never events: ignored silently, not counted as skipped."""

COMPACTION_PREFIX = "This session is being continued from a previous conversation"
WRAPPER_PREFIXES = (
    "<local-command-stdout>",
    "<local-command-stderr>",
    "<local-command-caveat>",
    "<command-name>",
    "<command-message>",
    "<bash-input>",
    "<bash-stdout>",
    "<bash-stderr>",
    "<task-notification>",
    "<user-memory-input>",
    "[Request interrupted by user",
)
"""User-entry texts that Claude Code writes itself (command and shell wrappers, interruptions, async
agent notifications): not prompts (claude-code-log `user_factory.py` patterns)."""

LIMIT_CODES = frozenset({1308, 1310, 1316, 1317, 1318, 1319, 1320, 1321})
"""Z.ai business codes for "usage limit reached, resets at …" (zai-quota-api.md §11)."""
# A code only counts inside `"code":"1308"`, `"type":"1308"` (Anthropic-style envelope) or `[1308]`,
# never as bare digits, which also occur inside request ids.
_CODE_RE = re.compile(r'(?:"(?:code|type)"\s*:\s*"?|\[)(13\d\d)(?!\d)')
_RESET_RE = re.compile(r"(?:reset at|将在)\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})")
ZAI_ZONE = timezone(timedelta(hours=8))
"""Z.ai writes the reset time as UTC+8 wall-clock time without a zone."""

# Lines that contain none of these can never be an event (they are progress, snapshots, titles…).
_MARKERS = (b'"user"', b'"assistant"', b'"remove"')
_TS_KEY = b'"timestamp":"'


@dataclass(slots=True)
class _Msg:
    """What we know of one `message.id` in one session: the owning copy's request id and key."""

    req: str | None
    key: str
    sidechain: bool
    tokens: int


class ClaudeCodeSource(ToolSource):
    """Claude Code's transcripts under every configured root."""

    name = TOOL
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx)
        self._roots = claude_roots(ctx)
        # A transcript untouched since the cycle horizon can only add MCP calls to the month: sweep it
        # for `mcp__` instead of reading it line by line.
        self._tails = TailSet(
            self._discover, self.skips, since=ctx.since, quiet_before=ctx.calls_since, needle=b"mcp__"
        )
        self._bad_paths: set[str] = set()
        self._msgs: dict[tuple[str, str], _Msg] = {}
        self._extra_keys: dict[str, int] = {}
        self._mcp_seen: set[str] = set()
        self._model_cache: dict[str, str | None] = {}
        home = ctx.home
        settings_dirs = (
            self._roots
            if ctx.env.get("CLAUDE_CONFIG_DIR", "").strip()
            else [home / ".claude", ctx.xdg("XDG_CONFIG_HOME", ".config") / "claude"]
        )
        settings_files: list[Path] = []
        for d in settings_dirs:
            settings_files += [d / "settings.local.json", d / "settings.json"]
        self._settings = ClaudeSettings(settings_files, home, ctx.env, self.skips)
        user_mcp = [home / ".claude.json"] + [d / ".claude.json" for d in settings_dirs]
        self._mcp = McpConfig(dict.fromkeys(user_mcp), self.skips)
        self._aliases = McpAliases()
        self._since_key: bytes | None = None
        self._calls_key: bytes | None = None
        if ctx.since is not None:
            self._since_key = ctx.since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S").encode()
        if ctx.calls_since is not None:
            self._calls_key = ctx.calls_since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S").encode()
        self._wall = ctx.clock()

    # -- ToolSource ------------------------------------------------------------------------------

    def roots(self) -> list[Root]:
        """The `projects` directory of every root, found or not."""
        return [Root(r / "projects", (r / "projects").is_dir()) for r in self._roots]

    def file_count(self) -> int:
        """How many transcript files are being tailed."""
        return len(self._tails.tails)

    def tail_sets(self) -> list[TailSet]:
        """The transcript tails, whose offsets the engine's cache keeps."""
        return [self._tails]

    def configs(self) -> dict[str, ToolConfigInfo]:
        """The configured model and endpoint from `settings.json` / `settings.local.json`."""
        return {TOOL: self._settings.info()}

    def poll(self) -> SourceBatch:
        """Read every line appended since the last poll; never raises for bad input."""
        batch = SourceBatch()
        self._wall = self.ctx.clock()
        self._aliases = self._mcp.refresh()
        for tail, line in self._tails.poll():
            try:
                self._line(tail, line, batch)
            except Exception as exc:  # one odd record must never stop the tail
                self.skips.add(f"unexpected record shape ({type(exc).__name__})", f"{tail.path}:{line.number}")
        return batch

    # -- discovery -------------------------------------------------------------------------------

    def _discover(self) -> list[Path]:
        """Every session and sub-agent transcript modified since `ctx.since` (a walk, no reads)."""
        found: list[Path] = []
        seen_dirs: set[str] = set()
        for root in self._roots:
            projects = root / "projects"
            try:
                real = os.path.realpath(projects)
            except OSError:
                continue
            if real in seen_dirs:
                continue  # ~/.config/claude may be a symlink to ~/.claude: read each file once
            seen_dirs.add(real)
            for slug in self._listing(projects):
                if entry_is_dir(slug):  # False for a symlink loop, not an exception that zeroes the tool
                    self._scan_project(Path(slug.path), found)
                elif slug.is_symlink() and not os.path.exists(slug.path):
                    self._bad_once(slug.path, "symlink loop or dangling symlink")
        return found

    def _scan_project(self, project: Path, found: list[Path]) -> None:
        for entry in self._listing(project):
            if entry.name.endswith(".jsonl"):
                self._candidate(entry, found)
            elif entry_is_dir(entry):
                for sub in self._listing(Path(entry.path) / "subagents"):
                    if sub.name.endswith(".jsonl"):
                        self._candidate(sub, found)

    def _candidate(self, entry: os.DirEntry[str], found: list[Path]) -> None:
        path = entry.path
        try:
            is_dir = entry.is_dir()
            mtime = entry.stat().st_mtime
        except OSError:
            return  # vanished between listing and stat
        if is_dir:
            self._bad_once(path, "a directory where a file was expected")
            return
        if not os.access(path, os.R_OK):
            self._bad_once(path, "unreadable file (permission denied)")
            return
        self._bad_paths.discard(path)
        if self.ctx.mtime_relevant(mtime):
            found.append(Path(path))

    def _listing(self, path: Path) -> list[os.DirEntry[str]]:
        entries, problem = list_dir(path)
        if problem is not None:  # an unreadable project must not vanish without a word
            self._bad_once(str(path), problem)
        return entries

    def _bad_once(self, path: str, reason: str) -> None:
        # Counted once per path, not on every poll.
        if path not in self._bad_paths:
            self._bad_paths.add(path)
            self.skips.add_file(reason, path)

    # -- records ---------------------------------------------------------------------------------

    def _line(self, tail: JsonlTail, line: TailLine, batch: SourceBatch) -> None:
        data = line.data
        if not any(m in data for m in _MARKERS):
            if data[:1] == b"{" and data.rstrip()[-1:] == b"}":
                return  # a well-formed-looking record of a type that is never an event
        elif self._older_than_since(data):
            return
        where = f"{tail.path}:{line.number}"
        try:
            rec = loads(data)
        except ValueError:
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self.skips.add("not UTF-8", where)
                return
            self.skips.add("malformed JSON", where)
            return
        if not isinstance(rec, dict):
            self.skips.add("not a JSON object", where)
            return
        kind = rec.get("type")
        if kind == "assistant":
            self._assistant(rec, tail.path, where, batch)
        elif kind == "user":
            self._user(rec, tail.path, where, batch)
        elif kind == "queue-operation":
            self._queue_operation(rec, tail.path, where, batch)
        elif not isinstance(kind, str):
            self.skips.add("record type missing or not a string", where)
        elif kind not in LEGIT_TYPES:
            self.skips.add("unknown record type", where)

    def _older_than_since(self, data: bytes) -> bool:
        """Byte-level early skip: the record's own (last, top-level) UTC timestamp says it cannot matter.

        Before `since` nothing matters; before `calls_since` only MCP calls (the monthly pool) do, so a
        line without `mcp__` in it is passed over unparsed. Only trusted when `"timestamp":"…Z"` is the
        line's last key, which makes it the top-level one (Claude Code writes it last on message
        lines); anything else goes through the full parse.
        """
        if self._since_key is None:
            return False
        i = data.rfind(_TS_KEY)
        if i < 0:
            return False
        start = i + len(_TS_KEY)
        end = data.find(b'"', start)
        if end < 0 or data[end - 1 : end] != b"Z" or data[end + 1 :].strip() != b"}":
            return False
        stamp = data[start : start + 19]
        if len(stamp) != 19 or stamp[10:11] != b"T":
            return False
        if stamp < self._since_key:
            return True
        return self._calls_key is not None and stamp < self._calls_key and b"mcp__" not in data

    def _stamp(self, rec: dict[str, Any], where: str) -> datetime | None:
        try:
            ts = parse_iso(rec.get("timestamp"), self._wall)
        except BadTimestamp as exc:
            self.skips.add(str(exc), where)
            return None
        if self.ctx.since is not None and ts < self.ctx.since:
            return None
        return ts

    def _session(self, rec: dict[str, Any], path: Path) -> str:
        session = rec.get("sessionId")
        if isinstance(session, str) and session:
            return session
        # A sub-agent file lives in <session>/subagents/: the session is the grandparent's name.
        return path.parent.parent.name if path.parent.name == "subagents" else path.stem

    def _model(self, raw: object) -> str | None:
        if not isinstance(raw, str):
            return None
        cached = self._model_cache.get(raw, "")
        if cached == "":
            cached = self._model_cache[raw] = clean_model(raw)
        return cached

    def _assistant(self, rec: dict[str, Any], path: Path, where: str, batch: SourceBatch) -> None:
        msg = rec.get("message")
        if not isinstance(msg, dict):
            self.skips.add("assistant record without a message object", where)
            return
        ts = self._stamp(rec, where)
        if ts is None:
            return
        raw_model = msg.get("model")
        if rec.get("isApiErrorMessage") is True or raw_model == "<synthetic>":
            hit = limit_hit(_texts(msg.get("content")), ts)
            if hit is not None:
                batch.limit_hits.append(hit)
            return
        sidechain = rec.get("isSidechain") is True or _is_subagent_file(path)
        session = self._session(rec, path)
        cwd = rec.get("cwd")
        if isinstance(cwd, str) and cwd and self._mcp.add_project(cwd):
            self._aliases = self._mcp.aliases
        model = self._model(raw_model)
        content = msg.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    self._tool_use(block, ts, session, model, batch)
        usage = msg.get("usage")
        if usage is None:
            return
        if not isinstance(usage, dict):
            self.skips.add("message.usage not an object", where)
            return
        mid = msg.get("id")
        if not isinstance(mid, str) or not mid:
            self.skips.add("assistant usage without message.id", where)
            return
        req = rec.get("requestId")
        self._call(mid, req if isinstance(req, str) and req else None, usage, ts, session, model,
                   sidechain, batch)  # fmt: skip

    def _call(
        self,
        mid: str,
        req: str | None,
        usage: dict[str, Any],
        ts: datetime,
        session: str,
        model: str | None,
        sidechain: bool,
        batch: SourceBatch,
    ) -> None:
        # `input_tokens` excludes the cache: reads and writes are added back in (metering.md §2).
        cached = int_field(usage.get("cache_read_input_tokens"))
        inp = int_field(usage.get("input_tokens")) + int_field(usage.get("cache_creation_input_tokens")) + cached
        out = int_field(usage.get("output_tokens"))
        tokens = inp + out
        key = f"{mid}:{req}" if req else mid
        ident = (session, mid)
        owner = self._msgs.get(ident)
        if owner is None:
            self._msgs[ident] = _Msg(req, key, sidechain, tokens)
        elif owner.req == req:
            if tokens <= owner.tokens:
                return  # a streaming repeat that adds nothing
            owner.tokens = tokens
        elif sidechain and not owner.sidechain:
            return  # a /btw replay of a main-chain message
        elif owner.sidechain and not sidechain:
            key = owner.key  # the replay was read first: fold the original into it
            if tokens <= owner.tokens:
                return
            owner.tokens = tokens
        else:
            # Same message id, another request, same chain: a distinct call with its own key.
            best = self._extra_keys.get(key, -1)
            if tokens <= best:
                return
            self._extra_keys[key] = tokens
        batch.events.append(
            UsageEvent(
                kind=EventKind.CALL,
                ts=ts,
                tool=TOOL,
                key=key,
                session=session,
                model=model,
                role=CallRole.SUBAGENT if sidechain else CallRole.MAIN,
                tokens=tokens,
                input_tokens=inp,
                output_tokens=out,
                cached_tokens=cached,
            )
        )

    def _tool_use(
        self, block: dict[str, Any], ts: datetime, session: str, model: str | None, batch: SourceBatch
    ) -> None:
        name = block.get("name")
        use_id = block.get("id")
        if not isinstance(name, str) or not name.startswith("mcp__") or not isinstance(use_id, str):
            return
        if use_id in self._mcp_seen:
            return
        server, _, tool = name[5:].partition("__")
        service = classify_mcp(server or None, tool or server, self._aliases)
        if service is None:
            return
        self._mcp_seen.add(use_id)
        batch.events.append(
            UsageEvent(
                kind=EventKind.MCP, ts=ts, tool=TOOL, key=f"mcp:{use_id}", session=session, model=model,
                service=service,
            )
        )  # fmt: skip

    def _user(self, rec: dict[str, Any], path: Path, where: str, batch: SourceBatch) -> None:
        msg = rec.get("message")
        if not isinstance(msg, dict):
            self.skips.add("user record without a message object", where)
            return
        content = msg.get("content")
        if not isinstance(content, (str, list)):
            self.skips.add("message.content missing or of the wrong type", where)
            return
        ts = self._stamp(rec, where)
        if ts is None:
            return
        if (
            rec.get("isSidechain") is True
            or _is_subagent_file(path)
            or rec.get("isMeta") is True
            or rec.get("isCompactSummary") is True
            or rec.get("toolUseResult") is not None
        ):
            return
        text = prompt_text(content)
        if text is None:
            return
        session = self._session(rec, path)
        uuid = rec.get("uuid")
        key = f"prompt:{uuid}" if isinstance(uuid, str) and uuid else f"prompt:{session}:{ts.isoformat()}"
        batch.events.append(UsageEvent(kind=EventKind.PROMPT, ts=ts, tool=TOOL, key=key, session=session))

    def _queue_operation(self, rec: dict[str, Any], path: Path, where: str, batch: SourceBatch) -> None:
        """`remove` = a message typed while the agent worked and fed to it as steering (claude-code-log's
        reading); it appears nowhere else, so it is a prompt. `enqueue`/`dequeue`/`popAll` only copy
        messages that are also written as `user` entries and are ignored."""
        if rec.get("operation") != "remove" or _is_subagent_file(path):
            return
        content = rec.get("content")
        text = prompt_text(content) if isinstance(content, (str, list)) else None
        if text is None:
            return
        ts = self._stamp(rec, where)
        if ts is None:
            return
        session = self._session(rec, path)
        batch.events.append(
            UsageEvent(
                kind=EventKind.PROMPT, ts=ts, tool=TOOL, key=f"steer:{session}:{ts.isoformat()}",
                session=session,
            )
        )  # fmt: skip


def prompt_text(content: str | list[Any]) -> str | None:
    """The text of a human prompt, or None when this user content is not one.

    A prompt is a string, or a list with at least one text block and no tool result, whose text is not
    a compaction summary, a command/shell wrapper, an interruption notice or a "Warmup" ping.
    """
    if isinstance(content, str):
        text = content
    else:
        texts: list[str] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_result":
                return None
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
        if not texts:
            return None
        text = texts[0] if len(texts) == 1 else "\n".join(texts)
    stripped = text.strip()
    if not stripped or stripped == "Warmup":
        return None
    if stripped.startswith(COMPACTION_PREFIX) or stripped.startswith(WRAPPER_PREFIXES):
        return None
    return stripped


def limit_hit(text: str, ts: datetime) -> LimitHit | None:
    """A LimitHit from an API-error entry's text, or None when it is not a Z.ai usage-limit error.

    Recognised: a limit code (`LIMIT_CODES`) in `"code":"1308"`, `"type":"1308"` or `[1308]` form, and/or
    "reset at YYYY-MM-DD HH:MM:SS" (or the Chinese "将在 … 重置"), read as UTC+8.
    """
    if not text:
        return None
    flat = text.replace('\\"', '"')
    code: int | None = None
    for match in _CODE_RE.finditer(flat):
        value = int(match.group(1))
        if value in LIMIT_CODES:
            code = value
            break
    reset = _RESET_RE.search(flat)
    if code is None and reset is None:
        return None
    reset_at: datetime | None = None
    if reset is not None:
        try:
            reset_at = datetime.fromisoformat(f"{reset.group(1)}T{reset.group(2)}").replace(tzinfo=ZAI_ZONE)
            reset_at = reset_at.astimezone(timezone.utc)
        except ValueError:
            reset_at = None
    return LimitHit(ts=ts, tool=TOOL, code=code, reset_at=reset_at)


def _texts(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _is_subagent_file(path: Path) -> bool:
    return path.parent.name == "subagents" or path.name.startswith("agent-")


def claude_roots(ctx: SourceContext) -> list[Path]:
    """Claude Code config dirs: `$CLAUDE_CONFIG_DIR` entries (comma list), else the XDG dir and `~/.claude`;
    then configured extra roots. An extra root may be a config dir or its `projects` dir."""
    raw = ctx.env.get("CLAUDE_CONFIG_DIR", "").strip()
    roots: list[Path] = []
    if raw:
        for part in raw.split(","):
            part = part.strip()
            if part:
                roots.append(ctx.home / part[2:] if part.startswith("~/") else Path(part))
    else:
        roots = [ctx.xdg("XDG_CONFIG_HOME", ".config") / "claude", ctx.home / ".claude"]
    for extra in ctx.extra_roots.get(TOOL, ()):
        roots.append(extra.parent if extra.name == "projects" else extra)
    return list(dict.fromkeys(roots))


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The Claude Code source (one, covering every root)."""
    return [ClaudeCodeSource(ctx)]


__all__ = ["ClaudeCodeSource", "claude_roots", "create_sources", "limit_hit", "prompt_text"]
