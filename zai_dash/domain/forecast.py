"""Burn rate, projected exhaustion and safe pace."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

RECENT = timedelta(minutes=30)
"""The span the recent burn rate is measured over."""


def prompt_equivalents(prompts: float, calls: float, vision: int, calls_per_prompt: int) -> int:
    """What a prompt plan counts: `max(prompts, ceil(calls / calls_per_prompt))` plus vision MCP calls.

    `prompts` and `calls` may be weighted by their model rate (a GLM-5.3 call at peak weighs 3).
    Vision MCP calls draw on the prompt pool; search/reader/zread have their own monthly pool.
    """
    # A hair above an integer is float noise from summed weights (0.4 + 0.4 + 0.2), not usage.
    return max(math.ceil(prompts - 1e-9), math.ceil(calls / calls_per_prompt - 1e-9)) + vision


@dataclass(frozen=True, slots=True)
class Forecast:
    """Where the cycle is heading.

    Attributes:
        rate_recent: prompt-equivalents per hour over the last 30 minutes (or the cycle so far if shorter).
        rate_cycle: prompt-equivalents per hour since the window opened.
        exhausted_at: when the pool runs dry at the recent rate, if before the reset; else None.
        minutes_before_reset: how long before the reset that is.
        left_at_reset: prompt-equivalents expected to remain at the reset (None when exhausting).
        safe_pace: prompt-equivalents per hour that would just last until the reset.
        unit: what the rates and amounts count.
    """

    rate_recent: float
    rate_cycle: float
    exhausted_at: datetime | None
    minutes_before_reset: float | None
    left_at_reset: float | None
    safe_pace: float | None
    unit: str = "prompts"
    """The unit of the rates and amounts: the 5-hour window's (`prompts` or `credits`)."""


def forecast(
    used: float,
    recent_used: float,
    limit: float,
    start: datetime,
    end: datetime,
    now: datetime,
) -> Forecast:
    """Project the cycle forward from the recent burn rate.

    Args:
        used: amount used in the window (prompt-equivalents or credits).
        recent_used: amount used in the last 30 minutes.
        limit: the window's pool, in the same unit.
        start: when the window opened.
        end: when it resets.
        now: the instant to evaluate at.
    """
    elapsed_h = max((now - start).total_seconds(), 0.0) / 3600
    recent_h = min(elapsed_h, RECENT.total_seconds() / 3600)
    # Under a minute of history says nothing about a rate; avoid projecting a spike.
    rate_cycle = used / elapsed_h if elapsed_h >= 1 / 60 else 0.0
    rate_recent = recent_used / recent_h if recent_h >= 1 / 60 else 0.0
    left = max(0.0, limit - used)
    hours_left = max((end - now).total_seconds(), 0.0) / 3600
    safe_pace = left / hours_left if hours_left > 0 else None
    if left == 0:
        return Forecast(rate_recent, rate_cycle, None, None, 0.0, safe_pace)
    if rate_recent > 0 and left / rate_recent < hours_left:
        exhausted_at = now + timedelta(hours=left / rate_recent)
        before = (end - exhausted_at).total_seconds() / 60
        return Forecast(rate_recent, rate_cycle, exhausted_at, before, None, safe_pace)
    return Forecast(rate_recent, rate_cycle, None, None, left - rate_recent * hours_left, safe_pace)
