"""The 5-hour cycle: when the current window opened, when it resets, and what anchored it."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from zai_dash.domain.aggregates import SortedTimes
from zai_dash.domain.events import LimitHit


class Anchor(str, enum.Enum):
    """What fixed the window's position, best first."""

    OFFICIAL = "official"
    """Z.ai's quota endpoint named the reset time."""
    LIMIT_HIT = "limit-hit"
    """A rate-limit error in a log named the reset time."""
    LOCAL = "local"
    """The first request after the previous window ended, from the logs."""


@dataclass(frozen=True, slots=True)
class CycleWindow:
    """One 5-hour window [start, end).

    Attributes:
        start: when the window opened.
        end: when it resets.
        anchor: what fixed it.
        blocked_until: a limit hit inside this window named this reset; requests fail until then.
    """

    start: datetime
    end: datetime
    anchor: Anchor
    blocked_until: datetime | None = None

    def contains(self, ts: datetime) -> bool:
        """Whether `ts` falls inside the window."""
        return self.start <= ts < self.end

    def seconds_left(self, now: datetime) -> float:
        """Seconds until the reset, never negative. Computed from the deadline, not counted."""
        return max(0.0, (self.end - now).total_seconds())


@dataclass(frozen=True, slots=True)
class CycleState:
    """The cycle as of one instant.

    Attributes:
        current: the open window, or None when no request has come since the last one ended
            ("not started: opens on your next prompt").
        previous_end: when the last window ended, if there was one and none is open.
    """

    current: CycleWindow | None
    previous_end: datetime | None = None


def resolve_cycle(
    request_times: Iterable[datetime],
    limit_hits: Sequence[LimitHit],
    now: datetime,
    length: timedelta,
    official_reset: datetime | None = None,
) -> CycleState:
    """Chain windows through the request history and return the one open at `now`.

    Z.ai's window opens at the first billable request after the previous window ended and resets
    all at once `length` later; windows never sit on a clock grid. A gap longer than `length`
    therefore always starts a fresh window at the next request. A limit hit that names a reset
    time moves the window holding it so that it ends then. An official reset time beats both.

    Args:
        request_times: timestamps of billable requests (any order; later than `now` are ignored).
        limit_hits: rate-limit errors seen in logs.
        now: the instant to evaluate at.
        length: the cycle length (5 h).
        official_reset: Z.ai's `nextResetTime` for the 5-hour row, if fresh.

    Returns:
        The cycle state at `now`.
    """
    if official_reset is not None and official_reset > now and official_reset - length <= now:
        official = CycleWindow(official_reset - length, official_reset, Anchor.OFFICIAL)
        return CycleState(_with_block(official, limit_hits, now))

    windows = chain_windows(request_times, limit_hits, now, length)
    window = windows[-1] if windows else None
    if window is None:
        return CycleState(None)
    if window.end <= now:
        return CycleState(None, previous_end=window.end)
    return CycleState(_with_block(window, limit_hits, now))


def chain_windows(
    request_times: Iterable[datetime], limit_hits: Sequence[LimitHit], now: datetime, length: timedelta
) -> list[CycleWindow]:
    """Every 5-hour window the request history opened up to `now`, oldest first (see `resolve_cycle`).

    Requests and limit hits are taken in time order, a hit after a request at the same instant (so the hit
    can move the window that request opened). Between two hits only the request that opens a window
    matters: the first at or after the current window's end, found by bisection, so a day of requests costs
    a few steps per window (the ledger hands them over sorted, as `SortedTimes`).
    """
    times = request_times if isinstance(request_times, SortedTimes) else SortedTimes(list(request_times))
    stop = times.first_after(now)
    hits = sorted((h for h in limit_hits if h.ts <= now), key=lambda h: h.ts)

    windows: list[CycleWindow] = []
    window: CycleWindow | None = None
    pos = 0
    for hit in [*hits, None]:
        # The requests up to this hit (those at its instant included), then the hit.
        upto = stop if hit is None else times.first_after(hit.ts, pos)
        while pos < upto:
            if window is not None:
                # Never past `upto`: the hit may move the window, and then a skipped request would open one.
                pos = min(times.first_at_or_after(window.end, pos), upto)
                if pos == upto:
                    break
            ts = times[pos]
            window = CycleWindow(ts, ts + length, Anchor.LOCAL)
            windows.append(window)
            pos += 1
        if hit is None:
            break
        ts = hit.ts
        if hit.reset_at is None:
            if window is None or ts >= window.end:
                # A refused request still tells us a window is open; we do not know where.
                window = CycleWindow(ts, ts + length, Anchor.LOCAL)
                windows.append(window)
            continue
        # A reset time that falls within one length of the hit names the window holding it.
        if hit.ts < hit.reset_at <= hit.ts + length + timedelta(minutes=1):
            held = window if window is not None and ts < window.end else None
            moved = window_of_hit(hit.reset_at, held, length)
            if held is not None:
                windows[-1] = moved  # the hit moves the window holding it
            else:
                windows.append(moved)
            window = moved

    return windows


RESET_SLACK = timedelta(seconds=5)
"""How far before "reset − 5 h" the window a hit moves may still start.

Z.ai names the reset rounded down to the second, and a client logs a prompt before it sends it, so the
first logged prompt of the window can be up to a second or so before "reset − 5 h" (seen with Kilo CLI
against the conformance server: 0.14 s). That prompt opened the window; it must not fall out of it."""


def window_of_hit(reset_at: datetime, held: CycleWindow | None, length: timedelta) -> CycleWindow:
    """The window a limit hit's reset time names, given the local window holding the hit (if any).

    It ends at the reset. It starts one length before, or at the held window's own start when that is
    at most `RESET_SLACK` earlier: the same window, seen from the client's side of the rounding.
    """
    start = reset_at - length
    if held is not None and start - RESET_SLACK <= held.start < start:
        start = held.start
    return CycleWindow(start, reset_at, Anchor.LIMIT_HIT)


def _with_block(window: CycleWindow, limit_hits: Sequence[LimitHit], now: datetime) -> CycleWindow:
    """Mark the window blocked when a limit hit inside it names a reset still ahead."""
    blocked = [
        h.reset_at for h in limit_hits if h.reset_at is not None and window.start <= h.ts <= now and h.reset_at > now
    ]
    if not blocked:
        return window
    return CycleWindow(window.start, window.end, window.anchor, blocked_until=max(blocked))
