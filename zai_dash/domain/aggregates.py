"""Running sums the ledger keeps as events arrive, so a snapshot costs by the spans it asks about, not by history.

A window count is a sum over aligned buckets (a day, four hours, an hour, ten minutes, a minute: at most a
few dozen of them for any span) plus the detail events of the two minutes a window edge cuts. The sums are
kept for both ledger tiers: the folded minute buckets (`_Tier`) and the detail events, with the detail
tier also holding, per minute, which events it has (the cut edges and pruning read only those), the sorted
times of billable requests (the 5-hour chaining) and each session's prompts and calls (credits per prompt).

Every sum here is exact for counts and tokens; credits and weights are float sums of the same numbers in
another order (equal to a brute-force sum within float rounding, far below the 0.001 shown).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, overload

from zai_dash.domain.events import EventKind, McpService, UsageEvent

BUCKET_SECONDS = 60
"""The finest bucket: one minute (the ledger's folded buckets)."""
COARSE_SECONDS = (600, 3600, 14400, 86400)
"""Coarser aligned buckets above the minutes (UTC-aligned: ten minutes, an hour, four hours, a day)."""
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MINUTE = timedelta(seconds=BUCKET_SECONDS)

TallyKey = tuple[str, str | None, str, str, str | None]
"""(tool, model, kind, role, service) of the events summed in one tally."""
Tally = list[float]
"""[count, tokens, credits, weight]."""
Buckets = dict[int, dict[TallyKey, Tally]]
"""bucket start (epoch seconds) → key → tally."""
Ident = tuple[str, str]
"""(tool, dedup key): an event's identity in the ledger."""


def tally_key(event: UsageEvent) -> TallyKey:
    """The tally an event is summed into."""
    return (event.tool, event.model, event.kind.value, event.role.value, event.service.value if event.service else None)


def minute_of(ts: datetime) -> tuple[int, bool]:
    """(start of the minute holding `ts` in epoch seconds, whether `ts` is that start), in exact arithmetic."""
    q, r = divmod(ts - EPOCH, _MINUTE)
    return q * BUCKET_SECONDS, not r


def ceil_minute(ts: datetime) -> int:
    """The first minute start at or after `ts` (epoch seconds)."""
    minute, exact = minute_of(ts)
    return minute if exact else minute + BUCKET_SECONDS


_KEYS: dict[TallyKey, TallyKey] = {}
"""One tuple per distinct tally key, shared by every bucket holding it (a key is made per event, and a new
one per bucket would be 80 bytes each). Bounded: cleared past `_KEYS_KEPT` (sharing is only a saving)."""
_KEYS_KEPT = 4096


def shared_key(key: TallyKey) -> TallyKey:
    """The one tuple kept for `key` (equal to it), to store as a bucket's dict key."""
    kept = _KEYS.get(key)
    if kept is None:
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        kept = _KEYS[key] = key
    return kept


def _bump(
    tallies: dict[TallyKey, Tally], key: TallyKey, n: float, tokens: float, credits: float, weight: float
) -> None:
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[shared_key(key)] = [0, 0, 0.0, 0.0]
    tally[0] += n
    tally[1] += tokens
    tally[2] += credits
    tally[3] += weight


def _take(level: Buckets, start: int, key: TallyKey, n: float, tokens: float, credits: float, weight: float) -> None:
    """Subtract from one bucket; a tally whose count reaches 0 goes (its float residue with it)."""
    tallies = level.get(start)
    if tallies is None or key not in tallies:
        return
    tally = tallies[key]
    tally[0] -= n
    if tally[0] <= 0:
        del tallies[key]
        if not tallies:
            del level[start]
        return
    tally[1] -= tokens
    tally[2] -= credits
    tally[3] -= weight


def _coarsen(level: Buckets, size: int) -> Buckets:
    """The buckets of width `size` summing `level`'s (a finer level whose widths divide `size`)."""
    out: Buckets = {}
    for start, tallies in level.items():
        top = start - start % size
        acc = out.get(top)
        if acc is None:
            acc = out[top] = {}
        for key, (n, tokens, credits, weight) in tallies.items():
            tally = acc.get(key)
            if tally is None:
                acc[key] = [n, tokens, 0.0 + credits, 0.0 + weight]  # floats, as `_bump` makes them
            else:
                tally[0] += n
                tally[1] += tokens
                tally[2] += credits
                tally[3] += weight
    return out


def merge_into(acc: dict[TallyKey, Tally], tallies: Mapping[TallyKey, Tally]) -> None:
    """Add every tally of one bucket to an accumulator."""
    for key, (n, tokens, credits, weight) in tallies.items():
        _bump(acc, key, n, tokens, credits, weight)


class Pyramid:
    """Sums of tallies over aligned buckets of every width in `COARSE_SECONDS`, above a minute level.

    Args:
        minutes: the minute level (minute start → key → tally). The folded tier passes its own buckets
            (kept up to date by its owner; call `add_coarse`); without it the pyramid keeps one (`add`).
    """

    __slots__ = ("levels", "low", "minutes")

    def __init__(self, minutes: Buckets | None = None) -> None:
        self.minutes: Buckets = {} if minutes is None else minutes
        self.levels: tuple[Buckets, ...] = tuple({} for _ in COARSE_SECONDS)
        self.low: int | None = min(self.minutes, default=None)
        """No minute before this holds anything (a lower bound: pruning starts there)."""

    def add(self, minute: int, key: TallyKey, n: float, tokens: float, credits: float, weight: float) -> None:
        """Add to the minute level and every coarser one (negative amounts: see `remove`)."""
        _bump(self.minutes.setdefault(minute, {}), key, n, tokens, credits, weight)
        self.add_coarse(minute, key, n, tokens, credits, weight)

    def add_coarse(self, minute: int, key: TallyKey, n: float, tokens: float, credits: float, weight: float) -> None:
        """Add to the coarser levels only (the minute level was updated by its owner)."""
        if self.low is None or minute < self.low:
            self.low = minute
        for size, level in zip(COARSE_SECONDS, self.levels, strict=True):
            _bump(level.setdefault(minute - minute % size, {}), key, n, tokens, credits, weight)

    def remove(
        self, minute: int, key: TallyKey, n: float, tokens: float, credits: float, weight: float, *, coarse_only: bool
    ) -> None:
        """Subtract what `add` added (from the minute level too unless `coarse_only`)."""
        if not coarse_only:
            _take(self.minutes, minute, key, n, tokens, credits, weight)
        for size, level in zip(COARSE_SECONDS, self.levels, strict=True):
            _take(level, minute - minute % size, key, n, tokens, credits, weight)

    def rebuild(self, minutes: Buckets | None = None) -> None:
        """Recompute the coarser levels from the minute level (after the minutes were loaded wholesale).

        Each level is summed from the one below it (a ten-minute bucket from its minutes, an hour from its
        ten minutes...), so a warm start adds each tally about once, not once per level.

        Args:
            minutes: the owner's minute level, when it is a new dict (else the one held).
        """
        if minutes is not None:
            self.minutes = minutes
        self.low = min(self.minutes, default=None)
        levels = []
        below = self.minutes
        for size in COARSE_SECONDS:
            below = _coarsen(below, size)
            levels.append(below)
        self.levels = tuple(levels)

    def pop_before(self, cut: float) -> list[tuple[int, dict[TallyKey, Tally]]]:
        """Remove the minutes that ended by `cut` from every level; returns them (minute, tallies)."""
        low = self.low
        if low is None or low + BUCKET_SECONDS > cut:
            return []
        last = low + (int(cut - low) // BUCKET_SECONDS - 1) * BUCKET_SECONDS  # the latest minute ending by `cut`
        if (last - low) // BUCKET_SECONDS > len(self.minutes):
            old = sorted(m for m in self.minutes if m <= last)  # a long quiet spell: walk what is held instead
        else:
            old = [m for m in range(low, last + 1, BUCKET_SECONDS) if m in self.minutes]
        self.low = last + BUCKET_SECONDS
        out = []
        for minute in old:
            tallies = self.minutes.pop(minute)
            for key, (n, tokens, credits, weight) in tallies.items():
                self.remove(minute, key, n, tokens, credits, weight, coarse_only=True)
            out.append((minute, tallies))
        return out

    def sum_into(self, acc: dict[TallyKey, Tally], lo: int, hi: int) -> None:
        """Add the minutes `m` with `lo <= m < hi` (multiples of a minute) to `acc`: a few buckets per width."""
        days = self.levels[-1]
        if not days:
            return
        # Clamp to where there is data, so a span of centuries (`--at` year 1) walks no empty days.
        top = COARSE_SECONDS[-1]
        lo = max(lo, min(days))
        hi = min(hi, max(days) + top)
        sizes = (BUCKET_SECONDS, *COARSE_SECONDS)
        levels = (self.minutes, *self.levels)
        pos = lo
        while pos < hi:
            i = len(sizes) - 1
            while i and (pos % sizes[i] or pos + sizes[i] > hi):
                i -= 1
            tallies = levels[i].get(pos)
            if tallies:
                merge_into(acc, tallies)
            pos += sizes[i]


class SortedTimes(Sequence[datetime]):
    """Timestamps in ascending order (what `Ledger.request_times` returns): chaining walks it by bisection."""

    __slots__ = ("_times",)

    def __init__(self, times: list[datetime], *, presorted: bool = False) -> None:
        self._times = times if presorted else sorted(times)

    @overload
    def __getitem__(self, index: int) -> datetime: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[datetime]: ...

    def __getitem__(self, index: int | slice) -> datetime | Sequence[datetime]:
        return self._times[index]

    def __len__(self) -> int:
        return len(self._times)

    def __iter__(self) -> Iterator[datetime]:
        return iter(self._times)

    def first_at_or_after(self, ts: datetime, lo: int = 0) -> int:
        """Index of the first time `>= ts` (from `lo`)."""
        return bisect.bisect_left(self._times, ts, lo)

    def first_after(self, ts: datetime, lo: int = 0) -> int:
        """Index of the first time `> ts` (from `lo`)."""
        return bisect.bisect_right(self._times, ts, lo)

    def any_in(self, after: datetime, upto: datetime) -> bool:
        """Whether some time `t` has `after < t <= upto`."""
        i = self.first_after(after)
        return i < len(self._times) and self._times[i] <= upto


def billable(event: UsageEvent) -> bool:
    """Whether an event is a request the 5-hour window counts from: a prompt, a model call, a vision MCP call."""
    return event.kind is not EventKind.MCP or event.service is McpService.VISION


class _Session:
    """One session's detail prompts (sorted times) and calls (sorted (time, credits))."""

    __slots__ = ("calls", "prompts", "sid")

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.prompts: list[datetime] = []
        self.calls: list[tuple[datetime, float]] = []

    def cost(self, ts: datetime) -> float:
        """Credits of the session's calls from the prompt at `ts` until its next later prompt."""
        nxt = bisect.bisect_right(self.prompts, ts)
        until = self.prompts[nxt] if nxt < len(self.prompts) else None
        i = bisect.bisect_left(self.calls, (ts, float("-inf")))
        total = 0.0
        calls = self.calls
        while i < len(calls) and (until is None or calls[i][0] < until):
            total += calls[i][1]
            i += 1
        return total


def _by_time(item: tuple[Ident, UsageEvent]) -> datetime:
    return item[1].ts


def _remove(items: list[Any], item: Any) -> None:
    """Remove one copy of `item` from a sorted list, if there."""
    i = bisect.bisect_left(items, item)
    if i < len(items) and items[i] == item:
        del items[i]


class DetailIndex:
    """What the ledger's detail tier is, indexed by time: sums, per-minute members, request times, sessions.

    Args:
        events: the ledger's detail events by identity (read, never written here).
        prices: their (credits, weight).
    """

    __slots__ = (
        "_by_sid", "_next_sid", "_prompts", "_sessions", "events", "members", "prices", "spans", "sums", "times",
    )  # fmt: skip

    def __init__(self, events: Mapping[Ident, UsageEvent], prices: Mapping[Ident, tuple[float, float]]) -> None:
        self.events = events
        self.prices = prices
        self.sums = Pyramid()
        self.members: dict[int, dict[Ident, None]] = {}
        """minute start → the detail events in that minute."""
        self.spans: dict[int, list[datetime]] = {}
        """minute start → [earliest, latest] instant ever put there while it held events (bounds: a
        dropped event does not narrow them). A window edge inside a minute whose events all fall on one
        side of it takes the minute's sum instead of walking its events: the minute a window ending now
        cuts is a busy one, and nothing in it is later than now."""
        self.times: list[datetime] = []
        """Sorted times of the billable detail events."""
        self._sessions: dict[tuple[str, str | None], _Session] = {}
        self._by_sid: dict[int, _Session] = {}
        self._prompts: list[tuple[datetime, int]] = []
        """Sorted (time, session number) of every detail prompt."""
        self._next_sid = 0

    def put(
        self, ident: Ident, event: UsageEvent, price: tuple[float, float], old: UsageEvent | None = None,
        old_price: tuple[float, float] | None = None,
    ) -> None:  # fmt: skip
        """Index a detail event (replacing `old`, the copy it supersedes, when given)."""
        if old is not None and old_price is not None:
            self.drop(ident, old, old_price)
        minute, _ = minute_of(event.ts)
        self.sums.add(minute, tally_key(event), 1, event.tokens, *price)
        self.members.setdefault(minute, {})[ident] = None
        span = self.spans.get(minute)
        if span is None:
            self.spans[minute] = [event.ts, event.ts]
        elif event.ts < span[0]:
            span[0] = event.ts
        elif event.ts > span[1]:
            span[1] = event.ts
        if billable(event):
            bisect.insort(self.times, event.ts)
        if event.kind is EventKind.PROMPT:
            session = self._session(event)
            bisect.insort(session.prompts, event.ts)
            bisect.insort(self._prompts, (event.ts, session.sid))
        elif event.kind is EventKind.CALL:
            bisect.insort(self._session(event).calls, (event.ts, price[0]))

    def drop(self, ident: Ident, event: UsageEvent, price: tuple[float, float]) -> None:
        """Unindex a detail event leaving the tier (folded, pruned or superseded)."""
        minute, _ = minute_of(event.ts)
        self.sums.remove(minute, tally_key(event), 1, event.tokens, *price, coarse_only=False)
        members = self.members.get(minute)
        if members is not None:
            members.pop(ident, None)
            if not members:
                del self.members[minute]
                self.spans.pop(minute, None)
        if billable(event):
            _remove(self.times, event.ts)
        if event.kind in (EventKind.PROMPT, EventKind.CALL):
            key = (event.tool, event.session)
            session = self._sessions.get(key)
            if session is None:
                return
            if event.kind is EventKind.PROMPT:
                _remove(session.prompts, event.ts)
                _remove(self._prompts, (event.ts, session.sid))
            else:
                _remove(session.calls, (event.ts, price[0]))
            if not session.prompts and not session.calls:
                del self._sessions[key]
                del self._by_sid[session.sid]

    def rebuild(self) -> None:
        """Index every event from scratch (after the ledger's dicts were loaded wholesale).

        What `put` does one event at a time, in one pass over the events in time order: the sorted lists
        are appended to (and sorted once where equal instants tie), the minute sums added up in place and
        the coarser sums built once from them.
        """
        minutes: Buckets = {}
        members = self.members
        spans = self.spans
        times = self.times
        members.clear()
        spans.clear()
        times.clear()
        self._sessions.clear()
        self._by_sid.clear()
        self._prompts.clear()
        prices = self.prices
        prompt, call = EventKind.PROMPT, EventKind.CALL
        for ident, event in sorted(self.events.items(), key=_by_time):
            ts = event.ts
            minute, _ = minute_of(ts)
            credits, weight = prices[ident]
            key = tally_key(event)
            tallies = minutes.get(minute)
            if tallies is None:
                tallies = minutes[minute] = {}
                members[minute] = {ident: None}
                spans[minute] = [ts, ts]
            else:
                members[minute][ident] = None
                spans[minute][1] = ts  # in time order: the latest so far
            tally = tallies.get(key)
            if tally is None:
                tallies[shared_key(key)] = [1, event.tokens, 0.0 + credits, 0.0 + weight]
            else:
                tally[0] += 1
                tally[1] += event.tokens
                tally[2] += credits
                tally[3] += weight
            if billable(event):
                times.append(ts)
            if event.kind is prompt:
                session = self._session(event)
                session.prompts.append(ts)
                self._prompts.append((ts, session.sid))
            elif event.kind is call:
                self._session(event).calls.append((ts, credits))
        self._prompts.sort()  # prompts at one instant in several sessions: by session number
        for session in self._sessions.values():
            session.calls.sort()  # calls at one instant: by credits, as `insort` keeps them
        self.sums = Pyramid(minutes)
        self.sums.rebuild()

    def _session(self, event: UsageEvent) -> _Session:
        key = (event.tool, event.session)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = self._by_sid[self._next_sid] = _Session(self._next_sid)
            self._next_sid += 1
        return session

    # -- queries -----------------------------------------------------------------------------------

    def sum_into(self, acc: dict[TallyKey, Tally], start: datetime, end: datetime) -> None:
        """Add the detail events with `start <= ts < end`: whole minutes from the sums, cut ones one by one."""
        if not start < end:
            return
        a, a_exact = minute_of(start)
        b, b_exact = minute_of(end)
        full_lo = a if a_exact else a + BUCKET_SECONDS
        if full_lo < b:
            self.sums.sum_into(acc, full_lo, b)
        for minute in {m for m, cut in ((a, not a_exact), (b, not b_exact)) if cut}:
            span = self.spans.get(minute)
            if span is None or span[1] < start or span[0] >= end:
                continue  # nothing there, or all of it outside
            if start <= span[0] and span[1] < end:
                merge_into(acc, self.sums.minutes[minute])  # all of it inside
                continue
            for ident in self.members[minute]:
                event = self.events[ident]
                if start <= event.ts < end:
                    _bump(acc, tally_key(event), 1, event.tokens, *self.prices[ident])

    def older_than(self, cut: datetime) -> list[Ident]:
        """Every detail event in a minute that starts before `cut` (a superset of those older than it)."""
        minute, _ = minute_of(cut)
        return [ident for m, members in self.members.items() if m <= minute for ident in members]

    def request_times(self, end: datetime) -> SortedTimes:
        """Sorted times of the billable detail events before `end`."""
        return SortedTimes(self.times[: bisect.bisect_left(self.times, end)], presorted=True)

    def prompt_costs_before(self, before: datetime) -> list[tuple[datetime, float]]:
        """(time, credits) of each detail prompt older than `before` (see `prompt_costs`)."""
        end = bisect.bisect_left(self._prompts, (before, -1))
        return list(self._costs(range(end)))

    def recent_prompt_costs(self, lo: datetime, hi: datetime, positives: int) -> list[tuple[datetime, float]]:
        """(time, credits) of detail prompts with `lo <= ts <= hi`, newest first, until `positives` costed anything.

        Stops only between two instants, so every prompt at or after the oldest instant returned is in it.
        """
        top = bisect.bisect_right(self._prompts, (hi, self._next_sid))
        out: list[tuple[datetime, float]] = []
        found = 0
        i = top - 1
        while i >= 0:
            ts = self._prompts[i][0]
            if ts < lo or found >= positives:
                break
            # One instant at a time: every prompt sharing it, across sessions.
            j = i
            while j >= 0 and self._prompts[j][0] == ts:
                j -= 1
            for item in self._costs(range(j + 1, i + 1)):
                out.append(item)
                found += item[1] > 0
            i = j
        return out

    def _costs(self, indices: range) -> Iterator[tuple[datetime, float]]:
        """Costs of the prompts at `indices` of the sorted prompt list.

        The rule of `Ledger._detail_prompt_costs`: a prompt owns its session's calls from its instant until the
        session's next later prompt; of several prompts at one instant in one session, one owns them and the
        others cost 0.
        """
        previous: tuple[datetime, int] | None = None
        for i in indices:
            item = self._prompts[i]
            ts, sid = item
            if item == previous:
                yield ts, 0.0
                continue
            previous = item
            yield ts, self._by_sid[sid].cost(ts)
