"""OTLP ingest throughput and fleet query latency (issue 14); writes its own section of RESULTS.md.

    .venv/bin/python bench/otlp_fleet.py [--batches 40] [--runs 20] [--machines 10] [--no-write]

* **OTLP ingest**, pinned to one core: Claude Code's batches (512 log records, the JS SDK's default
  `maxExportBatchSize`, 60 % `api_request`, 30 % `user_prompt`, 10 % other events) built with the
  OpenTelemetry SDK's own encoder. Measured twice: `OtlpSource.accept` alone (decode + convert), and
  end to end (HTTP POST over loopback to the receiver thread, then the engine's `poll` settling the
  events against a ledger holding 10,000 transcript calls).
* **Fleet query**: `--machines` exporters on loopback (`zai-dash export`'s `Exporter`), scraped every
  second by a real Prometheus; then the median of `--runs` `FleetSource.refresh()` (one PromQL query, JSON
  parse, state update) and of building the fleet view. Needs the `prometheus` binary.

The section sits between the `<!-- otlp-fleet -->` markers; `bench/run.py` leaves it alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from opentelemetry._logs import LogRecord  # noqa: E402
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402

from zai_dash.domain.events import EventKind, UsageEvent  # noqa: E402
from zai_dash.domain.fleet import FLEET_QUERY, LocalFigures  # noqa: E402
from zai_dash.domain.ledger import Ledger  # noqa: E402
from zai_dash.sources.base import SourceContext  # noqa: E402
from zai_dash.sources.fleet import FleetSettings, FleetSource, parse_query_result  # noqa: E402
from zai_dash.sources.otlp import SETTLE, OtlpSettings, OtlpSource  # noqa: E402

BATCH = 512
MARK_START, MARK_END = "<!-- otlp-fleet -->", "<!-- /otlp-fleet -->"
NOW = datetime.now(timezone.utc)


def claude_batch(n: int, offset: int) -> bytes:
    """One OTLP/protobuf logs body as Claude Code's exporter sends it."""
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=Resource.create({"service.name": "claude-code", "host.name": "laptop"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("com.anthropic.claude_code.events")
    for i in range(n):
        k = offset + i
        at = NOW - timedelta(seconds=k)
        base = {"session.id": "s1", "event.timestamp": at.isoformat(), "event.sequence": k, "prompt.id": f"p{k // 10}"}
        if i % 10 < 6:
            name, attrs = "api_request", {
                "model": "glm-4.6", "input_tokens": 120, "output_tokens": 80, "cache_read_tokens": 9000,
                "cache_creation_tokens": 300, "request_id": f"req_{k}", "query_source": "repl_main_thread",
                "cost_usd": 0.01, "duration_ms": 900,
            }  # fmt: skip
        elif i % 10 < 9:
            name, attrs = "user_prompt", {"prompt_length": "40", "prompt": "<REDACTED>"}
        else:
            name, attrs = "tool_result", {"tool_name": "Read", "success": "true"}
        record = LogRecord(timestamp=int(at.timestamp() * 1e9), body=f"claude_code.{name}",
                           attributes={**base, "event.name": name, **attrs})  # fmt: skip
        logger.emit(record)
    body = encode_logs(list(memory.get_finished_logs())).SerializeToString()
    provider.shutdown()
    return body


def events_in(n: int) -> int:
    return sum(1 for i in range(n) if i % 10 < 9)


def bench_otlp(batches: int) -> dict[str, Any]:
    bodies = [claude_batch(BATCH, b * BATCH) for b in range(batches)]
    events = events_in(BATCH) * batches
    home = Path(tempfile.mkdtemp(prefix="zd-bench-otlp-"))
    clock = [NOW]
    ctx = SourceContext(home=home, clock=lambda: clock[0])
    # accept() alone: decode + convert.
    source = OtlpSource(OtlpSettings(enabled=True, listen="127.0.0.1:0", machine="laptop"), ctx)
    t0 = time.perf_counter()
    for body in bodies:
        source.accept("logs", body, "application/x-protobuf")
    decode_s = time.perf_counter() - t0
    # End to end: HTTP over loopback, then poll() settling against a ledger of transcript calls.
    ledger = Ledger()
    for i in range(10_000):
        ledger.add(UsageEvent(EventKind.CALL, NOW - timedelta(seconds=i), "claude-code", f"msg_{i}:req_t{i}"))
    source = OtlpSource(OtlpSettings(enabled=True, listen="127.0.0.1:0", machine="laptop"), ctx, ledger=ledger)
    assert source.start(), source.error
    try:
        with httpx.Client() as client:
            t0 = time.perf_counter()
            for body in bodies:
                reply = client.post(f"{source.url}/v1/logs", content=body,
                                    headers={"Content-Type": "application/x-protobuf"})  # fmt: skip
                assert reply.status_code == 200, reply.text
            clock[0] = NOW + SETTLE
            settled = len(source.poll().events)
            e2e_s = time.perf_counter() - t0
    finally:
        source.close()
        shutil.rmtree(home, ignore_errors=True)
    return {
        "events": events, "batches": batches, "body_kib": sum(map(len, bodies)) / batches / 1024,
        "decode_eps": events / decode_s, "e2e_eps": events / e2e_s, "settled": settled,
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_fleet(machines: int, runs: int) -> dict[str, Any] | None:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        return None
    from tests.support.exporter import _snapshot
    from zai_dash.exporter import Exporter

    snaps = [_snapshot(3 + i, 20 + i) for i in range(machines)]
    exporters = [
        Exporter("127.0.0.1:0", provider=lambda s=snap: s, machine=f"box{i:02d}").start()
        for i, snap in enumerate(snaps)
    ]
    work = Path(tempfile.mkdtemp(prefix="zd-bench-prom-"))
    targets = ", ".join(f"'127.0.0.1:{e.port}'" for e in exporters)
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n"
        f"  - job_name: zai-dash\n    static_configs: [{{targets: [{targets}]}}]\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [prometheus, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                doc = httpx.get(f"{url}/api/v1/query", params={"query": FLEET_QUERY}, timeout=5).json()
                if len({s.labels["machine"] for s in parse_query_result(doc)}) == machines:
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("Prometheus never saw every exporter")
        source = FleetSource(FleetSettings(prometheus=url, machine="box00"), SourceContext(home=work))
        local = LocalFigures(3, 3, 20, 1, 400)

        async def timed() -> tuple[list[float], list[float]]:
            query, view = [], []
            async with httpx.AsyncClient() as client:
                source._client = client  # one client, as the running dashboard keeps
                await source.refresh()  # warm-up
                for _ in range(runs):
                    t0 = time.perf_counter()
                    attempt = await source.refresh()
                    query.append(time.perf_counter() - t0)
                    assert attempt.ok, attempt.message
                    t0 = time.perf_counter()
                    built = source.view(datetime.now(timezone.utc), local, [], None)
                    view.append(time.perf_counter() - t0)
                    assert len(built["machines"]) == machines
            return query, view

        query, view = asyncio.run(timed())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for e in exporters:
            e.close()
        shutil.rmtree(work, ignore_errors=True)
    version = subprocess.run([prometheus, "--version"], capture_output=True, text=True, check=False)
    return {
        "machines": machines, "runs": runs, "query_ms": statistics.median(query) * 1000,
        "query_min": min(query) * 1000, "query_max": max(query) * 1000,
        "view_ms": statistics.median(view) * 1000, "prometheus": (version.stdout or version.stderr).split("\n")[0],
    }  # fmt: skip


def section(otlp: dict[str, Any], fleet: dict[str, Any] | None) -> str:
    cpu = platform.processor() or platform.machine()
    lines = [
        MARK_START,
        "## Issue 14: OTLP ingest and the fleet query",
        "",
        f"Generated by `python bench/otlp_fleet.py` on {NOW:%Y-%m-%d %H:%M} UTC (Python {platform.python_version()}, "
        f"{cpu}; the ingest pinned to one core).",
        "",
        "| measurement | result |",
        "|---|---|",
        f"| OTLP ingest, decode + convert (`OtlpSource.accept`) | {otlp['decode_eps']:,.0f} events/s "
        f"({otlp['batches']} batches of {BATCH} records, {otlp['body_kib']:.0f} KiB each) |",
        f"| OTLP ingest, end to end (HTTP POST on loopback → receiver thread → `poll` settling against 10,000 "
        f"transcript calls) | {otlp['e2e_eps']:,.0f} events/s ({otlp['settled']:,} events counted) |",
    ]
    if fleet is None:
        lines.append("| fleet query | not measured: no `prometheus` binary |")
    else:
        lines += [
            f"| fleet query, {fleet['machines']} machines (`FleetSource.refresh`: one PromQL query, parse, state) | "
            f"{fleet['query_ms']:.1f} ms median of {fleet['runs']} "
            f"({fleet['query_min']:.1f}–{fleet['query_max']:.1f}) |",
            f"| fleet view build, {fleet['machines']} machines | {fleet['view_ms']:.2f} ms |",
        ]
    lines += [
        "",
        f"Claude Code exports a batch every 5 s by default: one core ingests about "
        f"{otlp['e2e_eps'] * 5:,.0f} events in that time, far beyond what any number of sessions produce. "
        + (f"The fleet query runs every 30 s by default ({fleet['prometheus']})." if fleet else ""),
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write(text: str, path: Path) -> None:
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if MARK_START in old and MARK_END in old:
        head, rest = old.split(MARK_START, 1)
        _, tail = rest.split(MARK_END, 1)
        new = head + text.rstrip("\n") + tail
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--machines", type=int, default=10)
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RESULTS.md alone")
    args = parser.parse_args()
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_setaffinity") else None
    if cores:
        os.sched_setaffinity(0, {min(cores)})  # ingest on one core, the receiver thread included
    otlp = bench_otlp(args.batches)
    if cores:
        os.sched_setaffinity(0, cores)  # Prometheus (a child) gets the machine's cores back
    fleet = bench_fleet(args.machines, args.runs)
    text = section(otlp, fleet)
    print(text)
    if not args.no_write:
        write(text, ROOT / "bench" / "RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
