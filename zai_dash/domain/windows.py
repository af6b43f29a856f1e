"""The plan's metered windows as typed rows, and the one headline every view leads with.

Rows: `5h` (every generation), `weekly` (credits, legacy V2, team), `monthly-mcp` (legacy V1/V2).
Each is in its own unit (`credits`, `prompts`, `calls`), anchored best first by the official reset
time, a limit hit that names one, the ledger or the configured subscription instant; `unknown` when
nothing fixes it (the weekly row then shows the last seven days instead of inventing a reset).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from zai_dash.domain.aggregates import SortedTimes
from zai_dash.domain.events import LimitHit
from zai_dash.domain.forecast import prompt_equivalents
from zai_dash.domain.plans import Thresholds
from zai_dash.domain.tariff import WindowPool

WEEK = timedelta(days=7)
WEEKLY_LIMIT_CODE = 1310
"""Z.ai's "weekly/monthly limit exhausted": requests fail until the weekly reset."""
FIVE_HOUR_SLACK = timedelta(hours=5, minutes=1)
"""A reset named within this of the hit belongs to the 5-hour window, not the week."""

WINDOW_ORDER = ("5h", "weekly", "monthly-mcp")
UNITS = frozenset({"credits", "prompts", "calls"})
GATING = frozenset({"5h", "weekly"})
"""Windows that stop model requests when used up (the monthly MCP pool only stops searches)."""
OFFICIAL_KINDS = {"five-hour": "5h", "weekly": "weekly", "monthly-mcp": "monthly-mcp"}
"""Official rows name their window in `window`, or (older documents) by `kind`."""


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One metered window as of the snapshot instant.

    Attributes:
        id: `5h`, `weekly` or `monthly-mcp`.
        unit: `credits`, `prompts` or `calls`.
        used: how much is used (official integers when `source` is `official`).
        limit: the pool.
        left: `max(0, limit − used)`; 0 while blocked.
        percent: `100 × used / limit` (may pass 100 with overage), 0 for an empty pool.
        start: when the window opened (for an `unknown` weekly anchor: seven days ago).
        end: when it resets; None when not known or not started.
        seconds_left: seconds to `end`, never negative; None without an end.
        anchor: `official`, `limit-hit`, `first-request`, `subscription` or `unknown`.
        source: `local`, `official` or `estimate`.
        level: `ok`, `warning`, `critical` or `exhausted` (`Thresholds.level`; exhausted while blocked).
        state: `open`, `not-started` (5h: opens on the next request) or `rolling` (weekly, anchor unknown).
        blocked_until: a limit hit says requests fail until then.
        local_used: the local count beside an official figure (None when local leads).
        estimated: the part of `used` that is an estimate (Vision MCP credits), in the row's unit.
        percent_only: the official figure is only a percentage (scaled to the local pool for `used`).
    """

    id: str
    unit: str
    used: float
    limit: float
    left: float
    percent: float
    start: datetime | None
    end: datetime | None
    seconds_left: float | None
    anchor: str
    source: str
    level: str
    state: str = "open"
    blocked_until: datetime | None = None
    local_used: float | None = None
    estimated: float = 0.0
    percent_only: bool = False

    @property
    def fraction_left(self) -> float:
        """Share of the pool left (0 while blocked; 1 for an empty pool, which never binds)."""
        if self.blocked_until is not None or (self.level == "exhausted" and self.limit > 0):
            return 0.0
        return self.left / self.limit if self.limit > 0 else 1.0


@dataclass(frozen=True, slots=True)
class Headline:
    """What every view leads with: the binding window (the least left; official preferred on a tie).

    Attributes:
        window: the binding window's id, None when the plan has no gating window.
        unit: its unit.
        used, limit, left, percent, seconds_left, end, source, blocked_until: the binding row's.
        level: the worst level over every window (what `status` exits with).
        percent_only: the binding figure is an official percentage only (show it as a percentage).
        weekly_percent: the weekly row's percent beside it, when there is one.
        prompts_left: prompts left: native on prompt plans, ≈ credits left ÷ median credits per
            prompt on credit plans (None until enough prompts were seen).
        prompts_left_source: `local`, `official` or `estimate`.
    """

    window: str | None
    unit: str | None
    used: float
    limit: float
    left: float
    percent: float
    seconds_left: float | None
    end: datetime | None
    source: str
    level: str
    blocked_until: datetime | None
    weekly_percent: float | None
    prompts_left: int | None
    prompts_left_source: str | None
    percent_only: bool = False


@dataclass(frozen=True, slots=True)
class WeekSpan:
    """Where the weekly window sits: [start, end) and what fixed it."""

    start: datetime
    end: datetime | None
    anchor: str


_LEVEL_RANK = {"ok": 0, "warning": 1, "critical": 2, "exhausted": 3}


def resolve_week(
    now: datetime,
    *,
    weekly_reset: datetime | None,
    official_end: datetime | None = None,
    official_start: datetime | None = None,
    limit_hits: Sequence[LimitHit] = (),
) -> WeekSpan:
    """The weekly window holding `now`.

    Best first: the official weekly `nextResetTime` (and its start, re-anchored after a reset card); a
    weekly limit hit (1310) that names a reset more than five hours after it; the configured
    `weekly_reset` (cycles repeat every 7 days from it, before and after); else `unknown`: the last seven
    days, no reset time.
    """
    if official_end is not None and now < official_end <= now + WEEK:
        start = official_start if official_start is not None and official_start <= now else official_end - WEEK
        return WeekSpan(start, official_end, "official")
    for hit in reversed(limit_hits):
        if (
            hit.code == WEEKLY_LIMIT_CODE
            and hit.reset_at is not None
            and hit.ts <= now < hit.reset_at
            and hit.reset_at > hit.ts + FIVE_HOUR_SLACK
            and hit.reset_at - WEEK <= hit.ts
        ):
            return WeekSpan(hit.reset_at - WEEK, hit.reset_at, "limit-hit")
    if weekly_reset is not None:
        cycles = math.floor((now - weekly_reset) / WEEK)
        start = weekly_reset + cycles * WEEK
        return WeekSpan(start, start + WEEK, "subscription")
    return WeekSpan(now - WEEK, None, "unknown")


def weekly_block(
    span: WeekSpan, limit_hits: Sequence[LimitHit], request_times: Sequence[datetime], now: datetime
) -> tuple[bool, datetime | None]:
    """Whether a weekly limit hit (1310) in this week still blocks, and until when if known.

    A hit that names a reset blocks until then; one that names none blocks until the week's end, or,
    with the week's end unknown, until a later request goes through (the logs show one after it).
    """
    blocked, until = False, None
    times = request_times if isinstance(request_times, SortedTimes) else SortedTimes(list(request_times))
    for hit in limit_hits:
        if hit.code != WEEKLY_LIMIT_CODE or not span.start <= hit.ts <= now:
            continue
        end = hit.reset_at or span.end
        if end is not None:
            if end > now:
                blocked, until = True, max(until or end, end)
        elif not times.any_in(hit.ts, now):
            blocked = True
    return blocked, until


def official_rows_by_window(official: Iterable[Mapping[str, Any]], now: datetime) -> dict[str, Mapping[str, Any]]:
    """Official rows that lead their window, by window id: fresh ones, and a stale one that says the window
    is used up until a reset still ahead (an old reading cannot un-block it; its reset can)."""
    out: dict[str, Mapping[str, Any]] = {}
    for row in official:
        window = row.get("window") or OFFICIAL_KINDS.get(str(row.get("kind")))
        reset = row.get("next_reset")
        used_up = (row.get("percent") or 0) >= 100 and isinstance(reset, datetime) and reset > now
        if window in WINDOW_ORDER and (not row.get("stale") or used_up) and window not in out:
            out[str(window)] = row
    return out


def official_pool(wid: str, row: Mapping[str, Any]) -> WindowPool:
    """The pool of a window only the official endpoint names: its limit and unit, or percent of 100."""
    unit, limit = row.get("unit"), row.get("limit")
    if unit not in UNITS or not isinstance(limit, (int, float)) or isinstance(limit, bool) or limit <= 0:
        return WindowPool(wid, "percent", 100.0)
    return WindowPool(wid, str(unit), float(limit))


def make_row(
    *,
    pool: WindowPool,
    used: float,
    start: datetime | None,
    end: datetime | None,
    anchor: str,
    now: datetime,
    thresholds: Thresholds,
    state: str = "open",
    blocked: bool = False,
    blocked_until: datetime | None = None,
    estimated: float = 0.0,
    official: Mapping[str, Any] | None = None,
) -> WindowRow:
    """One window row from local figures, with a fresh official row (if any) taking the lead.

    The official figures are the integers (`used`, `limit`) when they count the pool's unit (credits,
    calls); a prompt pool (the endpoint gives only percentages, or token integers) is the percentage
    scaled to the local pool. An official `next_reset` moves the end, and the start to the official
    `start` (re-anchored after a reset card) or one window length before the end.
    """
    limit = float(pool.limit)
    source, local_used, percent_only = "local", None, False
    if official is not None and (official.get("used") is not None or official.get("percent") is not None):
        local_used = used
        source = "official"
        # Integers in the pool's own unit (credits, calls) are exact; otherwise the percentage is scaled to
        # the local pool (legacy rows give only a percentage, or token integers that are not prompts).
        if official.get("unit") == pool.unit and official.get("used") is not None and official.get("limit"):
            used, limit = float(official["used"]), float(official["limit"])
        elif official.get("percent") is not None:
            used, percent_only = limit * float(official["percent"]) / 100.0, True
        else:
            source, local_used = "local", None
        reset = official.get("next_reset")
        if source == "official" and isinstance(reset, datetime) and reset > now:
            span = (end - start) if (start is not None and end is not None) else None
            official_start = official.get("start")
            end, anchor, state = reset, "official", "open"
            # The official start (re-anchored after a reset card) beats one window length back.
            if isinstance(official_start, datetime):
                start = official_start
            elif span is not None:
                start = reset - span
        if source == "official":
            estimated = 0.0
            local_used = None if pool.unit == "percent" else local_used
    if pool.unit in ("prompts", "calls"):
        used = round(used)
    left = 0.0 if blocked else max(0.0, limit - used)
    percent = 100.0 * used / limit if limit > 0 else 0.0
    level = "exhausted" if blocked else (thresholds.level(used / limit) if limit > 0 else "ok")
    return WindowRow(
        id=pool.id,
        unit=pool.unit,
        used=used,
        limit=limit,
        left=left,
        percent=round(percent, 1),
        start=start,
        end=end,
        seconds_left=max(0.0, (end - now).total_seconds()) if end is not None else None,
        anchor=anchor,
        source=source,
        level=level,
        state=state,
        blocked_until=blocked_until,
        local_used=local_used,
        estimated=estimated,
        percent_only=percent_only,
    )


def headline(rows: Sequence[WindowRow], *, prompts_left: int | None, prompts_left_source: str | None) -> Headline:
    """The binding window (least share left among the gating windows) and the worst level over every window."""
    gating = [r for r in rows if r.id in GATING and r.limit > 0] or [r for r in rows if r.id in GATING]
    worst = max((r.level for r in rows), key=_LEVEL_RANK.__getitem__, default="ok")
    weekly = next((r for r in rows if r.id == "weekly"), None)
    if not gating:
        return Headline(None, None, 0, 0, 0, 0.0, None, None, "local", worst, None, None, prompts_left, None)
    order = {w: i for i, w in enumerate(WINDOW_ORDER)}

    def frees(r: WindowRow) -> float:
        """When the window gives room again (later binds harder); unknown counts as latest."""
        when = r.blocked_until or r.end
        return when.timestamp() if when is not None else math.inf

    # Least left binds; on a tie the one that frees later (a weekly block outlasts the 5-hour window),
    # then the official figure, then window order.
    bind = min(gating, key=lambda r: (r.fraction_left, -frees(r), r.source != "official", order.get(r.id, 9)))
    return Headline(
        window=bind.id,
        unit=bind.unit,
        used=bind.used,
        limit=bind.limit,
        left=bind.left,
        percent=bind.percent,
        seconds_left=bind.seconds_left,
        end=bind.end,
        source=bind.source,
        level=worst,
        blocked_until=bind.blocked_until,
        weekly_percent=weekly.percent if weekly is not None else None,
        prompts_left=prompts_left,
        prompts_left_source=prompts_left_source if prompts_left is not None else None,
        percent_only=bind.percent_only,
    )


PROMPT_SAMPLE = 50
"""Recent prompts the "≈ prompts left" median is taken over (within the last week)."""
MIN_PROMPTS = 5
"""Prompts that must have been seen before "≈ prompts left" is shown at all."""


def prompt_equivalents_of(counts: Any, calls_per_prompt: int) -> int:
    """`prompt_equivalents` of ledger counts, prompts and calls weighted by their model rate."""
    return prompt_equivalents(counts.prompt_units, counts.call_units, counts.mcp_by_service["vision"], calls_per_prompt)


def window_used(counts: Any, unit: str, calls_per_prompt: int, monthly_services: Iterable[str]) -> float:
    """A window's usage in its unit, from ledger counts."""
    if unit == "credits":
        return float(counts.credits)
    if unit == "calls":
        return float(sum(counts.mcp_by_service[s] for s in monthly_services))
    return float(prompt_equivalents_of(counts, calls_per_prompt))


def estimated_part(counts: Any, unit: str, estimated_services: Iterable[str]) -> float:
    """Credits in `counts` that are estimates (Vision MCP calls), 0 outside the credits unit."""
    if unit != "credits":
        return 0.0
    return float(sum(counts.credits_by_service.get(s, 0.0) for s in estimated_services))
