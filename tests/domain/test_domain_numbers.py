"""Prompt-equivalents, forecast, month window, ledger dedup."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from zai_dash.domain.events import CallRole, EventKind, McpService, UsageEvent
from zai_dash.domain.forecast import forecast, prompt_equivalents
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.month import month_window

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("prompts", "calls", "vision", "cpp", "expected"),
    [
        (10, 100, 0, 15, 10),  # prompts dominate
        (2, 100, 0, 15, 7),  # ceil(100/15) = 7
        (0, 1, 0, 15, 1),  # one call is one equivalent
        (3, 45, 2, 15, 5),  # vision MCP calls share the pool
        (0, 0, 0, 15, 0),
        (1, 40, 0, 20, 2),  # custom calls-per-prompt
    ],
)
def test_prompt_equivalents(prompts: int, calls: int, vision: int, cpp: int, expected: int) -> None:
    assert prompt_equivalents(prompts, calls, vision, cpp) == expected


def test_forecast_exhaustion_before_reset() -> None:
    start = T0
    now = T0 + timedelta(hours=1)
    end = T0 + timedelta(hours=5)
    # 500 used; 100 in the last 30 min → 200/h; 100 left → 30 min → exhausted at now+30m.
    f = forecast(500, 100, 600, start, end, now)
    assert f.exhausted_at == now + timedelta(minutes=30)
    assert f.minutes_before_reset == pytest.approx(210)
    assert f.left_at_reset is None
    assert f.safe_pace == pytest.approx(100 / 4)
    assert f.rate_cycle == pytest.approx(500)


def test_forecast_on_pace() -> None:
    now = T0 + timedelta(hours=2)
    f = forecast(100, 10, 600, T0, T0 + timedelta(hours=5), now)
    assert f.exhausted_at is None
    assert f.rate_recent == pytest.approx(20)
    assert f.left_at_reset == pytest.approx(500 - 20 * 3)


def test_forecast_idle_and_exhausted() -> None:
    now = T0 + timedelta(hours=2)
    idle = forecast(100, 0, 600, T0, T0 + timedelta(hours=5), now)
    assert idle.exhausted_at is None and idle.left_at_reset == pytest.approx(500)
    done = forecast(600, 50, 600, T0, T0 + timedelta(hours=5), now)
    assert done.left_at_reset == 0 and done.exhausted_at is None


def test_month_window_default_first_of_month() -> None:
    tz = ZoneInfo("Europe/Berlin")
    start, end = month_window(datetime(2026, 11, 26, 12, tzinfo=timezone.utc), 1, tz)
    assert start == datetime(2026, 11, 1, tzinfo=tz)
    assert end == datetime(2026, 12, 1, tzinfo=tz)


def test_month_window_renewal_day_and_clamping() -> None:
    tz = ZoneInfo("UTC")
    start, end = month_window(datetime(2026, 3, 10, tzinfo=timezone.utc), 31, tz)
    assert start == datetime(2026, 2, 28, tzinfo=tz)  # February has no 31st
    assert end == datetime(2026, 3, 31, tzinfo=tz)
    start, end = month_window(datetime(2026, 1, 14, tzinfo=timezone.utc), 15, tz)
    assert start == datetime(2025, 12, 15, tzinfo=tz)


def test_month_window_is_dst_safe() -> None:
    tz = ZoneInfo("Europe/Berlin")
    # Window 15 Mar → 15 Apr spans the spring-forward change (29 Mar): local midnights, 1 h shorter in UTC.
    start, end = month_window(datetime(2026, 4, 1, 12, tzinfo=timezone.utc), 15, tz)
    assert start.astimezone(tz).hour == 0 and end.astimezone(tz).hour == 0
    assert (end - start) == timedelta(days=31) - timedelta(hours=1)
    # Just before local midnight of the renewal day (which is 22:00 UTC in summer) → previous window.
    before = datetime(2026, 4, 14, 21, 59, tzinfo=timezone.utc)
    assert month_window(before, 15, tz)[1] == datetime(2026, 4, 15, tzinfo=tz)
    after = datetime(2026, 4, 14, 22, 0, tzinfo=timezone.utc)
    assert month_window(after, 15, tz)[0] == datetime(2026, 4, 15, tzinfo=tz)


def _call(key: str, ts: datetime, tokens: int, model: str | None = "glm-4.6") -> UsageEvent:
    return UsageEvent(EventKind.CALL, ts, "claude-code", key, model=model, tokens=tokens)


def test_ledger_dedups_and_keeps_largest_call() -> None:
    led = Ledger()
    assert led.add(_call("m1", T0, 100))
    assert led.add(_call("m1", T0, 150))  # a later streamed line with more output
    assert not led.add(_call("m1", T0, 120))
    assert len(led) == 1
    assert led.count(T0, T0 + timedelta(minutes=1)).tokens == 150
    # Same key in another tool is another event.
    led.add(UsageEvent(EventKind.CALL, T0, "opencode", "m1", tokens=5))
    assert led.count(T0, T0 + timedelta(minutes=1)).calls == 2


def test_ledger_counts_by_role_and_service() -> None:
    led = Ledger()
    led.add(UsageEvent(EventKind.PROMPT, T0, "claude-code", "p1"))
    led.add(UsageEvent(EventKind.CALL, T0, "claude-code", "c1", role=CallRole.SUBAGENT))
    led.add(UsageEvent(EventKind.MCP, T0, "claude-code", "t1", service=McpService.SEARCH))
    led.add(UsageEvent(EventKind.MCP, T0, "claude-code", "t1", service=McpService.SEARCH))
    c = led.count(T0, T0 + timedelta(seconds=1))
    assert (c.prompts, c.calls, c.calls_by_role["subagent"], c.mcp_by_service["search"]) == (1, 1, 1, 1)


def test_ledger_prune_keeps_month_mcp_and_activity() -> None:
    led = Ledger()
    old = T0 - timedelta(days=3)
    led.add(_call("old", old, 1))
    led.add(UsageEvent(EventKind.MCP, old, "claude-code", "s", service=McpService.SEARCH))
    led.prune(calls_before=T0 - timedelta(days=1), mcp_before=T0 - timedelta(days=20))
    assert led.count(old, T0).calls == 0
    assert led.count(old, T0).mcp_by_service["search"] == 1
    assert led.activity("claude-code", T0).last_activity == old
    assert led.activity("claude-code", T0).model == "glm-4.6"


def test_ledger_activity_as_of_earlier_instant() -> None:
    led = Ledger()
    led.add(_call("a", T0, 1, "glm-4.6"))
    led.add(_call("b", T0 + timedelta(hours=1), 1, "glm-4.5-air"))
    assert led.activity("claude-code", T0 + timedelta(minutes=5)).model == "glm-4.6"
    assert led.activity("claude-code", T0 + timedelta(hours=2)).model == "glm-4.5-air"


def test_ledger_floor_drops_old_events_but_notes_activity() -> None:
    led = Ledger()
    led.calls_floor = T0
    led.mcp_floor = T0 - timedelta(days=10)
    assert not led.add(_call("old", T0 - timedelta(hours=1), 5))
    assert led.add(UsageEvent(EventKind.MCP, T0 - timedelta(days=2), "claude-code", "s", service=McpService.SEARCH))
    assert len(led) == 1
    assert led.activity("claude-code", T0).model == "glm-4.6"
