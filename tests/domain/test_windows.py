"""Known answers for the windows, the headline and credits: a real Ledger priced by the packaged tariff,
through the one snapshot builder, at fixed instants (no clock reads)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.cli import SESSION, _assistant, _write, run_cli
from tests.support.windows import (
    FRI_OFF,
    NOW,
    SAT,
    UTC,
    WEEK_END,
    WEEKLY_RESET,
    call,
    ledger,
    snapshot,
    week_of_credits,
)
from zai_dash.commands.base import EXIT_EXHAUSTED, EXIT_OK
from zai_dash.commands.status import status_exit, status_fields
from zai_dash.domain.events import EventKind, LimitHit, UsageEvent
from zai_dash.domain.snapshot import Snapshot
from zai_dash.domain.windows import WindowRow

WEEK_START = datetime(2026, 11, 24, 7, 30, tzinfo=UTC)

# One GLM-5.3 call: 10,000 input tokens of which 4,000 cached, 1,000 output.
# Peak: (6,000 × 6.9 + 4,000 × 1.7 + 1,000 × 24) / 10,000 = 7.22 credits; off-peak half: 3.61.
PEAK_CALL, OFF_CALL = 7.22, 3.61


def prompt(ts: datetime, key: str, session: str = "s1") -> UsageEvent:
    return UsageEvent(EventKind.PROMPT, ts, "claude-code", key, session=session)


def row(snap: Snapshot, wid: str) -> WindowRow:
    found = snap.window(wid)
    assert found is not None, f"no {wid} window"
    return found


def test_credits_across_a_peak_boundary_and_a_weekend_in_the_5h_and_weekly_windows() -> None:
    snap = snapshot(ledger(week_of_credits(), fold_at=NOW), NOW, weekly_reset=WEEKLY_RESET)
    five, weekly = row(snap, "5h"), row(snap, "weekly")
    # The 5-hour window opened at Saturday's call (Friday's ended at 14:55).
    assert (five.start, five.end, five.anchor, five.unit) == (SAT, SAT + timedelta(hours=5), "first-request", "credits")
    assert five.used == pytest.approx(OFF_CALL + 0.75)
    assert five.estimated == pytest.approx(0.75) and five.limit == 12_000
    assert five.left == pytest.approx(12_000 - OFF_CALL - 0.75)
    # The week: Friday's peak and off-peak calls and the search (1.2, flat), Saturday's call and vision.
    assert (weekly.start, weekly.end, weekly.anchor, weekly.source) == (WEEK_START, WEEK_END, "subscription", "local")
    assert weekly.used == pytest.approx(PEAK_CALL + OFF_CALL + 1.2 + OFF_CALL + 0.75)
    assert weekly.seconds_left == (WEEK_END - NOW).total_seconds()
    assert snap.credits.previous_week == pytest.approx(PEAK_CALL)
    assert snap.credits.by_model_week == {"glm-5.3": pytest.approx(PEAK_CALL + 2 * OFF_CALL)}
    assert snap.credits.mcp_week == pytest.approx(1.2 + 0.75) and snap.credits.peak is False
    tool = next(t for t in snap.tools if t.tool == "claude-code")
    assert tool.credits == pytest.approx(OFF_CALL + 0.75) and tool.credits_by_model == {"glm-5.3": OFF_CALL}
    assert snap.headline is not None and snap.headline.window == "5h" and snap.headline.level == "ok"


def test_the_weekly_window_chains_from_weekly_reset_before_and_after_it() -> None:
    led = ledger(week_of_credits())
    for anchor in (WEEKLY_RESET, datetime(2027, 3, 2, 15, 30, tzinfo=timezone(timedelta(hours=8)))):
        weekly = row(snapshot(led, NOW, weekly_reset=anchor), "weekly")
        assert (weekly.start, weekly.end, weekly.anchor, weekly.state) == (WEEK_START, WEEK_END, "subscription", "open")
    # At the reset instant a new week starts with nothing in it.
    fresh = row(snapshot(led, WEEK_END, weekly_reset=WEEKLY_RESET), "weekly")
    assert (fresh.start, fresh.used) == (WEEK_END, 0)


def test_unknown_weekly_anchor_says_so_and_shows_the_last_seven_days() -> None:
    snap = snapshot(ledger(week_of_credits(), fold_at=NOW), NOW)
    weekly = row(snap, "weekly")
    assert (weekly.anchor, weekly.state, weekly.end, weekly.seconds_left) == ("unknown", "rolling", None, None)
    assert weekly.start == NOW - timedelta(days=7)
    # The last 7 days reach back to Friday 2026-11-21 09:00: the Tuesday call is in them.
    assert weekly.used == pytest.approx(2 * PEAK_CALL + 2 * OFF_CALL + 1.2 + 0.75)
    doc = json.loads(json.dumps(snap.to_json(UTC)))
    assert doc["windows"][1]["anchor"] == "unknown" and doc["windows"][1]["end"] is None


def test_a_1310_limit_hit_blocks_until_the_weekly_reset() -> None:
    hit_at = FRI_OFF + timedelta(minutes=2)
    led = ledger(week_of_credits())
    led.add_limit_hit(LimitHit(hit_at, "claude-code", 1310, WEEK_END))
    snap = snapshot(led, NOW)
    weekly = row(snap, "weekly")
    # The hit names the reset: it anchors the week (no weekly_reset configured) and blocks until then.
    assert (weekly.anchor, weekly.start, weekly.end) == ("limit-hit", WEEK_START, WEEK_END)
    assert (weekly.blocked_until, weekly.left, weekly.level) == (WEEK_END, 0, "exhausted")
    head = snap.headline
    assert head is not None and (head.window, head.level, head.blocked_until) == ("weekly", "exhausted", WEEK_END)
    doc = json.loads(json.dumps(snap.to_json(UTC)))
    assert status_exit(doc) == EXIT_EXHAUSTED
    # A 1310 that names no reset blocks until the configured week's end.
    led2 = ledger(week_of_credits())
    led2.add_limit_hit(LimitHit(hit_at, "claude-code", 1310, None))
    weekly2 = row(snapshot(led2, NOW, weekly_reset=WEEKLY_RESET), "weekly")
    assert (weekly2.blocked_until, weekly2.level) == (WEEK_END, "exhausted")
    # With the week unknown too, it blocks until a later request gets through (Saturday's did).
    assert row(snapshot(led2, NOW), "weekly").level == "ok"
    assert row(snapshot(led2, hit_at + timedelta(minutes=1)), "weekly").level == "exhausted"


def test_official_weekly_row_at_100_percent_makes_status_exhausted_b1() -> None:
    """B1: the weekly rule lived in a widget, so `status` said ok while the dashboard said exhausted."""
    official = [
        {"window": "5h", "unit": "credits", "used": 402.0, "limit": 12_000.0, "percent": 3.35, "stale": False,
         "next_reset": NOW + timedelta(hours=2), "start": NOW - timedelta(hours=3), "type": "CREDIT_LIMIT"},
        {"window": "weekly", "unit": "credits", "used": 60_000.0, "limit": 60_000.0, "percent": 100.0,
         "stale": False, "next_reset": WEEK_END, "start": WEEK_START, "type": "CREDIT_LIMIT"},
    ]  # fmt: skip
    snap = snapshot(ledger(week_of_credits()), NOW, official=official)
    five, weekly = row(snap, "5h"), row(snap, "weekly")
    assert (five.source, five.used, five.anchor) == ("official", 402, "official")
    assert (weekly.source, weekly.used, weekly.left, weekly.level) == ("official", 60_000, 0, "exhausted")
    assert weekly.local_used == pytest.approx(PEAK_CALL + 2 * OFF_CALL + 1.2 + 0.75)
    doc = json.loads(json.dumps(snap.to_json(UTC)))
    assert doc["headline"]["window"] == "weekly" and doc["headline"]["level"] == "exhausted"
    fields = status_fields(doc, NOW, UTC)
    assert fields["binding"] == "60k/60k cr wk" and fields["week"] == "100%" and fields["level"] == "exhausted"
    assert status_exit(doc) == EXIT_EXHAUSTED
    # A plan set up as legacy V1 has no weekly pool, but the official row names one: it still counts.
    v1 = snapshot(ledger(week_of_credits()), NOW, billing="legacy-v1", official=[official[1]])
    assert row(v1, "weekly").level == "exhausted" and status_exit(json.loads(json.dumps(v1.to_json(UTC)))) == 11
    assert v1.billing.detected == "credits" and v1.billing.warning and "billing" in v1.billing.warning


def test_prompts_left_estimate_is_the_median_of_recent_prompts_and_absent_until_a_handful() -> None:
    start = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)  # 10:00 UTC+8: off-peak, so each call costs 3.61
    events: list[UsageEvent] = []
    for i in range(7):
        t = start + timedelta(minutes=10 * i)
        events.append(prompt(t, f"p{i}"))
        events += [call(t + timedelta(seconds=10 + j), f"c{i}-{j}") for j in range(i + 1)]  # prompt i: i+1 calls
    at = start + timedelta(hours=2)
    # Prompts 0…5 are done (the latest may still be running): 1…6 calls, median 3.5 calls = 12.635 credits.
    snap = snapshot(ledger(events), at)
    head = snap.headline
    assert snap.credits.prompts_sampled == 6
    assert snap.credits.median_per_prompt == pytest.approx(3.5 * OFF_CALL)
    assert head is not None and head.prompts_left_source == "estimate"
    assert head.prompts_left == int(row(snap, "5h").left // (3.5 * OFF_CALL))
    few = snapshot(ledger(events[: 1 + 2 + 3 + 4 + 4]), at)  # four prompts seen, three done
    assert few.headline is not None and few.headline.prompts_left is None
    assert status_fields(json.loads(json.dumps(few.to_json(UTC))), at, UTC)["prompts_left"] == "—"
    assert status_fields(json.loads(json.dumps(snap.to_json(UTC))), at, UTC)["prompts_left"] == f"≈{head.prompts_left}"


def test_legacy_v2_counts_prompts_with_model_rates_in_5h_and_weekly() -> None:
    # Thursday 2026-11-26: 07:00 UTC is 15:00 UTC+8 (peak), 11:00 UTC is 19:00 (off-peak).
    peak, off = datetime(2026, 11, 26, 7, 0, tzinfo=UTC), datetime(2026, 11, 26, 11, 0, tzinfo=UTC)
    events = [call(peak - timedelta(seconds=1), "m0")]  # the tool's model is GLM-5.3
    events += [prompt(peak, "p1"), prompt(peak + timedelta(minutes=5), "p2"), prompt(off, "p3")]
    events += [call(peak + timedelta(seconds=i), f"c{i}") for i in range(1, 30)]  # 30 calls at peak: ×3
    snap = snapshot(ledger(events, weighted=True), off + timedelta(minutes=1), billing="legacy-v2")
    five, weekly = row(snap, "5h"), row(snap, "weekly")
    assert snap.window("monthly-mcp") is not None
    # GLM-5.3: 3× at peak, 1× off-peak. 5h: max(3 + 3 + 1, ceil(30 × 3 / 15)) = 7 of 400.
    assert (five.unit, five.used, five.limit, five.left) == ("prompts", 7, 400, 393)
    assert (weekly.unit, weekly.used, weekly.limit, weekly.anchor) == ("prompts", 7, 2000, "unknown")
    head = snap.headline
    assert head is not None and (head.prompts_left, head.prompts_left_source) == (393, "local")


def test_headline_is_the_least_left_and_its_level_the_worst_window() -> None:
    official = [
        {"window": "5h", "unit": "credits", "used": 11_000.0, "limit": 12_000.0, "percent": 91.7, "stale": False,
         "next_reset": NOW + timedelta(hours=1), "type": "CREDIT_LIMIT"},
        {"window": "weekly", "unit": "credits", "used": 30_000.0, "limit": 60_000.0, "percent": 50.0,
         "stale": False, "next_reset": WEEK_END, "type": "CREDIT_LIMIT"},
    ]  # fmt: skip
    snap = snapshot(ledger(week_of_credits()), NOW, official=official)
    head = snap.headline
    assert head is not None and (head.window, head.level, head.left) == ("5h", "critical", 1_000)
    assert head.weekly_percent == 50.0
    doc = json.loads(json.dumps(snap.to_json(UTC)))
    assert status_fields(doc, NOW, UTC)["binding"] == "11k/12k cr" and status_exit(doc) == 10
    quiet = snapshot(ledger([]), NOW)
    assert quiet.headline is not None and quiet.headline.level == "ok"
    assert status_exit(json.loads(json.dumps(quiet.to_json(UTC)))) in (EXIT_OK, 20)


def test_report_document_schema_2_keeps_the_old_keys_and_adds_the_new() -> None:
    doc = json.loads(json.dumps(snapshot(ledger(week_of_credits()), NOW, weekly_reset=WEEKLY_RESET).to_json(UTC)))
    assert doc["schema"] == 2
    for key in ("at", "plan", "cycle", "prompts", "searches", "forecast", "timeline", "tools", "sources", "skipped"):
        assert key in doc
    assert {"windows", "headline", "credits", "billing", "tariff"} <= set(doc)
    assert [w["id"] for w in doc["windows"]] == ["5h", "weekly"]
    assert set(doc["windows"][0]) >= {
        "id", "unit", "used", "limit", "left", "percent", "start", "end", "seconds_left", "anchor", "source", "level",
    }  # fmt: skip
    assert doc["billing"]["generation"] == "credits" and doc["forecast"]["unit"] == "credits"


def test_report_at_an_old_instant_prices_with_the_rates_valid_then(home: Path, tmp_path: Path) -> None:
    """GLM-4.7 was billed as itself (4.6 / 1.2 / 16) until routing sent it to GLM-5.3-Flash on 2026-09-01."""
    proj = home / ".claude" / "projects" / "-home-u-proj"
    records = []
    for day in ("2026-08-14", "2026-11-27"):  # two Fridays, 15:00 UTC+8: peak
        rec = _assistant(f"{day}T07:00:00.000Z", f"msg_{day}", {"type": "text", "text": "x"}, model="glm-4.7")
        rec["message"]["usage"] = {"input_tokens": 10_000, "cache_read_input_tokens": 0, "output_tokens": 1_000}
        records.append(rec)
    _write(proj / f"{SESSION}.jsonl", records)
    expected = {"2026-08-14": (10_000 * 4.6 + 1_000 * 16) / 10_000, "2026-11-27": (10_000 * 2.3 + 1_000 * 8) / 10_000}
    for day, credits in expected.items():
        out = run_cli(home, "report", "--json", "--at", f"{day}T08:00:00+00:00")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        five = doc["windows"][0]
        assert (five["id"], five["unit"]) == ("5h", "credits")
        assert five["used"] == pytest.approx(credits), day
        tool = next(t for t in doc["tools"] if t["tool"] == "claude-code")
        assert tool["credits_by_model"] == {"glm-4.7": pytest.approx(credits)}
