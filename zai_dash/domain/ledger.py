"""The ledger: deduplicated usage events and the counts views ask of them.

Two tiers, so that a week of history costs memory by time, not by how busy the week was:

- **detail**: recent events in full (the 5-hour chaining, the timeline, per-prompt credits and `--at`
  replays need each one). Everything from `detail_floor` on.
- **buckets**: older events folded into one-minute buckets, one tally per (tool, model, kind, role,
  service) in each, plus an 8-byte digest of each folded event's dedup key so a re-read record is
  not counted twice. Prompts and calls back to `calls_floor` (8 days in the engine: the weekly
  window and the week before it), MCP calls back to `mcp_floor` (the month window).

A bucket is counted in `[start, end)` when its minute starts there: window edges are exact to the
minute.

Both tiers keep running sums over coarser time buckets as events come and go (`aggregates`), so a count
costs by the span asked about, not by how many events it holds.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import heapq
import sys
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from zai_dash.domain.aggregates import (
    BUCKET_SECONDS,
    EPOCH,
    DetailIndex,
    Pyramid,
    SortedTimes,
    Tally,
    TallyKey,
    ceil_minute,
    shared_key,
)
from zai_dash.domain.events import CallRole, EventKind, LimitHit, McpService, UsageEvent
from zai_dash.domain.tariff import Tariff

PROMPT_COSTS_KEPT = 50
"""Per-prompt credit totals remembered for the "≈ prompts left" median."""
STRINGS_KEPT = 65_536
"""Distinct session and model ids the ledger shares among its detail events before it starts afresh."""
RECENT_FOLDS_KEPT = 1024
"""Events folded as they arrived (older than the detail floor) whose later copies can still replace them.

A streamed Claude Code message is several lines a few apart, each a copy with more tokens, sometimes a
minute boundary apart: the detail tier keeps the largest copy, and so does a fold within this many events.
"""


class Meter(Protocol):
    """Prices one event: what it costs on a credit plan and what it weighs on a legacy prompt plan."""

    def price(self, event: UsageEvent, model: str | None) -> tuple[float, float]:
        """Return `(credits, weight)` for `event`; `model` is its model or the tool's latest one."""
        ...


class FlatMeter:
    """No tariff: nothing costs credits and every prompt or call weighs 1 (the 2025 plan's rule)."""

    def price(self, event: UsageEvent, model: str | None) -> tuple[float, float]:
        """Zero credits, weight one."""
        return 0.0, 1.0


class TariffMeter:
    """Prices events with the tariff at each event's own instant.

    Credits: `Tariff.call_credits` (model calls from their tokens, MCP calls per call). Weight, on a legacy
    prompt plan (`weighted`): the model's prompt rate (`Tariff.prompt_rate`) for prompts and calls; else 1.
    A Vision MCP call weighs one prompt; the other MCP calls draw on their own pool.
    """

    def __init__(self, tariff: Tariff, weighted: bool) -> None:
        self.tariff = tariff
        self.weighted = weighted

    def price(self, event: UsageEvent, model: str | None) -> tuple[float, float]:
        """`(credits, weight)` of one event."""
        credits = self.tariff.call_credits(event)
        if event.kind is EventKind.MCP or not self.weighted:
            return credits, 1.0
        return credits, self.tariff.prompt_rate(model, event.ts)


@dataclass(slots=True)
class Counts:
    """Counts of one kind of question ("how many of what in [a, b)").

    `prompt_units` and `call_units` are the prompts and calls weighted by their model rate at their own
    instant (legacy plans); `credits` is what they cost on a credit plan (MCP calls included).
    """

    prompts: int = 0
    calls: int = 0
    calls_by_role: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in CallRole})
    mcp_by_service: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in McpService})
    tokens: int = 0
    prompt_units: float = 0.0
    call_units: float = 0.0
    credits: float = 0.0
    mcp_credits: float = 0.0
    credits_by_model: dict[str, float] = field(default_factory=dict)
    credits_by_service: dict[str, float] = field(default_factory=dict)
    credits_by_tool: dict[str, float] = field(default_factory=dict)

    def add(self, event: UsageEvent, credits: float = 0.0, weight: float = 1.0) -> None:
        """Count one event with its price."""
        self._add(event.tool, event.kind, event.role, event.service, event.model, 1, event.tokens, credits, weight)

    def _add(
        self,
        tool: str,
        kind: EventKind,
        role: CallRole,
        service: McpService | None,
        model: str | None,
        n: int,
        tokens: int,
        credits: float,
        weight: float,
    ) -> None:
        self.credits += credits
        if credits:
            self.credits_by_tool[tool] = self.credits_by_tool.get(tool, 0.0) + credits
        if kind is EventKind.PROMPT:
            self.prompts += n
            self.prompt_units += weight
        elif kind is EventKind.CALL:
            self.calls += n
            self.calls_by_role[role.value] += n
            self.tokens += tokens
            self.call_units += weight
            name = model or "unknown"
            self.credits_by_model[name] = self.credits_by_model.get(name, 0.0) + credits
        elif service is not None:
            self.mcp_by_service[service.value] += n
            self.mcp_credits += credits
            self.credits_by_service[service.value] = self.credits_by_service.get(service.value, 0.0) + credits

    @classmethod
    def of_tallies(cls, tallies: Mapping[TallyKey, Tally], tool: str | None = None) -> Counts:
        """Counts of summed tallies (of one tool, or all)."""
        counts = cls()
        for (t, model, kind, role, service), (n, tokens, credits, weight) in tallies.items():
            if tool is None or t == tool:
                counts._add(
                    t,
                    EventKind(kind),
                    CallRole(role),
                    McpService(service) if service else None,
                    model,
                    int(n),
                    int(tokens),
                    credits,
                    weight,
                )
        return counts


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """What the ledger knows of one tool regardless of window: last activity and last model."""

    last_activity: datetime | None
    last_model: datetime | None
    model: str | None


class _Tier:
    """Folded buckets of one family of events (prompts and calls, or MCP calls)."""

    __slots__ = ("seen", "sums", "tallies")

    def __init__(self) -> None:
        self.tallies: dict[int, dict[TallyKey, list[float]]] = {}
        """minute (epoch seconds) → key → [count, tokens, credits, weight]."""
        self.seen: dict[int, array[int]] = {}
        """minute → sorted digests of the dedup keys folded there."""
        self.sums = Pyramid(self.tallies)
        """The same tallies summed over coarser buckets. Its minutes are `tallies` itself: `fold` adds to
        both (`add_coarse`), and whoever rebinds `tallies` calls `sums.rebuild(self.tallies)`."""

    def fold(self, event: UsageEvent, credits: float, weight: float) -> bool:
        minute = self.claim(event)
        if minute is None:
            return False
        self.tally(minute, event, credits, weight)
        return True

    @staticmethod
    def minute(event: UsageEvent) -> int:
        """The start of the bucket `event` is counted in (epoch seconds)."""
        return int(event.ts.timestamp()) // BUCKET_SECONDS * BUCKET_SECONDS

    def claim(self, event: UsageEvent) -> int | None:
        """Note `event`'s key in its minute: the minute when it is new there, None when already folded."""
        minute = self.minute(event)
        digest = _digest(event.tool, event.key)
        seen = self.seen.get(minute)
        if seen is None:
            seen = self.seen[minute] = array("q")
        i = bisect.bisect_left(seen, digest)
        if i < len(seen) and seen[i] == digest:
            return None
        seen.insert(i, digest)
        return minute

    def tally(self, minute: int, event: UsageEvent, credits: float, weight: float) -> None:
        """Count a `claim`ed event in its minute."""
        key = _key(event)
        tallies = self.tallies.get(minute)
        if tallies is None:
            tallies = self.tallies[minute] = {}
        tally = tallies.get(key)
        if tally is None:
            key = shared_key(key)
            tallies[key] = [1, event.tokens, 0.0 + credits, 0.0 + weight]  # floats, as the sums always were
        else:
            tally[0] += 1
            tally[1] += event.tokens
            tally[2] += credits
            tally[3] += weight
        self.sums.add_coarse(minute, key, 1, event.tokens, credits, weight)

    def untally(self, minute: int, event: UsageEvent, credits: float, weight: float) -> None:
        """Take back what `tally` counted (a copy with more tokens replaces it); nothing if its minute went."""
        key = _key(event)
        if key in self.tallies.get(minute, ()):
            self.sums.remove(minute, key, 1, event.tokens, credits, weight, coarse_only=False)

    def drop_before(self, floor: datetime) -> bool:
        """Forget the buckets whose minute ended by `floor`."""
        old = self.sums.pop_before(floor.timestamp())
        for minute, _ in old:
            self.seen.pop(minute, None)
        return bool(old)

    def sum_into(self, acc: dict[TallyKey, Tally], start: datetime, end: datetime) -> None:
        """Add the buckets whose minute starts in `[start, end)` to `acc`."""
        self.sums.sum_into(acc, ceil_minute(start), ceil_minute(end))

    def size(self) -> tuple[int, int, int]:
        """(buckets, tallies, digests) held."""
        return (
            len(self.tallies),
            sum(len(t) for t in self.tallies.values()),
            sum(len(s) for s in self.seen.values()),
        )

    def dump(self) -> Iterator[tuple[str, Any]]:
        """The tallies and digests as columns, one (name, value) at a time (see `Ledger.dump_parts`).

        Each column is a base64 array (`_pack`); the tally keys are listed once each. Per minute (in
        `minutes`) its number of tallies and of digests; per tally its key's index in `keys` and its four
        sums; all digests one after the other, each minute's sorted.
        """
        keys: dict[TallyKey, int] = {}
        buckets = self.tallies
        rows = [tally for tallies in buckets.values() for tally in tallies.items()]
        seen = [self.seen.get(minute) for minute in buckets]
        columns = (
            ("minutes", lambda: array("q", buckets)),
            ("tallies", lambda: array("i", [len(tallies) for tallies in buckets.values()])),
            ("key", lambda: array("i", [keys.setdefault(key, len(keys)) for key, _ in rows])),
            ("count", lambda: array("q", [int(tally[0]) for _, tally in rows])),
            ("tokens", lambda: array("q", [int(tally[1]) for _, tally in rows])),
            ("credits", lambda: array("d", [tally[2] for _, tally in rows])),
            ("weight", lambda: array("d", [tally[3] for _, tally in rows])),
            ("digests", lambda: array("i", [len(part) if part else 0 for part in seen])),
        )
        for name, column in columns:
            yield name, Packed(column)
        yield "seen", Packed(lambda: [part for part in seen if part])  # never joined into one array
        yield "keys", [list(key) for key in keys]

    def restore(self, doc: Mapping[str, Any]) -> None:
        """Load what `dump` wrote (raises `ValueError`/`TypeError`/`KeyError`/`IndexError` on anything else)."""
        keys: list[TallyKey] = []
        for tool, model, kind, role, service in doc["keys"]:
            if kind not in _KINDS or role not in _ROLES or (service is not None and service not in _SERVICES):
                raise ValueError(f"bad tally {kind!r} {role!r} {service!r}")
            if not isinstance(tool, str) or not (model is None or isinstance(model, str)):
                raise TypeError("bad tally key")
            keys.append(
                shared_key(
                    (tool, model, _KIND_OF[kind].value, _ROLE_OF[role].value, service and _SERVICE_OF[service].value)
                )
            )
        minutes, per_minute, per_seen = (
            _unpack(doc["minutes"], "q"),
            _unpack(doc["tallies"], "i"),
            _unpack(doc["digests"], "i"),
        )
        key_of, counts, tokens = _unpack(doc["key"], "i"), _unpack(doc["count"], "q"), _unpack(doc["tokens"], "q")
        credits, weights, digests = _unpack(doc["credits"], "d"), _unpack(doc["weight"], "d"), _unpack(doc["seen"], "q")
        n = len(key_of)
        if not len(minutes) == len(per_minute) == len(per_seen) or len(set(minutes)) != len(minutes):
            raise ValueError("minute columns disagree")
        if not n == len(counts) == len(tokens) == len(credits) == len(weights) == sum(per_minute):
            raise ValueError("tally columns disagree")
        if min(per_minute, default=1) < 1 or min(per_seen, default=0) < 0 or sum(per_seen) != len(digests):
            raise ValueError("bad per-minute counts")
        if n and (min(key_of) < 0 or max(key_of) >= len(keys)):
            raise IndexError("tally key out of range")
        i = j = 0
        for minute, many, seen in zip(minutes, per_minute, per_seen, strict=True):
            # Keys are shared tuples (one per distinct key, not one per tally); ints stay ints.
            self.tallies[minute] = {
                keys[key_of[k]]: [counts[k], tokens[k], credits[k], weights[k]] for k in range(i, i + many)
            }
            self.seen[minute] = digests[j : j + seen]
            i += many
            j += seen
        self.sums.rebuild(self.tallies)


class _FoldedPrompts:
    """Credits of the newest prompts folded on arrival (a cold scan's day-old history), as their calls arrive.

    The detail tier prices a prompt from its session's calls (`DetailIndex`), and the ledger remembers that
    when the prompt leaves it; a prompt read below the detail floor never was there. The same rule here: a
    call folded on arrival costs the latest prompt of its session at or before its instant. Only the newest
    `PROMPT_COSTS_KEPT + 1` such prompts are followed (the median reads no more), and a call read before
    its prompt costs none.
    """

    __slots__ = ("heap", "sessions")

    def __init__(self) -> None:
        self.sessions: dict[tuple[str, str | None], list[list[Any]]] = {}
        """(tool, session) → sorted `[prompt time, credits]`."""
        self.heap: list[tuple[datetime, str, str | None]] = []
        """The prompts followed, oldest first: the one to let go of when a newer one comes."""

    def prompt(self, event: UsageEvent) -> None:
        key = (event.tool, event.session)
        if len(self.heap) > PROMPT_COSTS_KEPT and event.ts <= self.heap[0][0]:
            return  # older than every prompt followed: the median never reaches it
        rows = self.sessions.setdefault(key, [])
        bisect.insort(rows, [event.ts, 0.0])
        heapq.heappush(self.heap, (event.ts, *key))
        if len(self.heap) > PROMPT_COSTS_KEPT + 1:
            ts, tool, session = heapq.heappop(self.heap)
            old = self.sessions[(tool, session)]
            del old[bisect.bisect_left(old, [ts])]
            if not old:
                del self.sessions[(tool, session)]

    def call(self, event: UsageEvent, credits: float) -> None:
        rows = self.sessions.get((event.tool, event.session))
        if rows:
            i = bisect.bisect_right(rows, [event.ts, float("inf")]) - 1
            if i >= 0:
                rows[i][1] += credits

    def costs(self) -> list[tuple[datetime, float]]:
        return [(ts, credits) for rows in self.sessions.values() for ts, credits in rows]

    def clear(self) -> None:
        self.sessions.clear()
        self.heap.clear()


def _median(values: list[float]) -> float:
    """`statistics.median` (the middle value, or the mean of the two middle ones), without importing
    `statistics`: it brings `fractions` and `decimal`, and `status` imports the ledger on every call."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


class Packed:
    """A column of numbers as `_pack` writes it, made when written: `text()` whole, or `chunks()` of base64.

    Args:
        arrays: makes the column, one array or several of one type code (their items one after the other).
    """

    __slots__ = ("arrays",)
    CHUNK = 3 << 18
    """Bytes encoded at a time by `chunks` (a multiple of 3: the chunks' base64 joins into the whole's)."""

    def __init__(self, arrays: Callable[[], array[Any] | Iterable[array[Any]]]) -> None:
        self.arrays = arrays

    def chunks(self) -> Iterator[bytes]:
        """The column's base64, a piece at a time (a column is never whole in memory twice over)."""
        made = self.arrays()
        buf = bytearray()
        for values in (made,) if isinstance(made, array) else made:
            if sys.byteorder != "little":
                values = array(values.typecode, values)
                values.byteswap()
            buf += values.tobytes()
            if len(buf) >= self.CHUNK:
                cut = len(buf) - len(buf) % 3
                yield base64.b64encode(buf[:cut])
                del buf[:cut]
        if buf:
            yield base64.b64encode(buf)

    def text(self) -> str:
        """The column's base64 whole (what `_unpack` reads)."""
        return b"".join(self.chunks()).decode("ascii")


def _pack(values: array[Any] | None) -> str:
    """An array as base64 of its little-endian bytes: decoded in one C call, not one number each."""
    if not values:
        return ""
    if sys.byteorder == "little":
        return base64.b64encode(values.tobytes()).decode("ascii")
    swapped = array(values.typecode, values)
    swapped.byteswap()
    return base64.b64encode(swapped.tobytes()).decode("ascii")


def _unpack(text: object, typecode: str = "q") -> array[Any]:
    """What `_pack` wrote (raises `ValueError`/`TypeError` on anything else: the cache is then rebuilt).

    Digests are written sorted, as `claim`'s binary search needs; a file this process did not write is not
    read (the cache is versioned, fingerprinted and written atomically), so the order is not checked one
    by one.
    """
    if not isinstance(text, str):
        raise TypeError("a column is not a string")
    out = array(typecode)
    out.frombytes(base64.b64decode(text, validate=True))  # a length that is not a multiple of the item raises
    if sys.byteorder != "little":
        out.byteswap()
    return out


_VALUES: dict[Any, str] = {m: m.value for m in (*EventKind, *CallRole, *McpService)}
"""Each enum member's plain value (a dict lookup is cheaper than `.value` on the hot path of a fold)."""
_KIND_OF = {k.value: k for k in EventKind}
_ROLE_OF = {r.value: r for r in CallRole}
_SERVICE_OF = {s.value: s for s in McpService}
_KINDS = frozenset(k.value for k in EventKind)
_ROLES = frozenset(r.value for r in CallRole)
_SERVICES = frozenset(s.value for s in McpService)


_MEMBERS: list[tuple[EventKind, CallRole, McpService | None]] = [
    (kind, role, service) for kind in EventKind for role in CallRole for service in (None, *McpService)
]
"""An event's kind, role and service by its one-byte flag in the cache (its index here)."""
_FLAGS: dict[tuple[EventKind, CallRole, McpService | None], bytes] = {m: bytes([i]) for i, m in enumerate(_MEMBERS)}


def _whole(parts: Iterator[tuple[str, Any]]) -> dict[str, Any]:
    """A `dump_parts`-style iterator as one dict (nested iterators too)."""
    return {
        name: _whole(value) if isinstance(value, Iterator) else value.text() if isinstance(value, Packed) else value
        for name, value in parts
    }


_EVENT_COLUMNS = (
    ("ts", "q"), ("tool", "i"), ("session", "i"), ("model", "i"), ("origin", "i"), ("tokens", "q"),
    ("input", "q"), ("output", "q"), ("cached", "q"), ("credits", "d"), ("weight", "d"),
)  # fmt: skip
"""The detail events' number columns in the cache and their array type codes."""
_MICROSECOND = timedelta(microseconds=1)


def _key(event: UsageEvent) -> TallyKey:
    """The tally a folded event is counted in (`aggregates.tally_key`, by dict lookups on the hot path)."""
    service = event.service
    return (
        event.tool,
        event.model,
        _VALUES[event.kind],
        _VALUES[event.role],
        _VALUES[service] if service is not None else None,
    )


def replaces(old: UsageEvent, new: UsageEvent) -> bool:
    """Whether `new`, a copy of `old` (same tool and key), takes its place: the one rule of both tiers.

    A model call's copy with more tokens wins (one line per streamed block, the last the fullest); any
    copy that names the model when the kept one did not wins too.
    """
    return (new.kind is EventKind.CALL and new.tokens > old.tokens) or (old.model is None and new.model is not None)


def _digest(tool: str, key: str) -> int:
    # Not hash(): str hashes are salted per process, and digests are cached across runs.
    raw = hashlib.blake2b(f"{tool}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(raw, "big", signed=True)


@dataclass(frozen=True, slots=True)
class LedgerSize:
    """What the ledger holds: its memory is bounded by these, not by the number of events seen."""

    detail_events: int
    buckets: int
    tallies: int
    digests: int
    prompt_costs: int


class Ledger:
    """Deduplicated events, by tool and dedup key.

    Duplicates are expected: Claude Code writes one line per streamed content block, rewritten JSON
    files are re-read whole, SQLite rows are updated in place. The same (tool, key) is kept once; for
    model calls in the detail tier the copy with the most tokens wins. Deleting a log does not refund
    usage, so events stay when their file goes away.

    Args:
        meter: prices each event as it arrives (credits and legacy weight at the event's own instant).
    """

    def __init__(self, meter: Meter | None = None) -> None:
        self.meter: Meter = meter or FlatMeter()
        self._events: dict[tuple[str, str], UsageEvent] = {}
        self._prices: dict[tuple[str, str], tuple[float, float]] = {}
        self._detail = DetailIndex(self._events, self._prices)
        """The detail events indexed by time (sums, request times, sessions): what queries read."""
        self._calls = _Tier()
        self._mcp = _Tier()
        self._prompt_costs: deque[tuple[datetime, float]] = deque(maxlen=PROMPT_COSTS_KEPT)
        """(prompt time, credits of the prompt's calls) of prompts folded out of the detail tier, oldest first."""
        self._folded_prompts = _FoldedPrompts()
        """Prompts folded on arrival, priced as their calls come (settled into `_prompt_costs` by `prune`)."""
        self._limit_hits: dict[tuple[str, datetime], LimitHit] = {}
        self._last_activity: dict[str, datetime] = {}
        self._last_model: dict[str, tuple[datetime, str]] = {}
        self._strings: dict[str, str] = {}
        """The session and model ids of detail events, one string each (`_shared`)."""
        self._recent_folds: dict[tuple[str, str], tuple[_Tier, int, UsageEvent, tuple[float, float]]] = {}
        """The last `RECENT_FOLDS_KEPT` events folded on arrival: (tier, minute, event, price), oldest first."""
        self.version = 0
        """Bumped on every change, so views can tell whether anything moved."""
        self.calls_floor: datetime | None = None
        """Prompts and calls older than this are only noted (last activity), not kept."""
        self.mcp_floor: datetime | None = None
        """MCP calls older than this are only noted, not kept."""
        self.detail_floor: datetime | None = None
        """Events older than this (and within their floor) are folded into buckets."""

    def __len__(self) -> int:
        return len(self._events)

    def size(self) -> LedgerSize:
        """How much the ledger holds (the memory bound's terms)."""
        calls, mcp = self._calls.size(), self._mcp.size()
        return LedgerSize(
            len(self._events), calls[0] + mcp[0], calls[1] + mcp[1], calls[2] + mcp[2], len(self._prompt_costs)
        )

    def add(self, event: UsageEvent) -> bool:
        """Add an event; returns True when the ledger changed.

        Events older than their floor still update the tool's last activity and model, so the initial
        scan of a long history never holds more than the horizon in memory.
        """
        mcp = event.kind is EventKind.MCP
        floor = self.mcp_floor if mcp else self.calls_floor
        if floor is not None and event.ts < floor:
            self._note(event)
            return False
        if self.detail_floor is not None and event.ts < self.detail_floor:
            changed = self._fold_new(event, self._mcp if mcp else self._calls)
            self._note(event)
            return changed
        ident = (event.tool, event.key)
        old = self._events.get(ident)
        if old is not None and not replaces(old, event):
            return False
        self._keep(ident, event)
        return True

    def _fold_new(self, event: UsageEvent, tier: _Tier) -> bool:
        """Fold an event that arrived below the detail floor, as the detail tier would have kept it.

        A later copy of a recently folded event replaces it by the detail tier's rule (`replaces`), moving
        to its copy's minute, so a history read cold counts what one read as it happened and folded later
        counts. Past `RECENT_FOLDS_KEPT` events only the digest is left, and the first copy stays.
        """
        ident = (event.tool, event.key)
        recent = self._recent_folds.get(ident)
        if recent is not None:
            old_tier, old_minute, old, (old_credits, old_weight) = recent
            if not replaces(old, event):
                return False
            old_tier.untally(old_minute, old, old_credits, old_weight)
            if old.kind is EventKind.CALL:
                self._folded_prompts.call(old, -old_credits)
            tier.claim(event)  # its own minute knows the key too (None when it is the old one's)
            minute = tier.minute(event)
        else:
            # Claimed before pricing: a re-read copy of a folded event costs a digest, no pricing.
            claimed = tier.claim(event)
            if claimed is None:
                return False
            minute = claimed
        price = self._price(event)
        tier.tally(minute, event, *price)
        if event.kind is EventKind.PROMPT:
            self._folded_prompts.prompt(event)
        elif event.kind is EventKind.CALL:
            self._folded_prompts.call(event, price[0])
        recents = self._recent_folds
        recents.pop(ident, None)
        recents[ident] = (tier, minute, event, price)
        if len(recents) > RECENT_FOLDS_KEPT:
            del recents[next(iter(recents))]
        self.version += 1
        return True

    def _keep(self, ident: tuple[str, str], event: UsageEvent) -> None:
        event = self._shared(event)
        price = self._price(event)
        self._detail.put(ident, event, price, self._events.get(ident), self._prices.get(ident))
        self._events[ident] = event
        self._prices[ident] = price
        self._note(event)
        self.version += 1

    def _shared(self, event: UsageEvent) -> UsageEvent:
        """`event`, its session and model the one string the ledger already holds for them (a copy if not).

        A reader makes a new string for every record (a session id is 85 bytes, a model id 55), and the
        detail tier keeps thousands of events of a handful of sessions and models.
        """
        strings = self._strings
        session, model = event.session, event.model
        shared_session = strings.setdefault(session, session) if session is not None else None
        shared_model = strings.setdefault(model, model) if model is not None else None
        if len(strings) > STRINGS_KEPT:
            strings.clear()  # sharing is only a saving: a long-running process starts the table again
        if shared_session is session and shared_model is model:
            return event
        return replace(event, session=shared_session, model=shared_model)

    def _price(self, event: UsageEvent) -> tuple[float, float]:
        seen = self._last_model.get(event.tool)
        return self.meter.price(event, event.model or (seen[1] if seen else None))

    def add_all(self, events: Iterable[UsageEvent]) -> int:
        """Add many events; returns how many changed the ledger."""
        return sum(1 for e in events if self.add(e))

    def add_batch(self, events: Sequence[UsageEvent]) -> bool:
        """Add one poll's events, each (tool, key) once: its winning copy, where its first copy stood.

        Claude Code writes a line per streamed content block, so a cold scan meets most model calls two or
        three times in a row. Adding each copy folds it and then takes it out again for the next (about a
        third of a cold scan's ledger work); picking the winner first by the same rule (`replaces`) leaves
        the ledger as adding them one by one would. Every copy that lost is still noted (last activity and
        model) where it stood, as adding it would have.

        Returns:
            Whether the ledger changed.
        """
        winners: dict[tuple[str, str], UsageEvent] = {}
        for event in events:
            ident = (event.tool, event.key)
            kept = winners.get(ident)
            if kept is None or replaces(kept, event):
                winners[ident] = event
        add, note = self.add, self._note
        changed = False
        for event in events:
            winner = winners.pop((event.tool, event.key), None)
            if winner is None or winner is not event:
                note(event)  # a copy that lost (or the first copy, when a later one won)
            if winner is not None:
                changed |= add(winner)
        return changed

    def add_limit_hit(self, hit: LimitHit) -> bool:
        """Record a rate-limit error; returns True when it was new."""
        ident = (hit.tool, hit.ts)
        if ident in self._limit_hits:
            return False
        self._limit_hits[ident] = hit
        self.version += 1
        return True

    def _note_activity(self, tool: str, ts: datetime) -> None:
        last = self._last_activity.get(tool)
        if last is None or ts > last:
            self._last_activity[tool] = ts

    def _note(self, event: UsageEvent) -> None:
        self._note_activity(event.tool, event.ts)
        if event.kind is EventKind.CALL and event.model:
            seen = self._last_model.get(event.tool)
            if seen is None or event.ts >= seen[0]:
                self._last_model[event.tool] = (event.ts, event.model)

    def dump(self) -> dict[str, Any]:
        """Everything the ledger holds as plain JSON-able values (for the on-disk cache): `dump_parts` whole."""
        return _whole(self.dump_parts())

    def dump_parts(self) -> Iterator[tuple[str, Any]]:
        """What `dump` returns, one (name, value) at a time, a value itself such an iterator where it is large.

        The cache writes each part as it comes, so the document is never whole in memory beside the
        ledger. The detail events are columns (`_dump_events`), the buckets too (`_Tier.dump`): a warm
        start decodes a few long strings in C rather than a list per event and per tally.
        """
        yield "events", self._dump_events()
        yield "buckets", iter((("calls", self._calls.dump()), ("mcp", self._mcp.dump())))
        yield "prompt_costs", [[ts.timestamp(), credits] for ts, credits in self._prompt_costs]
        yield (
            "limit_hits",
            [
                [h.ts.timestamp(), h.tool, h.code, h.reset_at.timestamp() if h.reset_at else None]
                for h in self._limit_hits.values()
            ],
        )
        yield "last_activity", {tool: ts.timestamp() for tool, ts in self._last_activity.items()}
        yield "last_model", {tool: [ts.timestamp(), model] for tool, (ts, model) in self._last_model.items()}

    def _dump_events(self) -> Iterator[tuple[str, Any]]:
        """The detail events as columns: instants in microseconds, strings as indexes into one table (-1 None)."""
        strings: dict[str | None, int] = {None: -1}
        index = strings.setdefault
        events = list(self._events.values())
        prices = [self._prices[ident] for ident in self._events]
        flags = _FLAGS
        yield "flags", base64.b64encode(b"".join([flags[e.kind, e.role, e.service] for e in events])).decode("ascii")
        yield "keys", [e.key for e in events]
        columns = (
            ("ts", lambda: array("q", [(e.ts - EPOCH) // _MICROSECOND for e in events])),
            ("tool", lambda: array("i", [index(e.tool, len(strings) - 1) for e in events])),
            ("session", lambda: array("i", [index(e.session, len(strings) - 1) for e in events])),
            ("model", lambda: array("i", [index(e.model, len(strings) - 1) for e in events])),
            ("origin", lambda: array("i", [index(e.origin, len(strings) - 1) for e in events])),
            ("tokens", lambda: array("q", [e.tokens for e in events])),
            ("input", lambda: array("q", [e.input_tokens for e in events])),
            ("output", lambda: array("q", [e.output_tokens for e in events])),
            ("cached", lambda: array("q", [e.cached_tokens for e in events])),
            ("credits", lambda: array("d", [p[0] for p in prices])),
            ("weight", lambda: array("d", [p[1] for p in prices])),
        )
        for name, column in columns:
            yield name, Packed(column)
        yield "strings", [text for text in strings if text is not None]

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load what `dump` produced (raises `ValueError`/`KeyError`/`TypeError`/`IndexError` on a bad dump)."""

        def when(x: float) -> datetime:
            return datetime.fromtimestamp(x, tz=timezone.utc)

        for tool, (ts, model) in data["last_model"].items():
            seen = self._last_model.get(tool)
            if seen is None or when(ts) >= seen[0]:
                self._last_model[tool] = (when(ts), model)
        self._restore_events(data["events"])
        self._detail.rebuild()
        self.version += 1
        self._calls.restore(data["buckets"]["calls"])
        self._mcp.restore(data["buckets"]["mcp"])
        self._prompt_costs.extend((when(ts), float(c)) for ts, c in data["prompt_costs"])
        for ts, tool, code, reset in data["limit_hits"]:
            self.add_limit_hit(LimitHit(when(ts), tool, code, when(reset) if reset is not None else None))
        for tool, ts in data["last_activity"].items():
            self._note_activity(tool, when(ts))

    def _restore_events(self, doc: Mapping[str, Any]) -> None:
        """Load `_dump_events`'s columns.

        Each event's last activity and model are not noted again: `last_activity` and `last_model` were
        saved as they stood, every detail event already in them.
        """
        strings = doc["strings"]
        if not all(isinstance(x, str) for x in strings):
            raise TypeError("a string of the table is not one")
        table = [*strings, None]  # index -1: None
        self._strings.update((text, text) for text in strings[:STRINGS_KEPT])  # new copies share them too
        keys = doc["keys"]
        flags = base64.b64decode(doc["flags"], validate=True)
        cols = {name: _unpack(doc[name], code) for name, code in _EVENT_COLUMNS}
        n = len(keys)
        if len(flags) != n or any(len(col) != n for col in cols.values()):
            raise ValueError("event columns disagree")
        if not all(isinstance(k, str) for k in keys):
            raise TypeError("a dedup key is not a string")
        for name in ("tool", "session", "model", "origin"):
            col = cols[name]
            if n and (min(col) < -1 or max(col) >= len(strings)):
                raise IndexError(f"{name} out of the string table")
        if n and min(cols["tool"]) < 0:
            raise ValueError("an event without a tool")
        before = len(self._events)
        events, prices, stamp, utc, member = self._events, self._prices, datetime.fromtimestamp, timezone.utc, _MEMBERS
        for flag, us, tool, key, session, model, origin, tokens, inp, out, cached, credits, weight in zip(
            flags, cols["ts"], cols["tool"], keys, cols["session"], cols["model"], cols["origin"], cols["tokens"],
            cols["input"], cols["output"], cols["cached"], cols["credits"], cols["weight"], strict=True,
        ):  # fmt: skip
            kind, role, service = member[flag]  # a flag no member has raises IndexError
            tool_id = table[tool]
            event = UsageEvent(
                kind, stamp(us / 1e6, utc), tool_id, key, table[session], table[model], role, service,
                tokens, inp, out, table[origin], cached,
            )  # fmt: skip
            # Priced when first seen (the cache is only valid under the same tariff): no second pricing.
            ident = (tool_id, key)
            events[ident] = event
            prices[ident] = (credits, weight)
        if len(events) != before + n:
            raise ValueError("an event twice")

    def adopt(self, other: Ledger) -> None:
        """Take over everything `other` holds (used to swap in a cache restored on the side)."""
        self._events = other._events
        self._prices = other._prices
        self._detail = other._detail
        self._calls = other._calls
        self._mcp = other._mcp
        self._prompt_costs = other._prompt_costs
        self._limit_hits = other._limit_hits
        self._last_activity = other._last_activity
        self._last_model = other._last_model
        self._recent_folds = other._recent_folds
        self._strings = other._strings
        self._folded_prompts = other._folded_prompts
        self.version += 1

    def prune(self, calls_before: datetime, mcp_before: datetime, detail_before: datetime | None = None) -> int:
        """Fold detail older than `detail_before` into buckets; forget what is older than the floors.

        Prompts and calls older than `calls_before` and MCP calls older than `mcp_before` are dropped
        (buckets whose minute ended before them too). The same instants become the floors for later
        `add`s. Without `detail_before` nothing is folded: the detail tier reaches back to the floors.
        A floor never moves back (`raise_floors`).

        Returns:
            How many detail events left the detail tier (dropped or folded).
        """
        calls_before, mcp_before, detail_before = self.raise_floors(calls_before, mcp_before, detail_before)
        # Only the minutes before the latest cut can hold an event that leaves: the index names them.
        cut = max(calls_before, mcp_before, detail_before or calls_before)
        moved = [
            ident
            for ident in self._detail.older_than(cut)
            if (e := self._events[ident]).ts < (mcp_before if e.kind is EventKind.MCP else calls_before)
            or (detail_before is not None and e.ts < detail_before)
        ]
        if detail_before is not None and moved:
            self._remember_prompt_costs(detail_before)
        self._settle_folded_prompts()
        for ident in moved:
            event = self._events.pop(ident)
            credits, weight = self._prices.pop(ident)
            self._detail.drop(ident, event, (credits, weight))
            if event.ts >= (mcp_before if event.kind is EventKind.MCP else calls_before):
                (self._mcp if event.kind is EventKind.MCP else self._calls).fold(event, credits, weight)
        changed = bool(moved)
        changed |= self._calls.drop_before(calls_before)
        changed |= self._mcp.drop_before(mcp_before)
        while self._prompt_costs and self._prompt_costs[0][0] < calls_before:
            self._prompt_costs.popleft()
        for hit_ident in [i for i, h in self._limit_hits.items() if h.ts < calls_before]:
            del self._limit_hits[hit_ident]
            changed = True
        if changed:
            self.version += 1
        return len(moved)

    def raise_floors(
        self, calls_before: datetime, mcp_before: datetime, detail_before: datetime | None
    ) -> tuple[datetime, datetime, datetime | None]:
        """Move the floors up to the instants asked for, never back; returns the floors now in effect.

        What an `add` dropped or folded under a higher floor stays dropped or folded: lowering the detail
        floor again would leave folded events above it, where `count` no longer reads the buckets (a cold
        start, whose floors come from the clock before pruning measures from the newest event, counted
        the week as 0) and where a re-read copy would enter the detail tier and count twice. So the
        ledger's tiers depend only on the highest floors seen, the same after a cold scan as after a
        cache restore.
        """

        def later(old: datetime | None, new: datetime) -> datetime:
            return new if old is None or new > old else old

        self.calls_floor = later(self.calls_floor, calls_before)
        self.mcp_floor = later(self.mcp_floor, mcp_before)
        if detail_before is not None:
            self.detail_floor = later(self.detail_floor, detail_before)
        return self.calls_floor, self.mcp_floor, self.detail_floor if detail_before is not None else None

    def _remember_prompt_costs(self, before: datetime) -> None:
        """Keep the credits of the prompts about to be folded (their calls are still in detail)."""
        costs = self._detail.prompt_costs_before(before)
        known = {ts for ts, _ in self._prompt_costs}
        for item in sorted(costs):
            if item[0] not in known:
                self._prompt_costs.append(item)

    def _settle_folded_prompts(self) -> None:
        """Move the costs of prompts folded on arrival into `_prompt_costs`, keeping it sorted and bounded."""
        costs = self._folded_prompts.costs()
        if not costs:
            return
        self._folded_prompts.clear()
        known = {ts for ts, _ in self._prompt_costs}
        merged = sorted([*self._prompt_costs, *(c for c in costs if c[0] not in known)])
        self._prompt_costs = deque(merged[-PROMPT_COSTS_KEPT:], maxlen=PROMPT_COSTS_KEPT)
        self.version += 1

    def prompt_cost_median(self, now: datetime, within: timedelta, last: int = PROMPT_COSTS_KEPT) -> tuple[float, int]:
        """Median credits of the last `last` prompts that cost anything within `within` before `now`.

        The latest prompt is left out while it may still be running (its calls are not all in yet). A
        prompt costs its session's calls from its instant until the session's next prompt (`DetailIndex`).

        Returns:
            (median, how many prompts it is over); (0.0, 0) when none.
        """
        costs = [(ts, c) for ts, c in (*self._prompt_costs, *self._folded_prompts.costs()) if now - within <= ts <= now]
        # Only the newest prompts can be picked: enough that `last` cost anything besides the latest one.
        costs += self._detail.recent_prompt_costs(now - within, now, last + 1)
        costs.sort()
        picked = [c for _, c in costs[:-1] if c > 0][-last:]
        if not picked:
            return 0.0, 0
        return _median(picked), len(picked)

    def events(self, start: datetime | None = None, end: datetime | None = None) -> list[UsageEvent]:
        """Detail events with `start <= ts < end`, oldest first."""
        picked = [e for e in self._events.values() if (start is None or e.ts >= start) and (end is None or e.ts < end)]
        picked.sort(key=lambda e: e.ts)
        return picked

    def request_times(self, end: datetime) -> SortedTimes:
        """Timestamps of billable detail requests before `end`, oldest first: prompts, model calls, vision MCP calls."""
        return self._detail.request_times(end)

    def limit_hits(self) -> list[LimitHit]:
        """Every remembered rate-limit error, oldest first."""
        return sorted(self._limit_hits.values(), key=lambda h: h.ts)

    def count(self, start: datetime, end: datetime, tool: str | None = None, *, detail_only: bool = False) -> Counts:
        """Counts of events with `start <= ts < end`, for one tool or all (buckets by their minute).

        `detail_only` leaves the folded buckets out (what the timeline shows: events one by one).
        """
        return Counts.of_tallies(self._tallies(start, end, detail_only), tool)

    def count_by_tool(self, start: datetime, end: datetime) -> dict[str, Counts]:
        """`count(start, end, tool)` for every tool with something in the span, in one pass."""
        by_tool: dict[str, dict[TallyKey, Tally]] = {}
        for key, tally in self._tallies(start, end).items():
            by_tool.setdefault(key[0], {})[key] = tally
        return {tool: Counts.of_tallies(tallies) for tool, tallies in by_tool.items()}

    def _tallies(self, start: datetime, end: datetime, detail_only: bool = False) -> dict[TallyKey, Tally]:
        acc: dict[TallyKey, Tally] = {}
        self._detail.sum_into(acc, start, end)
        if not detail_only and (self.detail_floor is None or start < self.detail_floor):
            self._calls.sum_into(acc, start, end)
            self._mcp.sum_into(acc, start, end)
        return acc

    def newest(self) -> datetime | None:
        """The latest instant of any event seen, kept or not (restored from the cache with the rest)."""
        return max(self._last_activity.values(), default=None)

    def activity(self, tool: str, now: datetime) -> ToolActivity:
        """Last activity and the model of the latest call of `tool`, as of `now`."""
        last = self._last_activity.get(tool)
        model = self._last_model.get(tool)
        if last is not None and last > now:
            # Replaying an earlier instant: look only at what had happened by then.
            past = [e for e in self._events.values() if e.tool == tool and e.ts <= now]
            last = max((e.ts for e in past), default=None)
            calls = [e for e in past if e.kind is EventKind.CALL and e.model]
            model = max(((e.ts, e.model or "") for e in calls), default=None)
        return ToolActivity(
            last_activity=last,
            last_model=model[0] if model else None,
            model=model[1] if model else None,
        )
