"""The contract every tool adapter follows, and the context it runs in."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from zai_dash.domain.events import LimitHit, UsageEvent
from zai_dash.domain.snapshot import SourceHealth, ToolConfigInfo

if TYPE_CHECKING:
    from zai_dash.sources.tail import TailSet


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class SourceContext:
    """Where a source looks and what it may assume.

    Attributes:
        home: the home directory (tests point it at a temp dir).
        env: environment variables (tests pass their own).
        since: records older than this cannot matter (the month window or the cycle horizon,
            whichever is earlier); files last modified before it are skipped without opening.
        calls_since: prompts and model calls older than this cannot matter (the cycle horizon); only
            MCP calls (monthly pool) are needed between `since` and this. None: everything matters.
        clock: the wall clock, to reject timestamps far in the future.
        extra_roots: tool id → extra locations from config.
    """

    home: Path
    env: Mapping[str, str] = field(default_factory=dict)
    since: datetime | None = None
    calls_since: datetime | None = None
    clock: Callable[[], datetime] = _utcnow
    extra_roots: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, since: datetime | None = None) -> SourceContext:
        """The real user's context: `$HOME` and `os.environ`."""
        return cls(home=Path(os.environ.get("HOME") or Path.home()), env=dict(os.environ), since=since)

    def xdg(self, name: str, default: str) -> Path:
        """An XDG base directory (`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, …) or its default under home."""
        value = self.env.get(name)
        return Path(value) if value else self.home / default

    def path_relevant(self, path: Path) -> bool:
        """Whether `path` exists and was modified since `since` (one stat, no read)."""
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return False
        return self.mtime_relevant(mtime)

    def mtime_relevant(self, mtime: float) -> bool:
        """Whether a file last modified at `mtime` (epoch s) may hold records newer than `since`."""
        return self.since is None or mtime >= self.since.timestamp()


class CallTokens(NamedTuple):
    """One call's tokens, normalised as `UsageEvent` wants them.

    Attributes:
        input: prompt-side tokens, cached reads and cache writes included.
        output: completion tokens (reasoning included).
        cached: the part of `input` read from the prompt cache.
    """

    input: int = 0
    output: int = 0
    cached: int = 0

    @property
    def total(self) -> int:
        """Input plus output."""
        return self.input + self.output

    def plus(self, other: CallTokens) -> CallTokens:
        """Field-wise sum."""
        return CallTokens(self.input + other.input, self.output + other.output, self.cached + other.cached)


class Skips:
    """Counts of skipped records by reason, with the first place each reason was seen."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.first: dict[str, str] = {}
        self.files = 0
        self.file_counts: Counter[str] = Counter()
        """The part of `counts` that is whole files (looked at again after a restart, so never cached)."""

    def add(self, reason: str, where: str = "", n: int = 1) -> None:
        """Count `n` records skipped for `reason` (`where` is a file:line for `doctor`)."""
        self.counts[reason] += n
        self.first.setdefault(reason, where)

    def add_file(self, reason: str, where: str) -> None:
        """Count a whole file skipped (unreadable, a directory, …)."""
        self.files += 1
        self.file_counts[reason] += 1
        self.add(reason, where)

    @property
    def lines(self) -> int:
        """Total skipped records."""
        return sum(self.counts.values())


SPILL_EVENTS = 4096
"""A poll that has found this many events hands them over before reading on (see `ToolSource.spill`)."""


@dataclass
class SourceBatch:
    """What one poll found: new or updated events and limit hits."""

    events: list[UsageEvent] = field(default_factory=list)
    limit_hits: list[LimitHit] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.limit_hits)


@dataclass(frozen=True)
class Root:
    """A location a source looks at."""

    path: Path
    exists: bool


class ToolSource(ABC):
    """One tool's adapter (or one storage generation of it).

    Subclasses know where the tool keeps data (honouring its env vars), read only what is new on each
    `poll`, and never raise for bad input: they count it in `skips` and carry on. They never write
    to the tool's files or create files beside them.
    """

    name: str = ""
    """Source name shown in `doctor` (usually the tool id, or tool id + layout)."""
    tools: tuple[str, ...] = ()
    """Tool ids this source can produce events for."""

    def __init__(self, ctx: SourceContext) -> None:
        self.ctx = ctx
        self.skips = Skips()
        self.error: str | None = None
        """One-line reason when the source as a whole is failing (locked database, unreadable root)."""
        self.refused: int | None = None
        """Prompts seen that the server refused (every attempt answered 429): not billed. None when this
        tool's files cannot tell a refused prompt from one never sent (the adapter sets 0 when they can)."""
        self.spill: Callable[[SourceBatch], None] | None = None
        """Where a poll may hand over what it has found so far; the receiver takes the events and limit hits
        and empties the batch. The engine folds them into the ledger at once, so a first scan of a long
        history holds a few thousand events at a time, not the whole history. Handing over early is safe
        in a failed poll too (`scan.poll_transaction`): the ledger keeps each key once, so the lines read
        again after the rollback add nothing twice, and no offset moves past events not taken."""

    def spill_if_full(self, batch: SourceBatch) -> None:
        """Hand `batch` to `spill` once it holds `SPILL_EVENTS` events (call between records)."""
        if self.spill is not None and len(batch.events) >= SPILL_EVENTS:
            self.spill(batch)

    @abstractmethod
    def roots(self) -> list[Root]:
        """Every location this source looks at, found or not; the engine watches those that exist."""

    @abstractmethod
    def poll(self) -> SourceBatch:
        """Read what is new since the last poll. Must not raise for bad input."""

    @abstractmethod
    def file_count(self) -> int:
        """How many files or databases are currently being read."""

    def tail_sets(self) -> list[TailSet]:
        """The append-only tail sets this source reads through, for the on-disk cache (none by default)."""
        return []

    def configs(self) -> dict[str, ToolConfigInfo]:
        """Per tool id: the configured model and endpoint from the tool's settings (never secrets)."""
        return {}

    def health(self) -> list[SourceHealth]:
        """This source's health line(s) for `doctor`, the tools table and the snapshot."""
        roots = self.roots()
        found = any(r.exists for r in roots)
        if self.error:
            status, detail = "error", self.error
        elif found:
            status, detail = "ok", f"{self.file_count()} file(s)"
        else:
            status, detail = "absent", "no data found"
        return [
            SourceHealth(
                name=self.name,
                tool=self.tools[0] if len(self.tools) == 1 else None,
                status=status,
                detail=detail,
                roots=tuple((str(r.path), r.exists) for r in roots),
                files=self.file_count(),
                skipped=dict(self.skips.counts),
                refused=self.refused,
            )
        ]
