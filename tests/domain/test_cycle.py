"""Cycle anchoring: first request after the previous window, limit-hit reset, official reset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from zai_dash.domain.cycle import Anchor, resolve_cycle
from zai_dash.domain.events import LimitHit

H = timedelta(hours=1)
FIVE = timedelta(hours=5)
T0 = datetime(2026, 11, 26, 7, 13, 27, 450000, tzinfo=timezone.utc)


def test_window_opens_at_first_request_not_on_a_clock_grid() -> None:
    state = resolve_cycle([T0, T0 + H], [], T0 + 2 * H, FIVE)
    assert state.current is not None
    assert state.current.start == T0  # 07:13:27.45, not 07:00
    assert state.current.end == T0 + FIVE
    assert state.current.anchor is Anchor.LOCAL


def test_requests_inside_window_do_not_move_it() -> None:
    times = [T0 + timedelta(minutes=m) for m in range(0, 299, 7)]
    state = resolve_cycle(times, [], T0 + 4 * H, FIVE)
    assert state.current is not None and state.current.start == T0


def test_several_cycles_in_a_day_chain() -> None:
    # Continuous work: each window opens at the first request at or after the previous end.
    times = [T0 + timedelta(minutes=m) for m in range(0, 16 * 60, 10)]
    now = T0 + timedelta(hours=15, minutes=55)
    state = resolve_cycle(times, [], now, FIVE)
    assert state.current is not None
    # windows: [T0, T0+5h), [T0+5h, T0+10h), [T0+10h, T0+15h), [T0+15h, ...)
    assert state.current.start == T0 + 15 * H
    # Chaining is by request, not by grid: shift the requests after the first window by 3 min.
    times2 = [T0] + [T0 + FIVE + timedelta(minutes=3) + timedelta(minutes=m) for m in range(0, 600, 10)]
    state2 = resolve_cycle(times2, [], T0 + 11 * H, FIVE)
    assert state2.current is not None
    assert state2.current.start == T0 + FIVE + timedelta(minutes=3) + FIVE + timedelta(minutes=0)


def test_gap_longer_than_cycle_starts_fresh_window_at_next_request() -> None:
    late = T0 + 7 * H + timedelta(minutes=42, seconds=5)
    state = resolve_cycle([T0, T0 + H, late], [], late + H, FIVE)
    assert state.current is not None and state.current.start == late


def test_no_request_since_window_ended_means_not_started() -> None:
    state = resolve_cycle([T0, T0 + H], [], T0 + 6 * H, FIVE)
    assert state.current is None
    assert state.previous_end == T0 + FIVE


def test_no_requests_at_all() -> None:
    state = resolve_cycle([], [], T0, FIVE)
    assert state.current is None and state.previous_end is None


def test_requests_after_now_are_ignored() -> None:
    state = resolve_cycle([T0, T0 + 6 * H], [], T0 + H, FIVE)
    assert state.current is not None and state.current.start == T0


def test_limit_hit_reset_time_wins_over_local_anchor() -> None:
    reset = T0 + 3 * H + timedelta(minutes=20)
    hit = LimitHit(ts=T0 + 2 * H, tool="claude-code", code=1308, reset_at=reset)
    state = resolve_cycle(
        [T0 - 30 * timedelta(minutes=1), T0, T0 + 2 * H], [hit], T0 + 2 * H + timedelta(minutes=1), FIVE
    )
    assert state.current is not None
    assert state.current.end == reset
    assert state.current.start == reset - FIVE
    assert state.current.anchor is Anchor.LIMIT_HIT
    assert state.current.blocked_until == reset


def test_limit_hit_window_chains_into_next() -> None:
    reset = T0 + 3 * H
    hit = LimitHit(ts=T0 + 2 * H, tool="claude-code", code=1308, reset_at=reset)
    after = reset + timedelta(minutes=9)
    state = resolve_cycle([T0, T0 + 2 * H, after], [hit], after + H, FIVE)
    assert state.current is not None and state.current.start == after
    assert state.current.blocked_until is None


def test_a_hit_keeps_the_prompt_logged_just_before_its_rounded_reset() -> None:
    # Z.ai names the reset rounded down to the second; the client logged the window's first prompt 0.14 s
    # before "reset - 5 h" (Kilo CLI, conformance). That prompt opened the window and stays in it.
    first = T0
    reset = (T0 + FIVE).replace(microsecond=0) + timedelta(seconds=1)  # 0.55 s after first + 5 h
    hit = LimitHit(ts=T0 + H, tool="kilo", code=1308, reset_at=reset)
    state = resolve_cycle([first, T0 + timedelta(minutes=30)], [hit], T0 + H + timedelta(minutes=1), FIVE)
    assert state.current is not None
    assert state.current.start == first
    assert state.current.end == reset
    assert state.current.anchor is Anchor.LIMIT_HIT


def test_a_hit_naming_a_window_well_after_the_first_prompt_still_moves_it() -> None:
    # Beyond the rounding slack the hit's reset rules: a window that started 10 minutes "early" is moved.
    reset = T0 + FIVE + timedelta(minutes=10)
    hit = LimitHit(ts=T0 + H, tool="kilo", code=1308, reset_at=reset)
    state = resolve_cycle([T0], [hit], T0 + H + timedelta(minutes=1), FIVE)
    assert state.current is not None
    assert state.current.start == reset - FIVE


def test_official_reset_wins_over_both() -> None:
    official = T0 + 4 * H + timedelta(minutes=1)
    hit = LimitHit(ts=T0 + H, tool="claude-code", code=1308, reset_at=T0 + 3 * H)
    state = resolve_cycle([T0], [hit], T0 + 2 * H, FIVE, official_reset=official)
    assert state.current is not None
    assert state.current.anchor is Anchor.OFFICIAL
    assert state.current.end == official


def test_stale_official_reset_is_ignored() -> None:
    state = resolve_cycle([T0], [], T0 + H, FIVE, official_reset=T0 - H)
    assert state.current is not None and state.current.anchor is Anchor.LOCAL


def test_seconds_left_is_from_the_deadline() -> None:
    state = resolve_cycle([T0], [], T0 + H, FIVE)
    assert state.current is not None
    assert state.current.seconds_left(T0 + H) == 4 * 3600
    assert state.current.seconds_left(T0 + 6 * H) == 0
