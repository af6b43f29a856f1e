"""The timeline's series (`domain/series.py`): the 5-hour window on one time axis, in the pool's unit."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from tests.support.series import credit_snapshot
from tests.support.ui import NOW, at_percent, make_snapshot, not_started_snapshot
from tests.support.windows import TARIFF
from zai_dash.domain.series import pace_verdict, usage_series


def test_a_credit_plan_charts_credits_per_bucket_and_shades_every_bucket_touching_peak_hours() -> None:
    snap = credit_snapshot()
    s = usage_series(snap, TARIFF.is_peak)
    assert s is not None
    five = snap.window("5h")
    assert five is not None
    assert (s.unit, s.limit, s.bucket_minutes) == ("credits", five.limit, 10)
    assert s.per_bucket == snap.timeline.credits
    # A call costs 7.22 credits at peak and half off-peak; the bucket 09:55–10:05 straddles 10:00 and holds a
    # peak-priced call, so it is shaded too.
    assert s.per_bucket[:12] == (7.22,) * 12 and s.per_bucket[12:] == (3.61,) * 6
    assert s.buckets == 30  # the whole 5 hours: bars have slots up to the reset
    assert s.peak == (True,) * 12 + (False,) * 18
    assert s.used == pytest.approx(five.used)


def test_a_prompt_plan_charts_prompt_equivalents_and_no_rule_shades_nothing() -> None:
    snap = make_snapshot(prompts=120, calls=900)
    s = usage_series(snap)
    assert s is not None
    assert s.unit == "prompts"
    assert s.per_bucket == tuple(float(v) for v in snap.timeline.equivalents)
    assert s.limit == snap.prompts.limit
    assert not any(s.peak)


def test_buckets_are_never_below_zero() -> None:
    snap = credit_snapshot()
    credits = (5.0, -3.0, 0.0, -0.5, 2.0)
    snap = replace(snap, timeline=replace(snap.timeline, credits=credits))
    s = usage_series(snap)
    assert s is not None
    assert s.per_bucket == (5.0, 0.0, 0.0, 0.0, 2.0)
    assert min(v for _, v in s.cumulative) >= 0


def test_the_running_total_ends_now_at_what_was_used() -> None:
    s = usage_series(make_snapshot(prompts=200, calls=0, opened_ago=timedelta(hours=1, minutes=45)))
    assert s is not None
    assert s.cumulative[0] == (0.0, 0.0)
    assert s.cumulative[-1] == (pytest.approx(105.0), s.used)
    assert s.now_minute == pytest.approx(105.0)
    minutes = [m for m, _ in s.cumulative]
    assert minutes == sorted(minutes) and max(minutes) <= s.now_minute


def test_on_pace_the_projection_runs_to_the_reset_below_the_pool() -> None:
    snap = make_snapshot(prompts=60, calls=0, opened_ago=timedelta(hours=2))
    s = usage_series(snap)
    assert s is not None and snap.forecast is not None
    assert s.verdict == pace_verdict(snap) == "ok"
    (m0, v0), (m1, v1) = s.projection
    assert (m0, v0) == (pytest.approx(120.0), s.used)
    assert m1 == pytest.approx(s.total_minutes) and v1 < s.limit
    assert v1 == pytest.approx(s.used + snap.forecast.rate_recent * (m1 - m0) / 60)


def test_running_out_the_projection_stops_where_the_pool_does() -> None:
    snap = at_percent(93)
    s = usage_series(snap)
    assert s is not None and snap.forecast is not None and snap.forecast.exhausted_at is not None
    assert s.verdict == pace_verdict(snap) == "critical"
    (m1, v1) = s.projection[-1]
    assert v1 == s.limit
    assert m1 == pytest.approx((snap.forecast.exhausted_at - s.start).total_seconds() / 60)
    assert m1 < s.total_minutes


def test_used_up_is_critical_without_a_projection_to_draw() -> None:
    snap = at_percent(100, limit_hit_reset=NOW + timedelta(minutes=40))
    assert pace_verdict(snap) == "critical"


def test_no_open_window_no_series_and_no_verdict() -> None:
    snap = not_started_snapshot()
    assert usage_series(snap, TARIFF.is_peak) is None
    assert pace_verdict(snap) == "none"
