"""The exporter: a snapshot as Prometheus metrics, and several machines merged by a third dashboard."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.env import FIXED_NOW
from tests.support.exporter import _snapshot
from zai_dash.clock import FixedClock
from zai_dash.domain.listen import parse_listen
from zai_dash.domain.proxy import merge_machines
from zai_dash.domain.snapshot import Snapshot
from zai_dash.exporter import Exporter, render
from zai_dash.sources.base import SourceContext
from zai_dash.sources.prometheus import PrometheusSource, ProxySettings, parse_exposition


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen(":9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)
    for bad in ("9464", "host:port", "1.2.3.4:70000", "[::1]9464"):
        with pytest.raises(ValueError, match="--listen"):
            parse_listen(bad)


def test_render_has_counts_cycle_end_and_official_rows() -> None:
    snap = _snapshot(3, 40, official=True)
    text = render(snap, "laptop").decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in parse_exposition(text, "text/plain")}
    m = (("machine", "laptop"),)
    assert samples[("zai_dash_cycle_prompts", (*m, ("model", "glm-4.6"), ("tool", "claude-code")))] == 3
    assert samples[("zai_dash_cycle_calls", (*m, ("model", "glm-4.6"), ("tool", "claude-code")))] == 40
    assert all(k[1] == tuple(sorted(k[1])) for k in samples)
    assert samples[("zai_dash_cycle_searches", (*m, ("tool", "claude-code")))] == 1
    assert samples[("zai_dash_cycle_mcp_calls", (*m, ("service", "search")))] == 1
    assert samples[("zai_dash_cycle_end_timestamp_seconds", m)] == snap.cycle.end.timestamp()  # type: ignore[union-attr]
    assert samples[("zai_dash_cycle_prompt_equivalents", m)] == snap.prompts.equivalents
    five = (("kind", "five-hour"), ("label", "5-hour"), *m)
    assert samples[("zai_dash_official_percent", five)] == 12
    assert (
        samples[("zai_dash_official_next_reset_timestamp_seconds", five)]
        == (FIXED_NOW + timedelta(hours=1)).timestamp()
    )
    mcp = (("kind", "monthly-mcp"), ("label", "monthly MCP"), *m)
    assert samples[("zai_dash_official_used", mcp)] == 28 and samples[("zai_dash_official_limit", mcp)] == 100
    assert samples[("zai_dash_source_up", (*m, ("source", "claude-code")))] == 1
    # Tools never found are not exported as rows of zeros.
    assert not any(k[0] == "zai_dash_cycle_prompts" and ("tool", "goose") in k[1] for k in samples)


def test_exporter_serves_metrics_and_404s_elsewhere() -> None:
    snap = _snapshot(2, 10)
    with Exporter("127.0.0.1:0", lambda: snap, machine="box") as exp:
        r = httpx.get(exp.url, timeout=5)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert 'zai_dash_cycle_prompts{machine="box",model="glm-4.6",tool="claude-code"} 2.0' in r.text
        assert httpx.get(exp.url.replace("/metrics", "/secret"), timeout=5).status_code == 404


def test_exporter_before_first_snapshot_serves_empty() -> None:
    with Exporter("127.0.0.1:0", lambda: None, machine="box") as exp:
        r = httpx.get(exp.url, timeout=5)
    assert r.status_code == 200 and "zai_dash_cycle_prompts" not in r.text


async def test_two_exporters_merged_by_a_third_dashboard(home: Path) -> None:
    laptop = _snapshot(3, 30, tool="claude-code")
    devbox = _snapshot(5, 60, tool="opencode")
    clock = FixedClock(FIXED_NOW)
    ctx = SourceContext(home=home, env={}, clock=clock.now)
    with (
        Exporter("127.0.0.1:0", lambda: laptop, machine="laptop") as a,
        Exporter("127.0.0.1:0", lambda: devbox, machine="devbox") as b,
    ):
        sources = [
            PrometheusSource(ProxySettings(name="laptop", url=a.url, preset="zai-dash"), ctx, rng=random.Random(0)),
            PrometheusSource(ProxySettings(name="devbox", url=b.url, preset="zai-dash"), ctx, rng=random.Random(0)),
        ]
        for src in sources:
            attempt = await src.refresh()
            assert attempt.ok, attempt.message
    rows = [s.row(clock.now(), laptop.cycle.start) for s in sources]
    merged = merge_machines(rows, "prompts")
    assert merged["claude-code"]["total"] == 3 and merged["claude-code"]["by_machine"] == {"laptop": 3}
    assert merged["opencode"]["total"] == 5 and merged["opencode"]["by_machine"] == {"devbox": 5}
    calls = merge_machines(rows, "calls_by_model")
    assert calls["glm-4.6"]["total"] == 90
    assert calls["glm-4.6"]["by_machine"] == {"laptop": 30, "devbox": 60}
    assert merge_machines(rows, "mcp_calls")["search"]["total"] == 2
    # Gauges are per-cycle values: reported even when this dashboard has no cycle open.
    assert merge_machines([s.row(clock.now(), None) for s in sources], "prompts")["opencode"]["total"] == 5


async def test_a_machine_going_away_is_kept_and_flagged_stale(home: Path) -> None:
    snap = _snapshot(2, 4)
    clock = FixedClock(FIXED_NOW)
    ctx = SourceContext(home=home, env={}, clock=clock.now)
    exp = Exporter("127.0.0.1:0", lambda: snap, machine="laptop").start()
    src = PrometheusSource(ProxySettings(name="laptop", url=exp.url, preset="zai-dash"), ctx, rng=random.Random(0))
    assert (await src.refresh()).ok
    exp.close()
    clock.advance(timedelta(seconds=40))
    assert not (await src.refresh()).ok
    merged = merge_machines([src.row(clock.now(), None)], "prompts")
    assert merged["claude-code"] == {"total": 2, "by_machine": {"laptop": 2}, "stale": True}


def test_render_publishes_credits_each_window_and_the_headline() -> None:
    from tests.support.windows import NOW, WEEKLY_RESET, ledger, snapshot, week_of_credits

    snap = snapshot(ledger(week_of_credits()), NOW, weekly_reset=WEEKLY_RESET)
    text = render(snap, "laptop").decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in parse_exposition(text, "text/plain")}
    m = (("machine", "laptop"),)
    for w in snap.windows:
        key = (("anchor", w.anchor), *m, ("source", w.source), ("unit", w.unit), ("window", w.id))
        assert samples[("zai_dash_window_used", key)] == pytest.approx(w.used)
        assert samples[("zai_dash_window_limit", key)] == w.limit
        assert samples[("zai_dash_window_left", key)] == pytest.approx(w.left)
        assert samples[("zai_dash_window_level", key)] == 0
        assert samples[("zai_dash_window_end_timestamp_seconds", key)] == w.end.timestamp()  # type: ignore[union-attr]
    assert samples[("zai_dash_credits", (*m, ("window", "weekly")))] == pytest.approx(snap.credits.week)
    assert samples[("zai_dash_headline_left", (*m, ("unit", "credits"), ("window", "5h")))] == pytest.approx(
        snap.window("5h").left  # type: ignore[union-attr]
    )
    tool = (*m, ("model", "glm-5.3"), ("tool", "claude-code"))
    assert samples[("zai_dash_cycle_credits", tool)] == pytest.approx(3.61)


def _samples(text: str, content_type: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for s in parse_exposition(text, content_type)}


def test_openmetrics_scrapers_get_the_same_series() -> None:
    # prometheus_client's server negotiates the format (a real Prometheus asks for OpenMetrics first):
    # names, labels and values must not depend on which one a scraper gets.
    snap = _snapshot(3, 40, official=True)
    with Exporter("127.0.0.1:0", lambda: snap, machine="box") as exp:
        classic = httpx.get(exp.url, headers={"Accept": "text/plain"}, timeout=5)
        openmetrics = httpx.get(exp.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}, timeout=5)
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert classic.headers["content-type"].startswith("text/plain")
    ours = _samples(classic.text, classic.headers["content-type"])
    assert ours == _samples(openmetrics.text, openmetrics.headers["content-type"])
    assert ours == _samples(render(snap, "box").decode(), "text/plain")


def test_gzip_when_asked_and_a_broken_snapshot_is_a_quiet_500(capfd: pytest.CaptureFixture[str]) -> None:
    snap = _snapshot(2, 10)
    state = {"broken": False}

    def provider() -> Snapshot:
        if state["broken"]:
            raise RuntimeError("boom")
        return snap

    with Exporter("127.0.0.1:0", provider, machine="box") as exp:
        zipped = httpx.get(exp.url, headers={"Accept-Encoding": "gzip"}, timeout=5)
        assert zipped.headers.get("content-encoding") == "gzip" and "zai_dash_cycle_calls" in zipped.text
        state["broken"] = True
        assert httpx.get(exp.url, timeout=5).status_code == 500
        state["broken"] = False
        assert httpx.get(exp.url, timeout=5).status_code == 200  # the server thread survived
    assert "Traceback" not in capfd.readouterr().err


def test_a_port_in_use_fails_at_construction_before_serving() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            Exporter(f"127.0.0.1:{taken.getsockname()[1]}", lambda: None)
