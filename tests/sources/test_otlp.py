"""The OTLP receiver, fed by the real OpenTelemetry SDK's OTLP/HTTP exporters on loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from tests.support.claude_code import SESSION, Claude, assistant, user
from tests.support.env import FIXED_NOW
from zai_dash.clock import FixedClock
from zai_dash.config import Config, OtlpSettings, load_config
from zai_dash.domain.events import CallRole, EventKind
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext
from zai_dash.sources.otlp import MAX_BODY, SETTLE, OtlpSource
from zai_dash.sources.tools.claude_code import ClaudeCodeSource

HERE = "laptop"


class Clock:
    """A clock the test moves (the receiver stamps arrivals with it)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def claude_event(name: str, at: datetime, **attrs: Any) -> dict[str, Any]:
    """One Claude Code event's attributes, as its `Jc()` builds them (2.1.x)."""
    return {
        "user.id": "u-hash", "session.id": SESSION, "terminal.type": "tmux", "event.name": name,
        "event.timestamp": at.isoformat().replace("+00:00", "Z"), "event.sequence": 1, **attrs,
    }  # fmt: skip


def api_request(at: datetime, request_id: str | None, prompt_id: str = "p1", **over: Any) -> dict[str, Any]:
    attrs = {
        "model": "glm-4.6", "input_tokens": 100, "output_tokens": 10, "cache_read_tokens": 1000,
        "cache_creation_tokens": 50, "cost_usd": 0.0, "duration_ms": 900, "speed": "normal",
        "query_source": "repl_main_thread", "prompt.id": prompt_id, **over,
    }  # fmt: skip
    if request_id is not None:
        attrs["request_id"] = request_id
    return claude_event("api_request", at, **attrs)


def user_prompt(at: datetime, prompt_id: str, **over: Any) -> dict[str, Any]:
    return claude_event("user_prompt", at, prompt_length="12", prompt="<REDACTED>", **{"prompt.id": prompt_id}, **over)


def resource(host: str | None) -> Resource:
    attrs = {"service.name": "claude-code", "service.version": "2.1.197", "host.arch": "amd64"}
    if host is not None:
        attrs["host.name"] = host
    return Resource.create(attrs)


def records(events: list[dict[str, Any]]) -> list[LogRecord]:
    return [
        LogRecord(
            timestamp=int(datetime.fromisoformat(e["event.timestamp"].replace("Z", "+00:00")).timestamp() * 1e9),
            body=f"claude_code.{e['event.name']}",
            attributes=e,
        )
        for e in events
    ]


def send_logs(
    url: str,
    events: list[dict[str, Any]],
    host: str | None = HERE,
    headers: Mapping[str, str] | None = None,
    compression: Compression = Compression.NoCompression,
) -> None:
    """Export `events` as Claude Code does: the SDK's LoggerProvider → OTLP/HTTP protobuf exporter."""
    exporter = OTLPLogExporter(endpoint=f"{url}/v1/logs", headers=dict(headers or {}), compression=compression)
    provider = LoggerProvider(resource=resource(host))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    for record in records(events):
        logger.emit(record)
    provider.shutdown()


def logs_body(events: list[dict[str, Any]], host: str | None = HERE) -> bytes:
    """The protobuf body the SDK's exporter would send for `events`."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource(host))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    for record in records(events):
        logger.emit(record)
    finished: list[ReadableLogRecord] = list(memory.get_finished_logs())
    provider.shutdown()
    return encode_logs(finished).SerializeToString()


@pytest.fixture
def clock() -> Clock:
    return Clock(FIXED_NOW)


@pytest.fixture
def receiver(home: Path, clock: Clock) -> Iterator[OtlpSource]:
    ctx = SourceContext(home=home, env={"OTLP_TOKEN": "s3cret"}, clock=clock)
    source = OtlpSource(OtlpSettings(enabled=True, listen="127.0.0.1:0", machine=HERE), ctx)
    assert source.start(), source.error
    yield source
    source.close()


def settled(source: OtlpSource, clock: Clock) -> Any:
    clock.now += SETTLE
    return source.poll()


def test_sdk_events_become_calls_prompts_and_limit_hits(receiver: OtlpSource, clock: Clock) -> None:
    t = FIXED_NOW - timedelta(minutes=5)
    error = '429 {"error":{"code":"1308","message":"Usage limit reached, reset at 2026-11-26 20:00:00"}}'
    send_logs(
        receiver.url,
        [
            user_prompt(t, "p1"),
            api_request(t + timedelta(seconds=2), "req_1"),
            api_request(t + timedelta(seconds=3), "req_2", query_source="compact", model="GLM-4.5-Air"),
            api_request(t + timedelta(seconds=4), "req_3", query_source="agent:custom"),
            claude_event("api_error", t + timedelta(seconds=5), model="glm-4.6", error=error, status_code="429"),
            claude_event("tool_result", t, tool_name="Read"),  # another event kind: ignored quietly
        ],
    )
    batch = settled(receiver, clock)
    calls = {e.key: e for e in batch.events if e.kind is EventKind.CALL}
    assert set(calls) == {"req:req_1", "req:req_2", "req:req_3"}
    one = calls["req:req_1"]
    assert (one.input_tokens, one.cached_tokens, one.output_tokens, one.tokens) == (1150, 1000, 10, 1160)
    assert (one.model, one.session, one.origin, one.role) == ("glm-4.6", SESSION, HERE, CallRole.MAIN)
    assert calls["req:req_2"].role is CallRole.AUXILIARY and calls["req:req_2"].model == "glm-4.5-air"
    assert calls["req:req_3"].role is CallRole.SUBAGENT
    assert [e.key for e in batch.events if e.kind is EventKind.PROMPT] == ["prompt:p1"]
    assert len(batch.limit_hits) == 1
    hit = batch.limit_hits[0]
    assert hit.code == 1308 and hit.reset_at is not None and hit.reset_at.hour == 12  # 20:00 UTC+8
    assert receiver.skips.lines == 0 and receiver.received == 5


def test_events_from_this_machine_wait_for_the_transcript_others_count_at_once(
    receiver: OtlpSource, clock: Clock
) -> None:
    t = FIXED_NOW - timedelta(minutes=1)
    send_logs(receiver.url, [api_request(t, "req_here")])
    send_logs(receiver.url, [api_request(t, "req_there")], host="devbox")
    first = receiver.poll()
    assert [(e.key, e.origin) for e in first.events] == [("req:req_there", "devbox")]
    assert receiver.has_news() is False
    clock.now += SETTLE
    assert receiver.has_news() is True
    assert [e.key for e in receiver.poll().events] == ["req:req_here"]


def test_events_without_host_name_are_this_machines(receiver: OtlpSource, clock: Clock) -> None:
    # Claude Code 2.1 keeps only host.arch from the host detector: host.name comes from OTEL_RESOURCE_ATTRIBUTES.
    send_logs(receiver.url, [api_request(FIXED_NOW, "req_1")], host=None)
    assert receiver.poll().events == []
    assert [e.origin for e in settled(receiver, clock).events] == [HERE]


def test_json_and_gzip_bodies(receiver: OtlpSource, clock: Clock) -> None:
    body = logs_body([api_request(FIXED_NOW, "req_json")], host="devbox")
    as_json = json_format.MessageToJson(type_of_logs_request().FromString(body))
    reply = httpx.post(f"{receiver.url}/v1/logs", content=as_json, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200 and reply.json() == {}
    send_logs(receiver.url, [api_request(FIXED_NOW, "req_gz")], host="devbox", compression=Compression.Gzip)
    assert sorted(e.key for e in receiver.poll().events) == ["req:req_gz", "req:req_json"]


def type_of_logs_request() -> Any:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    return ExportLogsServiceRequest


def test_sdk_metrics_are_accepted_and_counted(receiver: OtlpSource) -> None:
    exporter = OTLPMetricExporter(endpoint=f"{receiver.url}/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=60_000)
    provider = MeterProvider(resource=resource("devbox"), metric_readers=[reader])
    counter = provider.get_meter("com.anthropic.claude_code").create_counter("claude_code.token.usage")
    counter.add(1150, {"type": "input", "model": "glm-4.6"})
    counter.add(10, {"type": "output", "model": "glm-4.6"})
    provider.shutdown()  # flushes through the exporter
    assert receiver.metric_points == 2
    assert receiver.hosts() == ["devbox"]
    assert receiver.poll().events == []  # aggregates of the same requests: never usage


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xff\xff\xff not protobuf", "application/x-protobuf"),
        (b"{not json", "application/json"),
        (b'{"resourceLogs": 7}', "application/json"),
        (b"hello", "text/plain"),
    ],
)
def test_a_malformed_body_is_a_400_and_a_counted_skip(receiver: OtlpSource, body: bytes, content_type: str) -> None:
    reply = httpx.post(f"{receiver.url}/v1/logs", content=body, headers={"Content-Type": content_type})
    assert reply.status_code == 400
    receiver.poll()  # the engine's poll folds in what the receiver thread skipped
    assert receiver.skips.lines == 1
    # …and the receiver carries on.
    send_logs(receiver.url, [api_request(FIXED_NOW, "req_ok")], host="devbox")
    assert [e.key for e in receiver.poll().events] == ["req:req_ok"]


def test_bad_gzip_and_a_gzip_bomb_are_400(receiver: OtlpSource) -> None:
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}
    assert httpx.post(f"{receiver.url}/v1/logs", content=b"not gzip", headers=headers).status_code == 400
    bomb = gzip.compress(b"\0" * (MAX_BODY + 1024))
    assert len(bomb) < MAX_BODY
    assert httpx.post(f"{receiver.url}/v1/logs", content=bomb, headers=headers).status_code == 400
    receiver.poll()  # the engine's poll folds in what the receiver thread skipped
    assert receiver.skips.lines == 2


def test_an_oversized_body_is_refused_unread(receiver: OtlpSource) -> None:
    reply = httpx.post(
        f"{receiver.url}/v1/logs", content=b"\0" * (MAX_BODY + 1), headers={"Content-Type": "application/x-protobuf"}
    )
    assert reply.status_code == 413
    receiver.poll()  # the engine's poll folds in what the receiver thread skipped
    assert receiver.skips.counts["OTLP body too large"] == 1


def test_chunked_bodies_as_claude_code_sends_them(receiver: OtlpSource) -> None:
    """Claude Code's Bun runtime sends OTLP without Content-Length, chunked (seen with 2.1.197)."""
    body = logs_body([api_request(FIXED_NOW, "req_chunked")], host="devbox")
    headers = {"Content-Type": "application/x-protobuf"}

    def chunks(data: bytes, size: int) -> Iterator[bytes]:
        yield from (data[i : i + size] for i in range(0, len(data), size))

    reply = httpx.post(f"{receiver.url}/v1/logs", content=chunks(body, 100), headers=headers)
    assert reply.status_code == 200
    assert [e.key for e in receiver.poll().events] == ["req:req_chunked"]
    big = httpx.post(f"{receiver.url}/v1/logs", content=chunks(b"\0" * (MAX_BODY + 1), 1 << 20), headers=headers)
    assert big.status_code == 413


def test_a_malformed_chunk_or_no_length_is_refused(receiver: OtlpSource) -> None:
    host, port = "127.0.0.1", receiver.port

    def raw(request: bytes) -> bytes:
        with socket.create_connection((host, port), timeout=10) as conn:
            conn.sendall(request)
            return conn.recv(1024)

    head = b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
    assert raw(head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n").startswith(b"HTTP/1.0 400")
    assert raw(head + b"\r\n").startswith(b"HTTP/1.0 411")
    receiver.poll()  # the engine's poll folds in what the receiver thread skipped
    assert receiver.skips.lines == 2


def test_host_name_on_the_event_when_the_resource_has_none(receiver: OtlpSource) -> None:
    send_logs(receiver.url, [api_request(FIXED_NOW, "req_1", **{"host.name": "devbox"})], host=None)
    assert [e.origin for e in receiver.poll().events] == ["devbox"]


def test_unknown_paths_are_404(receiver: OtlpSource) -> None:
    assert httpx.post(f"{receiver.url}/v1/other", content=b"").status_code == 404


def test_bearer_token_is_required_when_configured(home: Path, clock: Clock) -> None:
    ctx = SourceContext(home=home, env={"OTLP_TOKEN": "s3cret"}, clock=clock)
    settings = OtlpSettings(enabled=True, listen="127.0.0.1:0", token_env="OTLP_TOKEN")
    source = OtlpSource(settings, ctx)
    assert source.start()
    try:
        body = logs_body([api_request(FIXED_NOW, "req_1")], host="devbox")
        plain = {"Content-Type": "application/x-protobuf"}
        assert httpx.post(f"{source.url}/v1/logs", content=body, headers=plain).status_code == 401
        wrong = {**plain, "Authorization": "Bearer nope"}
        assert httpx.post(f"{source.url}/v1/logs", content=body, headers=wrong).status_code == 401
        assert source.poll().events == []
        send_logs(
            source.url, [api_request(FIXED_NOW, "req_1")], host="devbox", headers={"Authorization": "Bearer s3cret"}
        )
        assert [e.key for e in source.poll().events] == ["req:req_1"]
    finally:
        source.close()


def test_a_named_token_variable_that_is_unset_means_no_listening(home: Path) -> None:
    source = OtlpSource(OtlpSettings(enabled=True, listen="127.0.0.1:0", token_env="MISSING_TOKEN"),
                        SourceContext(home=home, env={}))  # fmt: skip
    assert source.start() is False
    [health] = source.health()
    assert health.status == "error" and "MISSING_TOKEN" in health.detail


def test_config_table_turns_it_on_and_defaults_to_loopback(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[otlp]\ntoken_env = "ZAI_DASH_OTLP_TOKEN"\nmachine = "laptop"\n')
    otlp = load_config(path, env={}).otlp
    assert (otlp.enabled, otlp.listen, otlp.token_env, otlp.machine) == (
        True, "127.0.0.1:4318", "ZAI_DASH_OTLP_TOKEN", "laptop",
    )  # fmt: skip
    assert Config().otlp.enabled is False
    path.write_text("[otlp]\nenabled = false\n")
    assert load_config(path, env={}).otlp.enabled is False


def test_no_double_counting_against_the_transcript_either_order(home: Path, clock: Clock) -> None:
    """The same prompt and call from the transcript and from OTel count once, whichever is read first."""
    claude = Claude(home / ".claude")
    ctx = SourceContext(home=home, env={}, clock=clock)
    t0 = FIXED_NOW - timedelta(minutes=10)
    otlp = OtlpSource(OtlpSettings(enabled=True, listen="127.0.0.1:0", machine=HERE), ctx)
    engine = Engine(Config(otlp=OtlpSettings(enabled=False)), ctx=ctx, clock=FixedClock(FIXED_NOW),
                    sources=[ClaudeCodeSource(ctx), otlp])  # fmt: skip
    otlp.ledger = engine.ledger
    assert otlp.start()
    try:
        # The transcript first: prompt p1 and call req_1.
        claude.append(claude.session_file(), user("fix it", "u1", promptId="p1"),
                      assistant("msg_1", "req_1"))  # fmt: skip
        engine.scan()
        # OTel: the same two, an auxiliary call only OTel sees, and a second prompt whose transcript line is late.
        send_logs(otlp.url, [
            user_prompt(t0, "p1"), api_request(t0, "req_1"), api_request(t0, "req_aux", query_source="compact"),
            user_prompt(t0, "p2"), api_request(t0, "req_late", prompt_id="p2"),
        ])  # fmt: skip
        engine.scan(set())
        claude.append(claude.session_file(), user("and this", "u2", 30, promptId="p2"),
                      assistant("msg_2", "req_late", 31))  # fmt: skip
        engine.scan()
        clock.now += SETTLE
        engine.scan(set())
    finally:
        otlp.close()
    events = engine.ledger.events()
    prompts = sorted(e.key for e in events if e.kind is EventKind.PROMPT)
    calls = sorted(e.key for e in events if e.kind is EventKind.CALL)
    assert prompts == ["prompt:p1", "prompt:p2"]
    assert calls == ["msg_1:req_1", "msg_2:req_late", "req:req_aux"]
    assert otlp.duplicates == 4  # p1, req_1, p2, req_late: dropped, not merely collapsed by the ledger


def test_the_dashboard_receives_while_watching(home: Path) -> None:
    """End to end: `[otlp]` in the config, the engine's watch loop, the SDK exporting to it."""
    config = Config(otlp=OtlpSettings(enabled=True, listen="127.0.0.1:0", machine=HERE))
    ctx = SourceContext(home=home, env={}, clock=lambda: FIXED_NOW)
    engine = Engine(config, ctx=ctx, clock=FixedClock(FIXED_NOW))
    engine.publish_state = False
    engine.scan()
    assert engine.otlp is not None

    async def run() -> int:
        stop = asyncio.Event()
        watcher = engine.watch(stop)
        first = asyncio.ensure_future(watcher.__anext__())
        await asyncio.sleep(0.3)
        assert engine.otlp is not None and engine.otlp.port
        await asyncio.to_thread(
            send_logs, engine.otlp.url,
            [user_prompt(FIXED_NOW - timedelta(minutes=1), "p9"), api_request(FIXED_NOW - timedelta(minutes=1), "r9")],
            "devbox",
        )  # fmt: skip
        snap = await asyncio.wait_for(first, timeout=30)  # a hang guard, not a timing assertion
        stop.set()
        await watcher.aclose()
        return snap.prompts.used

    assert asyncio.run(run()) == 1
    health = {h.name: h for h in engine.snapshot().sources}
    assert "devbox" in health["otlp"].detail
    assert any(e.origin == "devbox" for e in engine.ledger.events())
