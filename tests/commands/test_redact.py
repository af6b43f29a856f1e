"""Secrets never leave the request header: redaction helpers, and a grep of every output after a run."""

from __future__ import annotations

import json
import logging
import random
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.support.env import FIXED_NOW
from tests.support.http import (
    BAD_KEY,
    FAKE_KEY,
    FAKE_SECRET,
    NO_PLAN,
    V1,
    V3_CREDIT,
    LiteLLMMetrics,
    LoopbackServer,
    Reply,
    fixed,
    refused_port,
)
from zai_dash.clock import FixedClock
from zai_dash.config import builtin_plans
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.snapshot import build_snapshot
from zai_dash.exporter import render
from zai_dash.redact import Redactor, key_hint, redact_headers, redact_url, scrub
from zai_dash.sources.base import SourceContext
from zai_dash.sources.prometheus import PrometheusSource, ProxySettings
from zai_dash.sources.zai_quota import QuotaSettings, ZaiQuotaSource

PROXY_KEY = "sk-proxy-secret-9876543210"


def test_key_hint_shows_last_four_at_most() -> None:
    assert key_hint(FAKE_KEY) == "…xyzQ"
    assert key_hint("short-key") == "…"  # four characters of a short secret are too many
    assert key_hint("") == "" and key_hint(None) == ""


def test_scrub_known_secrets_and_key_shapes() -> None:
    text = f"failed for {FAKE_KEY} with Bearer {FAKE_KEY} and {PROXY_KEY}"
    out = scrub(text, [FAKE_KEY])
    assert FAKE_KEY not in out and FAKE_SECRET not in out and PROXY_KEY not in out
    assert "…xyzQ" in out
    # Unknown secrets shaped like keys are scrubbed too.
    other = "fedcba9876543210fedcba9876543210.AnotherSecret99"
    assert scrub(f"x {other} y") == "x … y"
    assert scrub("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer …"
    # A `Bearer` header value registered whole also removes the bare token.
    assert "tok3n-value-123" not in Redactor(["Bearer tok3n-value-123"])("got tok3n-value-123")


def test_redact_url_and_headers() -> None:
    assert redact_url("https://user:pw@host.example:8443/metrics?token=abc") == "https://host.example:8443/metrics"
    assert redact_url("http://[::1]:9464/metrics") == "http://[::1]:9464/metrics"
    assert redact_headers({"Authorization": "Bearer x"}) == {"Authorization": "…"}


async def test_no_output_contains_the_key(home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Run every quota and proxy path with a known fake key, then grep everything produced."""
    caplog.set_level(logging.DEBUG)
    clock = FixedClock(FIXED_NOW)
    env = {"ZAI_API_KEY": FAKE_KEY, "LITELLM_MASTER_KEY": PROXY_KEY}
    ctx = SourceContext(home=home, env=env, clock=clock.now)
    outputs: list[str] = []

    def collect(src: ZaiQuotaSource | PrometheusSource) -> None:
        now = clock.now()
        if src.poller.last is not None:
            outputs.append(src.poller.last.message)
        outputs.append(repr(src.health(now)))
        if isinstance(src, ZaiQuotaSource):
            outputs.extend(src.doctor_lines(now))
            outputs.append(json.dumps(src.rows(now), default=str))
        else:
            outputs.append(json.dumps(src.row(now, now - timedelta(hours=1)), default=str))

    # The server echoes the key back in its error text: the worst case for a leak.
    echo = {"code": 401, "msg": f"token {FAKE_KEY} expired or incorrect", "success": False}
    replies = [
        Reply(body=V1),
        Reply(body=V3_CREDIT),
        Reply(body=BAD_KEY),
        Reply(body=echo),
        Reply(body=NO_PLAN),
        Reply(body=b""),
        Reply(body=f"<html>{FAKE_KEY}</html>"),
        Reply(401, f"bad key {FAKE_KEY}"),
        Reply(404, b"nope"),
        Reply(429, b"", {"Retry-After": "60"}),
        Reply(body=V1, delay=1.0),
    ]
    sources: list[ZaiQuotaSource] = []
    for reply in replies:
        with LoopbackServer(fixed(reply)) as server:
            src = ZaiQuotaSource(
                QuotaSettings(enabled=True, region="intl", timeout=0.3),
                ctx,
                hosts={"intl": server.base, "cn": server.base},
                rng=random.Random(0),
            )
            await src.refresh()
            collect(src)
            sources.append(src)
    refused = ZaiQuotaSource(
        QuotaSettings(enabled=True, base_url=f"http://127.0.0.1:{refused_port()}"), ctx, rng=random.Random(0)
    )
    await refused.refresh()
    collect(refused)

    metrics = LiteLLMMetrics()
    metrics.call("glm-4.6", 10, 1)
    with LoopbackServer(metrics.route(bearer=PROXY_KEY)) as server:
        for headers in ({"Authorization": "Bearer ${LITELLM_MASTER_KEY}"}, {"Authorization": f"Bearer {PROXY_KEY}x"}):
            proxy = PrometheusSource(ProxySettings(name="litellm", url=server.base, headers=headers), ctx)
            await proxy.refresh()
            collect(proxy)

    # The snapshot (report --json), the exporter, and the health lines built from the same sources.
    good = sources[0]
    snap = build_snapshot(
        now=clock.now(),
        plan=builtin_plans()["pro"],
        ledger=Ledger(),
        tz=ZoneInfo("UTC"),
        sources=[s.health(clock.now()) for s in sources],
        official=good.rows(clock.now()),
        official_reset=good.official_reset(clock.now()),
        proxies=[proxy.row(clock.now(), None)],
    )
    outputs.append(json.dumps(snap.to_json()))
    outputs.append(render(snap, "box").decode())
    outputs.append(caplog.text)
    # Nothing may be written to disk either (no cache files with the key).
    for path in tmp_path.rglob("*"):
        if path.is_file():
            outputs.append(path.read_text(encoding="utf-8", errors="replace"))

    blob = "\n".join(outputs)
    assert "…xyzQ" in blob  # the hint is shown …
    for secret in (FAKE_KEY, FAKE_SECRET, PROXY_KEY):
        assert secret not in blob  # … the secret never
    assert snap.official and snap.official[0]["percent"] == 12
