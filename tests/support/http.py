"""Real HTTP servers on 127.0.0.1 for the quota endpoint and proxy-metrics tests.

`QuotaServer` serves the Z.ai quota endpoint's response shapes and error cases from
`reference/zai-quota-api.md` (payloads reconstructed there, values illustrative). `MetricsServer`
serves a Prometheus exposition rendered by `prometheus_client` from a live registry, optionally
behind a LiteLLM-style bearer check. Nothing here reaches beyond loopback.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

FAKE_KEY = "0123456789abcdef0123456789abcdef.FaKeSeCrEt42xyzQ"
"""A known fake key in Z.ai's shape; tests grep every output for it."""
FAKE_SECRET = "FaKeSeCrEt42xyzQ"

# --- quota response shapes (reference §7) ----------------------------------------------------------


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 200, "msg": "Operation successful", "success": True, "data": data}


V1 = envelope(
    {
        "level": "lite",
        "limits": [
            {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": 12, "nextResetTime": 1795698000000},
            {
                "type": "TIME_LIMIT",
                "unit": 5,
                "number": 1,
                "usage": 100,
                "currentValue": 28,
                "remaining": 72,
                "percentage": 28,
                "nextResetTime": 1797422400000,
                "usageDetails": [
                    {"modelCode": "search-prime", "usage": 20},
                    {"modelCode": "web-reader", "usage": 8},
                    {"modelCode": "zread", "usage": 0},
                ],
            },
        ],
    }
)
"""Legacy V1: 5 h percentage only + monthly MCP. 5-hour reset 2026-11-26T13:00Z (FIXED_NOW + 1 h)."""

V2_IDLE = envelope(
    {
        "level": "max",
        "limits": [
            {
                "type": "TIME_LIMIT",
                "unit": 5,
                "number": 1,
                "usage": 4000,
                "currentValue": 82,
                "remaining": 3918,
                "percentage": 2,
                "nextResetTime": 1797422400000,
                "usageDetails": [
                    {"modelCode": "search-prime", "usage": 0},
                    {"modelCode": "web-reader", "usage": 82},
                    {"modelCode": "zread", "usage": 0},
                ],
            },
            {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": 0},
            {"type": "TOKENS_LIMIT", "unit": 6, "number": 1, "percentage": 68, "nextResetTime": 1796040000000},
        ],
    }
)
"""V2 with an idle 5-hour window (no nextResetTime) listed *after* the monthly row: order must not matter."""

V3_CREDIT = envelope(
    {
        "level": "pro",
        "limits": [
            {
                "type": "CREDIT_LIMIT",
                "unit": 6,
                "number": 1,
                "usage": 60000,
                "currentValue": 1226,
                "remaining": 58791,
                "percentage": 2,
                "nextResetTime": 1796126400000,
            },
            {
                "type": "CREDIT_LIMIT",
                "unit": 3,
                "number": 5,
                "usage": 12000,
                "currentValue": 1438,
                "remaining": 10562,
                "percentage": 11,
                "nextResetTime": 1795701600000,
            },
            {"type": "CREDIT_LIMIT", "unit": 1, "number": 30, "usage": 100, "currentValue": 5, "percentage": 5},
            {"type": "MYSTERY_LIMIT", "unit": 9, "number": 2, "percentage": 140},
        ],
    }
)
"""V3 credits, weekly first; 1438/12000 = 11.98 % exact vs the rounded 11. 5-hour reset FIXED_NOW + 2 h."""

EARLY_TOKENS = envelope(
    {
        "planName": "Pro",
        "limits": [
            {
                "type": "TOKENS_LIMIT",
                "unit": 3,
                "number": 5,
                "usage": 40000000,
                "currentValue": 13628365,
                "remaining": 26371635,
                "percentage": 34,
                "nextResetTime": 1795698000000,
            },
            {"type": "TIME_LIMIT", "unit": 5, "number": 1, "usage": 100, "currentValue": 102, "percentage": 102},
        ],
    }
)
"""Early 2026: absolute token counts, `planName` instead of `level`, MCP used beyond its limit (102/100)."""

NOW_MS = 1795694400000
"""`tests.support.env.FIXED_NOW` (2026-11-26T12:00Z) in epoch milliseconds."""
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


def credit_row(
    span: str, used: int, limit: int, remaining: int | None = None, reset_ms: int | None = None
) -> dict[str, Any]:
    """One `CREDIT_LIMIT` row (`span` is `5h` or `weekly`) with its integers and the server-rounded percentage."""
    unit, number = (3, 5) if span == "5h" else (6, 1)
    row: dict[str, Any] = {
        "type": "CREDIT_LIMIT",
        "unit": unit,
        "number": number,
        "usage": limit,
        "currentValue": used,
        "remaining": limit - used if remaining is None else remaining,
        "percentage": int(100 * used / limit),
    }
    if reset_ms is not None:
        row["nextResetTime"] = reset_ms
    return row


V2 = envelope(
    {
        "level": "pro",
        "limits": [
            {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": 35, "nextResetTime": NOW_MS + 3 * HOUR_MS},
            {"type": "TOKENS_LIMIT", "unit": 6, "number": 1, "percentage": 68, "nextResetTime": NOW_MS + 2 * DAY_MS},
            {
                "type": "TIME_LIMIT",
                "unit": 5,
                "number": 1,
                "usage": 1000,
                "currentValue": 224,
                "remaining": 776,
                "percentage": 22,
                "nextResetTime": 1797422400000,
                "usageDetails": [{"modelCode": "search-prime", "usage": 210}, {"modelCode": "zread", "usage": 14}],
            },
        ],
    }
)
"""Legacy V2, both windows running: percentages only (5 h resets FIXED_NOW + 3 h, the week FIXED_NOW + 2 d)."""

CREDITS_NO_RESET = envelope(
    {"level": "max", "limits": [credit_row("5h", 0, 28000), credit_row("weekly", 8400, 140000)]}
)
"""Credits without `nextResetTime`: an idle 5-hour window, and a weekly row from an account that never sends it."""

RESET_CARD_BEFORE = envelope(
    {
        "level": "pro",
        "limits": [
            credit_row("5h", 9000, 12000, reset_ms=NOW_MS + 2 * HOUR_MS),
            credit_row("weekly", 45000, 60000, reset_ms=NOW_MS + 3 * DAY_MS),
        ],
    }
)
"""A Pro credits reading at FIXED_NOW, three quarters used in both windows."""

RESET_CARD_AFTER = envelope(
    {
        "level": "pro",
        "limits": [
            credit_row("5h", 240, 12000, reset_ms=NOW_MS + 8 * MINUTE_MS + 5 * HOUR_MS),
            credit_row("weekly", 300, 60000, reset_ms=NOW_MS + 1 * DAY_MS),
        ],
    }
)
"""Ten minutes after `RESET_CARD_BEFORE`, reset cards used on both windows: the 5-hour figure fell and a request
at FIXED_NOW + 8 min opened a new window; the weekly figure fell and its reset moved two days earlier."""


def json_numbers(obj: object) -> list[float]:
    """Every number in a JSON-able structure (booleans and datetimes are not numbers): for "never negative"."""
    if isinstance(obj, bool):
        return []
    if isinstance(obj, (int, float)):
        return [float(obj)]
    if isinstance(obj, dict):
        return [n for v in obj.values() for n in json_numbers(v)]
    if isinstance(obj, (list, tuple)):
        return [n for v in obj for n in json_numbers(v)]
    return []


BAD_KEY = {"code": 401, "msg": "token expired or incorrect", "success": False}
AUTH_FAILED = {"code": 1000, "msg": "Authentication Failed", "success": False}
NO_PLAN = {"success": False, "code": 500, "msg": "The current user does not have a coding plan"}


@dataclass
class Reply:
    """One canned response."""

    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def payload(self) -> bytes:
        if isinstance(self.body, dict):
            return json.dumps(self.body).encode()
        return self.body.encode() if isinstance(self.body, str) else self.body


Route = Callable[[dict[str, str]], Reply]
"""Request headers (lower-cased names) → the reply."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class LoopbackServer:
    """A stdlib HTTP server on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, route: Route) -> None:
        self.route = route
        self.requests: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers[":path"] = self.path
                outer.requests.append(headers)
                reply = outer.route(headers)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.payload()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    if "Content-Type" not in reply.headers:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        # A short poll interval keeps `shutdown()` quick (the default waits up to 0.5 s).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def fixed(reply: Reply) -> Route:
    """Always the same reply."""
    return lambda _headers: reply


def needs_auth(form: str, ok: Reply, fail: Reply | None = None) -> Route:
    """Answer `ok` only to the given auth form (`raw` or `bearer`) of `FAKE_KEY`; else a 200 bad-key envelope."""
    expected = FAKE_KEY if form == "raw" else f"Bearer {FAKE_KEY}"
    fail = fail or Reply(body=BAD_KEY)
    return lambda headers: ok if headers.get("authorization") == expected else fail


def refused_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- proxy metrics ---------------------------------------------------------------------------------

LITELLM_TOKEN_LABELS = ("end_user", "hashed_api_key", "model", "requested_model", "api_provider", "model_id")
LITELLM_REQUEST_LABELS = ("requested_model", "status_code", "route", "api_provider")
LITELLM_FAILED_LABELS = ("requested_model", "exception_status", "exception_class", "api_provider", "route")
LITELLM_DEPRECATED_LABELS = ("requested_model", "model", "api_provider")
LITELLM_401_BODY = (
    '{"error":{"message":"Authentication Error, Prometheus /metrics endpoint requires authentication. '
    'Set litellm_settings.require_auth_for_metrics_endpoint: false to disable.","type":"auth_error","code":"401"}}'
)


class LiteLLMMetrics:
    """A registry with LiteLLM's metric names and labels, behaving as a real 1.110.2 proxy does.

    Checked against the real proxy (`conformance/litellm_check.py`): `/metrics` answers 307 to `/metrics/`;
    the deprecated `litellm_requests_metric` is still emitted beside its replacement with the same counts;
    a refused scrape is itself counted as a 401 request on route `/metrics`. `restart()` swaps in a fresh
    registry, as a proxy restart does: every counter starts from zero.
    """

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "litellm_proxy_total_requests_metric", "Total requests", LITELLM_REQUEST_LABELS, registry=r
        )
        self.failed = Counter(
            "litellm_proxy_failed_requests_metric", "Failed requests", LITELLM_FAILED_LABELS, registry=r
        )
        self.deprecated = Counter(
            "litellm_requests_metric", "Deprecated: use litellm_proxy_total_requests_metric", LITELLM_DEPRECATED_LABELS,
            registry=r,
        )  # fmt: skip
        self.input = Counter("litellm_input_tokens_metric", "Input tokens", LITELLM_TOKEN_LABELS, registry=r)
        self.output = Counter("litellm_output_tokens_metric", "Output tokens", LITELLM_TOKEN_LABELS, registry=r)
        self.total = Counter("litellm_total_tokens_metric", "Total tokens", LITELLM_TOKEN_LABELS, registry=r)

    def call(self, model: str, tokens_in: int, tokens_out: int, status: str = "200") -> None:
        """One proxied request."""
        self.requests.labels(model, status, "/v1/messages", "zai").inc()
        if status != "200":
            self.failed.labels(model, status, "RateLimitError", "zai", "/v1/messages").inc()
            return
        self.deprecated.labels(model, model, "zai").inc()
        labels = ("", "abc123", model, model, "zai", "m1")
        self.input.labels(*labels).inc(tokens_in)
        self.output.labels(*labels).inc(tokens_out)
        self.total.labels(*labels).inc(tokens_in + tokens_out)

    def route(self, bearer: str | None = None, redirect: bool = False) -> Route:
        """Serve the exposition; when `bearer` is set, demand `Authorization: Bearer <bearer>` like LiteLLM
        (counting the refused scrape); with `redirect`, `/metrics` answers 307 to `/metrics/` first."""

        def handle(headers: dict[str, str]) -> Reply:
            path = headers.get(":path", "")
            if redirect and path == "/metrics":
                return Reply(307, b"", {"Location": "/metrics/"})
            if bearer is not None and headers.get("authorization") != f"Bearer {bearer}":
                self.requests.labels("", "401", path, "None").inc()
                self.failed.labels("", "401", "ProxyException", "None", path).inc()
                return Reply(401, LITELLM_401_BODY)
            return Reply(200, generate_latest(self.registry), {"Content-Type": CONTENT_TYPE_LATEST})

        return handle


class TricklingServer:
    """Sends a valid status line and headers, then the body one byte at a time, forever."""

    def __init__(self, gap: float = 0.2) -> None:
        self.gap = gap
        self.accepted = 0
        """Connections accepted so far."""
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
            while not self._stop.is_set():
                conn.sendall(b" ")
                time.sleep(self.gap)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> TricklingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
