"""The fleet view: two exporters on loopback, scraped by a real Prometheus, read back through PromQL."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.cli import write_known_fixture
from tests.support.env import FIXED_NOW
from tests.support.exporter import _snapshot
from tests.support.http import refused_port
from tests.support.paths import REPO
from zai_dash.clock import FixedClock
from zai_dash.commands.report import render_report
from zai_dash.config import Config, FleetSettings, load_config
from zai_dash.domain.fleet import FLEET_QUERY, FleetSample, FleetState, LocalFigures, fleet_view, report_lines
from zai_dash.domain.snapshot import Snapshot
from zai_dash.engine import Engine
from zai_dash.exporter import Exporter
from zai_dash.sources.base import SourceContext
from zai_dash.sources.fleet import FleetSource, parse_query_result

PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is not installed (apt-get install prometheus; .ci/run does)"
)
LOCAL = LocalFigures(prompt_equivalents=4, prompts=3, calls=40, month_searches=1, prompt_limit=400)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    """A running Prometheus over two exporters ("laptop", and "devbox" scraped twice by two jobs)."""

    url: str
    snaps: dict[str, Snapshot]


def _wait_for_machines(url: str, want: set[str], guard: float = 90.0) -> None:
    deadline = time.monotonic() + guard  # a hang guard: Prometheus needs a scrape or two
    while time.monotonic() < deadline:
        try:
            doc = httpx.get(f"{url}/api/v1/query", params={"query": FLEET_QUERY}, timeout=5).json()
            seen = {s.labels.get("machine") for s in parse_query_result(doc)}
            if want <= seen:
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"Prometheus at {url} never reported {want}")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    if PROMETHEUS is None:
        pytest.skip("the prometheus binary is not installed")
    ci_home = tmp_path_factory.mktemp("ci-home")
    write_known_fixture(ci_home)  # real transcripts with tokens: credits per window and model
    ci = Engine(Config(), ctx=SourceContext(home=ci_home, env={}, clock=lambda: FIXED_NOW), clock=FixedClock(FIXED_NOW))
    ci.scan()
    snaps = {"laptop": _snapshot(3, 40), "devbox": _snapshot(5, 20, official=True), "ci": ci.snapshot()}
    exporters = [Exporter("127.0.0.1:0", provider=lambda s=s: s, machine=name).start() for name, s in snaps.items()]
    work = tmp_path_factory.mktemp("prometheus")
    laptop, devbox, ci_box = (f"127.0.0.1:{e.port}" for e in exporters)
    (work / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: boxes\n    static_configs: [{{targets: ['{laptop}', '{devbox}', '{ci_box}']}}]\n"
        # The same exporter under a second job: its series must still count once.
        f"  - job_name: devbox-again\n    static_configs: [{{targets: ['{devbox}']}}]\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(work / "prometheus.log").open("w"),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_machines(url, {"laptop", "devbox", "ci"})
        yield Fleet(url, snaps)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for e in exporters:
            e.close()


def _source(url: str, machine: str = "laptop", timeout: float = 5.0) -> FleetSource:
    settings = FleetSettings(prometheus=url, machine=machine, interval=30, timeout=timeout)
    return FleetSource(settings, SourceContext(home=Path("/nonexistent"), clock=lambda: FIXED_NOW))


def _rows(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["machine"]: r for r in view["machines"]}


@needs_prometheus
@pytest.mark.wall_clock  # Prometheus stamps scrapes with its own (the real) clock
def test_per_machine_rows_and_account_totals_from_a_real_prometheus(fleet: Fleet) -> None:
    source = _source(fleet.url)
    attempt = asyncio.run(source.refresh())
    assert attempt.ok, attempt.message
    view = source.view(FIXED_NOW, LOCAL, [], None)
    rows = _rows(view)
    laptop, devbox = fleet.snaps["laptop"], fleet.snaps["devbox"]
    assert set(rows) == {"laptop", "devbox", "ci"}
    # devbox is scraped by two jobs: one row, its values once.
    assert rows["devbox"]["counted"] == "fleet" and rows["devbox"]["stale"] is False
    assert rows["devbox"]["prompt_equivalents"] == devbox.prompts.equivalents
    assert rows["devbox"]["calls"] == devbox.prompts.calls == 20
    assert rows["devbox"]["calls_by_model"] == {"glm-4.6": 20}
    # laptop is this machine: shown, counted from the local figures (its exporter is scraped too).
    assert rows["laptop"]["counted"] == "local"
    assert rows["laptop"]["prompt_equivalents"] == laptop.prompts.equivalents
    totals = view["totals"]
    assert (
        totals["prompt_equivalents"]
        == LOCAL.prompt_equivalents + devbox.prompts.equivalents + fleet.snaps["ci"].prompts.equivalents
    )
    assert totals["calls"] == LOCAL.calls + 20 + fleet.snaps["ci"].prompts.calls
    assert totals["local"]["provenance"] == "local" and totals["fleet"]["provenance"] == "fleet"
    # Credits per window and per model, as `zai-dash export` publishes them (the metering work's series).
    ci = fleet.snaps["ci"]
    assert ci.credits.window_5h > 0
    assert rows["ci"]["credits"]["5h"] == ci.credits.window_5h and rows["ci"]["credits"]["weekly"] == ci.credits.week
    [ci_tool] = [t for t in ci.tools if t.found]
    assert rows["ci"]["credits_by_model"] == dict(ci_tool.credits_by_model)
    assert totals["credits"]["5h"] == round(ci.credits.window_5h + devbox.credits.window_5h, 3)
    # The official meter devbox exported is the account's: shown with where it came from.
    assert view["official"] is not None and view["official"]["via"] == "devbox"
    assert view["official"]["provenance"] == "official"


@needs_prometheus
@pytest.mark.wall_clock
def test_a_dead_prometheus_keeps_the_last_rows_marked_stale(fleet: Fleet) -> None:
    source = _source(fleet.url)
    assert asyncio.run(source.refresh()).ok
    source.endpoint = f"http://127.0.0.1:{refused_port()}/api/v1/query"  # the server is gone
    attempt = asyncio.run(source.refresh())
    assert not attempt.ok and attempt.status == "network"
    view = source.view(FIXED_NOW, LOCAL, [], None)
    assert view["stale"] is True and all(r["stale"] for r in view["machines"])
    assert _rows(view)["devbox"]["calls"] == 20  # last good values, not zeros
    assert source.health(FIXED_NOW).status == "stale"


@needs_prometheus
@pytest.mark.wall_clock
def test_report_shows_the_fleet_beside_the_local_figures(fleet: Fleet, home: Path) -> None:
    write_known_fixture(home)
    config = Config(fleet=FleetSettings(prometheus=fleet.url, machine="laptop"))
    engine = Engine(config, ctx=SourceContext(home=home, env={}, clock=lambda: FIXED_NOW), clock=FixedClock(FIXED_NOW))
    engine.scan()
    engine.refresh_pollers()
    snap = engine.snapshot()
    assert snap.fleet is not None
    rows = _rows(dict(snap.fleet))
    assert rows["laptop"]["counted"] == "local" and rows["devbox"]["counted"] == "fleet"
    expected = (
        snap.prompts.equivalents + fleet.snaps["devbox"].prompts.equivalents + fleet.snaps["ci"].prompts.equivalents
    )
    assert snap.fleet["totals"]["prompt_equivalents"] == expected
    text = render_report(snap, None)
    assert "devbox" in text and "laptop (here)" in text and "= local" in text
    assert snap.to_json()["fleet"]["machines"]


def test_a_dead_prometheus_never_blocks_the_local_report(home: Path) -> None:
    write_known_fixture(home)
    config = Config(fleet=FleetSettings(prometheus=f"http://127.0.0.1:{refused_port()}", machine="laptop"))
    engine = Engine(config, ctx=SourceContext(home=home, env={}, clock=lambda: FIXED_NOW), clock=FixedClock(FIXED_NOW))
    engine.scan()
    engine.refresh_pollers()
    snap = engine.snapshot()
    assert snap.prompts.used > 0  # the local figures are all there
    assert snap.fleet is not None and snap.fleet["stale"] is True and snap.fleet["status"] == "network"
    assert [r["machine"] for r in snap.fleet["machines"]] == ["laptop"]  # this machine, from its own ledger
    assert "STALE" in "\n".join(report_lines(snap.fleet))
    assert {h.name: h for h in snap.sources}["fleet"].status == "error"


def test_a_hanging_prometheus_times_out() -> None:
    with socket.socket() as hung:  # accepts connections (backlog), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(8)
        source = _source(f"http://127.0.0.1:{hung.getsockname()[1]}", timeout=0.5)
        attempt = asyncio.run(source.refresh())
    assert not attempt.ok and attempt.status == "timeout"


# -- pure rules ------------------------------------------------------------------------------------


def _samples(machine: str, eq: float, calls: float, at: float) -> list[FleetSample]:
    return [
        FleetSample("cycle_prompt_equivalents", {"machine": machine}, eq),
        FleetSample("cycle_calls", {"machine": machine, "tool": "claude-code", "model": "glm-4.6"}, calls),
        FleetSample("snapshot_timestamp_seconds", {"machine": machine}, at),
        FleetSample("credits", {"machine": machine, "window": "5h"}, 12.5),
        FleetSample("cycle_credits", {"machine": machine, "tool": "claude-code", "model": "glm-4.6"}, 12.5),
    ]


def test_a_machine_sending_otlp_here_is_counted_once() -> None:
    state = FleetState()
    at = FIXED_NOW.timestamp()
    state.update([*_samples("laptop", 4, 40, at), *_samples("devbox", 7, 20, at), *_samples("ci", 1, 2, at)], FIXED_NOW)
    view = fleet_view(state, local=LOCAL, local_machines=["laptop", "devbox"], now=FIXED_NOW, status="ok",
                      message="ok", url="http://p", stale_after=timedelta(seconds=90))  # fmt: skip
    counted = {r["machine"]: r["counted"] for r in view["machines"]}
    assert counted == {"laptop": "local", "devbox": "local", "ci": "fleet"}
    assert view["totals"]["prompt_equivalents"] == LOCAL.prompt_equivalents + 1
    assert view["totals"]["credits"] == {"5h": 12.5}  # ci's only: laptop's and devbox's are in the local figures


def test_a_machine_gone_from_the_answer_keeps_its_values_marked_stale() -> None:
    state = FleetState()
    at = FIXED_NOW.timestamp()
    state.update([*_samples("devbox", 7, 20, at), *_samples("ci", 1, 2, at)], FIXED_NOW - timedelta(seconds=30))
    state.update(_samples("ci", 1, 3, at), FIXED_NOW)
    view = fleet_view(state, local=LOCAL, local_machines=["laptop"], now=FIXED_NOW, status="ok", message="ok",
                      url="http://p", stale_after=timedelta(seconds=90))  # fmt: skip
    rows = _rows(view)
    assert rows["devbox"]["stale"] is True and rows["devbox"]["calls"] == 20
    assert rows["ci"]["stale"] is False and rows["ci"]["calls"] == 3
    assert rows["laptop"]["counted"] == "local" and rows["laptop"]["provenance"] == "local"
    assert view["totals"]["stale"] is True


def test_an_old_exporter_snapshot_is_stale() -> None:
    state = FleetState()
    state.update(_samples("devbox", 7, 20, (FIXED_NOW - timedelta(hours=1)).timestamp()), FIXED_NOW)
    view = fleet_view(state, local=LOCAL, local_machines=["laptop"], now=FIXED_NOW, status="ok", message="ok",
                      url="http://p", stale_after=timedelta(seconds=90))  # fmt: skip
    assert _rows(view)["devbox"]["stale"] is True


def test_query_answers_that_are_not_vectors_are_errors() -> None:
    with pytest.raises(ValueError, match="query failed: bad"):
        parse_query_result({"status": "error", "error": "bad"})
    with pytest.raises(ValueError):
        parse_query_result({"status": "success", "data": {"resultType": "matrix", "result": []}})
    doc = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "zai_dash_cycle_calls", "machine": "a"}, "value": [1, "5"]},
        {"metric": {"__name__": "zai_dash_cycle_calls", "machine": "b"}, "value": [1, "NaN"]},
        {"metric": {"__name__": "zai_dash_cycle_calls"}, "value": "odd"},
        {"metric": {"__name__": "other", "machine": "a"}, "value": [1, "5"]},
    ]}}  # fmt: skip
    assert parse_query_result(doc) == [FleetSample("cycle_calls", {"machine": "a"}, 5.0)]


def test_fleet_config_table(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[fleet]\nprometheus = "http://127.0.0.1:9090"\nmachine = "laptop"\ninterval = 1\n')
    fleet = load_config(path, env={}).fleet
    assert (fleet.prometheus, fleet.machine, fleet.interval) == ("http://127.0.0.1:9090", "laptop", 5.0)
    path.write_text("[fleet]\nmachine = 'x'\n")
    with pytest.raises(Exception, match="needs prometheus"):
        load_config(path, env={})


async def test_the_dashboard_shows_the_fleet_panel() -> None:
    from dataclasses import replace

    from tests.support.pilot import make_app, text
    from tests.support.ui import NOW, make_snapshot

    state = FleetState()
    state.update(_samples("devbox", 7, 20, NOW.timestamp()), NOW)
    view = fleet_view(state, local=LOCAL, local_machines=["laptop"], now=NOW, status="ok", message="ok: 1 machine(s)",
                      url="http://127.0.0.1:9090", stale_after=timedelta(seconds=90))  # fmt: skip
    app = make_app()
    async with app.run_test(size=(120, 44)) as pilot:
        app.show(make_snapshot())
        await pilot.pause()
        assert not app.query_one("#fleet").display  # no [fleet]: no panel
        app.show(replace(make_snapshot(), fleet=view))
        await pilot.pause()
        shown = text(app, "#fleet")
        assert app.query_one("#fleet").display
        assert "devbox" in shown and "laptop (here)" in shown and "= local 4 + fleet 7" in shown


DEPLOY = REPO / "deploy"


@needs_prometheus
@pytest.mark.wall_clock
def test_the_shipped_grafana_dashboard_queries_run_on_prometheus(fleet: Fleet) -> None:
    import json

    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert exprs
    for expr in exprs:
        doc = httpx.get(f"{fleet.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert doc["status"] == "success", (expr, doc)
    machines = httpx.get(f"{fleet.url}/api/v1/query", params={"query": exprs[2]}, timeout=10).json()
    assert machines["data"]["result"][0]["value"][1] == "3"  # devbox scraped twice still counts once


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) not installed")
def test_the_shipped_scrape_config_is_valid() -> None:
    promtool = shutil.which("promtool")
    assert promtool is not None
    result = subprocess.run(
        [promtool, "check", "config", str(DEPLOY / "prometheus.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_dashboard_scraping_its_own_exporter_counts_it_once(home: Path) -> None:
    """`[[proxy]] preset = "zai-dash"` at this machine's own `zai-dash export`: shown, never added again."""
    from zai_dash.config import ProxyEndpoint
    from zai_dash.ui.proxy_panel import machine_rows, merged_lines

    write_known_fixture(home)
    ctx = SourceContext(home=home, env={}, clock=lambda: FIXED_NOW)
    own = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW))
    own.scan()
    local_snap = own.snapshot()
    with (
        Exporter("127.0.0.1:0", provider=lambda: local_snap, machine="laptop") as mine,
        Exporter("127.0.0.1:0", provider=lambda: _snapshot(5, 20), machine="devbox") as theirs,
    ):
        proxies = (
            ProxyEndpoint(name="me", url=mine.url, preset="zai-dash"),
            ProxyEndpoint(name="devbox", url=theirs.url, preset="zai-dash"),
        )
        config = Config(proxies=proxies, fleet=FleetSettings(machine="laptop"))  # no fleet, but this box's name
        engine = Engine(config, ctx=ctx, clock=FixedClock(FIXED_NOW))
        engine.scan()
        engine.refresh_pollers()
        snap = engine.snapshot()
    rows = {r["name"]: r for r in snap.proxies}
    assert rows["me"]["counted"] == "local" and "counted" not in rows["devbox"]
    assert {m.machine for m in machine_rows(snap.proxies)} == {"devbox"}
    assert "me" not in "\n".join(merged_lines(snap.proxies))
