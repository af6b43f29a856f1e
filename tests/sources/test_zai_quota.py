"""Z.ai quota endpoint: envelope decisions, row mapping, auth/region fallback, errors, polling, secrecy.

Every HTTP test talks to a real stdlib server on 127.0.0.1 (`tests/support/http.py`).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import FIXED_NOW
from tests.support.http import (
    AUTH_FAILED,
    BAD_KEY,
    CREDITS_NO_RESET,
    EARLY_TOKENS,
    FAKE_KEY,
    NO_PLAN,
    NOW_MS,
    RESET_CARD_AFTER,
    RESET_CARD_BEFORE,
    V1,
    V2,
    V2_IDLE,
    V3_CREDIT,
    LoopbackServer,
    Reply,
    credit_row,
    envelope,
    fixed,
    json_numbers,
    needs_auth,
    refused_port,
)
from tests.support.zai_quota import _ctx, _source
from zai_dash.clock import FixedClock
from zai_dash.domain.official import (
    Calibration,
    OfficialRow,
    QuotaStatus,
    billing_warning,
    decide,
    detect_billing,
    drift,
    is_reset_card,
    official_reset_for_cycle,
    parse_limits,
    reconcile,
    reconcile_window,
    row_json,
    window_kind,
)
from zai_dash.sources.pollers import Attempt, Poller, parse_retry_after
from zai_dash.sources.zai_quota import QuotaSettings, ZaiQuotaSource, resolve_key, resolve_region


def _body(payload: object) -> bytes:
    return json.dumps(payload).encode()


# --- pure: envelope -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, _body(V1), QuotaStatus.OK),
        (200, _body(BAD_KEY), QuotaStatus.INVALID_KEY),  # auth failure as HTTP 200
        (200, _body(AUTH_FAILED), QuotaStatus.INVALID_KEY),
        (
            200,
            _body({"code": 1001, "msg": "Authentication parameter not received", "success": False}),
            QuotaStatus.INVALID_KEY,
        ),
        (200, _body(NO_PLAN), QuotaStatus.NO_PLAN),
        (200, _body({"success": False, "code": 500, "msg": "当前用户不存在 coding plan"}), QuotaStatus.NO_PLAN),
        (200, b"", QuotaStatus.EMPTY),
        (200, b"   \n", QuotaStatus.EMPTY),
        (200, b"{not json", QuotaStatus.BAD_RESPONSE),
        (200, b"<html>oops</html>", QuotaStatus.BAD_RESPONSE),
        (401, b"unauthorized account token", QuotaStatus.INVALID_KEY),
        (403, b"", QuotaStatus.INVALID_KEY),
        (404, b"not found", QuotaStatus.HTTP_ERROR),
        (429, b"", QuotaStatus.HTTP_ERROR),
        (200, _body({"code": 500, "msg": "404 NOT_FOUND", "success": False}), QuotaStatus.API_ERROR),
        # success without code 200 is not success
        (200, _body({"code": 201, "msg": "x", "success": True, "data": {}}), QuotaStatus.API_ERROR),
    ],
)
def test_decide_from_envelope_not_status(status: int, body: bytes, expected: QuotaStatus) -> None:
    assert decide(status, body).status is expected


def test_envelope_beats_http_status() -> None:
    # A success envelope is success whatever the status line says; a failure envelope on a 500 is
    # still classified by its content.
    assert decide(500, _body(V1)).status is QuotaStatus.OK
    assert decide(500, _body(NO_PLAN)).status is QuotaStatus.NO_PLAN


# --- pure: rows --------------------------------------------------------------------------------------


def test_windows_mapped_by_type_unit_number_not_order() -> None:
    reading = parse_limits(V2_IDLE["data"], FIXED_NOW)
    kinds = [r.kind for r in reading.rows]
    assert kinds == ["five-hour", "weekly", "monthly-mcp"]
    assert reading.row("weekly").percent == 68  # type: ignore[union-attr]
    assert reading.row("monthly-mcp").limit == 4000  # type: ignore[union-attr]
    assert reading.version == "V2"
    assert reading.level == "max"
    # Reversing the list changes nothing.
    flipped = {"level": "max", "limits": list(reversed(V2_IDLE["data"]["limits"]))}
    assert [(r.kind, r.percent) for r in parse_limits(flipped, FIXED_NOW).rows] == [
        (r.kind, r.percent) for r in reading.rows
    ]


@pytest.mark.parametrize(
    ("type_", "unit", "number", "kind"),
    [
        ("TOKENS_LIMIT", 3, 5, "five-hour"),
        ("CREDIT_LIMIT", 3, 5, "five-hour"),
        ("TOKENS_LIMIT", 6, 1, "weekly"),
        ("CREDIT_LIMIT", 6, 1, "weekly"),
        ("TIME_LIMIT", 5, 1, "monthly-mcp"),
        ("CREDIT_LIMIT", 1, 30, "credit"),
        ("TIME_LIMIT", 3, 5, "unknown"),
        ("RATE_LIMIT", 3, 5, "unknown"),
    ],
)
def test_window_kind(type_: str, unit: int, number: int, kind: str) -> None:
    assert window_kind(type_, unit, number) == kind


def test_idle_five_hour_row_is_not_started() -> None:
    five = parse_limits(V2_IDLE["data"], FIXED_NOW).row("five-hour")
    assert five is not None
    assert five.state == "not-started"
    assert five.next_reset is None
    assert official_reset_for_cycle(parse_limits(V2_IDLE["data"], FIXED_NOW).rows, FIXED_NOW) is None


def test_exact_value_preferred_over_rounded_percentage() -> None:
    reading = parse_limits(V3_CREDIT["data"], FIXED_NOW)
    five = reading.row("five-hour")
    assert five is not None
    assert five.percent == pytest.approx(100 * 1438 / 12000)  # 11.98, not the rounded 11
    assert five.percent_exact is True
    assert five.used == 1438 and five.limit == 12000
    assert reading.version == "V3"
    assert reading.row("weekly").type == "CREDIT_LIMIT"  # type: ignore[union-attr]


def test_values_clamped_and_unknown_rows_kept_generically() -> None:
    reading = parse_limits(V3_CREDIT["data"], FIXED_NOW)
    mystery = reading.row("unknown")
    assert mystery is not None
    assert mystery.percent == 100  # 140 clamped
    assert mystery.label == "MYSTERY_LIMIT unit 9 × 2"
    credit = reading.row("credit")
    assert credit is not None and credit.label == "CREDIT_LIMIT 30 days"
    early = parse_limits(EARLY_TOKENS["data"], FIXED_NOW)
    assert early.row("monthly-mcp").percent == 100  # type: ignore[union-attr]  # 102/100
    assert early.level == "Pro"  # planName accepted
    assert early.row("five-hour").percent == pytest.approx(34.07, abs=0.01)  # type: ignore[union-attr]


def test_usage_details_become_services() -> None:
    mcp = parse_limits(V1["data"], FIXED_NOW).row("monthly-mcp")
    assert mcp is not None
    assert dict(mcp.usage_details) == {"search": 20, "reader": 8, "zread": 0}
    assert mcp.used == 28 and mcp.limit == 100


def test_bad_rows_skipped_and_counted_never_raised() -> None:
    data = {
        "level": "pro",
        "limits": [
            "nonsense",
            {"unit": 3},
            {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": "high", "nextResetTime": "soon"},
            {"type": "TIME_LIMIT", "unit": 5, "number": 1, "usageDetails": [{"modelCode": 3}]},
        ],
    }
    reading = parse_limits(data, FIXED_NOW)
    assert [r.kind for r in reading.rows] == ["five-hour", "monthly-mcp"]
    assert reading.skipped["limit row without a type"] == 2
    assert reading.skipped["nextResetTime not an epoch in ms"] == 1
    assert reading.skipped["usageDetails entry unreadable"] == 1
    assert parse_limits(None, FIXED_NOW).rows == ()


def test_official_reset_only_for_the_open_window() -> None:
    rows = parse_limits(V1["data"], FIXED_NOW).rows
    assert official_reset_for_cycle(rows, FIXED_NOW) == FIXED_NOW + timedelta(hours=1)
    # After the reset, the row no longer anchors anything.
    assert official_reset_for_cycle(rows, FIXED_NOW + timedelta(hours=2)) is None
    # More than 5 h ahead cannot be this window.
    assert official_reset_for_cycle(rows, FIXED_NOW - timedelta(hours=5)) is None


# --- pure: reconciliation ----------------------------------------------------------------------------


def test_drift_warns_beyond_margin_only() -> None:
    assert not drift(30, 20, margin=15).warn
    far = drift(60, 20, margin=15)
    assert far.warn and far.points == 40 and "other machines" in far.message
    assert drift(10, 40, margin=15).warn


def test_calibration_factor_from_successive_polls() -> None:
    cal = Calibration()
    start = FIXED_NOW - timedelta(hours=2)
    cal.observe(10, 30, start)
    assert cal.factor is None  # one observation says nothing
    cal.observe(11, 33, start)
    assert cal.factor is None  # 1 point of a rounded meter is too little
    cal.observe(20, 60, start)  # 10 points for 30 prompt-equivalents
    assert cal.factor == pytest.approx(1 / 3) and cal.factor_from == "this-window" and cal.polls == 3
    cal.observe(2, 65, start + timedelta(hours=5))  # new window: the old factor is carried over
    assert cal.factor == pytest.approx(1 / 3) and cal.factor_from == "previous-window" and cal.polls == 1
    cal.observe(14, 101, start + timedelta(hours=5))  # 12 points for 36: this window's own factor
    assert cal.factor == pytest.approx(1 / 3) and cal.factor_from == "this-window"
    cal.observe(float("nan"), 5, start)
    cal.observe(5, 5, None)  # no window, nothing learned
    assert cal.polls == 2


def test_reconcile_prefers_fresh_official_and_falls_back_to_local() -> None:
    reading = parse_limits(V3_CREDIT["data"], FIXED_NOW)
    from zai_dash.domain.official import row_json

    rows = [row_json(r, FIXED_NOW, stale=False, level="pro", version="V3") for r in reading.rows]
    out = reconcile(rows, 40.0, margin=15)
    assert out["primary"] == "official"
    assert out["official_percent"] == pytest.approx(11.98, abs=0.01)
    assert out["drift_warning"] and "40%" in out["drift_warning"]
    assert out["weekly_percent"] == pytest.approx(100 * 1226 / 60000)
    stale_rows = [row_json(r, FIXED_NOW, stale=True, level="pro", version="V3") for r in reading.rows]
    assert reconcile(stale_rows, 40.0)["primary"] == "local"
    assert reconcile([], 40.0)["primary"] == "local"


# --- key and region ----------------------------------------------------------------------------------


def _claude_settings(home: Path, env: dict[str, str]) -> None:
    path = home / ".claude" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"env": env}), encoding="utf-8")


def test_key_from_named_env_var(home: Path) -> None:
    settings = QuotaSettings(enabled=True, key_env="MY_GLM_KEY")
    choice = resolve_key(settings, _ctx(home, {"MY_GLM_KEY": FAKE_KEY, "ZAI_API_KEY": "other"}))
    assert choice.key == FAKE_KEY
    assert choice.origin == "env MY_GLM_KEY"
    assert choice.hint == "…xyzQ"


def test_claude_token_needs_explicit_opt_in(home: Path) -> None:
    _claude_settings(home, {"ANTHROPIC_AUTH_TOKEN": FAKE_KEY, "ANTHROPIC_BASE_URL": "https://api.z.ai/api/anthropic"})
    off = resolve_key(QuotaSettings(enabled=True), _ctx(home, {}))
    assert off.key is None and "ZAI_API_KEY" in off.problem
    on = resolve_key(QuotaSettings(enabled=True, use_claude_token=True), _ctx(home, {}))
    assert on.key == FAKE_KEY and "settings.json" in on.origin


def test_claude_token_refused_when_base_url_is_not_zai(home: Path) -> None:
    _claude_settings(home, {"ANTHROPIC_AUTH_TOKEN": FAKE_KEY, "ANTHROPIC_BASE_URL": "https://api.anthropic.com"})
    choice = resolve_key(QuotaSettings(enabled=True, use_claude_token=True), _ctx(home, {}))
    assert choice.key is None
    assert "not a Z.ai host" in choice.problem


def test_region_auto_from_claude_base_url(home: Path) -> None:
    assert resolve_region(QuotaSettings(), _ctx(home, {})) == "intl"
    _claude_settings(home, {"ANTHROPIC_BASE_URL": "https://open.bigmodel.cn/api/anthropic"})
    assert resolve_region(QuotaSettings(), _ctx(home, {})) == "cn"
    assert resolve_region(QuotaSettings(region="intl"), _ctx(home, {})) == "intl"
    env = {"ANTHROPIC_BASE_URL": "https://api.z.ai/api/anthropic"}
    assert resolve_region(QuotaSettings(), _ctx(home, env)) == "intl"


# --- over loopback -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kinds", "version"),
    [
        (V1, ["five-hour", "monthly-mcp"], "V1"),
        (V2_IDLE, ["five-hour", "weekly", "monthly-mcp"], "V2"),
        (V3_CREDIT, ["five-hour", "weekly", "credit", "unknown"], "V3"),
        (EARLY_TOKENS, ["five-hour", "monthly-mcp"], "V1"),
    ],
)
async def test_every_response_shape_over_http(
    home: Path, payload: dict[str, object], kinds: list[str], version: str
) -> None:
    with LoopbackServer(fixed(Reply(body=payload))) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert attempt.ok, attempt.message
    rows = src.rows(FIXED_NOW)
    assert [r["kind"] for r in rows] == kinds
    assert all(r["provenance"] == "official" and r["stale"] is False for r in rows)
    assert all(r["plan_version"] == version for r in rows)
    assert src.health(FIXED_NOW).status == "ok"
    # The request carried the raw key and asked for English messages.
    sent = server.requests[0]
    assert sent["authorization"] == FAKE_KEY
    assert sent["accept-language"] == "en-US,en"
    assert sent[":path"] == "/api/monitor/usage/quota/limit"


async def test_idle_window_over_http_shows_not_started(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=V2_IDLE))) as server:
        src = _source(home, server.base)
        await src.refresh()
    five = next(r for r in src.rows(FIXED_NOW) if r["kind"] == "five-hour")
    assert five["state"] == "not-started" and five["next_reset"] is None
    assert src.official_reset(FIXED_NOW) is None


async def test_official_reset_from_fresh_reading(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=V3_CREDIT))) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert src.official_reset(FIXED_NOW) == FIXED_NOW + timedelta(hours=2)
    # Poll again just after the known reset rather than a whole interval later.
    assert attempt.due_in == pytest.approx(2 * 3600 + 5)


async def test_bad_key_tries_bearer_then_other_region_once(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=BAD_KEY))) as intl, LoopbackServer(fixed(Reply(body=BAD_KEY))) as cn:
        src = _source(home, intl.base, other=cn.base)
        attempt = await src.refresh()
    assert not attempt.ok and attempt.status == "invalid-key"
    assert [r["authorization"] for r in intl.requests] == [FAKE_KEY, f"Bearer {FAKE_KEY}"]
    assert [r["authorization"] for r in cn.requests] == [FAKE_KEY]
    assert "rejected the API key …xyzQ" in attempt.message
    assert "token expired or incorrect" in attempt.message
    assert "tried api.z.ai (raw), api.z.ai (bearer), open.bigmodel.cn (raw)" in attempt.message
    assert src.rows(FIXED_NOW) == ()
    assert src.health(FIXED_NOW).status == "error"


async def test_bearer_fallback_is_remembered(home: Path) -> None:
    with LoopbackServer(needs_auth("bearer", Reply(body=V1))) as server:
        src = _source(home, server.base)
        first = await src.refresh()
        second = await src.refresh()
    assert first.ok and second.ok
    auths = [r["authorization"] for r in server.requests]
    # raw, then Bearer (works); the next poll goes straight to Bearer.
    assert auths == [FAKE_KEY, f"Bearer {FAKE_KEY}", f"Bearer {FAKE_KEY}"]


async def test_other_region_used_on_auth_failure_and_remembered(home: Path) -> None:
    with (
        LoopbackServer(fixed(Reply(body=AUTH_FAILED))) as intl,
        LoopbackServer(needs_auth("raw", Reply(body=V1))) as cn,
    ):
        src = _source(home, intl.base, other=cn.base)
        assert (await src.refresh()).ok
        assert (await src.refresh()).ok
    assert len(intl.requests) == 2  # raw + bearer on the first poll only
    assert len(cn.requests) == 2
    route = next(line for line in src.doctor_lines(FIXED_NOW) if "working route" in line)
    assert "open.bigmodel.cn" in route or cn.base in route


@pytest.mark.parametrize(
    ("reply", "status", "needle"),
    [
        (Reply(body=NO_PLAN), "no-plan", "has no GLM Coding Plan"),
        (Reply(body=b""), "empty", "empty response"),
        (Reply(body=b"{garbage"), "bad-response", "not JSON"),
        (Reply(404, b"no such route"), "http-error", "HTTP 404"),
        (Reply(429, b"", {"Retry-After": "120"}), "http-error", "retry after 120 s"),
        (Reply(502, b"bad gateway"), "http-error", "HTTP 502"),
    ],
)
async def test_error_cases_one_human_line_each(home: Path, reply: Reply, status: str, needle: str) -> None:
    with LoopbackServer(fixed(reply)) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert not attempt.ok
    assert attempt.status == status
    assert needle in attempt.message
    assert "\n" not in attempt.message
    assert len(server.requests) == 1  # not an auth failure: no retry
    assert src.health(FIXED_NOW).status == "error"


async def test_http_401_plain_text_counts_as_auth_failure(home: Path) -> None:
    with LoopbackServer(fixed(Reply(401, b"unauthorized account token", {"Content-Type": "text/plain"}))) as s:
        src = _source(home, s.base)
        attempt = await src.refresh()
    assert attempt.status == "invalid-key"
    assert len(s.requests) == 2  # raw then Bearer; the other region is refused (nothing listening)


async def test_retry_after_honoured_by_poller(home: Path) -> None:
    with LoopbackServer(fixed(Reply(429, b"", {"Retry-After": "120"}))) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert attempt.retry_after == 120
    assert src.poller.next_delay is not None and src.poller.next_delay >= 120


async def test_timeout(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=V1, delay=1.5))) as server:
        src = _source(home, server.base, timeout=0.3)
        attempt = await src.refresh()
    assert attempt.status == "timeout"
    assert attempt.message == "no answer from api.z.ai within 0.3 s"


async def test_connection_refused(home: Path) -> None:
    src = _source(home, f"http://127.0.0.1:{refused_port()}")
    attempt = await src.refresh()
    assert attempt.status == "network"
    assert attempt.message == "cannot reach api.z.ai: connection refused"


async def test_base_url_replaces_host(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=V1))) as server:
        src = _source(home, server.base, use_base_url=True)
        src._hosts = {"intl": "http://127.0.0.1:9", "cn": "http://127.0.0.1:9"}  # would fail if used
        attempt = await src.refresh()
    assert attempt.ok
    assert len(server.requests) == 1


async def test_plain_http_refused_for_non_loopback_base_url(home: Path) -> None:
    settings = QuotaSettings(enabled=True, base_url="http://proxy.example.invalid")
    src = ZaiQuotaSource(settings, _ctx(home, {"ZAI_API_KEY": FAKE_KEY}))
    attempt = await src.refresh()
    assert not attempt.ok and "plain http" in attempt.message


async def test_no_key_and_disabled(home: Path) -> None:
    src = ZaiQuotaSource(QuotaSettings(enabled=True), _ctx(home, {}))
    attempt = await src.refresh()
    assert attempt.status == "no-key" and "ZAI_API_KEY" in attempt.message
    off = ZaiQuotaSource(QuotaSettings(), _ctx(home, {"ZAI_API_KEY": FAKE_KEY}))
    assert (await off.refresh()).status == "disabled"
    assert off.health(FIXED_NOW).status == "absent"


async def test_last_good_value_kept_and_marked_stale(home: Path) -> None:
    clock = FixedClock(FIXED_NOW)
    replies = [Reply(body=V1), Reply(503, b"down")]
    with LoopbackServer(lambda _h: replies.pop(0)) as server:
        src = _source(home, server.base, clock=clock)
        assert (await src.refresh()).ok
        clock.advance(timedelta(seconds=60))
        assert not (await src.refresh()).ok
    now = clock.now()
    rows = src.rows(now)
    assert rows and all(r["stale"] for r in rows)
    assert rows[0]["percent"] == 12 and rows[0]["age_seconds"] == 60
    health = src.health(now)
    assert health.status == "stale" and "HTTP 503" in health.detail and "60 s ago" in health.detail
    assert src.official_reset(now) is None  # a stale reading does not anchor the cycle


async def test_rows_age_into_stale_without_a_failure(home: Path) -> None:
    clock = FixedClock(FIXED_NOW)
    with LoopbackServer(fixed(Reply(body=V1))) as server:
        src = _source(home, server.base, clock=clock)
        await src.refresh()
    clock.advance(timedelta(seconds=181))  # 3 intervals of 60 s
    assert all(r["stale"] for r in src.rows(clock.now()))
    clock.set(FIXED_NOW + timedelta(hours=1, seconds=1))
    five = src.rows(clock.now())[0]
    assert five["state"] == "reset" and five["stale"]


# --- poller ------------------------------------------------------------------------------------------


def test_interval_floor_and_backoff_with_jitter() -> None:
    async def never() -> Attempt:
        return Attempt(True, "ok", "")

    p = Poller("x", never, interval=5, floor=30, rng=random.Random(3))
    assert p.interval == 30
    fail = Attempt(False, "network", "down")
    delays = []
    for n in range(1, 8):
        p.failures = n
        delays.append(p.delay_after(fail))
    for n, d in enumerate(delays, start=1):
        base = min(p.max_backoff, 30 * 2 ** (n - 1))
        assert 0.8 * base <= d <= 1.2 * base
    assert delays[-1] <= 1.2 * 900
    p.failures = 1
    assert p.delay_after(Attempt(False, "http-error", "", retry_after=500)) >= 500
    assert p.delay_after(Attempt(True, "ok", "", due_in=10)) == 10
    assert p.delay_after(Attempt(True, "ok", "", due_in=0)) == 2  # never a busy loop


def test_parse_retry_after() -> None:
    assert parse_retry_after("120", FIXED_NOW) == 120
    assert parse_retry_after("Thu, 26 Nov 2026 12:01:00 GMT", FIXED_NOW) == 60
    assert parse_retry_after("soon", FIXED_NOW) is None
    assert parse_retry_after(None, FIXED_NOW) is None
    assert parse_retry_after("999999", FIXED_NOW) == 3600


async def test_loop_survives_exceptions_and_poll_now_wakes_it() -> None:
    calls: list[int] = []

    async def flaky() -> Attempt:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return Attempt(True, "ok", "fine")

    results: list[Attempt] = []
    p = Poller("flaky", flaky, interval=3600, floor=0.01, on_result=results.append, rng=random.Random(0))
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop))
    await _until(lambda: len(calls) == 1)
    assert results[0].status == "internal-error" and "RuntimeError" in results[0].message
    p.poll_now()  # the backoff is an hour; `r` polls at once
    await _until(lambda: len(calls) == 2)
    assert p.last is not None and p.last.ok and p.failures == 0
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_poll_now_still_honours_retry_after() -> None:
    calls: list[int] = []

    async def limited() -> Attempt:
        calls.append(1)
        return Attempt(False, "http-error", "429", retry_after=3600)

    p = Poller("limited", limited, interval=0.01, floor=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(p.run(stop))
    await _until(lambda: len(calls) == 1)
    p.poll_now()
    await asyncio.sleep(0.2)
    assert len(calls) == 1
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_source_run_loop_polls_and_stops(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=V1))) as server:
        settings = QuotaSettings(enabled=True, region="intl", interval=0.05)
        src = ZaiQuotaSource(
            settings,
            _ctx(home, {"ZAI_API_KEY": FAKE_KEY}),
            hosts={"intl": server.base, "cn": server.base},
            floor=0.05,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(src.run(stop))
        await _until(lambda: len(server.requests) >= 2)
        stop.set()
        await asyncio.wait_for(task, 5)
    assert src.reading is not None


async def _until(cond: object, within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not cond():  # type: ignore[operator]
        if loop.time() > deadline:
            raise AssertionError("condition not met within the time limit")
        await asyncio.sleep(0.01)


def test_settings_coerced_from_config_dataclass(home: Path) -> None:
    from zai_dash.config import ApiSettings

    src = ZaiQuotaSource(ApiSettings(enabled=True, region="cn"), _ctx(home, {}))
    assert src.settings.region == "cn" and src.region == "cn"


# --- the official meter, exact: every shape, billing, reset cards, calibration ------------------------

H, D, M = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)
MONTHLY_RESET = datetime(2026, 12, 16, 12, tzinfo=timezone.utc)


def _by_window(rows: tuple[dict[str, Any], ...]) -> dict[str, dict[str, Any]]:
    return {r["window"]: r for r in rows if r["window"] != "other"}


# window → (unit, used, limit, remaining, percent, next_reset, start, state)
SHAPES = [
    pytest.param(
        V1,
        "legacy-v1",
        {
            "5h": ("percent", None, None, None, 12.0, FIXED_NOW + H, FIXED_NOW - 4 * H, "active"),
            "monthly-mcp": ("calls", 28, 100, 72, 28.0, MONTHLY_RESET, None, "active"),
        },
        id="v1",
    ),
    pytest.param(
        V2,
        "legacy-v2",
        {
            "5h": ("percent", None, None, None, 35.0, FIXED_NOW + 3 * H, FIXED_NOW - 2 * H, "active"),
            "weekly": ("percent", None, None, None, 68.0, FIXED_NOW + 2 * D, FIXED_NOW - 5 * D, "active"),
            "monthly-mcp": ("calls", 224, 1000, 776, 22.4, MONTHLY_RESET, None, "active"),
        },
        id="v2",
    ),
    pytest.param(
        V2_IDLE,
        "legacy-v2",
        {
            "5h": ("percent", None, None, None, 0.0, None, None, "not-started"),
            "weekly": ("percent", None, None, None, 68.0, FIXED_NOW + 4 * D, FIXED_NOW - 3 * D, "active"),
            "monthly-mcp": ("calls", 82, 4000, 3918, 2.05, MONTHLY_RESET, None, "active"),
        },
        id="v2-idle",
    ),
    pytest.param(
        V3_CREDIT,
        "credits",
        {
            "5h": ("credits", 1438, 12000, 10562, 1438 / 120, FIXED_NOW + 2 * H, FIXED_NOW - 3 * H, "active"),
            "weekly": ("credits", 1226, 60000, 58791, 1226 / 600, FIXED_NOW + 5 * D, FIXED_NOW - 2 * D, "active"),
        },
        id="credits",
    ),
    pytest.param(
        CREDITS_NO_RESET,
        "credits",
        {
            "5h": ("credits", 0, 28000, 28000, 0.0, None, None, "not-started"),
            "weekly": ("credits", 8400, 140000, 131600, 6.0, None, None, "active"),
        },
        id="credits-without-next-reset",
    ),
    pytest.param(
        EARLY_TOKENS,
        "legacy-v1",
        {
            "5h": ("tokens", 13628365, 40000000, 26371635, 13628365 / 4e5, FIXED_NOW + H, FIXED_NOW - 4 * H, "active"),
            "monthly-mcp": ("calls", 102, 100, 0, 100.0, None, None, "active"),
        },
        id="early-tokens",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "billing", "expected"), SHAPES)
async def test_each_official_shape_read_exactly_over_http(
    home: Path, payload: dict[str, object], billing: str, expected: dict[str, tuple[object, ...]]
) -> None:
    with LoopbackServer(fixed(Reply(body=payload))) as server:
        src = _source(home, server.base)
        assert (await src.refresh()).ok
    rows = src.rows(FIXED_NOW)
    windows = _by_window(rows)
    assert set(windows) == set(expected)
    for window, (unit, used, limit, remaining, percent, next_reset, start, state) in expected.items():
        row = windows[window]
        got = (row["unit"], row["used"], row["limit"], row["remaining"], row["next_reset"], row["start"], row["state"])
        assert got == (unit, used, limit, remaining, next_reset, start, state), window
        assert row["percent"] == pytest.approx(percent), window
        assert row["percent_exact"] is (unit != "percent"), window
        assert row["anchor"] == ("official" if start is not None else None)
        assert row["reset_card"] is False and row["billing"] == billing
    assert detect_billing(rows) == billing
    assert detect_billing(src.reading.rows) == billing  # type: ignore[union-attr]
    assert all(n >= 0 for n in json_numbers(rows))


def test_rows_no_window_maps_to_are_other_and_keep_their_integers() -> None:
    reading = parse_limits(V3_CREDIT["data"], FIXED_NOW)
    other = [r for r in reading.rows if r.window == "other"]
    assert [(r.type, r.unit, r.used, r.limit, r.remaining) for r in other] == [
        ("CREDIT_LIMIT", "credits", 5, 100, 95),  # remaining not sent: limit − used
        ("MYSTERY_LIMIT", "percent", None, None, None),
    ]


@pytest.mark.parametrize(
    ("detected", "configured", "warns"),
    [
        ("credits", "credits", False),
        ("credits", "legacy-v2", True),
        ("legacy-v2", "credits", True),
        ("legacy-v1", "legacy-v2", True),
        (None, "credits", False),  # nothing read: nothing to disagree with
        ("credits", None, False),
    ],
)
def test_billing_warning_only_on_disagreement(detected: str | None, configured: str | None, warns: bool) -> None:
    warning = billing_warning(detected, configured)
    assert (warning is not None) is warns
    if warning:
        assert f'billing = "{configured}"' in warning and f'set billing = "{detected}"' in warning


def test_detect_billing_needs_a_meter_row() -> None:
    only_mcp = {"limits": [V1["data"]["limits"][1]]}
    assert detect_billing(parse_limits(only_mcp, FIXED_NOW).rows) is None
    assert detect_billing(()) is None
    # Mixed responses exist (reference §7): any credit row decides.
    mixed = {"limits": [*V2["data"]["limits"], credit_row("5h", 1, 2000)]}
    assert detect_billing(parse_limits(mixed, FIXED_NOW).rows) == "credits"


async def test_doctor_warns_when_billing_disagrees(home: Path) -> None:
    with LoopbackServer(fixed(Reply(body=V3_CREDIT))) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert "credits billing" in attempt.message
    assert src.billing_warning("credits") is None
    warning = src.billing_warning("legacy-v2")
    assert warning and "CREDIT_LIMIT" in warning
    lines = src.doctor_lines(FIXED_NOW, billing="legacy-v2")
    assert any(line.startswith("  warning: ") and "credits plan" in line for line in lines)


def _row(payload: dict[str, Any], window: str, at: datetime) -> OfficialRow:
    reading = parse_limits(payload["data"], at)
    return next(r for r in reading.rows if r.window == window)


def test_reset_card_detection_rules() -> None:
    before = _row(RESET_CARD_BEFORE, "weekly", FIXED_NOW)
    after = _row(RESET_CARD_AFTER, "weekly", FIXED_NOW + 10 * M)
    assert is_reset_card(before, after)
    # The figure rising, or the same figure, is no card.
    assert not is_reset_card(before, before) and not is_reset_card(after, before)
    # Only the reset moving earlier (the figure still rising) is a card too.
    moved = replace(before, used=46000.0, next_reset=FIXED_NOW + D, fetched_at=FIXED_NOW + M)
    assert is_reset_card(before, moved)
    # A window that reached its own reset time reset normally.
    five = _row(V1, "5h", FIXED_NOW)
    natural = replace(five, percent=3.0, next_reset=FIXED_NOW + 6 * H, fetched_at=FIXED_NOW + H + M)
    assert not is_reset_card(five, natural)
    # Percent-only rows: a fall is a card; a rounded 11 after an exact 11.98 is not.
    assert is_reset_card(five, replace(five, percent=0.0, next_reset=None, state="not-started"))
    exact = replace(five, percent=11.98, percent_exact=True)
    assert not is_reset_card(exact, five)


async def test_reset_card_re_anchors_over_two_polls(home: Path) -> None:
    clock = FixedClock(FIXED_NOW)
    replies = [Reply(body=RESET_CARD_BEFORE), Reply(body=RESET_CARD_AFTER), Reply(body=RESET_CARD_AFTER)]
    with LoopbackServer(lambda _h: replies.pop(0)) as server:
        src = _source(home, server.base, clock=clock)
        assert (await src.refresh()).ok
        first = _by_window(src.rows(clock.now()))
        assert first["5h"]["start"] == FIXED_NOW - 3 * H and first["weekly"]["start"] == FIXED_NOW - 4 * D
        src.observe_local({"5h": 7200, "weekly": 36000}, clock.now())
        clock.advance(10 * M)
        assert (await src.refresh()).ok
        second = _by_window(src.rows(clock.now()))
        src.observe_local({"5h": 190, "weekly": 250}, clock.now())  # local counts from the new starts
        clock.advance(10 * M)
        assert (await src.refresh()).ok  # the same figures again: no second card
        third = _by_window(src.rows(clock.now()))
    assert src.tracker.reset_cards == {"5h": 1, "weekly": 1}
    five, week = second["5h"], second["weekly"]
    # 5 h: the new window opened at the first request after the card (FIXED_NOW + 8 min).
    assert (five["used"], five["start"], five["reset_card"]) == (240, FIXED_NOW + 8 * M, True)
    # Weekly: the figure fell mid-cycle; the window restarts at the last reading before the card.
    assert (week["used"], week["start"], week["next_reset"], week["reset_card"]) == (
        300,
        FIXED_NOW,
        FIXED_NOW + D,
        True,
    )
    assert third["weekly"]["start"] == FIXED_NOW and third["weekly"]["reset_card"] is True
    for window, local in (("5h", 190.0), ("weekly", 250.0)):
        recon = reconcile_window(third[window], local, src.tracker.calibration(window))
        assert recon.reset_card and recon.anchor == "official" and recon.start == third[window]["start"]
        assert recon.factor is None  # one poll before the card, one after: nothing learned yet
        assert all(n >= 0 for n in json_numbers(recon.to_json())), recon
    assert all(n >= 0 for n in json_numbers([first, second, third]))


async def test_calibration_over_a_sequence_of_polls(home: Path) -> None:
    clock = FixedClock(FIXED_NOW)
    reset = NOW_MS + 2 * 3_600_000
    official = [1000, 1300, 1600, 2200]
    local = [800, 1040, 1280, 1760]  # the plan bills 1.25× what the logs show (hidden calls)
    replies = [
        Reply(body=envelope({"level": "pro", "limits": [credit_row("5h", u, 12000, reset_ms=reset)]})) for u in official
    ]
    factors = []
    with LoopbackServer(lambda _h: replies.pop(0)) as server:
        src = _source(home, server.base, clock=clock)
        for amount in local:
            assert (await src.refresh()).ok
            src.observe_local({"5h": amount}, clock.now())
            factors.append(src.tracker.calibration("5h").factor)
            clock.advance(2 * M)
    assert factors[0] is None
    assert factors[1:] == [pytest.approx(1.25)] * 3
    five = _by_window(src.rows(clock.now()))["5h"]
    recon = reconcile_window(five, 1760, src.tracker.calibration("5h"))
    assert recon.factor_from == "this-window" and recon.factor_polls == 4
    assert recon.estimate_used == pytest.approx(2200)
    assert recon.estimate_left_local == pytest.approx((12000 - 2200) / 1.25)
    assert recon.local_percent == pytest.approx(100 * 1760 / 12000)
    assert recon.drift_points == pytest.approx(100 * 440 / 12000, abs=0.05)
    assert recon.drift_direction == "official-above" and recon.drift_warning is None
    doc = recon.to_json()
    assert doc["calibration"]["provenance"] == "estimate" and doc["calibration"]["factor"] == pytest.approx(1.25)


def test_reconcile_window_legacy_percent_against_local_prompts() -> None:
    five = row_json(
        _row(V2, "5h", FIXED_NOW), FIXED_NOW, stale=False, level="pro", version="V2", start=FIXED_NOW - 2 * H
    )
    cal = Calibration()
    for percent, prompts in ((20, 120), (35, 210)):  # 15 points for 90 prompt-equivalents
        cal.observe(percent, prompts, FIXED_NOW - 2 * H)
    recon = reconcile_window(five, 300, cal, local_limit=600, margin=10)
    assert recon.unit == "percent" and recon.official_used is None
    assert recon.local_percent == 50 and recon.drift_points == 15 and recon.drift_direction == "local-above"
    assert recon.drift_warning and "50%" in recon.drift_warning
    assert recon.factor == pytest.approx(15 / 90)
    assert recon.estimate_left_local == pytest.approx(65 / (15 / 90))  # ≈ 390 prompts left at this mix
    assert recon.estimate_used == 50.0  # 300 × 1/6 percent, clamped to the pool
    stale = reconcile_window({**five, "stale": True}, 300, cal, local_limit=600)
    assert stale.stale and stale.drift_points is None and stale.drift_warning is None
    # Without a local pool a percent-only row gives no local percent (the units differ).
    assert reconcile_window(five, 300, None).local_percent is None


def test_reconcile_gauge_prompts_left_from_the_calibration() -> None:
    rows = [
        row_json(r, FIXED_NOW, stale=False, level="pro", version="V2") for r in parse_limits(V2["data"], FIXED_NOW).rows
    ]
    cal = Calibration()
    cal.observe(20, 120, FIXED_NOW - 2 * H)
    cal.observe(35, 210, FIXED_NOW - 2 * H)
    out = reconcile(rows, 30.0, calibration=cal)
    assert out["primary"] == "official" and out["drift"] == 5.0
    assert out["prompts_left_estimate"] == 390
    # A credits row is calibrated against local credits: that says nothing in prompts.
    credit_rows = [
        row_json(r, FIXED_NOW, stale=False, level="pro", version="V3")
        for r in parse_limits(V3_CREDIT["data"], FIXED_NOW).rows
    ]
    cal.observe(1000, 800, FIXED_NOW - 3 * H, 60)
    cal.observe(1438, 1150, FIXED_NOW - 3 * H, 60)
    assert reconcile(credit_rows, 30.0, calibration=cal)["prompts_left_estimate"] is None
