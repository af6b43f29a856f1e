"""The contract every tool adapter follows, and the context it runs in."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from zai_dash.clock import SYSTEM_CLOCK
from zai_dash.domain.events import LimitHit, UsageEvent
from zai_dash.domain.snapshot import SourceHealth, ToolConfigInfo

if TYPE_CHECKING:
    from zai_dash.sources.tail import TailSet


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
    clock: Callable[[], datetime] = SYSTEM_CLOCK.now
    extra_roots: Mapping[str, tuple[Path, ...]] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, since: datetime | None = None) -> SourceContext:
        """The real user's context: `$HOME` and `os.environ`."""
        return cls(home=Path(os.environ.get("HOME") or Path.home()), env=dict(os.environ), since=since)

    def xdg(self, name: str, default: str) -> Path:
        """An XDG base directory (`XDG_CONFIG_HOME`, `XDG_DATA_HOME`, …) or its default under home."""
        value = self.env.get(name)
        return Path(value) if value else self.home / default

    def with_extra_roots(self, tool: str, own: Iterable[Path]) -> list[Path]:
        """A tool's own locations, then its configured extra roots (`[tools.<id>] roots`), each once."""
        return list(dict.fromkeys([*own, *self.extra_roots.get(tool, ())]))

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

    def checkpoint(self) -> tuple[Any, ...]:
        """Every count as it stands, for `rollback` (a failed poll's skips are counted again on its retry)."""
        return Counter(self.counts), dict(self.first), self.files, Counter(self.file_counts)

    def rollback(self, mark: tuple[Any, ...]) -> None:
        """Put every count back where `checkpoint` found it."""
        counts, first, self.files, file_counts = mark
        self.counts, self.first, self.file_counts = Counter(counts), dict(first), Counter(file_counts)

    def export_lines(self) -> dict[str, dict[str, Any]]:
        """The skipped records behind the offsets read so far: `counts` and `first` (reason → where).

        Whole files (unreadable, a FIFO, …) are left out: they are looked at again after a restart and
        counted again, so keeping them would add one per restart.
        """
        lines = self.counts - self.file_counts
        return {"counts": dict(lines), "first": {k: v for k, v in self.first.items() if k in lines}}

    def restore_lines(self, counts: Mapping[str, int], first: Mapping[str, str]) -> None:
        """Add counts saved by `export_lines` (their lines lie behind restored offsets: never read again)."""
        self.counts.update(counts)
        for reason, where in first.items():
            self.first.setdefault(reason, where)


SPILL_EVENTS = 4096
"""A poll that has found this many events hands them over before reading on (see `ToolSource.spill`)."""


@dataclass
class SourceBatch:
    """What one poll found: new or updated events and limit hits."""

    events: list[UsageEvent] = field(default_factory=list)
    limit_hits: list[LimitHit] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.events or self.limit_hits)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll of a source came to (see `scan.poll_transaction`).

    Attributes:
        batch: what the poll found and had not already handed over through `ToolSource.spill`.
        error: why the source as a whole failed this poll; None when it read through. The engine keeps
            the last one per source, so a source that fails once and then reads again is healthy again.
    """

    batch: SourceBatch
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the poll read through."""
        return self.error is None


@dataclass(frozen=True, slots=True)
class SavedState:
    """What a restart needs to resume a source where it stopped (the cache's part of a source).

    Attributes:
        tails: one `TailSet.export_state` per tail set, in `tail_sets()` order.
        skips: `Skips.export_lines` (records skipped behind the saved offsets).
    """

    tails: list[dict[str, list[Any]]]
    skips: dict[str, dict[str, Any]]


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
        """The adapter's own one-line reason when it is failing as a whole (locked database, cannot listen),
        set and cleared by its own polls. Failures the engine sees (a poll that raised) it keeps itself."""
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

    def poll_changed(self, changed: Collection[Path] | None = None) -> SourceBatch:
        """`poll`, told which paths a wake-up named (None: anything may have changed).

        The tails read only the named files they already follow, so a wake-up for one appended
        transcript opens that file and walks no directory; a path none of them follows may be a new
        file, and then discovery walks as usual. Sources without tails poll as always.
        """
        if changed is None:
            return self.poll()
        with ExitStack() as stack:
            for ts in self.tail_sets():
                stack.enter_context(ts.focus(changed))
            return self.poll()

    # -- the cache's protocol: what a restart needs, without reaching into the source's parts --

    def export_state(self) -> SavedState | None:
        """Where reading stands, for the on-disk cache; None when nothing is worth keeping (no tails)."""
        sets = self.tail_sets()
        if not sets:
            return None
        return SavedState([ts.export_state() for ts in sets], self.skips.export_lines())

    def can_restore(self, tails: object) -> bool:
        """Whether saved `SavedState.tails` still describe this source's files on disk (nothing changes)."""
        sets = self.tail_sets()
        if not isinstance(tails, list) or len(tails) != len(sets):
            return False
        return all(ts.can_restore(state) for ts, state in zip(sets, tails, strict=True))

    def restore_state(self, state: SavedState) -> None:
        """Resume from `state` (check `can_restore` on its tails first)."""
        for ts, tail_state in zip(self.tail_sets(), state.tails, strict=True):
            ts.restore_state(tail_state)
        self.skips.restore_lines(state.skips.get("counts", {}), state.skips.get("first", {}))

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
