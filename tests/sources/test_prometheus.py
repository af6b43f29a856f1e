"""Proxy metrics: a LiteLLM-shaped exposition served by prometheus_client on loopback, resets, 401s, maps."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.exposition import CONTENT_TYPE_LATEST as OM_CONTENT_TYPE
from prometheus_client.openmetrics.exposition import generate_latest as om_generate_latest

from tests.support.env import FIXED_NOW
from tests.support.http import LiteLLMMetrics, LoopbackServer, Reply, fixed, refused_port
from zai_dash.clock import FixedClock
from zai_dash.domain.proxy import (
    LabelFilter,
    MetricSample,
    ProxyState,
    SeriesSpec,
    build_metric_map,
    parse_metric_map,
    without_scrape_requests,
)
from zai_dash.sources.base import SourceContext
from zai_dash.sources.pollers import same_host
from zai_dash.sources.prometheus import (
    PrometheusSource,
    ProxySettings,
    create_proxy_sources,
    expand_headers,
    parse_exposition,
)

MASTER_KEY = "sk-litellm-master-0123456789"


def _source(
    home: Path, url: str, clock: FixedClock, env: dict[str, str] | None = None, **kw: object
) -> PrometheusSource:
    settings = ProxySettings(name="litellm", url=url, **kw)  # type: ignore[arg-type]
    ctx = SourceContext(home=home, env=env or {}, clock=clock.now)
    return PrometheusSource(settings, ctx, rng=random.Random(0), floor=0.01)


def _keyed_source(home: Path, url: str, clock: FixedClock, key: str = MASTER_KEY) -> PrometheusSource:
    """A source whose bearer header names `${LITELLM_MASTER_KEY}`, set to `key`."""
    headers = {"Authorization": "Bearer ${LITELLM_MASTER_KEY}"}
    return _source(home, url, clock, env={"LITELLM_MASTER_KEY": key}, headers=headers)


async def test_litellm_exposition_deltas_rates_and_reset(home: Path) -> None:
    metrics = LiteLLMMetrics()
    metrics.call("glm-4.6", 1000, 200)  # before zai-dash started watching: not this cycle's
    clock = FixedClock(FIXED_NOW)
    cycle_start = FIXED_NOW - timedelta(minutes=30)
    with LoopbackServer(metrics.route()) as server:
        src = _source(home, server.base + "/metrics", clock, interval=15)
        assert (await src.refresh()).ok  # baseline
        for _ in range(3):
            metrics.call("glm-4.6", 1000, 200)
        metrics.call("glm-4.5-air", 500, 50)
        metrics.call("glm-4.6", 0, 0, status="429")
        clock.advance(timedelta(minutes=1))
        attempt = await src.refresh()
        assert attempt.ok, attempt.message
        row = src.row(clock.now(), cycle_start)
        since = row["since_cycle"]
        assert since["requests_total"] == {"glm-4.6": 4, "glm-4.5-air": 1}
        assert since["tokens_total"] == {"glm-4.6": 3600, "glm-4.5-air": 550}
        assert since["tokens_input_total"] == {"glm-4.6": 3000, "glm-4.5-air": 500}
        assert since["rate_limited_total"] == {"glm-4.6": 1}
        assert row["totals"]["tokens_total"] == {"glm-4.6": 4800, "glm-4.5-air": 550}  # since proxy start
        assert row["rates_per_minute"]["tokens_total"]["glm-4.6"] == pytest.approx(3600)
        assert row["since_cycle_partial"] is True  # watching began after the cycle did
        assert row["provenance"] == "proxy" and row["stale"] is False and row["resets"] == 0

        # The proxy restarts: counters start from zero. Two more calls must add, not subtract.
        metrics.restart()
        metrics.call("glm-4.6", 100, 10)
        metrics.call("glm-4.6", 100, 10)
        clock.advance(timedelta(minutes=1))
        attempt = await src.refresh()
        assert attempt.ok and "counter reset" in attempt.message
        row = src.row(clock.now(), cycle_start)
        assert row["since_cycle"]["tokens_total"] == {"glm-4.6": 3600 + 220, "glm-4.5-air": 550}
        assert row["since_cycle"]["requests_total"]["glm-4.6"] == 6
        assert row["resets"] > 0
        # Deltas before a later cycle start are not counted in it.
        assert src.row(clock.now(), clock.now() - timedelta(seconds=30))["since_cycle"]["tokens_total"] == {
            "glm-4.6": 220
        }


async def test_protected_metrics_401_explained_then_header_from_env(home: Path) -> None:
    metrics = LiteLLMMetrics()
    clock = FixedClock(FIXED_NOW)
    with LoopbackServer(metrics.route(bearer=MASTER_KEY)) as server:
        bare = _source(home, server.base + "/metrics", clock)
        attempt = await bare.refresh()
        assert attempt.status == "unauthorized"
        assert "LiteLLM protects /metrics" in attempt.message and "\n" not in attempt.message
        assert "require_auth_for_metrics_endpoint" in attempt.message
        assert bare.health(clock.now()).status == "error"

        authed = _keyed_source(home, server.base + "/metrics", clock)
        assert (await authed.refresh()).ok
        assert server.requests[-1]["authorization"] == f"Bearer {MASTER_KEY}"

        wrong = _keyed_source(home, server.base + "/metrics", clock, key="sk-wrong-000000")
        attempt = await wrong.refresh()
        assert "configured headers were rejected" in attempt.message
        assert "sk-wrong" not in attempt.message


async def test_missing_env_var_in_header_is_a_config_error(home: Path) -> None:
    src = _source(
        home, "http://127.0.0.1:9/metrics", FixedClock(FIXED_NOW), headers={"Authorization": "Bearer ${NOPE}"}
    )
    attempt = await src.refresh()
    assert attempt.status == "config-error" and "${NOPE}" in attempt.message


def test_expand_headers() -> None:
    out, problems = expand_headers({"A": "x ${K} y", "B": "${MISSING}", "C": "plain"}, {"K": "v"})
    assert out == {"A": "x v y", "C": "plain"}
    assert problems == ["header B needs ${MISSING}, which is not set"]


async def test_parse_error_keeps_last_values_marked_stale(home: Path) -> None:
    metrics = LiteLLMMetrics()
    metrics.call("glm-4.6", 10, 1)
    clock = FixedClock(FIXED_NOW)
    replies = [Reply(200, b"", {})]
    good = metrics.route()
    with LoopbackServer(lambda h: replies.pop(0) if len(replies) > 1 else good(h)) as server:
        src = _source(home, server.base + "/metrics", clock)
        assert (await src.refresh()).ok
        replies[:] = [Reply(200, b"this is { not prometheus", {"Content-Type": "text/plain"}), Reply()]
        clock.advance(timedelta(seconds=20))
        attempt = await src.refresh()
    assert attempt.status == "parse-error"
    row = src.row(clock.now(), None)
    assert row["stale"] is True and row["totals"]["tokens_total"] == {"glm-4.6": 11}
    assert src.health(clock.now()).status == "stale"


async def test_openmetrics_only_when_served(home: Path) -> None:
    metrics = LiteLLMMetrics()
    metrics.call("glm-4.6", 10, 5)
    body = om_generate_latest(metrics.registry)
    with LoopbackServer(fixed(Reply(200, body, {"Content-Type": OM_CONTENT_TYPE}))) as server:
        src = _source(home, server.base, FixedClock(FIXED_NOW))
        assert (await src.refresh()).ok
        assert server.requests[0]["accept"].startswith("text/plain; version=0.0.4")
    assert src.row(FIXED_NOW, None)["totals"]["tokens_total"] == {"glm-4.6": 15}
    # The classic parser on OpenMetrics text and the reverse are not used: classic text with the
    # OpenMetrics parser would fail with "Missing # EOF".
    with pytest.raises(ValueError):
        parse_exposition("a_total 1\n", OM_CONTENT_TYPE)


async def test_unreachable_and_http_errors(home: Path) -> None:
    clock = FixedClock(FIXED_NOW)
    src = _source(home, f"http://127.0.0.1:{refused_port()}/metrics", clock)
    attempt = await src.refresh()
    assert attempt.status == "network" and "cannot reach litellm" in attempt.message
    assert attempt.message.endswith(": connection refused")
    with LoopbackServer(fixed(Reply(503, b"", {"Retry-After": "30"}))) as server:
        src = _source(home, server.base, clock)
        attempt = await src.refresh()
    assert attempt.status == "http-error" and attempt.retry_after == 30


def test_created_series_ignored_and_total_suffix_matched() -> None:
    text = '# TYPE x_total counter\nx_total{model="a"} 3\n# TYPE x_created gauge\nx_created{model="a"} 1.7e9\n'
    samples = parse_exposition(text, "text/plain")
    assert samples == [MetricSample("x_total", {"model": "a"}, 3.0)]
    spec = SeriesSpec(("x",), group_by=("model",))
    assert spec.matches(samples[0])


def test_custom_map_label_filters_regex_and_group_by() -> None:
    specs, errors = parse_metric_map(
        {
            "zai_calls": {"samples": ["calls_total"], "labels": {"api_base": "~.*z\\.ai.*"}, "group_by": "model"},
            "broken": {"labels": {}},
            "bad_regex": {"samples": ["x"], "labels": {"a": "~("}},
        }
    )
    assert set(specs) == {"zai_calls"}
    assert len(errors) == 2
    state = ProxyState(specs)
    s1 = [
        MetricSample("calls_total", {"api_base": "https://api.z.ai/x", "model": "glm"}, 5),
        MetricSample("calls_total", {"api_base": "https://other", "model": "gpt"}, 7),
        MetricSample("calls_total", {"api_base": "https://api.z.ai/y", "model": "glm", "extra": "1"}, 1),
    ]
    state.update(s1, FIXED_NOW)
    assert state.totals() == {"zai_calls": {"glm": 6}}


def test_new_series_after_baseline_counts_in_full() -> None:
    spec = {"r": SeriesSpec(("r_total",), group_by=("model",))}
    state = ProxyState(spec)
    state.update([MetricSample("r_total", {"model": "a"}, 10)], FIXED_NOW)
    state.update(
        [MetricSample("r_total", {"model": "a"}, 12), MetricSample("r_total", {"model": "b"}, 4)],
        FIXED_NOW + timedelta(minutes=1),
    )
    assert state.since(FIXED_NOW) == {"r": {"a": 2, "b": 4}}
    assert state.since(None) == {"r": {}}


def test_history_bounded_by_horizon() -> None:
    state = ProxyState({"r": SeriesSpec(("r",))}, horizon=timedelta(hours=1))
    for i in range(200):
        state.update([MetricSample("r", {}, float(i))], FIXED_NOW + timedelta(minutes=i))
    assert len(state._history) <= 62


def test_preset_override_and_regroup() -> None:
    custom = {"tokens_total": SeriesSpec(("my_tokens",))}
    merged = build_metric_map("litellm", custom, group_by="requested_model")
    assert merged["tokens_total"].samples == ("my_tokens",)
    assert merged["tokens_input_total"].group_by[0] == "requested_model"
    with pytest.raises(KeyError):
        build_metric_map("nope")
    assert build_metric_map(None, custom) == custom


async def test_unknown_preset_reported_not_raised(home: Path) -> None:
    src = _source(home, "http://127.0.0.1:9/", FixedClock(FIXED_NOW), preset="prom-magic")
    attempt = await src.refresh()
    assert attempt.status == "config-error" and "unknown preset" in attempt.message


def test_create_sources_from_config_endpoints(home: Path) -> None:
    from zai_dash.config import ProxyEndpoint

    ctx = SourceContext(home=home, env={})
    eps = [ProxyEndpoint(name="a", url="http://127.0.0.1:1/"), ProxyEndpoint(name="a", url="http://127.0.0.1:2/")]
    sources = create_proxy_sources(eps, ctx)
    assert [s.name for s in sources] == ["a", "a-2"]
    assert sources[0].poller.interval == 30


def test_label_filter_missing_label_is_empty() -> None:
    assert LabelFilter("x", "").matches({})
    assert not LabelFilter("x", "1").matches({})


# --- what a real LiteLLM proxy does (conformance/litellm_check.py runs the real one) ---------------


async def test_same_host_redirect_followed_with_headers_and_remembered(home: Path) -> None:
    metrics = LiteLLMMetrics()
    clock = FixedClock(FIXED_NOW)
    with LoopbackServer(metrics.route(bearer=MASTER_KEY, redirect=True)) as server:
        src = _keyed_source(home, server.base + "/metrics", clock)
        assert (await src.refresh()).ok
        assert (await src.refresh()).ok
    paths = [(r[":path"], r.get("authorization")) for r in server.requests]
    auth = f"Bearer {MASTER_KEY}"
    # The 307 to /metrics/ is followed with the key; the next poll asks /metrics/ straight away.
    assert paths == [("/metrics", auth), ("/metrics/", auth), ("/metrics/", auth)]


async def test_redirect_to_another_host_not_followed(home: Path) -> None:
    clock = FixedClock(FIXED_NOW)
    metrics = LiteLLMMetrics()
    with LoopbackServer(metrics.route()) as elsewhere:
        port = elsewhere.base.rsplit(":", 1)[1]
        target = f"http://localhost:{port}/metrics"
        with LoopbackServer(fixed(Reply(302, b"", {"Location": target}))) as server:
            src = _source(home, server.base + "/metrics", clock, headers={"Authorization": "Bearer sk-secret-1"})
            attempt = await src.refresh()
    assert attempt.status == "redirect" and not attempt.ok
    assert "another host" in attempt.message and "sk-secret-1" not in attempt.message
    assert elsewhere.requests == []  # the key never left for the other host
    assert src.health(clock.now()).status == "error"


async def test_a_redirect_loop_on_the_same_host_ends_as_an_http_error(home: Path) -> None:
    with LoopbackServer(fixed(Reply(307, b"", {"Location": "/metrics"}))) as server:
        src = _source(home, server.base + "/metrics", FixedClock(FIXED_NOW))
        attempt = await src.refresh()
    assert attempt.status == "http-error" and "HTTP 307" in attempt.message
    assert len(server.requests) == 4  # the request and three redirects followed, then no more


@pytest.mark.parametrize(
    ("origin", "target", "same"),
    [
        ("http://127.0.0.1:4000/metrics", "http://127.0.0.1:4000/metrics/", True),
        ("http://proxy.lan/metrics", "https://proxy.lan/metrics", True),  # an upgrade to https
        ("https://proxy.lan/metrics", "http://proxy.lan/metrics", False),  # never a downgrade
        ("http://127.0.0.1:4000/metrics", "http://127.0.0.1:4001/metrics", False),
        ("http://127.0.0.1:4000/metrics", "http://localhost:4000/metrics", False),
        ("http://Proxy.LAN/metrics", "http://proxy.lan/x", True),
    ],
)
def test_same_host(origin: str, target: str, same: bool) -> None:
    assert same_host(httpx.URL(origin), httpx.URL(target)) is same


async def test_deprecated_metric_and_its_replacement_never_summed(home: Path) -> None:
    metrics = LiteLLMMetrics()
    clock = FixedClock(FIXED_NOW)
    with LoopbackServer(metrics.route()) as server:
        src = _source(home, server.base + "/metrics", clock)
        assert (await src.refresh()).ok
        for _ in range(5):
            metrics.call("glm-4.6", 10, 2)
        assert (await src.refresh()).ok
    row = src.row(clock.now(), FIXED_NOW - timedelta(minutes=1))
    assert row["since_cycle"]["requests_total"] == {"glm-4.6": 5}
    assert row["totals"]["requests_total"] == {"glm-4.6": 5}
    # An older proxy with only the deprecated name is still read.
    only_old = [MetricSample("litellm_requests_metric_total", {"requested_model": "glm-4.6"}, 7.0)]
    state = ProxyState(build_metric_map("litellm"))
    state.update(only_old, FIXED_NOW)
    assert state.totals()["requests_total"] == {"glm-4.6": 7}


async def test_the_scrapes_own_requests_are_not_counted(home: Path) -> None:
    metrics = LiteLLMMetrics()
    clock = FixedClock(FIXED_NOW)
    with LoopbackServer(metrics.route(bearer=MASTER_KEY, redirect=True)) as server:
        bare = _source(home, server.base + "/metrics", clock)
        assert (await bare.refresh()).status == "unauthorized"  # LiteLLM counts this refused scrape
        src = _keyed_source(home, server.base + "/metrics", clock)
        assert (await src.refresh()).ok
        assert (await bare.refresh()).status == "unauthorized"
        for _ in range(3):
            metrics.call("glm-4.6", 10, 2)
        assert (await src.refresh()).ok
    row = src.row(clock.now(), FIXED_NOW - timedelta(minutes=1))
    assert row["since_cycle"]["requests_total"] == {"glm-4.6": 3}
    assert row["totals"]["requests_total"] == {"glm-4.6": 3}
    assert row["since_cycle"]["requests_failed_total"] == {}
    samples = [
        MetricSample("litellm_proxy_total_requests_metric_total", {"route": "/metrics/"}, 2.0),
        MetricSample("litellm_proxy_total_requests_metric_total", {"route": "/v1/messages"}, 3.0),
        MetricSample("litellm_total_tokens_metric_total", {}, 9.0),
    ]
    assert without_scrape_requests(samples, ["/metrics"]) == samples[1:]
