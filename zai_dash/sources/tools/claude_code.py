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
* Memory: a session keeps its last `RECENT_MSGS` message ids in full (the last copy's event, shared with
  the ledger) while they can still stream (`RECENT_FOR`), older ones as 8-byte marks of the chain that
  showed them first, which is all the /btw rule needs; a later copy of such a message in its own chain is
  emitted again and the ledger keeps the largest. Sessions quiet for `MSG_MEMORY` are forgotten.

Reading (see `_line`): a line is decoded with msgspec into the few fields the rules read (`_Rec`); the
message content and tool output, most of a line's bytes, stay raw JSON and are decoded only when a rule
needs them (a prompt's text, a pending MCP call's result, content that names `mcp__`). A line the decoder
does not take (malformed, not an object, `message` not an object, not UTF-8) goes the general way: the
byte screen, then orjson, which counts it as before. Unlike orjson, the decoder accepts a number beyond a
double in a field it skips (valid JSON; only the fields read must fit). Record types whose rules read the
whole record (`_DICT_TYPES`) are parsed into a dict as well.
"""

from __future__ import annotations

import os
import re
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec

from zai_dash.domain.bounds import MAX_TOKENS
from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.mcp import McpAliases, classify_mcp
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.domain.tools import ToolInfo
from zai_dash.safeio import entry_is_dir, list_dir
from zai_dash.sources.base import SPILL_EVENTS, CallTokens, Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import BadTimestamp, int_field, loads, parse_iso
from zai_dash.sources.limits import limit_hit
from zai_dash.sources.tail import JsonlTail, TailLine, TailSet
from zai_dash.sources.tools.claude_code_config import ENV_KEYS, ClaudeSettings, McpConfig, clean_model
from zai_dash.sources.tools.claude_code_hidden import HiddenCalls, estimate

TOOL = "claude-code"
TOOLS = (ToolInfo(TOOL, "Claude Code", ("CLAUDE_CONFIG_DIR", *ENV_KEYS), order=10),)

IGNORED_TYPES = frozenset(
    {
        "summary", "progress", "file-history-snapshot", "attachment", "custom-title", "agent-name",
        "agent-setting", "pr-link", "last-prompt", "mode", "permission-mode", "tag", "bridge-session",
        "worktree-state", "x-ai-title", "api-request-shape", "api-request-blob", "atis-latch",
        "tools-used",
    }
)  # fmt: skip
"""Record types Claude Code writes that are never events, passed over before any JSON parse when the
line opens with them (2.1's `api-request-blob` copies whole requests, `attachment` whole files). Any
other type a newer client adds is ignored quietly too (log-formats.md §11: 2.1's loader knows about 40).
`cost-state`, `api-request`, `ai-title` and `system` are read: they price and reveal hidden calls
(`claude_code_hidden`)."""

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


# Lines that contain none of these can never be an event (they are progress, snapshots, titles…).
_MARKERS = (b'"user"', b'"assistant"', b'"remove"', b'"system"', b'"ai-title"', b'"cost-state"')
_TS_KEY = b'"timestamp":"'
_TS_TAIL = 64
"""How far from a line's end its closing `"timestamp":"…Z"` is looked for first (an ISO stamp is ≤ 35 bytes)."""
_LEADING_TYPE = re.compile(
    rb'\{(?:"\w+":(?:"[^"\\]*"|-?\d+(?:\.\d+)?|true|false|null),)*(?:"type":"([\w-]+)"|"(attachment)":\{)'
)
"""The top-level `type` when only scalar keys precede it, as Claude Code writes most records; `attachment`
records (tens of KB each) put their object before their type and are known by that key."""
_PREFIX_BYTES = 512
_IGNORED_TYPE_BYTES = frozenset(k.encode() for k in IGNORED_TYPES)
_SCREEN_BYTES = 16 * 1024
"""Lines longer than this get the full byte screen before a parse (it pays for itself on request copies)."""
_SKIP, _API, _PARSE = object(), object(), object()
"""What the byte screen says of a line: pass it over, read it as an `api-request`, or parse it."""
_MAIN, _SUBAGENT = CallRole.MAIN, CallRole.SUBAGENT
_API_REQUEST = re.compile(
    rb'"sessionId":"([^"]*)","id":"([^"]+)","timestamp":"([^"]+)"(?:.*?"querySource":"([^"]*)")?'
    rb'(?:.*?"params":\{"model":"([^"]*)")?'
)
"""What an `api-request` record (2.1) opens with: session, request id, time, caller and model."""

QUIET_NEEDLES = (b"mcp__", b'"is_error":true')
"""What a line of a quiet transcript must contain to matter: an MCP call, or an error result."""
MSG_MEMORY = timedelta(hours=6)
"""How long a quiet session's message ids are remembered for the dedup rules (see `_forget_quiet`)."""
SETTLE = timedelta(minutes=30)
"""A prompt or MCP call whose outcome (an answer, a refusal, a tool result) has not been written this
long after it is taken as billed: a crashed client writes no outcome, but its request went out."""
RECENT_MSGS = 256
"""How many message ids a session keeps in full (their last copy, for the streaming and /btw rules of
`_call`); older ones keep 8 bytes each (`_Marks`). Claude Code writes a message's copies while it
streams, one line per content block, before the next request of its chain; this leaves room for a
main-chain message and its parallel sub-agents' messages streaming at once."""
RECENT_FOR = SETTLE
"""A message id whose last copy is this much older than its session's latest call (or, for a quiet
session, than the wall clock) keeps only its 8 bytes: no stream lasts that long."""

NOT_SENT_RESULTS = (
    "doesn't want to proceed",
    "doesn't want to take this action",
    "tool use was rejected",
    "haven't granted",
    "has been denied",
    "permission to use",
    "no such tool",
    "not connected",
    "request interrupted",
)
"""Error `tool_result` texts (lower-cased) that mean the tool call never left the client: a denied
permission, an interruption, a tool or server that is not available. Such a call is no MCP call."""


_ABSENT = msgspec.Raw()


class _Message(msgspec.Struct):
    """The parts of a record's `message` the rules read. The content stays raw JSON (`msgspec.Raw`): most
    of a line's bytes are text, thinking and tool input, which a decode into this skips without building."""

    id: Any = None
    model: Any = None
    usage: Any = None
    content: msgspec.Raw = _ABSENT


class _Rec(msgspec.Struct):
    """The top-level fields of a transcript record the rules read; every field takes any JSON value, so a
    record of an odd shape is judged by the rules (counted as they say), never refused by the decoder."""

    type: Any = None
    message: Any = None
    timestamp: Any = None
    sessionId: Any = None
    requestId: Any = None
    isSidechain: Any = None
    isApiErrorMessage: Any = None
    isMeta: Any = None
    isCompactSummary: Any = None
    cwd: Any = None
    uuid: Any = None
    promptId: Any = None
    toolUseResult: msgspec.Raw = _ABSENT  # a tool's whole output: only whether it is there counts


class _Entry(_Rec):
    """`_Rec` as decoded from a line: `message` an object (or null/absent); any other `message` fails the
    decode, and the line goes the general way (`_general`)."""

    message: _Message | None = None


class _Block(msgspec.Struct):
    """What an assistant content block says of a tool call (the tool's input is skipped)."""

    type: Any = None
    name: Any = None
    id: Any = None


_DECODE_ENTRY = msgspec.json.Decoder(_Entry).decode
_DECODE_BLOCKS = msgspec.json.Decoder(list[_Block]).decode
_DECODE_ANY = msgspec.json.Decoder().decode
_DECODE_ERRORS = (msgspec.DecodeError, RecursionError)
"""What a msgspec decode raises on a line it cannot read (too deep a nesting is a `RecursionError`)."""
_DICT_TYPES = frozenset({"queue-operation", "system", "ai-title", "cost-state"})
"""Record types whose rules read the whole record: parsed into a dict (they are few and short)."""
_QUOTE, _BRACKET = ord('"'), ord("[")


@dataclass(slots=True)
class _Pending:
    """An event whose outcome is not written yet (a prompt's answer, an MCP call's result)."""

    event: UsageEvent
    path: Path
    sent: bool = False
    """For a prompt: its first request attempt was seen (`api-request`), which dates it."""


@dataclass(slots=True)
class _Msg:
    """One recent `message.id` of a session: the call its owning copy was last emitted as (the largest
    copy so far: its key, tokens and model, the very object the ledger holds, so nothing is copied)."""

    event: UsageEvent
    sidechain: bool
    extra: dict[str, UsageEvent] | None = None
    """Further requests for this message id in the same chain: key → the call as last emitted."""


_MERGE_AT = 32


class _Marks:
    """A set of 64-bit marks (`hash()` of an id, `_mark`) at about 8 bytes each: a sorted `array` and the
    marks added since it was last rebuilt (a small set, ~80 bytes a mark, merged once it holds `_MERGE_AT`
    or a sixteenth as many).

    `hash()` of a string is salted per process: the marks live only as long as the process (the cache
    keeps no dedup state), so they need no stable digest. Two ids share a mark with odds of about n²/2⁶⁴.
    """

    __slots__ = ("_new", "_sorted")

    def __init__(self) -> None:
        self._sorted = array("q")
        self._new: set[int] = set()

    def __len__(self) -> int:
        return len(self._sorted) + len(self._new)

    def __contains__(self, mark: int) -> bool:
        if mark in self._new:
            return True
        found = self._sorted
        i = bisect_left(found, mark)
        return i < len(found) and found[i] == mark

    def add(self, mark: int) -> None:
        """Add `mark` (once)."""
        if mark in self:
            return
        self._new.add(mark)
        if len(self._new) >= max(_MERGE_AT, len(self._sorted) >> 4):
            self._sorted = array("q", sorted([*self._sorted, *self._new]))
            self._new.clear()

    def chain(self, mid: str) -> bool | None:
        """Whether a message id was marked by `_mark` as a sidechain's (True), the main chain's (False), or not."""
        base = _mark(mid, False)
        if base in self:
            return False
        return True if base | 1 in self else None


def _mark(ident: str, sidechain: bool) -> int:
    """An id's mark: its `hash()` with the lowest bit saying which chain first showed it."""
    return (hash(ident) & ~1) | sidechain


@dataclass(slots=True)
class _SessionMsgs:
    """The message ids one session has shown, until it has been quiet for `MSG_MEMORY`.

    The last `RECENT_MSGS` (and only while `RECENT_FOR` lets them stream) in full, the others as marks of
    8 bytes that say which chain showed them first: enough for the /btw rule, which drops a sidechain
    replay of a main-chain message whenever it comes. A copy of an older message in its own chain is
    emitted again and the ledger keeps the largest copy of its key (see `_call`).
    """

    last: datetime
    """The latest call time seen in the session."""
    recent: dict[str, _Msg] = field(default_factory=dict)
    """Message id → its state, in the order first seen."""
    old: _Marks = field(default_factory=_Marks)
    """The message ids that left `recent` (`_mark`)."""
    dropped: int = 0
    """Ids taken out of `recent` since it was last rebuilt."""

    def demote(self, before: datetime | None) -> None:
        """Mark the oldest recent ids beyond `RECENT_MSGS` or last seen before `before` (None: every one)."""
        recent = self.recent
        while recent:
            mid = next(iter(recent))
            msg = recent[mid]
            if before is not None and len(recent) <= RECENT_MSGS and msg.event.ts >= before:
                return
            del recent[mid]
            self.old.add(_mark(mid, msg.sidechain))
            self.dropped += 1
            if self.dropped >= RECENT_MSGS // 4:
                # A dict keeps the slots of deleted entries until it grows: taken from the front and added
                # at the end, it would swing between one and three times its size. A copy is compact.
                self.recent = recent = dict(recent)
                self.dropped = 0


class ClaudeCodeSource(ToolSource):
    """Claude Code's transcripts under every configured root."""

    name = TOOL
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx)
        self._roots = claude_roots(ctx)
        self._stats: dict[Path, os.stat_result] = {}
        """The stat discovery took of each file it found, for the tail to use (see `TailSet`)."""
        # A transcript untouched since the cycle horizon can only add MCP calls to the month: sweep it
        # for them (and the error results that say a call was never sent) instead of reading every line.
        self._tails = TailSet(
            self._discover,
            self.skips,
            since=ctx.since,
            quiet_before=ctx.calls_since,
            needle=QUIET_NEEDLES,
            stats=self._stats,
        )
        self._bad_paths: set[str] = set()
        self._msgs: dict[str, _SessionMsgs] = {}
        """Per session, what the dedup rules (see `_call`) need to know of the message ids seen."""
        self._names: dict[str, str] = {}
        """One string per session id named by a file's place, which every event of the session shares
        (a record's `sessionId` equal to it is not kept: see `_session`)."""
        self._group: tuple[str, str] | None = None
        """The session file group being read (see `_enter`)."""
        self._mcp_seen = _Marks()
        """The MCP `tool_use` ids seen (a replayed or re-read one is not pending again)."""
        self._prompts: dict[str, _Pending] = {}
        """Per session, the last prompt not yet answered (emitted on the answer, dropped on a refusal)."""
        self._mcp_calls: dict[str, _Pending] = {}
        """MCP tool_use id → the call, until its result says whether it reached the server."""
        self._last_ts: dict[Path, datetime] = {}
        self._untimed_titles: dict[Path, tuple[str, object]] = {}
        self._open_request: dict[Path, UsageEvent] = {}
        """Per file, the last `api-request` attempt not yet answered (an estimated call if it never is)."""
        self._last_model: dict[str, str] = {}
        self._hidden = HiddenCalls()
        self.refused = 0  # a refusal always leaves an API-error answer here
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
        # The file whose lines are being read (see `_enter`) and the line's number, for skip reasons.
        self._file: JsonlTail | None = None
        self._where_path = ""
        self._number = 0
        self._sub = False
        self._file_session = ""

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
        events = batch.events
        for tail, line in self._tails.poll():
            try:
                self._line(tail, line, batch)
            except Exception as exc:  # one odd record must never stop the tail
                self.skips.add(f"unexpected record shape ({type(exc).__name__})", f"{tail.path}:{line.number}")
            if len(events) >= SPILL_EVENTS:
                self.spill_if_full(batch)
        self._settle(batch)
        batch.events.extend(self._hidden.flush())
        return batch

    def _settle(self, batch: SourceBatch) -> None:
        """Emit pending prompts and MCP calls whose outcome will not come any more.

        Settled: older than `SETTLE` by the wall clock, or in a file not written since the cycle
        horizon (whose first read may have been a sweep that skips answers and plain results).
        """
        cutoff = self._wall - SETTLE
        quiet = self.ctx.calls_since.timestamp() if self.ctx.calls_since is not None else None
        for pending in (self._prompts, self._mcp_calls):
            for ident, item in list(pending.items()):
                if item.event.ts < cutoff or (quiet is not None and _mtime(item.path) < quiet):
                    del pending[ident]
                    batch.events.append(item.event)

    # -- discovery -------------------------------------------------------------------------------

    def _discover(self) -> list[Path]:
        """Every session and sub-agent transcript modified since `ctx.since` (a walk, no reads)."""
        found: list[Path] = []
        self._stats.clear()
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
                self._candidate(entry, project, found)
            elif entry_is_dir(entry):
                # Listed by its name (a string): most session folders hold no sub-agent files, and a
                # Path is made once per folder that does, each file's then joined to it by name.
                folder: Path | None = None
                for sub in self._listing(os.path.join(entry.path, "subagents")):
                    if sub.name.endswith(".jsonl"):
                        if folder is None:
                            folder = project / entry.name / "subagents"
                        self._candidate(sub, folder, found)

    def _candidate(self, entry: os.DirEntry[str], folder: Path, found: list[Path]) -> None:
        path = entry.path
        try:
            is_dir = entry.is_dir()
            st = entry.stat()
        except OSError:
            return  # vanished between listing and stat
        if is_dir:
            self._bad_once(path, "a directory where a file was expected")
            return
        if not os.access(path, os.R_OK):
            self._bad_once(path, "unreadable file (permission denied)")
            return
        self._bad_paths.discard(path)
        if self.ctx.mtime_relevant(st.st_mtime):
            file = folder / entry.name  # a join parses the name alone, not the whole path again
            found.append(file)
            self._stats[file] = st

    def _listing(self, path: Path | str) -> list[os.DirEntry[str]]:
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
        if tail is not self._file:
            self._enter(tail)
        self._number = line.number
        data = line.data
        path = tail.path
        if len(data) > _SCREEN_BYTES or (self._since_key is not None and self._older_than_since(data)):
            # Long or old: the full byte screen before any parse. A short line of a type that is never an
            # event costs a decode that skips its fields, less than screening every line for it would.
            route = self._screen(data)
            if route is _SKIP:
                return
            if route is _API:
                self._api_request(data, path, batch)
                return
        rec: _Rec | None
        if not data.isascii() and not _utf8(data):
            rec = None  # msgspec does not check the text it skips: the general way counts the line
        else:
            try:
                rec = _DECODE_ENTRY(data)
            except _DECODE_ERRORS:
                rec = None
        full: dict[str, Any] | None = None
        if rec is None:
            # Not read by the decoder. The byte screen first: a line of a type that is never an event is
            # passed over, an `api-request` read from its head (a torn one too); then the general parse
            # counts the line as the rules say, or reads what it can.
            route = self._screen(data)
            if route is _SKIP:
                return
            if route is _API:
                self._api_request(data, path, batch)
                return
            full = self._general(data)
            if full is None:
                return
            rec = _from_dict(full)
        kind = rec.type
        if kind == "assistant":
            self._assistant(rec, path, batch)
        elif kind == "user":
            self._user(rec, path, batch)
        elif kind in _DICT_TYPES:
            if full is None:
                full = self._general(data)
                if full is None:
                    return
            if kind == "queue-operation":
                self._queue_operation(full, path, batch)
            elif kind == "system":
                self._system(full, path, batch)
            elif kind == "ai-title":
                self._title(full, path, batch)
            else:
                self._hidden.cost_state(self._session(full.get("sessionId")), full)
        elif kind == "api-request":
            if self._screen(data) is _API:  # what the screen of a long line reads as one, nothing else
                self._api_request(data, path, batch)
        elif not isinstance(kind, str) and self._screen(data) is not _SKIP:
            self._skip("record type missing or not a string")
        # Any other type is known-and-ignored (`IGNORED_TYPES`) or new in a later client: quietly passed over.

    def _general(self, data: bytes) -> dict[str, Any] | None:
        """The line parsed whole (orjson), or None when it is no JSON object (counted unless never an event)."""
        try:
            rec = loads(data)
        except ValueError:
            if self._screen(data) is _SKIP:
                return None  # a well-formed-looking line of a type that is never an event: passed over unparsed
            if not _utf8(data):
                self._skip("not UTF-8")
                return None
            self._skip("malformed JSON")
            return None
        if not isinstance(rec, dict):
            if self._screen(data) is not _SKIP:
                self._skip("not a JSON object")
            return None
        return rec

    def _enter(self, tail: JsonlTail) -> None:
        """What is the same for every line of a file, worked out once when its lines start."""
        self._file = tail
        path = tail.path
        self._where_path = str(path)
        self._sub = _is_subagent_file(path)
        # A sub-agent file lives in <session>/subagents/: the session is the grandparent's name.
        if path.parent.name == "subagents":
            name = path.parent.parent.name
            group = (str(path.parent.parent.parent), name)
        else:
            name = path.stem
            group = (str(path.parent), name)
        self._file_session = self._names.setdefault(name, name)
        if group != self._group:
            # A session's files are read one after the other (`<session>.jsonl`, then `<session>/subagents/`):
            # leaving them is when the sessions that have gone quiet can be forgotten.
            self._group = group
            self._forget_quiet()

    def _forget_quiet(self) -> None:
        """Drop the message ids of sessions without a call for `MSG_MEMORY`, so memory follows recent use.

        The ledger still holds their calls and keeps the largest copy of each key; what is given up is
        only the /btw rules (see `_call`) for a copy that comes after such a gap, and the evidence that
        prices the session's hidden calls and its last model, as after a restart from the cache, which
        keeps none of them either. A session quiet for `RECENT_FOR` keeps its message ids as marks only.
        """
        horizon, settled = self._wall - MSG_MEMORY, self._wall - RECENT_FOR
        msgs = self._msgs
        for session in [s for s, state in msgs.items() if state.last < settled]:
            if msgs[session].last < horizon:
                del msgs[session]
                self._hidden.forget(session)
                self._last_model.pop(session, None)
            else:
                msgs[session].demote(None)  # quiet: nothing streams any more
        names = self._names
        if len(names) > len(msgs) + len(self._prompts) + 1:
            for name in [n for n in names if n not in msgs and n not in self._prompts]:
                del names[name]
            names[self._file_session] = self._file_session

    def _skip(self, reason: str) -> None:
        """Count the current line as skipped for `reason`."""
        self.skips.add(reason, f"{self._where_path}:{self._number}")

    def _screen(self, data: bytes) -> object:
        """Before any parse: `_SKIP` a line that is never an event, `_API` an `api-request`, else `_PARSE`.

        A known non-event type at the head of the line (maybe megabytes of request copy) is never parsed;
        a well-formed-looking line without any event marker cannot be an event; nor can a line whose own
        timestamp is before the horizon (`_older_than_since`).
        """
        leading = _LEADING_TYPE.match(data, 0, _PREFIX_BYTES)
        if leading is not None:
            kind = leading.group(1) or leading.group(2)
            if kind in _IGNORED_TYPE_BYTES:
                return _SKIP
            if kind == b"api-request":
                return _API
        if not any(m in data for m in _MARKERS):
            if data[:1] == b"{" and data.rstrip()[-1:] == b"}":
                return _SKIP
        elif self._older_than_since(data):
            return _SKIP
        return _PARSE

    def _older_than_since(self, data: bytes) -> bool:
        """Byte-level early skip: the record's own (last, top-level) UTC timestamp says it cannot matter.

        Before `since` nothing matters; before `calls_since` only MCP calls (the monthly pool) do, so a
        line without `mcp__` in it is passed over unparsed. Only trusted when `"timestamp":"…Z"` is the
        line's last key, which makes it the top-level one (Claude Code writes it last on message
        lines); anything else goes through the full parse.
        """
        if self._since_key is None:
            return False
        last = data[-2:]
        if last == b'"}':
            # The common shape, `…,"timestamp":"<ISO>Z"}` at the very end: only its tail is searched.
            i = data.rfind(_TS_KEY, len(data) - _TS_TAIL)
            if i < 0:
                i = data.rfind(_TS_KEY)
                if i < 0:
                    return False
            start = i + len(_TS_KEY)
            if data.find(b'"', start) != len(data) - 2 or data[-3:-2] != b"Z":
                return False
        elif not last[-1:].isspace():
            return False  # ends in neither `"}` nor blanks: the timestamp is not the last key (tool results)
        else:
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
        # Before the cycle horizon only MCP calls matter, and the results that say whether they were sent.
        return (
            self._calls_key is not None
            and stamp < self._calls_key
            and b"mcp__" not in data
            and b'"tool_result"' not in data
        )

    def _stamp(self, value: object) -> datetime | None:
        """A record's `timestamp` as aware UTC, or None when it is bad (counted) or before `since`."""
        try:
            ts = parse_iso(value, self._wall)
        except BadTimestamp as exc:
            self._skip(str(exc))
            return None
        since = self.ctx.since
        if since is not None and ts < since:
            return None
        return ts

    def _at(self, path: Path, ts: datetime, batch: SourceBatch) -> None:
        """The file's latest record time, for records that carry none (`ai-title`, which may come first)."""
        self._last_ts[path] = ts
        if self._untimed_titles:
            untimed = self._untimed_titles.pop(path, None)
            if untimed is not None:
                self._title_call(untimed[0], untimed[1], ts, batch)

    def _session(self, session: object) -> str:
        """A record's `sessionId` when it is one, else the session its file's place names (see `_enter`)."""
        if type(session) is str and session:
            # The file's own session (nearly always): its one string, not a copy per event.
            return self._file_session if session == self._file_session else session
        return self._file_session

    def _model(self, raw: object) -> str | None:
        if not isinstance(raw, str):
            return None
        cached = self._model_cache.get(raw, "")
        if cached == "":
            cached = self._model_cache[raw] = clean_model(raw)
        return cached

    def _assistant(self, rec: _Rec, path: Path, batch: SourceBatch) -> None:
        msg = rec.message
        if type(msg) is not _Message:
            self._skip("assistant record without a message object")
            return
        ts = self._stamp(rec.timestamp)
        if ts is None:
            return
        self._at(path, ts, batch)
        raw_model = msg.model
        sidechain = rec.isSidechain is True or self._sub
        session = self._session(rec.sessionId)
        if rec.isApiErrorMessage is True or raw_model == "<synthetic>":
            hit = limit_hit(_texts(_value(msg.content)), ts)
            if hit is not None:
                batch.limit_hits.append(hit)
            self._open_request.pop(path, None)  # the attempt was answered by an error: not billed
            if not sidechain and rec.isApiErrorMessage is True:
                self._refuse(session)
            return
        cwd = rec.cwd
        if type(cwd) is str and cwd and self._mcp.add_project(cwd):
            self._aliases = self._mcp.aliases
        model = self._model(raw_model)
        if model:
            self._last_model[session] = model
        content = msg.content
        if len(content) and memoryview(content)[0] == _BRACKET and _may_call_mcp(bytes(content)):
            for block in _blocks(content):
                if block.type == "tool_use":
                    self._tool_use(block.name, block.id, ts, session, model, path)
        usage = msg.usage
        if usage is None:
            return
        if self._open_request:
            self._open_request.pop(path, None)
        if self._prompts:
            self._answered(session, batch)
        if type(usage) is not dict:
            self._skip("message.usage not an object")
            return
        mid = msg.id
        if type(mid) is not str or not mid:
            self._skip("assistant usage without message.id")
            return
        req = rec.requestId
        self._call(mid, req if type(req) is str and req else None, usage, ts, session, model,
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
        cached = _tokens(usage.get("cache_read_input_tokens"))
        inp = _tokens(usage.get("input_tokens")) + _tokens(usage.get("cache_creation_input_tokens")) + cached
        out = _tokens(usage.get("output_tokens"))
        tokens = inp + out
        key = f"{mid}:{req}" if req else mid
        state = self._msgs.get(session)
        if state is None:
            state = self._msgs[session] = _SessionMsgs(ts)
        elif ts > state.last:
            state.last = ts
        owner = state.recent.get(mid)
        previous: UsageEvent | None = None
        if owner is None:
            chain = state.old.chain(mid) if state.old else None
            if chain is not None and chain is not sidechain:
                # An older message's copy in the other chain: a /btw replay of a main-chain message, or
                # (files read out of order, long apart) the original of a replay the ledger already holds.
                return
            # New, or another copy of an older message in its own chain (a stream does not last that long:
            # a file read again after a truncation): the ledger keeps the largest copy of its key.
        elif owner.event.key == key:
            if tokens <= owner.event.tokens:
                return  # a streaming repeat that adds nothing
            previous = owner.event
        elif sidechain and not owner.sidechain:
            return  # a /btw replay of a main-chain message
        elif owner.sidechain and not sidechain:
            key = owner.event.key  # the replay was read first: fold the original into it
            if tokens <= owner.event.tokens:
                return
            previous = owner.event
        else:
            # Same message id, another request, same chain: a distinct call with its own key.
            previous = owner.extra.get(key) if owner.extra else None
            if previous is not None and tokens <= previous.tokens:
                return
        event = UsageEvent(EventKind.CALL, ts, TOOL, key, session, model, _SUBAGENT if sidechain else _MAIN, None,
                           tokens, inp, out, None, cached)  # fmt: skip
        if owner is None:
            state.recent[mid] = _Msg(event, sidechain)
            state.demote(state.last - RECENT_FOR)
        elif key == owner.event.key:
            owner.event = event
        elif owner.extra is None:
            owner.extra = {key: event}
        else:
            owner.extra[key] = event
        self._hidden.recorded(
            session,
            model,
            CallTokens(inp, out, cached),
            None if previous is None else (previous.model, _call_tokens(previous)),
        )
        batch.events.append(event)

    def _answered(self, session: str, batch: SourceBatch) -> None:
        """A model answer in `session`: its pending prompt was sent and billed."""
        pending = self._prompts.pop(session, None)
        if pending is not None:
            batch.events.append(pending.event)

    def _refuse(self, session: str) -> None:
        """The client gave up on `session`'s request (a synthetic API-error answer): the prompt was not billed."""
        if self._prompts.pop(session, None) is not None:
            self.refused = (self.refused or 0) + 1

    def _tool_use(
        self, name: object, use_id: object, ts: datetime, session: str, model: str | None, path: Path
    ) -> None:
        if not isinstance(name, str) or not name.startswith("mcp__") or not isinstance(use_id, str):
            return
        if hash(use_id) in self._mcp_seen:
            return
        server, _, tool = name[5:].partition("__")
        service = classify_mcp(server or None, tool or server, self._aliases)
        if service is None:
            return
        self._mcp_seen.add(hash(use_id))
        event = UsageEvent(
            kind=EventKind.MCP, ts=ts, tool=TOOL, key=f"mcp:{use_id}", session=session, model=model, service=service
        )
        self._mcp_calls[use_id] = _Pending(event, path)

    def _tool_results(self, content: list[Any], batch: SourceBatch) -> None:
        """Results of pending MCP calls: a call whose error result says it never left the client is dropped."""
        for block in content:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            use_id = block.get("tool_use_id")
            pending = self._mcp_calls.pop(use_id, None) if isinstance(use_id, str) else None
            if pending is None:
                continue
            if block.get("is_error") is True:
                text = _texts(block.get("content")).lower()
                if any(marker in text for marker in NOT_SENT_RESULTS):
                    continue
            batch.events.append(pending.event)

    def _system(self, rec: dict[str, Any], path: Path, batch: SourceBatch) -> None:
        """`api_error`: a Z.ai limit code per attempt. `compact_boundary`: one compaction call, unlogged."""
        subtype = rec.get("subtype")
        if subtype not in ("api_error", "compact_boundary"):
            return
        ts = self._stamp(rec.get("timestamp"))
        if ts is None:
            return
        self._at(path, ts, batch)
        session = self._session(rec.get("sessionId"))
        if subtype == "api_error":
            self._open_request.pop(path, None)  # refused; the retry writes its own api-request
            hit = limit_hit(_flat_text(rec), ts)
            if hit is not None:
                batch.limit_hits.append(hit)
            return
        uuid = rec.get("uuid")
        ident = uuid if isinstance(uuid, str) and uuid else ts.isoformat()
        batch.events.append(self._hidden.compaction(session, ident, ts, self._last_model.get(session)))

    def _title(self, rec: dict[str, Any], path: Path, batch: SourceBatch) -> None:
        """`ai-title`: the session-title call (interactive sessions), which has no assistant record.

        Written again unchanged later in the session (one call); a new title is another call. It has no
        time of its own: it takes the file's latest (or, written first, the next) record's.
        """
        session = self._session(rec.get("sessionId"))
        title = rec.get("aiTitle", rec.get("title"))
        ts = self._last_ts.get(path)
        if ts is None:
            self._untimed_titles[path] = (session, title)
        else:
            self._title_call(session, title, ts, batch)

    def _title_call(self, session: str, title: object, ts: datetime, batch: SourceBatch) -> None:
        if self.ctx.since is None or ts >= self.ctx.since:
            batch.events.append(self._hidden.title(session, title, ts))

    def _api_request(self, data: bytes, path: Path, batch: SourceBatch) -> None:
        """`api-request` (2.1): one per request attempt. One followed by another with neither an answer
        nor an error between was billed (a stream cut and retried) but left no assistant record."""
        match = _API_REQUEST.search(data, 0, _PREFIX_BYTES * 4)
        if match is None:
            return
        session, ident, stamp, caller, model = (g.decode("utf-8", "replace") if g else None for g in match.groups())
        try:
            ts = parse_iso(stamp, self._wall)
        except BadTimestamp as exc:
            self._skip(str(exc))
            return
        self._at(path, ts, batch)
        unanswered = self._open_request.pop(path, None)
        if unanswered is not None:
            batch.events.append(unanswered)
        if self.ctx.since is not None and ts < self.ctx.since:
            return
        sub = self._sub or (caller or "").startswith("agent:")
        session = session or self._file_session
        prompt = None if sub else self._prompts.get(session)
        if prompt is not None and not prompt.sent and ts >= prompt.event.ts:
            # The plan meters a prompt when its request arrives, seconds after it was typed (2.1 writes
            # the user record first): the window it opens starts at the request.
            prompt.event, prompt.sent = replace(prompt.event, ts=ts), True
        event = estimate("retry", ident or "", ts, session, self._model(model))
        self._open_request[path] = replace(event, role=CallRole.SUBAGENT if sub else CallRole.MAIN)

    def _user(self, rec: _Rec, path: Path, batch: SourceBatch) -> None:
        msg = rec.message
        if type(msg) is not _Message:
            self._skip("user record without a message object")
            return
        raw = msg.content
        if not len(raw) or memoryview(raw)[0] not in (_QUOTE, _BRACKET):
            self._skip("message.content missing or of the wrong type")
            return
        ts = self._stamp(rec.timestamp)
        if ts is None:
            return
        self._at(path, ts, batch)
        is_list = memoryview(raw)[0] == _BRACKET
        if self._mcp_calls and is_list:
            self._tool_results(_value(raw), batch)  # only the results of pending MCP calls matter
        if (
            rec.isSidechain is True
            or self._sub
            or rec.isMeta is True
            or rec.isCompactSummary is True
            or _present(rec.toolUseResult)
        ):
            return
        text = prompt_text(_value(raw))
        if text is None:
            return
        session = self._session(rec.sessionId)
        # `promptId` is the `prompt.id` of Claude Code's OpenTelemetry events: one key for both (sources/otlp.py).
        uuid = rec.promptId or rec.uuid
        key = f"prompt:{uuid}" if isinstance(uuid, str) and uuid else f"prompt:{session}:{ts.isoformat()}"
        event = UsageEvent(kind=EventKind.PROMPT, ts=ts, tool=TOOL, key=key, session=session)
        previous = self._prompts.get(session)
        if previous is not None and previous.event.key != key:
            batch.events.append(previous.event)  # typed again before an answer was written: both went out
        self._prompts[session] = _Pending(event, path)

    def _queue_operation(self, rec: dict[str, Any], path: Path, batch: SourceBatch) -> None:
        """`remove` = a message typed while the agent worked and fed to it as steering (claude-code-log's
        reading); it appears nowhere else, so it is a prompt. `enqueue`/`dequeue`/`popAll` only copy
        messages that are also written as `user` entries and are ignored."""
        if rec.get("operation") != "remove" or self._sub:
            return
        content = rec.get("content")
        text = prompt_text(content) if isinstance(content, (str, list)) else None
        if text is None:
            return
        ts = self._stamp(rec.get("timestamp"))
        if ts is None:
            return
        session = self._session(rec.get("sessionId"))
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


def _texts(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _utf8(data: bytes) -> bool:
    """Whether a line is valid UTF-8 (as JSON must be)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _value(raw: msgspec.Raw) -> Any:
    """A raw field decoded (None when it was absent)."""
    return _DECODE_ANY(raw) if len(raw) else None


def _present(raw: msgspec.Raw) -> bool:
    """Whether a raw field was there and not `null` (what `rec.get(key) is not None` says of a dict)."""
    return len(raw) > 0 and not (len(raw) == 4 and bytes(raw) == b"null")


def _may_call_mcp(content: bytes) -> bool:
    """Whether assistant content may hold an MCP `tool_use` (only those count): a name that starts with
    `mcp__` spelt plainly, or escapes that could spell one."""
    return b'"mcp__' in content or b"\\u" in content


def _blocks(content: msgspec.Raw) -> list[_Block]:
    """An assistant content list's blocks; what is not an object in it is passed over."""
    try:
        return _DECODE_BLOCKS(content)
    except msgspec.ValidationError:
        return [_Block(b.get("type"), b.get("name"), b.get("id")) for b in _DECODE_ANY(content) if type(b) is dict]


def _raw(rec: dict[str, Any], key: str) -> msgspec.Raw:
    return msgspec.Raw(msgspec.json.encode(rec[key])) if key in rec else _ABSENT


def _from_dict(rec: dict[str, Any]) -> _Rec:
    """A record the decoder did not read (the general parse did) in the shape the rules read."""
    msg = rec.get("message")
    if type(msg) is dict:
        msg = _Message(msg.get("id"), msg.get("model"), msg.get("usage"), _raw(msg, "content"))
    return _Rec(
        rec.get("type"), msg, rec.get("timestamp"), rec.get("sessionId"), rec.get("requestId"),
        rec.get("isSidechain"), rec.get("isApiErrorMessage"), rec.get("isMeta"), rec.get("isCompactSummary"),
        rec.get("cwd"), rec.get("uuid"), rec.get("promptId"), _raw(rec, "toolUseResult"),
    )  # fmt: skip


def _flat_text(rec: dict[str, Any]) -> str:
    """Every string in a record, joined (an `api_error` keeps the raw body in varying fields)."""
    out: list[str] = []
    stack: list[Any] = [rec]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return "\n".join(out)


def _tokens(value: object) -> int:
    """`int_field`, with the common case (a plain non-negative int) answered inline."""
    if type(value) is int and 0 <= value < MAX_TOKENS:
        return value
    return int_field(value)


def _call_tokens(event: UsageEvent) -> CallTokens:
    return CallTokens(event.input_tokens, event.output_tokens, event.cached_tokens)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


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
