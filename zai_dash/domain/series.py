"""What the timeline charts draw, from a snapshot: usage per bucket in the 5-hour pool's unit, the running
total against the pool, the projection to the reset, peak buckets, and the forecast's verdict.

Pure: every figure is the snapshot's (its timeline buckets, its 5-hour row, its forecast); this module only
puts them on one time axis. Views render a `UsageSeries` and compute nothing themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import accumulate

from zai_dash.domain.snapshot import Snapshot

PeakRule = Callable[[datetime], bool]
"""Whether an instant is in the tariff's peak hours (`Tariff.is_peak`)."""


@dataclass(frozen=True, slots=True)
class UsageSeries:
    """The 5-hour window on one time axis, in minutes since it opened.

    Attributes:
        unit: the pool's unit (`credits` or `prompts`): every amount below is in it.
        bucket_minutes: the width of one bucket.
        start: when the window opened; `end`: when it resets; `now`: the snapshot instant.
        per_bucket: usage in each bucket from `start` up to now (never negative).
        buckets: how many buckets the whole window has (the bars' slots, past and future).
        peak: per bucket of the whole window, whether any of it is in peak hours (all False without a rule).
        limit: the pool.
        used: the running total now (the sum of `per_bucket`: the local count the forecast projects).
        projection: (minute, running total) from now to the reset, or to the minute the pool runs out.
        verdict: the forecast's: `ok` (on pace), `critical` (runs out before the reset, or used up) or `none`.
    """

    unit: str
    bucket_minutes: int
    start: datetime
    end: datetime
    now: datetime
    per_bucket: tuple[float, ...]
    buckets: int
    peak: tuple[bool, ...]
    limit: float
    used: float
    projection: tuple[tuple[float, float], ...]
    verdict: str

    @property
    def total_minutes(self) -> float:
        """The window's length in minutes."""
        return max(1.0, (self.end - self.start).total_seconds() / 60)

    @property
    def now_minute(self) -> float:
        """Minutes from the window's start to now, within the window."""
        return min(self.total_minutes, max(0.0, (self.now - self.start).total_seconds() / 60))

    @property
    def cumulative(self) -> tuple[tuple[float, float], ...]:
        """(minute, running total) at the start, at each bucket's end, and now."""
        step = self.bucket_minutes
        points = [(0.0, 0.0)]
        for i, total in enumerate(accumulate(self.per_bucket)):
            points.append((min((i + 1) * step, self.now_minute), total))
        return tuple(points)


def pace_verdict(snap: Snapshot) -> str:
    """The forecast's verdict: `critical` when the pool runs out before the reset (or is used up), `ok` when
    it lasts, `none` without an open cycle. The forecast line and the pace line both read this."""
    f = snap.forecast
    if f is None or snap.cycle.state != "open" or snap.cycle.end is None:
        return "none"
    if pool_left(snap) <= 0 or f.exhausted_at is not None or (f.left_at_reset is not None and f.left_at_reset <= 0):
        return "critical"
    return "ok"


def pool_left(snap: Snapshot) -> float:
    """What is left of the 5-hour pool in its unit (0 while blocked): the pool the forecast projects."""
    five = snap.window("5h")
    return five.left if five is not None else float(snap.prompts.left)


def usage_series(snap: Snapshot, is_peak: PeakRule | None = None) -> UsageSeries | None:
    """The open 5-hour window as chart series; None when no window is open.

    Args:
        snap: the snapshot.
        is_peak: the tariff's peak rule, to mark peak buckets; None marks none.
    """
    tl, cycle = snap.timeline, snap.cycle
    if tl.start is None or cycle.state != "open" or cycle.end is None:
        return None
    five = snap.window("5h")
    unit = five.unit if five is not None else "prompts"
    limit = five.limit if five is not None else float(snap.prompts.limit)
    raw: tuple[float, ...] = tl.credits if unit == "credits" and tl.credits else tuple(map(float, tl.equivalents))
    per_bucket = tuple(max(0.0, v) for v in raw)
    step = timedelta(minutes=tl.bucket_minutes)
    buckets = max(len(per_bucket), math.ceil((cycle.end - tl.start) / step))
    peak = tuple(_any_peak(is_peak, tl.start + step * i, step) for i in range(buckets))
    used = sum(per_bucket)
    series = UsageSeries(
        unit=unit,
        bucket_minutes=tl.bucket_minutes,
        start=tl.start,
        end=cycle.end,
        now=snap.at,
        per_bucket=per_bucket,
        buckets=buckets,
        peak=peak,
        limit=limit,
        used=used,
        projection=(),
        verdict=pace_verdict(snap),
    )
    return _with_projection(series, snap)


def _any_peak(is_peak: PeakRule | None, start: datetime, width: timedelta) -> bool:
    """Whether any part of [start, start + width) is in peak hours (peak periods last hours, so its two ends and
    middle decide): a bucket that straddles the boundary holds peak-priced calls and is shaded."""
    if is_peak is None:
        return False
    return any(is_peak(at) for at in (start, start + width / 2, start + width - timedelta(seconds=1)))


def _with_projection(series: UsageSeries, snap: Snapshot) -> UsageSeries:
    """Add the forecast's projection: from now at the recent rate, to the reset or to where the pool runs out."""
    f = snap.forecast
    now_min, end_min = series.now_minute, series.total_minutes
    if f is None or f.rate_recent <= 0 or now_min >= end_min:
        return series
    if f.exhausted_at is not None:
        hit = min(end_min, (f.exhausted_at - series.start).total_seconds() / 60)
        end_point = (hit, max(series.used, series.limit))
    else:
        end_point = (end_min, series.used + f.rate_recent * (end_min - now_min) / 60)
    return replace(series, projection=((now_min, series.used), end_point))
