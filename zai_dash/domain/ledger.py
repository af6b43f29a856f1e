"""The ledger: deduplicated usage events and the counts views ask of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from zai_dash.domain.events import CallRole, EventKind, LimitHit, McpService, UsageEvent


@dataclass(slots=True)
class Counts:
    """Counts of one kind of question ("how many of what in [a, b)")."""

    prompts: int = 0
    calls: int = 0
    calls_by_role: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in CallRole})
    mcp_by_service: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in McpService})
    tokens: int = 0

    def add(self, event: UsageEvent) -> None:
        """Count one event."""
        if event.kind is EventKind.PROMPT:
            self.prompts += 1
        elif event.kind is EventKind.CALL:
            self.calls += 1
            self.calls_by_role[event.role.value] += 1
            self.tokens += event.tokens
        elif event.service is not None:
            self.mcp_by_service[event.service.value] += 1


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """What the ledger knows of one tool regardless of window: last activity and last model."""

    last_activity: datetime | None
    last_model: datetime | None
    model: str | None


class Ledger:
    """Deduplicated events, by tool and dedup key.

    Duplicates are expected: Claude Code writes one line per streamed content block, rewritten JSON
    files are re-read whole, SQLite rows are updated in place. The same (tool, key) is kept once; for
    model calls the copy with the most tokens wins. Deleting a log does not refund usage, so events
    stay when their file goes away.

    Memory is bounded by `prune`: prompts and calls older than the cycle horizon and MCP calls older
    than the month window are dropped, keeping only per-tool last activity.
    """

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], UsageEvent] = {}
        self._limit_hits: dict[tuple[str, datetime], LimitHit] = {}
        self._last_activity: dict[str, datetime] = {}
        self._last_model: dict[str, tuple[datetime, str]] = {}
        self.version = 0
        """Bumped on every change, so views can tell whether anything moved."""
        self.calls_floor: datetime | None = None
        """Prompts and calls older than this are only noted (last activity), not kept."""
        self.mcp_floor: datetime | None = None
        """MCP calls older than this are only noted, not kept."""

    def __len__(self) -> int:
        return len(self._events)

    def add(self, event: UsageEvent) -> bool:
        """Add an event; returns True when the ledger changed.

        Events older than the floors still update the tool's last activity and model, so the initial
        scan of a long history never holds more than the horizon in memory.
        """
        floor = self.mcp_floor if event.kind is EventKind.MCP else self.calls_floor
        if floor is not None and event.ts < floor:
            self._note(event)
            return False
        ident = (event.tool, event.key)
        old = self._events.get(ident)
        if old is not None and (event.kind is not EventKind.CALL or event.tokens <= old.tokens):
            if old.model is None and event.model is not None:
                self._events[ident] = event
                self._note(event)
                self.version += 1
                return True
            return False
        self._events[ident] = event
        self._note(event)
        self.version += 1
        return True

    def add_all(self, events: Iterable[UsageEvent]) -> int:
        """Add many events; returns how many changed the ledger."""
        return sum(1 for e in events if self.add(e))

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
        """Everything the ledger holds as plain JSON-able values (for the on-disk cache)."""
        return {
            "events": [
                [
                    e.kind.value,
                    e.ts.timestamp(),
                    e.tool,
                    e.key,
                    e.session,
                    e.model,
                    e.role.value,
                    e.service.value if e.service else None,
                    e.tokens,
                    e.input_tokens,
                    e.output_tokens,
                    e.origin,
                ]
                for e in self._events.values()
            ],
            "limit_hits": [
                [h.ts.timestamp(), h.tool, h.code, h.reset_at.timestamp() if h.reset_at else None]
                for h in self._limit_hits.values()
            ],
            "last_activity": {tool: ts.timestamp() for tool, ts in self._last_activity.items()},
            "last_model": {tool: [ts.timestamp(), model] for tool, (ts, model) in self._last_model.items()},
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load what `dump` produced (raises `ValueError`/`KeyError`/`TypeError` on a bad dump)."""

        def when(x: float) -> datetime:
            return datetime.fromtimestamp(x, tz=timezone.utc)

        for kind, ts, tool, key, session, model, role, service, tokens, inp, out, origin in data["events"]:
            self.add(
                UsageEvent(
                    EventKind(kind),
                    when(ts),
                    tool,
                    key,
                    session,
                    model,
                    CallRole(role),
                    McpService(service) if service else None,
                    int(tokens),
                    int(inp),
                    int(out),
                    origin,
                )
            )
        for ts, tool, code, reset in data["limit_hits"]:
            self.add_limit_hit(LimitHit(when(ts), tool, code, when(reset) if reset is not None else None))
        for tool, ts in data["last_activity"].items():
            self._note_activity(tool, when(ts))
        for tool, (ts, model) in data["last_model"].items():
            seen = self._last_model.get(tool)
            if seen is None or when(ts) >= seen[0]:
                self._last_model[tool] = (when(ts), model)

    def adopt(self, other: Ledger) -> None:
        """Take over everything `other` holds (used to swap in a cache restored on the side)."""
        self._events = other._events
        self._limit_hits = other._limit_hits
        self._last_activity = other._last_activity
        self._last_model = other._last_model
        self.version += 1

    def prune(self, calls_before: datetime, mcp_before: datetime) -> int:
        """Forget prompts and calls older than `calls_before` and MCP calls older than `mcp_before`.

        The same instants become the floors for later `add`s.

        Returns:
            How many events were dropped.
        """
        self.calls_floor, self.mcp_floor = calls_before, mcp_before
        drop = [
            ident
            for ident, e in self._events.items()
            if e.ts < (mcp_before if e.kind is EventKind.MCP else calls_before)
        ]
        for ident in drop:
            del self._events[ident]
        for hit_ident in [i for i, h in self._limit_hits.items() if h.ts < calls_before]:
            del self._limit_hits[hit_ident]
        if drop:
            self.version += 1
        return len(drop)

    def events(self, start: datetime | None = None, end: datetime | None = None) -> list[UsageEvent]:
        """Events with `start <= ts < end`, oldest first."""
        picked = [e for e in self._events.values() if (start is None or e.ts >= start) and (end is None or e.ts < end)]
        picked.sort(key=lambda e: e.ts)
        return picked

    def request_times(self, end: datetime) -> list[datetime]:
        """Timestamps of billable requests before `end`: prompts, model calls and vision MCP calls."""
        return sorted(
            e.ts
            for e in self._events.values()
            if e.ts < end and (e.kind is not EventKind.MCP or e.service is McpService.VISION)
        )

    def limit_hits(self) -> list[LimitHit]:
        """Every remembered rate-limit error, oldest first."""
        return sorted(self._limit_hits.values(), key=lambda h: h.ts)

    def count(self, start: datetime, end: datetime, tool: str | None = None) -> Counts:
        """Counts of events with `start <= ts < end`, for one tool or all."""
        counts = Counts()
        for e in self._events.values():
            if start <= e.ts < end and (tool is None or e.tool == tool):
                counts.add(e)
        return counts

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
