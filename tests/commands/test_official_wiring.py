"""The official quota endpoint and proxies wired through the engine and the CLI, over real loopback HTTP."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.cli import AT, run_cli, write_known_fixture
from tests.support.env import FIXED_NOW
from tests.support.http import (
    FAKE_KEY,
    FAKE_SECRET,
    RESET_CARD_AFTER,
    RESET_CARD_BEFORE,
    V1,
    LiteLLMMetrics,
    LoopbackServer,
    Reply,
    fixed,
    json_numbers,
    needs_auth,
)
from tests.support.official import _five_hour
from zai_dash.clock import FixedClock
from zai_dash.config import ApiSettings, Config, ProxyEndpoint
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext
from zai_dash.text import fmt_amount


def test_official_reading_anchors_cycle_and_feeds_gauges(home: Path) -> None:
    write_known_fixture(home)
    env = dict(os.environ, ZAI_API_KEY=FAKE_KEY)
    ctx = SourceContext(home=home, env=env, clock=lambda: FIXED_NOW)
    with LoopbackServer(needs_auth("raw", Reply(200, V1))) as server:
        config = replace(Config(), timezone="UTC", api=ApiSettings(enabled=True, base_url=server.base))
        engine = Engine(config, ctx=ctx, clock=FixedClock(FIXED_NOW))
        engine.scan()
        engine.refresh_pollers()
        snap = engine.snapshot()
    # Local logs alone would open the window at 08:13:27; Z.ai says it resets at 13:00.
    assert snap.cycle.anchor == "official"
    assert snap.cycle.end is not None and snap.cycle.end.isoformat() == "2026-11-26T13:00:00+00:00"
    five = next(r for r in snap.official if r["kind"] == "five-hour")
    assert five["percent"] == 12 and five["stale"] is False
    assert snap.reconciliation["primary"] == "official"
    assert snap.reconciliation["official_percent"] == 12
    assert snap.searches.provenance == "official"
    assert (snap.searches.month, snap.searches.month_limit, snap.searches.month_left) == (28, 100, 72)
    assert snap.searches.by_service["reader"] == 8
    health = {h.name: h for h in snap.sources}
    assert health["zai-quota"].status == "ok"
    assert FAKE_SECRET not in json.dumps(snap.to_json())


def test_dead_endpoint_keeps_localjson_numbers(home: Path) -> None:
    write_known_fixture(home)
    ctx = SourceContext(home=home, env=dict(os.environ, ZAI_API_KEY=FAKE_KEY), clock=lambda: FIXED_NOW)
    config = replace(Config(), timezone="UTC", api=ApiSettings(enabled=True, base_url="http://127.0.0.1:9", timeout=1))
    engine = Engine(config, ctx=ctx, clock=FixedClock(FIXED_NOW))
    engine.scan()
    engine.refresh_pollers()
    snap = engine.snapshot()
    assert snap.cycle.anchor == "local" and snap.prompts.used == 2
    assert snap.reconciliation["primary"] == "local"
    quota = next(h for h in snap.sources if h.name == "zai-quota")
    assert quota.status in {"error", "stale"} and quota.detail


def test_proxy_rows_in_snapshot(home: Path) -> None:
    metrics = LiteLLMMetrics()
    metrics.call("glm-4.6", 1000, 200)
    ctx = SourceContext(home=home, env=dict(os.environ), clock=lambda: FIXED_NOW)
    with LoopbackServer(metrics.route()) as server:
        config = replace(Config(), proxies=(ProxyEndpoint(name="litellm", url=server.base + "/metrics"),))
        engine = Engine(config, ctx=ctx, clock=FixedClock(FIXED_NOW))
        engine.scan()
        engine.refresh_pollers()
        snap = engine.snapshot()
    assert [p["name"] for p in snap.proxies] == ["litellm"]
    assert any(h.name == "proxy:litellm" and h.status == "ok" for h in snap.sources)


def test_key_never_appears_in_any_output_or_file(home: Path, tmp_path: Path) -> None:
    """A server that echoes the key back in its errors: report, status, doctor and every file stay clean."""
    write_known_fixture(home)

    def echo(headers: dict[str, str]) -> Reply:
        return Reply(401, {"success": False, "code": 1000, "msg": f"bad key {headers.get('authorization')}"})

    with LoopbackServer(echo) as server:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[api]\nenabled = true\nbase_url = "{server.base}"\n')
        outputs = []
        for args in (("report",), ("report", "--json"), ("status",), ("doctor",)):
            out = run_cli(home, *args, config=cfg, extra_env={"ZAI_API_KEY": FAKE_KEY})
            assert "Traceback" not in out.stderr
            outputs.append(out.stdout + out.stderr)
    text = "\n".join(outputs)
    assert "zai-quota" in text or "quota" in text
    assert FAKE_SECRET not in text
    assert FAKE_KEY[:12] not in text
    for path in home.rglob("*"):
        if path.is_file():
            assert FAKE_SECRET.encode() not in path.read_bytes(), path


def test_server_ok_via_cli(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    with LoopbackServer(fixed(Reply(200, V1))) as server:
        cfg = tmp_path / "config.toml"
        cfg.write_text(f'[api]\nenabled = true\nbase_url = "{server.base}"\n')
        doc = json.loads(run_cli(home, "report", "--json", config=cfg, extra_env={"ZAI_API_KEY": FAKE_KEY}).stdout)
    kinds = {r["kind"] for r in doc["official"]}
    assert {"five-hour", "monthly-mcp"} <= kinds
    assert "primary" in doc["reconciliation"]
    windows = {r["window"]: r for r in doc["official"]}
    assert windows["5h"]["unit"] == "percent" and windows["monthly-mcp"]["unit"] == "calls"
    assert windows["5h"]["start"] is not None and windows["5h"]["billing"] == "legacy-v1"


def test_doctor_warns_when_the_rows_show_another_billing(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    cfg = tmp_path / "config.toml"
    with LoopbackServer(fixed(Reply(200, V1))) as server:
        lines = {}
        for billing in ("legacy-v1", "credits"):
            cfg.write_text(f'billing = "{billing}"\n[api]\nenabled = true\nbase_url = "{server.base}"\n')
            out = run_cli(home, "doctor", config=cfg, extra_env={"ZAI_API_KEY": FAKE_KEY})
            assert out.returncode == 0, out.stderr
            lines[billing] = [line for line in out.stdout.splitlines() if "warning:" in line and "billing" in line]
    assert lines["legacy-v1"] == []
    assert len(lines["credits"]) == 1 and 'set billing = "legacy-v1"' in lines["credits"][0]


def test_reset_card_re_anchors_the_engines_windows(home: Path) -> None:
    """Two polls through the engine: reset cards on both windows move their starts; nothing goes negative."""
    write_known_fixture(home)
    clock = FixedClock(FIXED_NOW)
    ctx = SourceContext(home=home, env=dict(os.environ, ZAI_API_KEY=FAKE_KEY), clock=clock.now)
    replies = [RESET_CARD_BEFORE, RESET_CARD_AFTER]
    with LoopbackServer(lambda _h: Reply(200, replies.pop(0))) as server:
        config = replace(Config(), timezone="UTC", api=ApiSettings(enabled=True, base_url=server.base))
        engine = Engine(config, ctx=ctx, clock=clock)
        engine.scan()
        engine.refresh_pollers()
        before = {r["window"]: r for r in engine.snapshot().official}
        clock.advance(timedelta(minutes=10))
        engine.refresh_pollers()
        snap = engine.snapshot()
    after = {r["window"]: r for r in snap.official}
    assert before["weekly"]["start"] == FIXED_NOW - timedelta(days=4) and not before["weekly"]["reset_card"]
    assert after["weekly"]["start"] == FIXED_NOW and after["weekly"]["reset_card"]
    assert after["5h"]["start"] == FIXED_NOW + timedelta(minutes=8) and after["5h"]["reset_card"]
    assert snap.cycle.anchor == "official"
    assert snap.cycle.end == FIXED_NOW + timedelta(minutes=8, hours=5)
    doc = snap.to_json()
    assert all(n >= 0 for n in json_numbers(doc["official"])) and all(
        n >= 0 for n in json_numbers(doc["reconciliation"])
    )


def test_export_command_serves_metrics_and_a_second_dashboard_reads_it(home: Path) -> None:
    import re
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    write_known_fixture(home)
    env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), ZAI_DASH_TIMEZONE="UTC")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zai_dash", "export", "--listen", "127.0.0.1:0", "--machine", "devbox"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        url = re.search(r"(http://\S+/metrics)", line)
        assert url, line
        body = urllib.request.urlopen(url.group(1), timeout=10).read().decode()
        assert 'machine="devbox"' in body
        # A dashboard elsewhere reads this exporter as a proxy.
        ctx = SourceContext(home=home / "other", env={}, clock=lambda: FIXED_NOW)
        (home / "other").mkdir()
        config = replace(Config(), proxies=(ProxyEndpoint(name="devbox", url=url.group(1), preset="zai-dash"),))
        engine = Engine(config, ctx=ctx, clock=FixedClock(FIXED_NOW))
        engine.refresh_pollers()
        snap = engine.snapshot()
        assert snap.proxies[0]["status"] == "ok"
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.wall_clock
def test_status_prefers_the_official_percentage(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    cfg = tmp_path / "config.toml"
    for percent, code, glyph in ((42, 0, "✓"), (80, 10, "!"), (100, 11, "✗")):
        with LoopbackServer(fixed(Reply(200, _five_hour(percent)))) as server:
            cfg.write_text(f'[api]\nenabled = true\nbase_url = "{server.base}"\n')
            # `status` gives the network only a few tens of ms (issue 15 §6): on a loaded machine a cold
            # poll may not land, so the reading comes from `report`, which saves it for `status`.
            run_cli(home, "report", config=cfg, extra_env={"ZAI_API_KEY": FAKE_KEY})
            out = run_cli(home, "status", config=cfg, extra_env={"ZAI_API_KEY": FAKE_KEY})
        assert out.stdout.startswith(f"GLM{glyph} {percent}% ⟳1h5"), out.stdout
        assert out.returncode == code
        fields = run_cli(
            home, "status", "--format", "{source} {percent} {local_percent}", config=cfg,
            extra_env={"ZAI_API_KEY": FAKE_KEY},
        )  # fmt: skip
        # The server is gone: status answers at once from the reading it saved (still fresh), not the network.
        assert fields.stdout.split()[:2] == ["official", str(percent)]


def test_a_replay_asks_no_endpoint_and_report_agrees_with_status(home: Path, tmp_path: Path) -> None:
    """`--at` evaluates another instant; the quota endpoint only knows now, so neither view asks it."""
    write_known_fixture(home)
    cfg = tmp_path / "config.toml"
    with LoopbackServer(fixed(Reply(200, V1))) as server:
        cfg.write_text(f'timezone = "UTC"\n[api]\nenabled = true\nbase_url = "{server.base}"\n')
        env = {"ZAI_API_KEY": FAKE_KEY}
        out = run_cli(home, "report", "--json", "--at", AT, config=cfg, extra_env=env)
        line = run_cli(home, "status", "--at", AT, "--format", "{source} {used} {limit}", config=cfg, extra_env=env)
        requests = list(server.requests)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert requests == []
    assert doc["official"] == [] and doc["headline"]["source"] == "local"
    assert doc["cycle"]["anchor"] == "local"  # not the reset time Z.ai names for today
    head = doc["headline"]
    assert line.stdout.split() == [
        head["source"],
        fmt_amount(head["used"], head["unit"]),
        fmt_amount(head["limit"], head["unit"]),
    ]
