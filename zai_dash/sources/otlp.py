"""OTLP/HTTP receiver: Claude Code's OpenTelemetry events as calls, prompts and limit hits.

Claude Code exports log records named `claude_code.<event>` when `CLAUDE_CODE_ENABLE_TELEMETRY=1` (README,
"Several machines"). This module serves `POST /v1/logs` and `/v1/metrics` (protobuf or JSON, gzip or not)
on a loopback port, decodes them with `opentelemetry-proto`, and turns

* `api_request` into a model call (`input_tokens` + cache writes + cache reads as input, cache reads as
  `cached_tokens`), auxiliary calls included, which the transcripts never record;
* `user_prompt` into a prompt (slash commands Claude Code runs itself are not prompts);
* `api_error` with a Z.ai limit code or HTTP 429 into a `LimitHit`.

Deduplication against the transcripts: Claude Code writes the same ids to both. An `api_request`'s
`request_id` is the transcript's `requestId` (call key `message.id:requestId`), and `prompt.id` is the
transcript user record's `promptId` (prompt key `prompt:<promptId>`). Events from this machine wait
`SETTLE` seconds (the log exporter batches every 5 s; the transcript line is written when the response
ends), then are dropped if the ledger already holds the transcript's copy. Events named for another
host (`host.name`) cannot be in local transcripts and count at once, with `origin` = that host.

Metrics are accepted and counted (so an exporter pointed at us does not log errors), not turned into
usage: they are aggregates of the same requests the events already count.

`opentelemetry-proto` (and protobuf) are imported when the receiver is built: only with `[otlp]` on.
"""

from __future__ import annotations

import hmac
import importlib
import io
import logging
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from zai_dash.config import OtlpSettings
from zai_dash.domain.endpoints import is_loopback
from zai_dash.domain.events import CallRole, EventKind, LimitHit, UsageEvent
from zai_dash.domain.listen import parse_listen
from zai_dash.domain.snapshot import SourceHealth
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import parse_iso
from zai_dash.sources.limits import limit_hit
from zai_dash.sources.tools.claude_code_config import clean_model

if TYPE_CHECKING:
    from zai_dash.domain.ledger import Ledger

log = logging.getLogger(__name__)

TOOL = "claude-code"
MAX_BODY = 8 * 1024 * 1024
"""Largest request body accepted, compressed or not (413 above it). Claude Code's batches are ~100 KB."""
SETTLE = timedelta(seconds=30)
"""How long an event from this machine waits for the transcript's copy before it counts on its own."""
LIMIT_STATUS = 429
PATHS = {"/v1/logs": "logs", "/v1/metrics": "metrics", "/v1/traces": "traces"}


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One decoded event: what it says, and which host said it."""

    host: str
    event: UsageEvent | None = None
    hit: LimitHit | None = None
    ref: str | None = None
    """The id the transcript shares: a request id (calls) or a prompt id (prompts)."""


class BadBody(ValueError):
    """A request body that is not OTLP: the reason goes to the 400 reply and the skip count."""


# -- decoding -------------------------------------------------------------------------------------


def _any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attributes(kvs: Iterable[Any]) -> dict[str, Any]:
    """OTLP `KeyValue`s → a plain dict."""
    return {kv.key: _any_value(kv.value) for kv in kvs}


def _body_bytes(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise BadBody(f"unsupported Content-Encoding {encoding!r}")
    # Decompress with a cap: a small gzip bomb must not become gigabytes in memory.
    inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
    try:
        out = inflater.decompress(body, MAX_BODY + 1)
    except zlib.error as exc:
        raise BadBody(f"bad {encoding} body ({exc})") from None
    if len(out) > MAX_BODY or inflater.unconsumed_tail:
        raise BadBody("decompressed body too large")
    return out


def decode(kind: str, body: bytes, content_type: str, encoding: str = "") -> Any:
    """An `Export{Logs,Metrics,Trace}ServiceRequest` from a request body.

    Raises:
        BadBody: not protobuf/JSON OTLP of that kind.
    """
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    request = _request_type(kind)()
    data = _body_bytes(body, encoding)
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        try:
            json_format.Parse(data.decode("utf-8"), request, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, RecursionError) as exc:
            raise BadBody(f"malformed OTLP JSON ({type(exc).__name__})") from None
    elif media in ("application/x-protobuf", "application/protobuf", ""):
        try:
            request.ParseFromString(data)
        except (DecodeError, RecursionError) as exc:
            raise BadBody(f"malformed OTLP protobuf ({type(exc).__name__})") from None
    else:
        raise BadBody(f"unsupported Content-Type {media!r}")
    return request


_SERVICES = {
    "logs": ("opentelemetry.proto.collector.logs.v1.logs_service_pb2", "ExportLogsService"),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2", "ExportMetricsService"),
    "traces": ("opentelemetry.proto.collector.trace.v1.trace_service_pb2", "ExportTraceService"),
}


def _message(kind: str, part: str) -> Any:
    """The protobuf class `Export<Kind>Service<part>` (`Request` or `Response`), imported on first use."""
    module, prefix = _SERVICES[kind]
    return getattr(importlib.import_module(module), f"{prefix}{part}")


def _request_type(kind: str) -> Any:
    return _message(kind, "Request")


def _response_type(kind: str) -> Any:
    return _message(kind, "Response")


def metric_points(request: Any) -> dict[str, int]:
    """Data points per host in an `ExportMetricsServiceRequest` (counted, not used as usage)."""
    out: dict[str, int] = {}
    for rm in request.resource_metrics:
        host = str(attributes(rm.resource.attributes).get("host.name") or "")
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind else ()
                out[host] = out.get(host, 0) + len(points)
    return out


# -- events ---------------------------------------------------------------------------------------


def _int(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)):
        return max(0, int(value))
    if isinstance(value, str):
        try:
            return max(0, int(float(value)))
        except ValueError:
            return 0
    return 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _role(query_source: str | None) -> CallRole:
    """Claude Code's `query_source`: the main loop, a sub-agent (`agent:…`), or its own helpers."""
    if query_source is None or query_source.startswith(("repl_main_thread", "sdk")):
        return CallRole.MAIN
    if query_source.startswith("agent"):
        return CallRole.SUBAGENT
    return CallRole.AUXILIARY


def _when(attrs: Mapping[str, Any], record: Any) -> datetime | None:
    stamp = _str(attrs.get("event.timestamp"))
    if stamp is not None:
        try:
            return parse_iso(stamp)
        except ValueError:
            pass
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    return datetime.fromtimestamp(nanos / 1e9, tz=timezone.utc) if nanos else None


def _event_name(attrs: Mapping[str, Any], record: Any) -> str | None:
    name = _str(attrs.get("event.name"))
    if name is None and record.body.WhichOneof("value") == "string_value":
        name = record.body.string_value
    if name is None:
        return None
    return name.removeprefix("claude_code.")


def telemetry_from_logs(request: Any, machine: str) -> tuple[list[Telemetry], dict[str, int]]:
    """Claude Code's events in an `ExportLogsServiceRequest`.

    Args:
        request: the decoded request.
        machine: the host name for records whose resource names none.

    Returns:
        The events, and skipped records by reason (a record of another event kind is not skipped).
    """
    out: list[Telemetry] = []
    skips: dict[str, int] = {}
    for rl in request.resource_logs:
        resource = attributes(rl.resource.attributes)
        named = _str(resource.get("host.name"))
        for sl in rl.scope_logs:
            for record in sl.log_records:
                attrs = attributes(record.attributes)
                # Claude Code copies OTEL_RESOURCE_ATTRIBUTES onto each event too; either names the host.
                host = named or _str(attrs.get("host.name")) or machine
                name = _event_name(attrs, record)
                if name not in ("api_request", "user_prompt", "api_error"):
                    continue
                ts = _when(attrs, record)
                if ts is None:
                    skips["OTLP event without a timestamp"] = skips.get("OTLP event without a timestamp", 0) + 1
                    continue
                item = _telemetry(name, attrs, ts, host)
                if item is not None:
                    out.append(item)
    return out, skips


def _telemetry(name: str, attrs: Mapping[str, Any], ts: datetime, host: str) -> Telemetry | None:
    session = _str(attrs.get("session.id"))
    if name == "user_prompt":
        if attrs.get("command_source") == "builtin":
            return None  # /model, /help, /compact…: Claude Code's own commands, not a prompt to the plan
        pid = _str(attrs.get("prompt.id"))
        key = f"prompt:{pid}" if pid else f"otel-prompt:{session}:{attrs.get('event.sequence')}:{ts.isoformat()}"
        event = UsageEvent(kind=EventKind.PROMPT, ts=ts, tool=TOOL, key=key, session=session, origin=host)
        return Telemetry(host, event=event, ref=pid)
    if name == "api_error":
        hit = limit_hit(str(attrs.get("error") or ""), ts)
        if hit is None and _int(attrs.get("status_code")) == LIMIT_STATUS:
            hit = LimitHit(ts=ts, tool=TOOL, code=None, reset_at=None)
        return Telemetry(host, hit=hit) if hit is not None else None
    cached = _int(attrs.get("cache_read_tokens"))
    inp = _int(attrs.get("input_tokens")) + _int(attrs.get("cache_creation_tokens")) + cached
    out = _int(attrs.get("output_tokens"))
    req = _str(attrs.get("request_id"))
    key = f"req:{req}" if req else f"otel-call:{session}:{attrs.get('event.sequence')}:{ts.isoformat()}"
    event = UsageEvent(
        kind=EventKind.CALL, ts=ts, tool=TOOL, key=key, session=session, model=clean_model(attrs.get("model")),
        role=_role(_str(attrs.get("query_source"))), tokens=inp + out, input_tokens=inp, output_tokens=out,
        origin=host, cached_tokens=cached,
    )  # fmt: skip
    return Telemetry(host, event=event, ref=req)


def transcript_refs(ledger: Ledger) -> tuple[set[str], set[str]]:
    """(request ids, prompt keys) of the Claude Code events the transcripts put in the ledger.

    Transcript call keys are `message.id:requestId`; prompt keys `prompt:<promptId>` (or the record uuid
    where an older Claude Code wrote no prompt id).
    """
    requests: set[str] = set()
    prompts: set[str] = set()
    for e in ledger.events():
        if e.tool != TOOL or e.origin is not None:
            continue
        if e.kind is EventKind.CALL and ":" in e.key:
            requests.add(e.key.rsplit(":", 1)[1])
        elif e.kind is EventKind.PROMPT:
            prompts.add(e.key)
    return requests, prompts


# -- the source -----------------------------------------------------------------------------------


class OtlpSource(ToolSource):
    """Receives OTLP on its own thread; each `poll` hands over what has settled.

    Args:
        settings: the `[otlp]` table.
        ctx: env (for the token) and the clock.
        ledger: where the transcripts' events are, for deduplication.
        on_arrival: called from the receiver thread after a batch with events arrives (tests wait on it).
    """

    name = "otlp"
    tools = (TOOL,)

    def __init__(
        self,
        settings: OtlpSettings,
        ctx: SourceContext,
        ledger: Ledger | None = None,
        on_arrival: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(ctx)
        self.settings = settings
        self.machine = self.settings.machine or socket.gethostname()
        self.ledger = ledger
        self.on_arrival = on_arrival
        self._lock = threading.Lock()
        self._inbox: list[tuple[datetime, Telemetry]] = []
        self._pending: list[tuple[datetime, Telemetry]] = []
        self.received = 0
        """Events decoded since start."""
        self.duplicates = 0
        """Events dropped because a transcript already had them."""
        self.metric_points = 0
        self._hosts: dict[str, datetime] = {}
        self._skipped: list[tuple[str, str, int]] = []
        """Skips seen on the receiver thread, folded into `skips` by `poll` (the engine's thread reads those)."""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- ToolSource ------------------------------------------------------------------------------

    def roots(self) -> list[Root]:
        return []

    def file_count(self) -> int:
        return 0

    def poll(self) -> SourceBatch:
        """Events that are new (another host) or have settled and are not in the transcripts."""
        now = self.ctx.clock()
        with self._lock:
            inbox, self._inbox = self._inbox, []
            skipped, self._skipped = self._skipped, []
        for reason, where, n in skipped:
            self.skips.add(reason, where, n)
        for arrived, item in inbox:
            if item.hit is not None or item.host != self.machine or item.ref is None:
                self._pending.append((arrived - SETTLE, item))  # nothing to wait for
            else:
                self._pending.append((arrived, item))
        ready = [item for arrived, item in self._pending if now - arrived >= SETTLE]
        self._pending = [(arrived, item) for arrived, item in self._pending if now - arrived < SETTLE]
        batch = SourceBatch()
        if not ready:
            return batch
        requests, prompts = transcript_refs(self.ledger) if self.ledger is not None else (set(), set())
        for item in ready:
            if item.hit is not None:
                batch.limit_hits.append(item.hit)
            elif item.event is not None:
                seen = prompts if item.event.kind is EventKind.PROMPT else requests
                ref = item.event.key if item.event.kind is EventKind.PROMPT else item.ref
                if item.host == self.machine and ref in seen:
                    self.duplicates += 1
                    continue
                batch.events.append(item.event)
        return batch

    def has_news(self) -> bool:
        """Whether a `poll` now would hand something over (arrivals, or a pending event now settled)."""
        now = self.ctx.clock()
        with self._lock:
            if self._inbox or self._skipped:
                return True
        return any(now - arrived >= SETTLE for arrived, _ in self._pending)

    def health(self) -> list[SourceHealth]:
        where = self.url if self._server is not None else self.settings.listen
        hosts = ", ".join(self.hosts()) or "none yet"
        detail = (
            f"{where}: {self.received} event(s), {self.duplicates} already in transcripts, "
            f"{self.metric_points} metric point(s); hosts: {hosts}"
        )
        if self._server is None and not self.received:
            detail = f"{where}: receives while the dashboard or `zai-dash export` runs"
        elif self._server is not None and not is_loopback(self._host) and not self.settings.token_env:
            detail += "; WARNING: not loopback and no token_env"
        status = "error" if self.error else "ok"
        if self.error:
            detail = self.error
        return [
            SourceHealth(
                name=self.name, tool=TOOL, status=status, detail=detail, roots=(), files=0,
                skipped=dict(self.skips.counts),
            )
        ]  # fmt: skip

    def hosts(self) -> list[str]:
        """Every host a batch came from (sorted): their usage is in this ledger."""
        with self._lock:
            return sorted(self._hosts)

    # -- receiving -------------------------------------------------------------------------------

    def skipped(self, reason: str, where: str, n: int = 1) -> None:
        """Count a skipped body or record (receiver thread); the next `poll` adds it to `skips`."""
        with self._lock:
            self._skipped.append((reason, where, n))

    def accept(self, kind: str, body: bytes, content_type: str, encoding: str = "") -> None:
        """Decode one request body and queue its events (the HTTP handler's work, callable directly).

        Raises:
            BadBody: the body is not OTLP (already counted as a skip).
        """
        now = self.ctx.clock()
        try:
            request = decode(kind, body, content_type, encoding)
        except BadBody as exc:
            self.skipped(str(exc), f"POST /v1/{kind}")
            raise
        if kind == "metrics":
            points = metric_points(request)
            with self._lock:
                self.metric_points += sum(points.values())
                for host in points:
                    self._hosts[host or self.machine] = now
            return
        if kind != "logs":
            return
        items, skipped = telemetry_from_logs(request, self.machine)
        for reason, n in skipped.items():
            self.skipped(reason, f"POST /v1/{kind}", n)
        with self._lock:
            self.received += len(items)
            self._inbox.extend((now, item) for item in items)
            for item in items:
                self._hosts[item.host] = now
        if items and self.on_arrival is not None:
            self.on_arrival()

    @property
    def _host(self) -> str:
        return str(self._server.server_address[0]) if self._server else ""

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server else 0

    @property
    def url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    def start(self) -> bool:
        """Bind and serve on a daemon thread; False (and `error` set) when it cannot."""
        if self._server is not None:
            return True
        token: str | None = None
        if self.settings.token_env:
            token = self.ctx.env.get(self.settings.token_env) or None
            if token is None:
                self.error = f"otlp.token_env names {self.settings.token_env}, which is not set: not listening"
                return False
        try:
            host, port = parse_listen(self.settings.listen)
            _request_type("logs")  # import the protocol package now, not on the first request
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            server = type("OtlpServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
            self._server = server((host, port), _handler(self, token))
        except (OSError, ValueError, ImportError) as exc:
            self.error = f"cannot listen on {self.settings.listen}: {exc}"
            return False
        self.error = None
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="zai-dash-otlp", daemon=True
        )
        self._thread.start()
        return True

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server = None
        self._thread = None


class TooLarge(Exception):
    """A body over `MAX_BODY` (413)."""


class LengthRequired(BadBody):
    """Neither `Content-Length` nor chunked transfer encoding (411)."""


def read_chunked(stream: io.BufferedIOBase, limit: int) -> bytes:
    """Read an HTTP/1.1 chunked body, refusing more than `limit` bytes.

    Raises:
        TooLarge: the chunks add up to more than `limit`.
        BadBody: a chunk header or terminator is malformed.
    """
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(1024)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadBody("malformed chunk header") from None
        if size < 0:
            raise BadBody("malformed chunk header")
        if size == 0:
            while stream.readline(1024).strip():  # trailers, up to the blank line
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise TooLarge
        chunk = stream.read(size)
        if len(chunk) != size or stream.readline(1024).strip():
            raise BadBody("truncated or malformed chunk")
        parts.append(chunk)


def _handler(source: OtlpSource, token: str | None) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {token}".encode() if token else None

    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a client that stops sending mid-body must not hold a thread forever

        def do_POST(self) -> None:
            kind = PATHS.get(self.path.split("?", 1)[0])
            if kind is None:
                self._reply(404, b"only /v1/logs, /v1/metrics and /v1/traces are served")
                return
            if expected is not None:
                given = (self.headers.get("Authorization") or "").encode()
                if not hmac.compare_digest(given, expected):
                    self._reply(401, b"bearer token required")
                    return
            try:
                body = self._body()
            except TooLarge:
                source.skipped("OTLP body too large", f"POST {self.path}")
                self.close_connection = True  # the unread rest must not be parsed as the next request
                self._reply(413, b"body too large")
                return
            except BadBody as exc:
                source.skipped(str(exc), f"POST {self.path}")
                self.close_connection = True
                self._reply(411 if isinstance(exc, LengthRequired) else 400, str(exc).encode())
                return
            content_type = self.headers.get("Content-Type") or ""
            try:
                source.accept(kind, body, content_type, self.headers.get("Content-Encoding") or "")
            except BadBody as exc:
                self._reply(400, str(exc).encode())
                return
            except Exception:  # a bug here must not kill the receiver thread
                log.exception("OTLP %s request failed", kind)
                self._reply(500, b"internal error")
                return
            if content_type.startswith("application/json"):
                self._reply(200, b"{}", "application/json")
            else:
                self._reply(200, _response_type(kind)().SerializeToString(), "application/x-protobuf")

        def _body(self) -> bytes:
            """The request body: `Content-Length` bytes, or a chunked body (Claude Code's Bun runtime sends one)."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                return read_chunked(self.rfile, MAX_BODY)
            try:
                length = int(self.headers.get("Content-Length") or "")
            except ValueError:
                raise LengthRequired("Content-Length or chunked transfer encoding required") from None
            if length < 0 or length > MAX_BODY:
                raise TooLarge
            return self.rfile.read(length)

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one request every 5 s per client would flood the terminal

    return Handler
