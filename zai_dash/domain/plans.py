"""Plans are data: prompts per cycle, cycle length, searches per month, calls per prompt."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

CYCLE_LENGTH = timedelta(hours=5)
"""Z.ai's rolling window: opens at the first billable request, resets all at once 5 h later."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A GLM Coding Plan tier, or a custom one.

    Attributes:
        name: `lite`, `pro`, `max` or a custom name.
        prompts_per_cycle: prompt quota per 5-hour cycle.
        searches_per_month: Web Search / Reader / ZRead MCP calls per month.
        calls_per_prompt: model calls that make one prompt-equivalent (Z.ai says 15–20; 15 is conservative).
        cycle: cycle length.
    """

    name: str
    prompts_per_cycle: int
    searches_per_month: int
    calls_per_prompt: int = 15
    cycle: timedelta = CYCLE_LENGTH


def plan_from_mapping(name: str, data: Mapping[str, object]) -> Plan:
    """Build a plan from a mapping (a row of the packaged plans file or a `[limits]` table).

    Raises:
        ValueError: a number is missing, not an integer, or not positive where it must be.
    """

    def number(key: str, default: int | None = None, minimum: int = 0) -> int:
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer, got {value!r}")
        if value < minimum:
            raise ValueError(f"{key} must be ≥ {minimum}, got {value}")
        return value

    hours = data.get("cycle_hours", 5)
    if isinstance(hours, bool) or not isinstance(hours, (int, float)) or hours <= 0:
        raise ValueError(f"cycle_hours must be a positive number, got {hours!r}")
    return Plan(
        name=name,
        prompts_per_cycle=number("prompts_per_cycle", minimum=1),
        searches_per_month=number("searches_per_month", 0),
        calls_per_prompt=number("calls_per_prompt", 15, minimum=1),
        cycle=timedelta(hours=float(hours)),
    )


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Gauge levels as fractions of the limit."""

    warning: float = 0.75
    critical: float = 0.90

    def level(self, fraction: float) -> str:
        """`ok`, `warning`, `critical` or `exhausted` for the share of a pool used (1.0 = all of it)."""
        if fraction >= 1:
            return "exhausted"
        if fraction >= self.critical:
            return "critical"
        if fraction >= self.warning:
            return "warning"
        return "ok"
