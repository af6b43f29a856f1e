"""What makes one engine scan safe: each source's poll is a transaction, and the wall clock is watched.

- `poll_transaction`: a source's append-only tails are checkpointed before its poll. If the poll raises,
  every offset (and the skip counts) go back to the checkpoint, so nothing read in the failed poll is
  lost; the line being handled when it raised is passed over from then on and counted once as skipped,
  and the poll runs again. One odd record costs one skip, never the batch or the source. It returns a
  `PollResult`: the batch and whether the source read through (the engine keeps that, per source).
- `paused_gc`: reading a history builds hundreds of thousands of long-lived objects at once; the cyclic
  collector is paused meanwhile instead of walking the growing heap again every few thousand of them.
- `ClockGuard`: compares the wall clock with a clock that only counts elapsed time (boot time, which
  includes suspend). When the two disagree by more than `JUMP_TOLERANCE` the wall clock jumped (or was
  set back): nothing is pruned against it and the cache is not written until it agrees again.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from zai_dash.clock import SystemClock
from zai_dash.sources.base import PollResult, SourceBatch, ToolSource

log = logging.getLogger(__name__)

MAX_FAILING_RECORDS = 16
"""A poll that raises on more records than this in one scan is reported as a failing source."""
JUMP_TOLERANCE = timedelta(minutes=5)
"""Wall-clock drift against elapsed time beyond this is a jump (NTP slews far less)."""


def poll_transaction(source: ToolSource, changed: Collection[Path] | None = None) -> PollResult:
    """Poll `source` so that a failure loses nothing, and say whether it read through.

    Args:
        source: the source to poll.
        changed: the paths a wake-up named under the source's roots (None: a full poll); see
            `ToolSource.poll_changed`.

    Returns:
        The batch and the poll's error (None when it read through). Sources without tails (SQLite,
        rewritten JSON) keep their own read state per database/file and hand events over only after a
        read finished; their own failures they report in `source.error`.
    """
    sets = source.tail_sets()
    for _ in range(MAX_FAILING_RECORDS + 1):
        marks = [(ts, ts.checkpoint()) for ts in sets]
        skips = source.skips.checkpoint()
        for ts in sets:
            ts.last_yielded = None
        try:
            return PollResult(source.poll_changed(changed))
        except Exception as exc:  # a bug in one adapter must not take the others down, nor lose data
            for ts, mark in marks:
                ts.rollback(mark)
            source.skips.rollback(skips)
            culprits = [(ts.last_yielded, ts) for ts in sets if ts.last_yielded is not None]
            if not culprits:
                log.exception("source %s failed", source.name)
                return PollResult(SourceBatch(), f"internal error: {type(exc).__name__}: {exc}")
            (_, path, line), ts = max(culprits, key=lambda c: c[0][0])
            log.warning("source %s: record %s:%d raised %s", source.name, path, line.number, type(exc).__name__)
            ts.poison(path, line)
            source.skips.add(f"record could not be read ({type(exc).__name__})", f"{path}:{line.number}")
    return PollResult(SourceBatch(), f"internal error: more than {MAX_FAILING_RECORDS} records failed in one scan")


@contextmanager
def paused_gc(freeze: bool = False) -> Iterator[None]:
    """Run a block with the cyclic garbage collector paused (and on again after, if it was on).

    A scan or a cache load makes objects that live on (events, buckets, tails) and hardly any garbage
    cycles; with the collector running, each of its generational passes walks them again as they pile up,
    which cost a warm start more than the load itself. References still free memory as usual meanwhile.

    Args:
        freeze: at the end, move everything alive into the permanent generation (`gc.freeze`), so that
            later collections skip what a first scan or cache load built for the life of the process.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


class ClockGuard:
    """Tells whether the wall clock still agrees with elapsed time since the engine started.

    Args:
        now: the wall clock's reading at start.
        ticks: elapsed seconds (the clock's own `ticks` when it has one: a test clock's `advance` is
            time passing, its `set` a jump).
    """

    def __init__(self, now: datetime, ticks: Callable[[], float] | None = None) -> None:
        self._ticks = ticks or SystemClock().ticks
        self._offset = now.timestamp() - self._ticks()
        self._prune_at: datetime | None = None

    def skew(self, now: datetime) -> float:
        """Seconds the wall clock moved beyond (or short of) elapsed time since start."""
        return now.timestamp() - self._ticks() - self._offset

    def jumped(self, now: datetime) -> bool:
        """Whether the wall clock is off from elapsed time by more than `JUMP_TOLERANCE`."""
        return abs(self.skew(now)) > JUMP_TOLERANCE.total_seconds()

    def describe(self, now: datetime) -> str:
        """`'2.0 days ahead'`-style words for the log."""
        skew = self.skew(now)
        return f"{abs(skew) / 86400:.1f} days {'ahead' if skew > 0 else 'back'}"

    def prune_reference(self, now: datetime, newest: datetime | None) -> datetime:
        """The instant pruning may measure its horizon from: never past the newest event, never back.

        Event time, not the wall clock alone, decides what is old: a clock that jumps ahead prunes
        nothing that was not already old by the newest record's time.
        """
        at = now if newest is None else min(now, newest)
        if self._prune_at is None or at > self._prune_at:
            self._prune_at = at
        return self._prune_at
