"""The ledger's two tiers: a day in full, eight days of calls and the month of MCP calls in minute buckets.

The memory bound: at most one bucket per minute of retained history (8 × 1,440 for calls, one per minute
of the month for MCP), one tally per (tool, model, kind, role, service) in each, and an 8-byte digest per
folded event for dedup; the detail tier holds only the last 24 hours.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from tests.support.ledger import DAY, NOW, TOOLS, engine_prune, heavy_week
from zai_dash.config import packaged_tariff
from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.domain.ledger import BUCKET_SECONDS, Ledger, TariffMeter


def test_eight_days_of_heavy_use_are_bounded_by_buckets_and_count_the_same() -> None:
    events = heavy_week()
    meter = TariffMeter(packaged_tariff(), weighted=False)
    full = Ledger(meter)
    full.add_all(events)  # no floors: everything one by one (the reference answer)
    led = Ledger(meter)
    led.add_all(events)
    engine_prune(led, NOW)
    size = led.size()
    assert size.detail_events <= 24 * 60 * (3 + 1) + 24  # one day in full
    # The other seven days: at most one bucket a minute of calls, and one per minute with an MCP call.
    assert size.buckets <= 7 * 1440 + 7 * 24 + 2
    assert size.tallies <= size.buckets * len(TOOLS) * 2  # calls + prompts (+ searches) per tool and model
    assert size.digests == len(events) - size.detail_events
    # Every window counts the same as the unfolded ledger (edges on whole minutes).
    for start in (NOW - 8 * DAY, NOW - 7 * DAY, NOW - timedelta(hours=30), NOW - timedelta(hours=5)):
        a, b = led.count(start, NOW), full.count(start, NOW)
        assert (a.prompts, a.calls, a.mcp_by_service, a.tokens) == (b.prompts, b.calls, b.mcp_by_service, b.tokens)
        assert abs(a.credits - b.credits) < 1e-6 and a.credits_by_model.keys() == b.credits_by_model.keys()
    # A re-read of old records (a resumed session copies them) is not counted twice.
    before = led.count(NOW - 8 * DAY, NOW)
    assert led.add_all(events[:1000]) == 0
    assert led.count(NOW - 8 * DAY, NOW).calls == before.calls


def test_the_bound_holds_as_days_pass_and_the_cache_round_trips() -> None:
    led = Ledger(TariffMeter(packaged_tariff(), weighted=False))
    led.add_all(heavy_week(days=3, per_minute=1))
    engine_prune(led, NOW)
    later = NOW + 6 * DAY  # the first day is now more than 8 days old: its buckets are gone
    engine_prune(led, later)
    oldest = min(m for m in led._calls.tallies)  # the bound is what this test is about
    assert oldest >= (later - 8 * DAY).timestamp() - BUCKET_SECONDS
    assert led.count(later - 8 * DAY, later).calls == 2 * 1440  # two of the three days are inside 8 days
    assert led.count(NOW - 31 * DAY, later).mcp_by_service["search"] == 3 * 24  # the month of MCP calls stays
    copy = Ledger(led.meter)
    copy.calls_floor, copy.mcp_floor, copy.detail_floor = led.calls_floor, led.mcp_floor, led.detail_floor
    copy.restore(json.loads(json.dumps(led.dump())))
    assert copy.size() == led.size()
    a, b = copy.count(NOW - 31 * DAY, later), led.count(NOW - 31 * DAY, later)
    assert (a.calls, a.prompts, a.mcp_by_service, round(a.credits, 6)) == (
        b.calls, b.prompts, b.mcp_by_service, round(b.credits, 6),
    )  # fmt: skip


def test_folded_prompts_keep_their_credits_for_the_median() -> None:
    led = Ledger(TariffMeter(packaged_tariff(), weighted=False))
    led.add_all(heavy_week(days=2, per_minute=1))
    engine_prune(led, NOW)
    median, n = led.prompt_cost_median(NOW, timedelta(days=7))
    assert n == 50  # the last 50 (the newest, still running, left out)
    # Each prompt covers its session's next 5 calls (one a minute until the next prompt).
    assert median > 0


def test_streamed_copies_folded_on_arrival_count_as_the_detail_tier_keeps_them() -> None:
    """A call's copies with growing tokens (a minute edge apart, the model named late) below the detail floor.

    Folded as they arrive they must count what the same copies count when they arrive in the detail tier
    and are folded later (a cold scan of an old file against a warm start from a cache of the day).
    """
    meter = TariffMeter(packaged_tariff(), weighted=True)
    t = NOW - 3 * DAY + timedelta(seconds=59)

    def call(key: str, ts: datetime, tokens: int, model: str | None = "glm-5.3") -> UsageEvent:
        return UsageEvent(
            EventKind.CALL, ts, "claude-code", key, "s1", model=model, tokens=tokens, input_tokens=tokens - 10,
            output_tokens=10,
        )  # fmt: skip

    copies = [
        call("a", t, 100),
        call("a", t + timedelta(seconds=2), 900),  # the next minute: moves there
        call("a", t + timedelta(seconds=1), 500),  # fewer tokens than the kept copy: ignored
        call("b", t, 50, model=None),
        call("b", t, 50),  # the model named late
        UsageEvent(EventKind.PROMPT, t, "claude-code", "p", "s1"),
        UsageEvent(EventKind.PROMPT, t, "claude-code", "p", "s1"),
    ]
    folded = Ledger(meter)
    engine_prune(folded, NOW)  # the floors first: everything below arrives folded
    assert [folded.add(e) for e in copies] == [True, True, False, True, True, True, False]
    later = Ledger(meter)
    later.add_all(copies)  # one by one, then folded
    engine_prune(later, NOW)
    assert len(folded) == len(later) == 0
    for start, end in ((NOW - 8 * DAY, NOW), (t.replace(second=0), t.replace(second=0) + timedelta(minutes=1))):
        a, b = folded.count(start, end), later.count(start, end)
        assert (a.calls, a.prompts, a.tokens, a.credits_by_model) == (b.calls, b.prompts, b.tokens, b.credits_by_model)
        assert a.credits == b.credits
    assert folded.count(NOW - 8 * DAY, NOW).tokens == 950


def _batch_call(key: str, ts: datetime, tokens: int, model: str | None = "glm-5.3") -> UsageEvent:
    return UsageEvent(
        EventKind.CALL, ts, "claude-code", key, "s1", model=model, tokens=tokens, input_tokens=tokens - 10,
        output_tokens=10,
    )  # fmt: skip


def _same_counts(a: Ledger, b: Ledger, start: datetime, end: datetime) -> None:
    x, y = a.count(start, end), b.count(start, end)
    assert (x.calls, x.prompts, x.tokens, x.credits_by_model) == (y.calls, y.prompts, y.tokens, y.credits_by_model)
    assert x.credits == y.credits


@pytest.mark.parametrize("folded", [False, True], ids=["detail-tier", "folded-on-arrival"])
def test_a_batch_adds_each_copy_once_and_counts_as_adding_them_one_by_one(folded: bool) -> None:
    """`add_batch` (the engine's path) keeps each message's winning copy by the same rule as `add`."""
    meter = TariffMeter(packaged_tariff(), weighted=True)
    t = NOW - (3 * DAY if folded else timedelta(hours=2)) + timedelta(seconds=59)
    batch = [
        UsageEvent(EventKind.PROMPT, t - timedelta(seconds=5), "claude-code", "p", "s1"),
        _batch_call("a", t, 100),
        _batch_call("b", t, 50, model=None),
        _batch_call("a", t + timedelta(seconds=2), 900),  # the next minute: the winner moves there
        _batch_call("b", t, 50),  # the model named late
        _batch_call("a", t + timedelta(seconds=1), 500),  # fewer tokens than the winner: loses
        UsageEvent(EventKind.PROMPT, t - timedelta(seconds=5), "claude-code", "p", "s1"),
    ]
    one_by_one, batched = Ledger(meter), Ledger(meter)
    for led in (one_by_one, batched):
        engine_prune(led, NOW)
    one_by_one.add_all(batch)
    assert batched.add_batch(batch) is True
    assert batched.add_batch(batch) is False  # read again: nothing new
    for start, end in ((NOW - 8 * DAY, NOW), (t.replace(second=0) + timedelta(minutes=1), NOW)):
        _same_counts(batched, one_by_one, start, end)
    assert batched.count(NOW - 8 * DAY, NOW).tokens == 950
    assert batched.activity("claude-code", NOW) == one_by_one.activity("claude-code", NOW)
    assert batched.prompt_cost_median(NOW, 7 * DAY) == one_by_one.prompt_cost_median(NOW, 7 * DAY)


def test_a_message_streamed_across_the_detail_floor_counts_once() -> None:
    """Copies 3 s apart on either side of the detail floor (a cold scan of the day before, seen in the 1 GB
    bench set): one by one, the first was folded and the second entered the detail tier, so its credits
    counted twice; a batch keeps the winner only."""
    meter = TariffMeter(packaged_tariff(), weighted=True)
    floor = NOW - DAY
    copies = [
        _batch_call("m", floor - timedelta(seconds=3), 31_918),
        _batch_call("m", floor + timedelta(seconds=1), 32_142),
    ]
    led = Ledger(meter)
    engine_prune(led, NOW)
    led.add_batch(copies)
    alone = Ledger(meter)
    engine_prune(alone, NOW)
    alone.add(copies[1])
    week = led.count(NOW - 8 * DAY, NOW)
    assert (week.calls, week.tokens) == (1, 32_142)
    assert week.credits == alone.count(NOW - 8 * DAY, NOW).credits


def test_a_window_ending_now_takes_a_busy_minute_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The minute a window ending now cuts holds a busy tool's last minute: its sum, not a walk of its events.

    Counted by the events visited (no timing): none when every event of the cut minute lies on one side of
    the edge, only the cut minute's when the edge falls among them; the counts are the same either way.
    """
    import zai_dash.domain.aggregates as aggregates

    minute = NOW.replace(second=0)
    events = [
        UsageEvent(EventKind.CALL, minute + timedelta(milliseconds=50 * i), "claude-code", f"c{i}", "s1",
                   model="glm-5.3", tokens=100, input_tokens=90, output_tokens=10)
        for i in range(1000)  # 50 s of 20 calls a second
    ]  # fmt: skip
    led = Ledger(TariffMeter(packaged_tariff(), weighted=False))
    led.add_all(events)
    visited = []
    real = aggregates.tally_key
    monkeypatch.setattr(aggregates, "tally_key", lambda e: visited.append(e) or real(e))
    now = minute + timedelta(seconds=55)
    assert led.count(now - timedelta(hours=5), now).calls == 1000
    assert visited == []
    assert led.count(minute + timedelta(seconds=30), now).calls == 400
    assert len(visited) == 400  # an edge among the minute's events: that minute is walked, once
    visited.clear()
    assert led.count(now - 7 * DAY, now + timedelta(microseconds=1)).calls == 1000
    assert led.count(now, now + DAY).calls == 0
    assert visited == []


def test_a_packed_column_written_in_chunks_is_the_column_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache streams a long column (the folded digests) in base64 chunks; joined they decode to it."""
    from array import array

    from zai_dash.domain.ledger import Packed, _pack, _unpack

    parts = [array("q", range(i, i + 7 * i)) for i in range(1, 40)]
    monkeypatch.setattr(Packed, "CHUNK", 30)
    chunks = list(Packed(lambda: parts).chunks())
    assert len(chunks) > 10
    whole = array("q")
    for part in parts:
        whole.extend(part)
    assert b"".join(chunks).decode() == _pack(whole)
    assert _unpack(Packed(lambda: parts).text(), "q") == whole
    assert Packed(lambda: array("d")).text() == ""
