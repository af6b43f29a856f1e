"""`zai-dash export --listen HOST:PORT`: this machine's snapshot as Prometheus metrics.

A user with a laptop and a dev box runs the exporter on each and points one dashboard (a
`[[proxy]]` with `preset = "zai-dash"`) or their Prometheus at every machine. Every series is a
gauge: per-cycle counts go back to zero when the cycle resets, so they are not counters. A
`machine` label (not `instance`, which Prometheus sets itself) says where the numbers came from.

The HTTP server is prometheus_client's own (`make_wsgi_app` on its `ThreadingWSGIServer`, what
`start_http_server` runs), on its own thread: content negotiation (classic text or OpenMetrics) and gzip
are the library's. Each scrape asks a custom collector for the latest snapshot the `provider` callable
returns, so the engine's loop is never blocked by a scrape.

Steady under load: the library's server starts a thread per connection with no timeouts, so 1,000 idle
or slowloris clients would cost 1,000 threads forever. The subclass here serves at most
`MAX_CONNECTIONS` connections at once (more wait up to `QUEUE_WAIT` seconds for a slot, then get a
503), every socket read or write times out after `IO_TIMEOUT`, and a reaper closes any connection
older than `CONNECTION_DEADLINE` — so idle or slowloris clients cost a bounded number of threads for a
bounded time.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer, generate_latest, make_wsgi_app
from prometheus_client.registry import Collector, CollectorRegistry

from zai_dash import __version__
from zai_dash.clock import SYSTEM_CLOCK
from zai_dash.domain.listen import parse_listen
from zai_dash.domain.snapshot import Snapshot

MAX_CONNECTIONS = 64
"""Connections served at once (one thread each)."""
QUEUE_WAIT = 2.0
"""Seconds a new connection waits for a free slot before it is answered 503."""
IO_TIMEOUT = 5.0
"""Seconds any one socket read or write may take."""
CONNECTION_DEADLINE = 10.0
"""Seconds one connection may live in all (a scrape takes milliseconds)."""

PREFIX = "zai_dash"
OFFICIAL_FIELDS = (
    ("percent", "official_percent", "Percent used, as Z.ai's quota endpoint reports it."),
    ("used", "official_used", "Amount used in the window (currentValue)."),
    ("limit", "official_limit", "The window's limit (the API's `usage` field)."),
    ("age_seconds", "official_age_seconds", "Seconds since the official reading arrived."),
)


def _ts(value: Any) -> float | None:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).timestamp()
        except ValueError:
            return None
    return None


def snapshot_metrics(snap: Snapshot, machine: str) -> list[Metric]:
    """Every metric family for one snapshot."""

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(f"{PREFIX}_{name}", doc, labels=("machine", *labels))

    fams: list[Metric] = []
    info = gauge("info", "zai-dash build and plan.", ("version", "plan"))
    info.add_metric([machine, __version__, snap.plan.name], 1)
    at = gauge("snapshot_timestamp_seconds", "When the exported snapshot was built.")
    at.add_metric([machine], snap.at.timestamp())
    is_open = gauge("cycle_open", "1 while a 5-hour window is open.")
    is_open.add_metric([machine], 1 if snap.cycle.state == "open" else 0)
    fams += [info, at, is_open]
    if snap.cycle.end is not None:
        end = gauge("cycle_end_timestamp_seconds", "When the current 5-hour window resets.")
        end.add_metric([machine], snap.cycle.end.timestamp())
        fams.append(end)

    p = snap.prompts
    for name, value, doc in (
        ("cycle_prompt_equivalents", p.equivalents, "Prompt-equivalents this cycle (what the plan counts)."),
        ("cycle_prompt_limit", p.limit, "The plan's prompts per cycle."),
        ("cycle_percent_used", p.percent, "Local estimate of the prompt pool used, percent."),
    ):
        g = gauge(name, doc)
        g.add_metric([machine], float(value))
        fams.append(g)

    credits = gauge("cycle_credits", "Credits this cycle by tool and the model each call asked for.", ("tool", "model"))
    prompts = gauge("cycle_prompts", "Prompts this cycle by tool.", ("tool", "model"))
    calls = gauge("cycle_calls", "Model calls this cycle by tool.", ("tool", "model"))
    searches = gauge("cycle_searches", "Monthly-pool MCP calls this cycle by tool.", ("tool",))
    for row in snap.tools:
        if not row.found:
            continue
        model = row.model or ""
        prompts.add_metric([machine, row.tool, model], row.prompts)
        calls.add_metric([machine, row.tool, model], row.calls)
        searches.add_metric([machine, row.tool], row.searches)
        for asked, value in row.credits_by_model.items():
            credits.add_metric([machine, row.tool, asked], value)
    fams += [prompts, calls, searches, credits]

    for name, counts, doc in (
        ("cycle_mcp_calls", snap.searches.cycle_by_service, "Z.ai MCP calls this cycle by service."),
        ("month_mcp_calls", snap.searches.by_service, "Z.ai MCP calls this month by service."),
    ):
        g = gauge(name, doc, ("service",))
        for service, n in sorted(counts.items()):
            g.add_metric([machine, service], n)
        fams.append(g)

    fams += _window_metrics(snap, machine, gauge)
    fams += _official_metrics(snap.official, machine, gauge)

    up = gauge("source_up", "1 when a source is healthy.", ("source",))
    for src in snap.sources:
        up.add_metric([machine, src.name], 1 if src.status == "ok" else 0)
    fams.append(up)
    return fams


WINDOW_FIELDS = (
    ("used", "window_used", "Used in the window, in its unit."),
    ("limit", "window_limit", "The window's pool, in its unit."),
    ("left", "window_left", "Left in the window, in its unit (never negative)."),
    ("percent", "window_percent_used", "Share of the window's pool used, percent."),
)
LEVELS = ("ok", "warning", "critical", "exhausted")


def _window_metrics(snap: Snapshot, machine: str, gauge: Callable[..., GaugeMetricFamily]) -> list[Metric]:
    """Each metered window (the snapshot's rows) and the headline: what leads every view."""
    labels = ("window", "unit", "source", "anchor")
    fams = {field: gauge(name, doc, labels) for field, name, doc in WINDOW_FIELDS}
    end = gauge("window_end_timestamp_seconds", "When the window resets (absent when not known).", labels)
    level = gauge("window_level", "The window's level: 0 ok, 1 warning, 2 critical, 3 exhausted.", labels)
    blocked = gauge("window_blocked", "1 while a limit hit blocks requests in the window.", labels)
    for w in snap.windows:
        key = [machine, w.id, w.unit, w.source, w.anchor]
        for field, _, _ in WINDOW_FIELDS:
            fams[field].add_metric(key, float(getattr(w, field)))
        if w.end is not None:
            end.add_metric(key, w.end.timestamp())
        level.add_metric(key, LEVELS.index(w.level))
        blocked.add_metric(key, 1 if w.blocked_until is not None else 0)
    out: list[Metric] = [*fams.values(), end, level, blocked]
    c = snap.credits
    credits = gauge(
        "credits", "Credits by window (local count; on prompt plans what the calls would cost).", ("window",)
    )
    for wid, value in (("5h", c.window_5h), ("weekly", c.week), ("previous-week", c.previous_week)):
        credits.add_metric([machine, wid], value)
    out.append(credits)
    head = snap.headline
    if head is not None and head.window is not None:
        h = gauge("headline_left", "Left in the binding window (the least left), in its unit.", ("window", "unit"))
        h.add_metric([machine, head.window, head.unit or ""], head.left)
        hl = gauge("headline_level", "The worst level over every window: 0 ok … 3 exhausted.")
        hl.add_metric([machine], LEVELS.index(head.level))
        out += [h, hl]
        if head.prompts_left is not None:
            pl = gauge("prompts_left", "Prompts left (native on prompt plans, an estimate on credits).", ("source",))
            pl.add_metric([machine, head.prompts_left_source or ""], head.prompts_left)
            out.append(pl)
    return out


def _official_metrics(
    rows: tuple[Mapping[str, Any], ...], machine: str, gauge: Callable[..., GaugeMetricFamily]
) -> list[Metric]:
    labels = ("kind", "label")
    fams: dict[str, GaugeMetricFamily] = {}
    for field, name, doc in OFFICIAL_FIELDS:
        fams[field] = gauge(name, doc, labels)
    reset = gauge("official_next_reset_timestamp_seconds", "When the official window resets.", labels)
    stale = gauge("official_stale", "1 when the official reading is stale.", labels)
    for row in rows:
        key = [machine, str(row.get("kind", "unknown")), str(row.get("label", ""))]
        for field, _, _ in OFFICIAL_FIELDS:
            value = row.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                fams[field].add_metric(key, float(value))
        when = _ts(row.get("next_reset"))
        if when is not None:
            reset.add_metric(key, when)
        stale.add_metric(key, 1 if row.get("stale") else 0)
    return [*fams.values(), reset, stale]


class _SnapshotCollector(Collector):
    def __init__(self, provider: Callable[[], Snapshot | None], machine: str) -> None:
        self.provider = provider
        self.machine = machine

    def collect(self) -> Iterator[Metric]:
        snap = self.provider()
        if snap is not None:
            yield from snapshot_metrics(snap, self.machine)


class _BoundedServer(ThreadingWSGIServer):
    """prometheus_client's server: a thread per connection, but at most `MAX_CONNECTIONS`, none past the deadline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.live: dict[socket.socket, float] = {}
        """Each open connection's start, in `ticks` (elapsed seconds; the wall clock may jump)."""
        self.ticks: Callable[[], float] = SYSTEM_CLOCK.ticks
        self._live_lock = threading.Lock()
        self._reaper_stop = threading.Event()
        self._reaper: threading.Thread | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(timeout=QUEUE_WAIT):
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        with self._live_lock:
            self.live[request] = self.ticks()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release(request)
            raise

    def shutdown_request(self, request: Any) -> None:
        self._release(request)
        super().shutdown_request(request)

    def _release(self, request: Any) -> None:
        with self._live_lock:
            if self.live.pop(request, None) is None:
                return
        self.slots.release()

    def start_reaper(self) -> None:
        self._reaper_stop.clear()
        self._reaper = threading.Thread(target=self._reap, name="zai-dash-exporter-reaper", daemon=True)
        self._reaper.start()

    def stop_reaper(self) -> None:
        self._reaper_stop.set()
        if self._reaper is not None:
            self._reaper.join(timeout=2)
            self._reaper = None

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: a client that timed out or was reaped is not worth a traceback on the terminal."""

    def _reap(self) -> None:
        while not self._reaper_stop.wait(0.5):
            cutoff = self.ticks() - CONNECTION_DEADLINE
            with self._live_lock:
                overdue = [s for s, started in self.live.items() if started < cutoff]
            for sock in overdue:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the handler's blocked read returns; it then closes
                except OSError:
                    pass


class _Handler(WSGIRequestHandler):
    timeout = IO_TIMEOUT  # every read and write of a connection; the library's handler has none

    def log_message(self, format: str, *args: Any) -> None:
        pass  # scrapes every 15 s would flood the terminal


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _only_metrics(app: WsgiApp) -> WsgiApp:
    """Serve `/metrics` (and `/`) only, and answer 500 when a snapshot cannot be rendered.

    prometheus_client answers on any path; this exporter keeps the one it documents. A collector that
    raises would otherwise print wsgiref's traceback for every scrape.
    """

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"only /metrics is served\n"]
        try:
            return app(environ, start_response)
        except Exception:  # the library starts the response only once the body is rendered
            start_response("500 Internal Server Error", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"could not render the snapshot\n"]

    return guarded


def render(snap: Snapshot, machine: str) -> bytes:
    """The Prometheus text exposition of one snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(lambda: snap, machine))
    return generate_latest(registry)


class Exporter:
    """Serves `/metrics` on a background thread.

    Args:
        listen: `HOST:PORT` (port 0 picks a free one; see `port`).
        provider: returns the latest snapshot (or None before the first scan); called per scrape
            from the server thread, so it should return an already-built snapshot, not build one.
        machine: the `machine` label; defaults to this host's name.
    """

    def __init__(self, listen: str, provider: Callable[[], Snapshot | None], machine: str | None = None) -> None:
        host, port = parse_listen(listen)
        self.machine = machine or socket.gethostname()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SnapshotCollector(provider, self.machine))
        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(_BoundedServer):
            address_family = family

        app = _only_metrics(make_wsgi_app(self.registry))
        self._server = make_server(host, port, app, Server, handler_class=_Handler)  # binds now, serves on start()
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> Exporter:
        """Start serving in a daemon thread (and the reaper of overdue connections)."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.1,), name="zai-dash-exporter", daemon=True
        )
        self._thread.start()
        self._server.start_reaper()
        return self

    @property
    def active(self) -> int:
        """Connections being served now."""
        return len(self._server.live)

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.stop_reaper()
        self._server.server_close()

    def __enter__(self) -> Exporter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
