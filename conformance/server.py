"""A recording fake of Z.ai's GLM endpoints, on 127.0.0.1 only.

It speaks the three wire formats the coding clients use — Anthropic Messages (`…/v1/messages`), OpenAI
Chat Completions (`…/chat/completions`) and OpenAI Responses (`…/responses`), streaming or not — plus
the `web-search-prime` MCP server (streamable HTTP, JSON answers). Every request it answers is recorded
(`Exchange`): that list is the ground truth the suite compares zai-dash with.

What it answers is scripted by markers in the human's text, so any client's conversation drives the
same script without knowing the client:

* `zd:plain` (or no marker): one text answer.
* `zd:multi`: one shell/read tool call, then text (a prompt that costs two calls).
* `zd:search`: a call to the `webSearchPrime` MCP tool (through the client's tool-search tool first
  when MCP tools are deferred), then text.
* `zd:agent`: a call to the client's sub-agent tool with a `zd:sub` prompt, then text.
* `zd:sub`: the sub-agent's own conversation: text.
* `zd:refuse` / `zd:refuse-weekly`: HTTP 429 with Z.ai's 1308 / 1310 body, every attempt.

Each answer carries a nonce (`zd<n>`) in its response id, tool-call ids and text (see `traced_in_text`),
so the suite can tell which answered calls left a record in the client's files (the rest are hidden).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ZAI_ZONE = timezone(timedelta(hours=8))
"""Z.ai names reset times in UTC+8 wall-clock time without a zone."""
WINDOW = timedelta(hours=5)
MARKER_RE = re.compile(r"zd:(refuse-weekly|refuse|plain|multi|search|agent|sub)\b")
SEARCH_TOOL = "webSearchPrime"
DEFERRED_RE = re.compile(r"(?<![\w-])([\w-]*web-search-prime_+webSearchPrime)\b")
SHELL_TOOLS = (
    "bash", "shell", "execute_command", "exec_command", "execute", "run_command", "run_commands", "run_shell_command",
)  # fmt: skip
READ_TOOLS = ("read", "read_file", "view", "read_files")
AGENT_TOOLS = ("agent", "task", "spawn_agent", "subagent", "use_subagents", "new_task")
TOOL_SEARCH_TOOLS = ("toolsearch", "tool_search", "search_tools")
COMPACT_HINTS = ("summary of the conversation", "summarize the conversation", "compact", "summarise the conversation")
TITLE_HINTS = ("title", "Title")


@dataclass
class Exchange:
    """One request the server answered (or refused): a line of the ground truth.

    Attributes:
        n: sequence number; the nonce is `zd<n>`.
        ts: when it was answered (ISO, UTC).
        api: `anthropic`, `chat`, `responses` or `mcp`.
        path: the request path.
        status: HTTP status sent.
        model: the model the client asked for.
        stream: whether the answer was streamed.
        marker: the script marker in the human's text (`plain` when none).
        purpose: `main`, `subagent`, `title`, `compact` or `auxiliary` (from the request's content).
        action: what was answered: `text`, `tool:<name>`, `refused:<code>`, `mcp:<method>`.
        input_tokens: prompt tokens answered, cached included.
        cached_tokens: the cached part of `input_tokens`.
        output_tokens: completion tokens answered.
        response_id: the id sent back (carries the nonce).
        hint: the start of the last user text (to tell calls apart by eye).
    """

    n: int
    ts: str
    api: str
    path: str
    status: int
    model: str | None = None
    stream: bool = False
    marker: str = "plain"
    purpose: str = "main"
    action: str = "text"
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    response_id: str = ""
    hint: str = ""

    @property
    def nonce(self) -> str:
        return f"zd{self.n:04d}"


@dataclass
class Conversation:
    """A request reduced to what the script needs, whatever the wire format."""

    texts: list[str]
    """The user-role texts, oldest first (tool results excluded)."""
    calls_since_human: list[str]
    """Names of the tool calls the assistant made after the last human text with a marker."""
    tools: dict[str, dict[str, Any]]
    """Offered tool name → its JSON schema."""
    system: str = ""
    size: int = 0
    turns: int = 0
    api: str = ""

    @property
    def marker(self) -> str:
        """The script marker of the last human text that has one (`plain` when none)."""
        for text in reversed(self.texts):
            m = MARKER_RE.search(text)
            if m:
                return m.group(1)
        return "plain"

    @property
    def first_marker(self) -> str:
        """The marker the conversation started with: `sub` for a sub-agent's own conversation."""
        for text in self.texts:
            m = MARKER_RE.search(text)
            if m:
                return m.group(1)
        return "plain"


@dataclass
class Decision:
    kind: str  # text | tool | refused
    tool: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    text: str = ""
    code: int = 0


class Recorder:
    """Thread-safe list of exchanges, optionally mirrored to a JSONL file."""

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []
        self._path = path
        self.window_start: datetime | None = None

    def next_n(self) -> int:
        with self._lock:
            return len(self.exchanges) + 1

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            exchange.n = len(self.exchanges) + 1
            self.exchanges.append(exchange)
            if self._path:
                with open(self._path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(asdict(exchange)) + "\n")

    def reset_at(self, now: datetime) -> datetime:
        """The 5-hour window's reset: 5 h after the first request (a window opens at the first request)."""
        with self._lock:
            if self.window_start is None:
                self.window_start = now
            return self.window_start + WINDOW

    def snapshot(self) -> list[Exchange]:
        with self._lock:
            return list(self.exchanges)


def refusal_message(code: int, reset: datetime) -> str:
    """Z.ai's message for a 1308 (5-hour) or 1310 (weekly) refusal, reset time in UTC+8 without a zone."""
    when = reset.astimezone(ZAI_ZONE).strftime("%Y-%m-%d %H:%M:%S")
    if code == 1310:
        return f"Weekly/Monthly Limit Exhausted. Your limit will reset at {when}"
    return f"Usage limit reached for 5 hour. Your limit will reset at {when}"


# --- reading requests -------------------------------------------------------------------------------


def _text_of(content: Any) -> tuple[str, bool]:
    """(text, is_tool_result) of a message content in any of the three formats."""
    if isinstance(content, str):
        return content, False
    texts: list[str] = []
    tool_result = False
    for part in content or []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type", "")
        if kind in ("tool_result", "function_call_output"):
            tool_result = True
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
    return "\n".join(texts), tool_result and not texts


def anthropic_conversation(body: dict[str, Any]) -> Conversation:
    tools = {t.get("name", ""): t.get("input_schema") or {} for t in body.get("tools") or [] if isinstance(t, dict)}
    system = body.get("system")
    system_text = system if isinstance(system, str) else _text_of(system)[0]
    texts: list[str] = []
    calls: list[str] = []
    for msg in body.get("messages") or []:
        if msg.get("role") == "user":
            text, only_results = _text_of(msg.get("content"))
            if not only_results and MARKER_RE.search(text):
                texts.append(text)
                calls = []
            elif not only_results:
                texts.append(text)
        elif msg.get("role") == "assistant" and isinstance(msg.get("content"), list):
            calls += [p.get("name", "") for p in msg["content"] if isinstance(p, dict) and p.get("type") == "tool_use"]
    size = len(json.dumps(body.get("messages") or [])) + len(system_text)
    return Conversation(texts, calls, tools, system_text, size, len(body.get("messages") or []))


def chat_conversation(body: dict[str, Any]) -> Conversation:
    tools = {}
    for t in body.get("tools") or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict):
            tools[fn.get("name", "")] = fn.get("parameters") or {}
    texts: list[str] = []
    calls: list[str] = []
    system = ""
    for msg in body.get("messages") or []:
        role = msg.get("role")
        text, _ = _text_of(msg.get("content"))
        if role in ("system", "developer"):
            system += text
        elif role == "user":
            texts.append(text)
            if MARKER_RE.search(text):
                calls = []
        elif role == "assistant":
            calls += [(c.get("function") or {}).get("name", "") for c in msg.get("tool_calls") or []]
    size = len(json.dumps(body.get("messages") or []))
    return Conversation(texts, calls, tools, system, size, len(body.get("messages") or []))


def responses_conversation(body: dict[str, Any]) -> Conversation:
    tools = {t.get("name", ""): t.get("parameters") or {} for t in body.get("tools") or [] if isinstance(t, dict)}
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    texts: list[str] = []
    calls: list[str] = []
    system = str(body.get("instructions") or "")
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "function_call":
            calls.append(item.get("name", ""))
        elif kind == "message" and item.get("role") == "user":
            text, _ = _text_of(item.get("content"))
            texts.append(text)
            if MARKER_RE.search(text):
                calls = []
        elif kind == "message" and item.get("role") in ("system", "developer"):
            system += _text_of(item.get("content"))[0]
    size = len(json.dumps(items or [])) + len(system)
    return Conversation(texts, calls, tools, system, size, len(items or []))


# --- the script ----------------------------------------------------------------------------------


def _find_tool(tools: dict[str, dict[str, Any]], names: tuple[str, ...]) -> str | None:
    lowered = {name.lower(): name for name in tools}
    for wanted in names:
        if wanted in lowered:
            return lowered[wanted]
    return None


def _search_tool(tools: dict[str, dict[str, Any]]) -> str | None:
    return next((name for name in tools if name.endswith(SEARCH_TOOL) or name == SEARCH_TOOL), None)


def fill_args(schema: dict[str, Any], workdir: str) -> dict[str, Any]:
    """Arguments for a tool from its JSON schema: every required string gets a harmless value."""
    props = schema.get("properties") or {}
    args: dict[str, Any] = {}
    for name in schema.get("required") or list(props)[:1]:
        spec = props.get(name) or {}
        lname = name.lower()
        if spec.get("type") == "array":
            if "command" in lname:
                args[name] = ["echo zd-multi"]
            else:
                args[name] = [f"{workdir}/notes.txt"] if "path" in lname or "file" in lname else ["zd"]
        elif spec.get("type") in ("integer", "number"):
            args[name] = 1
        elif spec.get("type") == "boolean":
            args[name] = False
        elif "command" in lname or lname == "cmd":
            args[name] = "echo zd-multi"
        elif "path" in lname or "file" in lname:
            args[name] = f"{workdir}/notes.txt"
        elif "query" in lname:
            args[name] = "GLM coding plan limits"
        else:
            args[name] = "zd"
    return args


def decide(conv: Conversation, workdir: str) -> Decision:
    """What to answer, from the marker and the tool calls already made since the human text."""
    marker = conv.marker
    done = [c.lower() for c in conv.calls_since_human]
    if marker in ("refuse", "refuse-weekly"):
        return Decision("refused", code=1310 if marker == "refuse-weekly" else 1308)
    if marker == "multi" and not done:
        tool = _find_tool(conv.tools, SHELL_TOOLS) or _find_tool(conv.tools, READ_TOOLS)
        if tool:
            args = fill_args(conv.tools[tool], workdir)
            return Decision("tool", tool, args)
    if marker == "search":
        tool = _search_tool(conv.tools)
        searched = any(c.endswith(SEARCH_TOOL.lower()) for c in done)
        if tool and not searched:
            return Decision("tool", tool, {"search_query": "GLM coding plan limits"})
        finder = _find_tool(conv.tools, TOOL_SEARCH_TOOLS)
        if not tool and finder and not searched and not any(c in TOOL_SEARCH_TOOLS for c in done):
            # The client lists its deferred tools in the conversation; select ours by the name it uses.
            named = DEFERRED_RE.findall("\n".join([*conv.texts, conv.system]))
            name = named[0] if named else f"mcp__web-search-prime__{SEARCH_TOOL}"
            return Decision("tool", finder, {"query": f"select:{name}", "max_results": 5})
    if marker == "agent" and not done:
        tool = _find_tool(conv.tools, AGENT_TOOLS)
        if tool:
            args = fill_args(conv.tools[tool], workdir)
            for key in list(args):
                if key.lower() in ("prompt", "task", "message", "description", "instructions", "goal"):
                    args[key] = "zd:sub say hello from the sub-agent"
            props = conv.tools[tool].get("properties") or {}
            if "subagent_type" in props:
                # Claude Code's stock agent is `general-purpose`, OpenCode's and Kilo's `general`.
                schema = json.dumps(conv.tools[tool])
                stock = "general-purpose" if "general-purpose" in schema or conv.api == "anthropic" else "general"
                args["subagent_type"] = stock
            return Decision("tool", tool, args)
    purpose = purpose_of(conv)
    if purpose == "compact":
        # Clients check for the summary tags and retry a compaction whose answer lacks them.
        return Decision("text", text="<analysis>Short.</analysis>\n<summary>The user asked for hellos.</summary>")
    if purpose == "title":
        # Claude Code asks for `{"title": …}`; the OpenAI-format clients take the text as it comes.
        wants_json = (
            conv.api == "anthropic" and "json" in (conv.system + (conv.texts[-1] if conv.texts else "")).lower()
        )
        return Decision("text", text='{"title": "Conformance hello"}' if wants_json else "Conformance hello")
    return Decision("text", text=f"Done ({marker}).")


def purpose_of(conv: Conversation) -> str:
    """`subagent`, `compact`, `title`, `auxiliary` or `main`, from what the request looks like."""
    last = conv.texts[-1] if conv.texts else ""
    if conv.first_marker == "sub":
        return "subagent"
    if not conv.tools and ("title" in conv.system.lower() or "title" in last.lower()):
        return "title"
    if any(h in last.lower() for h in COMPACT_HINTS) or ("summar" in conv.system.lower() and not conv.tools):
        return "compact"
    if not conv.tools:
        return "auxiliary"
    return "main"


def traced_in_text(ex: Exchange) -> bool:
    """Whether the answer's text carries the nonce too (ids alone are not kept by OpenAI-format clients).

    Never for a title (the client stores the text as the session title, not as a call), nor for an
    Anthropic-format compaction (Claude Code stores the summary as a user record, not as a call).
    """
    return ex.purpose != "title" and not (ex.purpose == "compact" and ex.api == "anthropic")


def hint_of(conv: Conversation) -> str:
    """The last user text from its marker on (or its start), one line, for reading the record by eye."""
    text = conv.texts[-1] if conv.texts else ""
    m = MARKER_RE.search(text)
    return " ".join(text[m.start() if m else 0 :].split())[:80]


def tokens_for(conv: Conversation, decision: Decision) -> tuple[int, int, int]:
    """(input with cached, cached, output): deterministic from the request's size."""
    total = max(8, conv.size // 4)
    cached = (total // 2) if conv.turns > 1 else 0
    output = 12 + (20 if decision.kind == "tool" else len(decision.text) // 2)
    return total, cached, output


# --- writing answers -----------------------------------------------------------------------------


def sse(event: str | None, data: Any) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()


def anthropic_answer(ex: Exchange, d: Decision, stream: bool) -> Iterator[bytes] | dict[str, Any]:
    uncached = ex.input_tokens - ex.cached_tokens
    usage = {
        "input_tokens": uncached,
        "cache_read_input_tokens": ex.cached_tokens,
        "cache_creation_input_tokens": 0,
        "output_tokens": ex.output_tokens,
    }
    if d.kind == "tool":
        block: dict[str, Any] = {"type": "tool_use", "id": f"toolu_{ex.nonce}", "name": d.tool, "input": d.args}
    else:
        block = {"type": "text", "text": d.text}
    stop = "tool_use" if d.kind == "tool" else "end_turn"
    message = {
        "id": ex.response_id,
        "type": "message",
        "role": "assistant",
        "model": ex.model,
        "content": [block],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }
    if not stream:
        return message

    def events() -> Iterator[bytes]:
        start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        yield sse("message_start", {"type": "message_start", "message": start})
        if d.kind == "tool":
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {**block, "input": {}}},
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(d.args)}
        else:
            yield sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
            delta = {"type": "text_delta", "text": d.text}
        yield sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
        yield sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        yield sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": ex.output_tokens},
            },
        )
        yield sse("message_stop", {"type": "message_stop"})

    return events()


def chat_answer(ex: Exchange, d: Decision, stream: bool) -> Iterator[bytes] | dict[str, Any]:
    usage = {
        "prompt_tokens": ex.input_tokens,
        "completion_tokens": ex.output_tokens,
        "total_tokens": ex.input_tokens + ex.output_tokens,
        "prompt_tokens_details": {"cached_tokens": ex.cached_tokens},
    }
    call = {
        "id": f"call_{ex.nonce}",
        "type": "function",
        "function": {"name": d.tool, "arguments": json.dumps(d.args)},
    }
    finish = "tool_calls" if d.kind == "tool" else "stop"
    created = int(time.time())
    if not stream:
        message: dict[str, Any] = {"role": "assistant", "content": None if d.kind == "tool" else d.text}
        if d.kind == "tool":
            message["tool_calls"] = [call]
        return {
            "id": ex.response_id,
            "object": "chat.completion",
            "created": created,
            "model": ex.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": usage,
        }

    def chunk(delta: dict[str, Any], finish_reason: str | None, **extra: Any) -> bytes:
        body = {
            "id": ex.response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": ex.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            **extra,
        }
        return sse(None, body)

    def events() -> Iterator[bytes]:
        yield chunk({"role": "assistant", "content": ""}, None)
        if d.kind == "tool":
            yield chunk({"tool_calls": [{"index": 0, **call}]}, None)
        else:
            yield chunk({"content": d.text}, None)
        yield chunk({}, finish)
        yield sse(
            None,
            {
                "id": ex.response_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": ex.model,
                "choices": [],
                "usage": usage,
            },
        )
        yield b"data: [DONE]\n\n"

    return events()


def responses_answer(ex: Exchange, d: Decision, stream: bool) -> Iterator[bytes] | dict[str, Any]:
    usage = {
        "input_tokens": ex.input_tokens,
        "input_tokens_details": {"cached_tokens": ex.cached_tokens},
        "output_tokens": ex.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": ex.input_tokens + ex.output_tokens,
    }
    if d.kind == "tool":
        item: dict[str, Any] = {
            "type": "function_call",
            "id": f"fc_{ex.nonce}",
            "call_id": f"call_{ex.nonce}",
            "name": d.tool,
            "arguments": json.dumps(d.args),
            "status": "completed",
        }
    else:
        item = {
            "type": "message",
            "id": f"msg_{ex.nonce}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": d.text, "annotations": []}],
        }
    response = {
        "id": ex.response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": ex.model,
        "output": [item],
        "usage": usage,
    }
    if not stream:
        return response

    def events() -> Iterator[bytes]:
        seq = iter(range(1000))
        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        yield sse("response.created", {"type": "response.created", "sequence_number": next(seq), "response": pending})
        added = {**item, "status": "in_progress"}
        if d.kind == "text":
            added["content"] = []
        yield sse(
            "response.output_item.added",
            {"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0, "item": added},
        )
        if d.kind == "text":
            yield sse(
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": next(seq),
                    "item_id": item["id"],
                    "output_index": 0,
                    "content_index": 0,
                    "delta": d.text,
                },
            )
        yield sse(
            "response.output_item.done",
            {"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0, "item": item},
        )
        yield sse(
            "response.completed", {"type": "response.completed", "sequence_number": next(seq), "response": response}
        )

    return events()


READERS = {"anthropic": anthropic_conversation, "chat": chat_conversation, "responses": responses_conversation}
WRITERS = {"anthropic": anthropic_answer, "chat": chat_answer, "responses": responses_answer}
ID_PREFIX = {"anthropic": "msg_", "chat": "chatcmpl-", "responses": "resp_"}


def api_of(path: str) -> str | None:
    """Which wire format a request path speaks (any prefix: clients append their own)."""
    p = path.split("?", 1)[0].rstrip("/")
    if p.endswith("/messages"):
        return "anthropic"
    if p.endswith("/chat/completions"):
        return "chat"
    if p.endswith("/responses"):
        return "responses"
    if p.endswith("/mcp") or "/mcp/" in p:
        return "mcp"
    return None


MODELS = ("glm-4.6", "glm-4.5-air", "glm-5")


class _Handler(BaseHTTPRequestHandler):
    server: FakeGlmServer  # type: ignore[assignment]
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the recorder is the log
        pass

    # -- plumbing -------------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {"_batch": data}

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    # -- verbs ----------------------------------------------------------------------------------
    def do_GET(self) -> None:
        api = api_of(self.path)
        if self.path.split("?")[0].rstrip("/").endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "z-ai", "type": "model"} for m in MODELS]
            self._send_json(200, {"object": "list", "data": data, "has_more": False})
        elif api == "mcp":
            self._send_json(405, {"error": "no server-initiated stream"})
        else:
            self._send_json(404, {"error": {"message": f"not found: {self.path}"}})

    def do_DELETE(self) -> None:
        self._send_json(200, {})

    def do_POST(self) -> None:
        api = api_of(self.path)
        body = self._body()
        if api == "mcp":
            self._mcp(body)
        elif api in READERS:
            self._inference(api, body)
        else:
            self._send_json(404, {"error": {"message": f"not found: {self.path}"}})

    def _inference(self, api: str, body: dict[str, Any]) -> None:
        srv = self.server
        conv = READERS[api](body)
        conv.api = api
        decision = decide(conv, srv.workdir)
        now = datetime.now(timezone.utc)
        stream = bool(body.get("stream"))
        ex = Exchange(
            n=srv.recorder.next_n(),
            ts=now.isoformat(timespec="milliseconds"),
            api=api,
            path=self.path,
            status=200,
            model=body.get("model"),
            stream=stream,
            marker=conv.marker,
            purpose=purpose_of(conv),
            hint=hint_of(conv),
        )
        if decision.kind == "refused":
            ex.status = 429
            ex.action = f"refused:{decision.code}"
            srv.recorder.add(ex)
            message = refusal_message(decision.code, srv.recorder.reset_at(now))
            if api == "anthropic":
                err: dict[str, Any] = {"type": "error", "error": {"type": str(decision.code), "message": message}}
            else:
                err = {"error": {"code": str(decision.code), "message": message}}
            self._send_json(429, err)
            return
        srv.recorder.reset_at(now)
        ex.input_tokens, ex.cached_tokens, ex.output_tokens = tokens_for(conv, decision)
        ex.action = f"tool:{decision.tool}" if decision.kind == "tool" else "text"
        ex.response_id = f"{ID_PREFIX[api]}{ex.nonce}x{srv.run_tag}"
        srv.recorder.add(ex)
        if decision.kind == "text" and traced_in_text(ex):
            decision.text += f" [{ex.nonce}]"
        answer = WRITERS[api](ex, decision, stream)
        if isinstance(answer, dict):
            self._send_json(200, answer)
        else:
            self._send_stream(answer)

    # -- MCP (streamable HTTP, JSON responses) ---------------------------------------------------
    def _mcp(self, body: dict[str, Any]) -> None:
        method = body.get("method", "")
        if "id" not in body:  # a notification
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if method == "initialize":
            version = (body.get("params") or {}).get("protocolVersion") or "2025-03-26"
            result: dict[str, Any] = {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "web-search-prime", "version": "1.0.0"},
            }
        elif method == "tools/list":
            result = {
                "tools": [
                    {
                        "name": SEARCH_TOOL,
                        "description": "Search the web (Z.ai web-search-prime).",
                        "inputSchema": {
                            "type": "object",
                            "properties": {"search_query": {"type": "string", "description": "what to search"}},
                            "required": ["search_query"],
                        },
                    }
                ]
            }
        elif method == "tools/call":
            ex = Exchange(
                n=0,
                ts=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                api="mcp",
                path=self.path,
                status=200,
                action=f"mcp:{(body.get('params') or {}).get('name', '')}",
            )
            self.server.recorder.add(ex)
            text = json.dumps([{"title": "GLM Coding Plan", "link": "https://example.invalid/", "content": ex.nonce}])
            result = {"content": [{"type": "text", "text": text}], "isError": False}
        elif method in ("ping", "resources/list", "prompts/list", "resources/templates/list"):
            key = method.split("/")[0]
            result = {} if method == "ping" else {key if key != "resources" else "resources": []}
            if method == "resources/templates/list":
                result = {"resourceTemplates": []}
        else:
            self._send_json(200, {"jsonrpc": "2.0", "id": body["id"], "error": {"code": -32601, "message": method}})
            return
        self._send_json(
            200, {"jsonrpc": "2.0", "id": body["id"], "result": result}, {"Mcp-Session-Id": "zd-mcp-session"}
        )


class FakeGlmServer(ThreadingHTTPServer):
    """The fake, bound to 127.0.0.1 on a free port. Use as a context manager.

    Args:
        workdir: the project folder the client runs in (tool-call arguments point into it).
        log_path: where to mirror the exchanges as JSONL (optional).
    """

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-stream (it was killed, or gave up) is not the server's error: stay quiet."""

    def __init__(self, workdir: str, log_path: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.workdir = workdir
        self.recorder = Recorder(log_path)
        self.run_tag = f"{int(time.time()) % 100000:05d}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def anthropic_url(self) -> str:
        """Base URL as Z.ai documents it for Anthropic-format clients."""
        return f"{self.url}/api/anthropic"

    @property
    def openai_url(self) -> str:
        """Base URL of the coding plan's OpenAI-compatible endpoint."""
        return f"{self.url}/api/coding/paas/v4"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/api/mcp/web_search_prime/mcp"

    def __enter__(self) -> FakeGlmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    """Run the fake by itself (for trying a client by hand): prints its URLs, records to stdout."""
    import sys

    with FakeGlmServer(workdir=".", log_path=sys.argv[1] if len(sys.argv) > 1 else None) as srv:
        print(f"anthropic: {srv.anthropic_url}\nopenai:    {srv.openai_url}\nmcp:       {srv.mcp_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
