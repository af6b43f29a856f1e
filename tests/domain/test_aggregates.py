"""The ledger's running sums answer exactly what a walk over every event and bucket answers.

A reference ledger keeps the walk the ledger used before the sums (every query over every detail event
and every folded bucket; pruning over every event). Random events (duplicates, replacements with more
tokens, a model learnt late, every kind, role and service, instants on and off minute edges) go into both,
interleaved with pruning at moving floors, and then through the cache (dump, restore). Every query must
agree: counts of random windows (cut mid-minute, minute-aligned, empty, reversed, centuries wide), per
tool and all tools, detail only, the request times, the 5-hour chain, the weekly block, the timeline and
the credits-per-prompt median. Counts and tokens are compared exactly; credits and weights are float sums
of the same numbers in another order, equal within 1e-9.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zai_dash.config import packaged_tariff
from zai_dash.domain.aggregates import SortedTimes
from zai_dash.domain.cycle import Anchor, CycleWindow, chain_windows, window_of_hit
from zai_dash.domain.events import CallRole, EventKind, LimitHit, McpService, UsageEvent
from zai_dash.domain.ledger import Counts, Ledger, TariffMeter
from zai_dash.domain.snapshot import _timeline
from zai_dash.domain.windows import WEEKLY_LIMIT_CODE, WeekSpan, prompt_equivalents_of, weekly_block

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
BASE = NOW - timedelta(days=10)
SPAN = 10 * 86400
TOOLS = ("claude-code", "opencode", "droid")
MODELS = ("glm-5.3", "glm-4.6", None)
METER = TariffMeter(packaged_tariff(), weighted=True)
DAYS_31 = timedelta(days=31)


class WalkingLedger(Ledger):
    """The ledger's queries and pruning as they were before the running sums: a walk over everything."""

    def count(self, start: datetime, end: datetime, tool: str | None = None, *, detail_only: bool = False) -> Counts:
        counts = Counts()
        for ident, e in self._events.items():
            if start <= e.ts < end and (tool is None or e.tool == tool):
                credits, weight = self._prices[ident]
                counts.add(e, credits, weight)
        if not detail_only and (self.detail_floor is None or start < self.detail_floor):
            lo, hi = start.timestamp(), end.timestamp()
            for tier in (self._calls, self._mcp):
                for minute, tallies in tier.tallies.items():
                    if not lo <= minute < hi:
                        continue
                    for (t, model, kind, role, service), (n, tokens, credits, weight) in tallies.items():
                        if tool is None or t == tool:
                            counts._add(
                                t, EventKind(kind), CallRole(role), McpService(service) if service else None, model,
                                int(n), int(tokens), credits, weight,
                            )  # fmt: skip
        return counts

    def request_times(self, end: datetime) -> SortedTimes:
        billable = (e for e in self._events.values() if e.kind is not EventKind.MCP or e.service is McpService.VISION)
        return SortedTimes([e.ts for e in billable if e.ts < end])

    def detail_prompt_costs(self) -> list[tuple[datetime, float]]:
        by_session: dict[tuple[str, str | None], list[tuple[datetime, int, float]]] = {}
        for ident, e in self._events.items():
            if e.kind is EventKind.PROMPT:
                by_session.setdefault((e.tool, e.session), []).append((e.ts, 0, 0.0))
            elif e.kind is EventKind.CALL:
                by_session.setdefault((e.tool, e.session), []).append((e.ts, 1, self._prices[ident][0]))
        costs = []
        for items in by_session.values():
            items.sort(key=lambda x: (x[0], x[1]))
            current: list[Any] | None = None
            for ts, is_call, credits in items:
                if not is_call:
                    if current is not None:
                        costs.append((current[0], current[1]))
                    current = [ts, 0.0]
                elif current is not None:
                    current[1] += credits
            if current is not None:
                costs.append((current[0], current[1]))
        return costs

    def _remember_prompt_costs(self, before: datetime) -> None:
        costs = [(ts, c) for ts, c in self.detail_prompt_costs() if ts < before]
        known = {ts for ts, _ in self._prompt_costs}
        for item in sorted(costs):
            if item[0] not in known:
                self._prompt_costs.append(item)

    def prompt_cost_median(self, now: datetime, within: timedelta, last: int = 50) -> tuple[float, int]:
        costs = [(ts, c) for ts, c in (*self._prompt_costs, *self._folded_prompts.costs()) if now - within <= ts <= now]
        costs += [(ts, c) for ts, c in self.detail_prompt_costs() if now - within <= ts <= now]
        costs.sort()
        picked = [c for _, c in costs[:-1] if c > 0][-last:]
        if not picked:
            return 0.0, 0
        return statistics.median(picked), len(picked)

    def prune(self, calls_before: datetime, mcp_before: datetime, detail_before: datetime | None = None) -> int:
        calls_before, mcp_before, detail_before = self.raise_floors(calls_before, mcp_before, detail_before)
        moved = [
            ident
            for ident, e in self._events.items()
            if e.ts < (mcp_before if e.kind is EventKind.MCP else calls_before)
            or (detail_before is not None and e.ts < detail_before)
        ]
        if detail_before is not None and moved:
            self._remember_prompt_costs(detail_before)
        self._settle_folded_prompts()  # prompts folded on arrival: not a sum, the same code
        for ident in moved:
            event = self._events.pop(ident)
            credits, weight = self._prices.pop(ident)
            if event.ts >= (mcp_before if event.kind is EventKind.MCP else calls_before):
                (self._mcp if event.kind is EventKind.MCP else self._calls).fold(event, credits, weight)
        for tier, floor in ((self._calls, calls_before), (self._mcp, mcp_before)):
            for m in [m for m in tier.tallies if m + 60 <= floor.timestamp()]:
                del tier.tallies[m]
                tier.seen.pop(m, None)
        while self._prompt_costs and self._prompt_costs[0][0] < calls_before:
            self._prompt_costs.popleft()
        return len(moved)


def walking_chain(
    request_times: Sequence[datetime], limit_hits: Sequence[LimitHit], now: datetime, length: timedelta
) -> list[CycleWindow]:
    """`chain_windows` as it was: one merged, sorted stream of every request and hit."""
    stream: list[tuple[datetime, int, LimitHit | None]] = [(t, 0, None) for t in request_times if t <= now]
    stream.extend((h.ts, 1, h) for h in limit_hits if h.ts <= now)
    stream.sort(key=lambda item: (item[0], item[1]))
    windows: list[CycleWindow] = []
    window: CycleWindow | None = None
    for ts, _, hit in stream:
        if hit is None or hit.reset_at is None:
            if window is None or ts >= window.end:
                window = CycleWindow(ts, ts + length, Anchor.LOCAL)
                windows.append(window)
            continue
        if hit.ts < hit.reset_at <= hit.ts + length + timedelta(minutes=1):
            held = window if window is not None and ts < window.end else None
            moved = window_of_hit(hit.reset_at, held, length)
            if held is not None:
                windows[-1] = moved
            else:
                windows.append(moved)
            window = moved
    return windows


def walking_timeline(ledger: Ledger, start: datetime, now: datetime, cpp: int) -> tuple[Any, ...]:
    """The timeline as it was: the detail events one by one into 10-minute buckets."""
    step = timedelta(minutes=10)
    n = max(1, -(-(now - start) // step))
    prompts, calls, credits, eqs = [0] * n, [0] * n, [0.0] * n, [0] * n
    events = sorted(
        ((e, *ledger._prices[i]) for i, e in ledger._events.items() if start <= e.ts < now + timedelta(microseconds=1)),
        key=lambda x: x[0].ts,
    )
    running, j, prev = Counts(), 0, 0
    for i in range(n):
        bucket_end = start + step * (i + 1)
        while j < len(events) and (events[j][0].ts < bucket_end or i == n - 1):
            e, cost, weight = events[j]
            running.add(e, cost, weight)
            credits[i] += cost
            prompts[i] += e.kind is EventKind.PROMPT
            calls[i] += e.kind is EventKind.CALL
            j += 1
        total = prompt_equivalents_of(running, cpp)
        eqs[i], prev = total - prev, total
    return tuple(prompts), tuple(calls), tuple(eqs), tuple(credits)


def assert_same(fast: Counts, slow: Counts) -> None:
    for name in ("prompts", "calls", "tokens", "calls_by_role", "mcp_by_service"):
        assert getattr(fast, name) == getattr(slow, name), name
    for name in ("prompt_units", "call_units", "credits", "mcp_credits"):
        assert getattr(fast, name) == pytest.approx(getattr(slow, name), rel=1e-9, abs=1e-9), name
    for name in ("credits_by_model", "credits_by_service", "credits_by_tool"):
        f, s = getattr(fast, name), getattr(slow, name)
        assert f.keys() == s.keys(), name
        assert f == pytest.approx(s, rel=1e-9, abs=1e-9), name


def instant(seconds: int, micro: int) -> datetime:
    return BASE + timedelta(seconds=seconds, microseconds=micro)


# Instants bunch on few minutes (so cut minutes hold several events) and often sit on a minute edge.
seconds = st.one_of(
    st.integers(0, SPAN),
    st.integers(0, SPAN // 60).map(lambda m: m * 60),
    st.integers(0, 40).map(lambda k: 9 * 86400 + k * 30),
)
micros = st.one_of(st.just(0), st.integers(0, 999_999))


@st.composite
def events(draw: st.DrawFn) -> UsageEvent:
    kind = draw(st.sampled_from(EventKind))
    ts = instant(draw(seconds), draw(micros))
    tool = draw(st.sampled_from(TOOLS))
    key = f"k{draw(st.integers(0, 60))}"  # a small pool: the same key comes back (duplicates, replacements)
    session = draw(st.sampled_from(("s1", "s2", None)))
    inp = draw(st.integers(0, 20_000))
    out = draw(st.integers(0, 5_000))
    cached = draw(st.integers(0, inp))
    if kind is EventKind.MCP:
        return UsageEvent(kind, ts, tool, key, session, service=draw(st.sampled_from(McpService)))
    if kind is EventKind.PROMPT:
        return UsageEvent(kind, ts, tool, key, session)
    return UsageEvent(
        kind, ts, tool, key, session, model=draw(st.sampled_from(MODELS)), role=draw(st.sampled_from(CallRole)),
        tokens=inp + out, input_tokens=inp, output_tokens=out, cached_tokens=cached,
    )  # fmt: skip


@st.composite
def prunes(draw: st.DrawFn) -> tuple[datetime, datetime, datetime | None]:
    if draw(st.booleans()):  # the engine's: floors a fixed way behind one instant
        at = instant(draw(st.integers(0, SPAN + 2 * 86400)), draw(micros))
        calls = at - timedelta(days=draw(st.sampled_from((8, 3, 1))))
        mcp = at - timedelta(days=draw(st.sampled_from((31, 8, 2))))
        detail = at - timedelta(hours=draw(st.sampled_from((24, 5, 1)))) if draw(st.booleans()) else None
        return calls, mcp, detail
    # Any floors, landing where the events bunch (a floor inside a minute that holds events).
    floor = st.builds(instant, seconds, micros)
    return draw(floor), draw(floor), draw(st.one_of(st.none(), floor))


operations = st.lists(st.one_of(events(), events(), events(), prunes()), min_size=1, max_size=120)
windows = st.tuples(st.integers(-86400, SPAN + 86400), micros, st.integers(-3600, 3 * 86400), micros)


def feed(ops: list[Any], *ledgers: Ledger) -> None:
    for op in ops:
        for led in ledgers:
            if isinstance(op, UsageEvent):
                led.add(op)
            else:
                led.prune(*op)


def edges(data: st.DataObject, ops: list[Any]) -> list[tuple[datetime, datetime]]:
    """Windows with random edges, and edges on, just off and around the events' own instants."""
    spans = [
        (instant(a, ma), instant(a + length, mb)) for a, ma, length, mb in data.draw(st.lists(windows, max_size=6))
    ]
    times = [op.ts for op in ops if isinstance(op, UsageEvent)]
    if times:
        near = st.sampled_from(times).flatmap(
            lambda t: st.sampled_from(
                (t, t + timedelta(microseconds=1), t - timedelta(microseconds=1), t.replace(second=0, microsecond=0),
                 t.replace(microsecond=0) + timedelta(seconds=30), t + timedelta(hours=5), t - timedelta(days=1))
            )
        )  # fmt: skip
        spans += data.draw(st.lists(st.tuples(near, near), max_size=10))
    return [(datetime.min.replace(tzinfo=timezone.utc), datetime.max.replace(tzinfo=timezone.utc)), *spans]


def compare(fast: Ledger, slow: Ledger, spans: list[tuple[datetime, datetime]]) -> None:
    assert fast._events == slow._events
    assert list(fast._prompt_costs) == pytest.approx(list(slow._prompt_costs))
    for start, end in spans:
        assert_same(fast.count(start, end), slow.count(start, end))
        assert_same(fast.count(start, end, detail_only=True), slow.count(start, end, detail_only=True))
        by_tool = fast.count_by_tool(start, end)
        for tool in TOOLS:
            assert_same(fast.count(start, end, tool), slow.count(start, end, tool))
            assert_same(by_tool.get(tool) or Counts(), slow.count(start, end, tool))
        assert list(fast.request_times(end)) == list(slow.request_times(end))
    for at in (NOW, NOW - timedelta(days=3, seconds=17), NOW + timedelta(days=2), *(e for _, e in spans[1:4])):
        for within in (timedelta(days=7), timedelta(hours=6)):
            for last in (50, 3, 1):
                f, s = fast.prompt_cost_median(at, within, last), slow.prompt_cost_median(at, within, last)
                assert f[1] == s[1] and f[0] == pytest.approx(s[0], rel=1e-9, abs=1e-12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, data=st.data())
def test_running_sums_answer_what_walking_every_event_answers(ops: list[Any], data: st.DataObject) -> None:
    fast, slow = Ledger(METER), WalkingLedger(METER)
    feed(ops, fast, slow)
    spans = edges(data, ops)
    compare(fast, slow, spans)
    # And once more after the cache: restore rebuilds the sums from what was dumped.
    dump = fast.dump()
    again, walk = Ledger(METER), WalkingLedger(METER)
    for led in (again, walk):
        led.calls_floor, led.mcp_floor, led.detail_floor = fast.calls_floor, fast.mcp_floor, fast.detail_floor
        led.restore(dump)
    compare(again, walk, spans)
    # ... and the restored ledger keeps agreeing as events keep coming and floors move.
    feed(ops[len(ops) // 2 :], again, walk)
    compare(again, walk, spans)


@settings(max_examples=150, deadline=None)
@given(
    times=st.lists(st.tuples(st.integers(0, 3 * 86400), micros), max_size=60),
    hits=st.lists(
        st.tuples(st.integers(0, 3 * 86400), st.none() | st.integers(-3600, 6 * 3600), st.sampled_from((1308, 1310))),
        max_size=5,
    ),
    at=st.integers(0, 4 * 86400),
)  # fmt: skip
def test_chaining_by_bisection_opens_the_windows_the_merged_stream_opens(
    times: list[tuple[int, int]], hits: list[tuple[int, int | None, int]], at: int
) -> None:
    requests = [instant(s, m) for s, m in times]
    limit_hits = [
        LimitHit(instant(s, 0), "claude-code", code, instant(s + r, 0) if r is not None else None)
        for s, r, code in hits
    ]
    now = instant(at, 0)
    length = timedelta(hours=5)
    expected = walking_chain(requests, limit_hits, now, length)
    assert chain_windows(requests, limit_hits, now, length) == expected
    assert chain_windows(SortedTimes(requests), limit_hits, now, length) == expected
    span = WeekSpan(now - timedelta(days=7), None, "unknown")
    no_reset = [LimitHit(h.ts, h.tool, WEEKLY_LIMIT_CODE, None) for h in limit_hits]
    walked = any(not any(h.ts < t <= now for t in requests) for h in no_reset if span.start <= h.ts <= now)
    assert weekly_block(span, no_reset, SortedTimes(requests), now) == (walked, None)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=operations,
    start=st.tuples(st.integers(0, SPAN), micros),
    length=st.integers(0, 5 * 3600),
    cpp=st.sampled_from((1, 3, 15)),
)
def test_the_timeline_from_sums_is_the_timeline_of_the_events(
    ops: list[Any], start: tuple[int, int], length: int, cpp: int
) -> None:
    led = Ledger(METER)
    feed(ops, led)
    begin = instant(*start)
    now = begin + timedelta(seconds=length)
    line = _timeline(led, begin, now, cpp)
    prompts, calls, eqs, credits = walking_timeline(led, begin, now, cpp)
    assert (line.prompts, line.calls, line.equivalents) == (prompts, calls, eqs)
    assert line.credits == pytest.approx(tuple(round(c, 3) for c in credits), abs=1.1e-3)


def test_prompts_at_one_instant_in_one_session_share_its_calls_once() -> None:
    t = NOW - timedelta(hours=2)
    ops: list[Any] = [
        UsageEvent(EventKind.PROMPT, t, "claude-code", "p1", "s"),
        UsageEvent(EventKind.PROMPT, t, "claude-code", "p2", "s"),
        UsageEvent(EventKind.PROMPT, t, "claude-code", "p3", "other"),
        *(
            UsageEvent(EventKind.CALL, t + timedelta(seconds=i), "claude-code", f"c{i}", "s", "glm-4.6",
                       tokens=2000, input_tokens=1500, output_tokens=500)
            for i in range(4)
        ),
        UsageEvent(EventKind.PROMPT, t + timedelta(minutes=5), "claude-code", "p4", "s"),
    ]  # fmt: skip
    fast, slow = Ledger(METER), WalkingLedger(METER)
    feed(ops, fast, slow)
    assert fast.prompt_cost_median(NOW, timedelta(days=7)) == pytest.approx(
        slow.prompt_cost_median(NOW, timedelta(days=7))
    )
    assert slow.prompt_cost_median(NOW, timedelta(days=7))[1] == 1  # of p1/p2 one owns the calls; p3 and p4 cost 0
    feed([(NOW - timedelta(days=8), NOW - timedelta(days=31), NOW)], fast, slow)  # fold them all
    assert list(fast._prompt_costs) == pytest.approx(list(slow._prompt_costs))
    assert sorted(c for _, c in fast._prompt_costs)[:3] == [0.0, 0.0, 0.0]


def test_a_bucket_the_floor_cuts_stays_until_its_minute_has_ended() -> None:
    minute = NOW.replace(second=0, microsecond=0) - timedelta(days=2)
    ops: list[Any] = [
        UsageEvent(EventKind.CALL, minute + timedelta(seconds=s), "claude-code", f"c{s}", "s", "glm-4.6", tokens=10)
        for s in (0, 10, 59, 61, 70)
    ]
    fast, slow = Ledger(METER), WalkingLedger(METER)
    feed(ops, fast, slow)
    span = (minute - timedelta(hours=1), minute + timedelta(hours=1))
    # A floor inside a minute: the calls at or after it are folded into the minute's bucket, which is kept
    # (a bucket goes when its whole minute is before the floor); the one before the floor goes.
    for floor, left in ((5, 4), (65, 2), (119, 2), (120, 0)):
        feed([(minute + timedelta(seconds=floor), minute - DAYS_31, NOW)], fast, slow)
        assert fast.count(*span).calls == slow.count(*span).calls == left, floor
