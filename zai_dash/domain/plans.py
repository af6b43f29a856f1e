"""A plan: the user's tier and billing generation, resolved against the tariff at an instant."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from zai_dash.domain.tariff import Tariff, WindowPool

CYCLE_LENGTH = timedelta(hours=5)
"""Z.ai's rolling window: opens at the first billable request, resets all at once 5 h later."""


@dataclass(frozen=True, slots=True)
class Plan:
    """A GLM Coding Plan tier, or a custom one.

    Attributes:
        name: `lite`, `pro`, `max`, `team-standard`, `team-premium` or a custom name.
        prompts_per_cycle: prompt quota per 5-hour cycle. On a credit plan this is the legacy V1 figure of
            the same tier, kept for views that still count prompts.
        searches_per_month: Web Search / Reader / ZRead MCP calls per month (legacy V1 figure on credits).
        calls_per_prompt: model calls that make one prompt-equivalent (Z.ai says 15–20; 15 is conservative).
        cycle: cycle length.
        billing: the billing generation (`credits`, `legacy-v2`, `legacy-v1`).
        pools: the plan's windows and the size of each, in their own units.
    """

    name: str
    prompts_per_cycle: int
    searches_per_month: int
    calls_per_prompt: int = 15
    cycle: timedelta = CYCLE_LENGTH
    billing: str = "legacy-v1"
    pools: tuple[WindowPool, ...] = ()

    def pool(self, window: str) -> WindowPool | None:
        """The pool of window `window` (`5h`, `weekly`, `monthly-mcp`), or None when the plan has none."""
        return next((p for p in self.pools if p.id == window), None)


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


def plan_from_tariff(
    tariff: Tariff, billing: str, name: str, at: datetime, legacy: Mapping[str, object] | None = None
) -> Plan:
    """Resolve tier `name` on `billing` against the tariff at `at`.

    Args:
        tariff: the tariff in effect.
        billing: the billing generation.
        name: the tier (a plan of that generation in the tariff).
        at: the instant whose pools apply.
        legacy: the plan's own legacy fields (`prompts_per_cycle`, `searches_per_month`, `calls_per_prompt`,
            `cycle_hours`), which win over those derived from the pools.

    Raises:
        KeyError: the tariff does not sell `name` on `billing`.
        ValueError: a legacy field is out of range.
    """
    pools = tariff.pools(billing, name, at)
    row: dict[str, object] = {}
    # Views that still count prompts read the legacy fields: from the plan's own prompt pools, else
    # from the legacy V1 tier of the same name (Pro's for a tier V1 never had).
    source = pools if billing != "credits" else _v1_pools(tariff, name, at)
    for pool in source:
        if pool.id == "5h" and pool.unit == "prompts":
            row["prompts_per_cycle"] = max(1, int(pool.limit))
        elif pool.id == "monthly-mcp":
            row["searches_per_month"] = int(pool.limit)
    legacy_billing = billing if billing != "credits" else "legacy-v1"
    row["calls_per_prompt"] = tariff.calls_per_prompt(legacy_billing) if legacy_billing in tariff.billings else 15
    row.setdefault("prompts_per_cycle", 1)
    row.setdefault("searches_per_month", 0)
    base = plan_from_mapping(name, {**row, **(legacy or {})})
    return replace(base, billing=billing, pools=pools)


def _v1_pools(tariff: Tariff, name: str, at: datetime) -> tuple[WindowPool, ...]:
    names = tariff.plan_names("legacy-v1") if "legacy-v1" in tariff.billings else ()
    fallback = name if name in names else "pro" if "pro" in names else None
    return tariff.pools("legacy-v1", fallback, at) if fallback else ()


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
