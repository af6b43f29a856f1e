"""A real ledger priced by the packaged tariff, and snapshots of it at known instants."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from zai_dash.config import builtin_plans, packaged_tariff
from zai_dash.domain.events import EventKind, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger, TariffMeter
from zai_dash.domain.snapshot import Metering, Snapshot, SourceHealth, build_snapshot

TARIFF = packaged_tariff()


UTC = timezone.utc


# Friday 2026-11-27: peak is 14:00–18:00 UTC+8, i.e. 06:00–10:00 UTC. Weekends are off-peak all day.
FRI_PEAK = datetime(2026, 11, 27, 9, 55, tzinfo=UTC)


FRI_OFF = datetime(2026, 11, 27, 10, 5, tzinfo=UTC)


SAT = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)


NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


WEEKLY_RESET = datetime(2026, 1, 6, 7, 30, tzinfo=UTC)  # a Tuesday: the week runs Tue 07:30 → Tue 07:30


WEEK_END = datetime(2026, 12, 1, 7, 30, tzinfo=UTC)


def call(ts: datetime, key: str, model: str = "glm-5.3", session: str = "s1", **tokens: int) -> UsageEvent:
    inp, cached, out = tokens.get("inp", 10_000), tokens.get("cached", 4_000), tokens.get("out", 1_000)
    return UsageEvent(
        EventKind.CALL,
        ts,
        "claude-code",
        key,
        session=session,
        model=model,
        tokens=inp + out,
        input_tokens=inp,
        output_tokens=out,
        cached_tokens=cached,
    )


def mcp(ts: datetime, key: str, service: McpService) -> UsageEvent:
    return UsageEvent(EventKind.MCP, ts, "claude-code", key, service=service)


def ledger(events: Sequence[UsageEvent], *, weighted: bool = False, fold_at: datetime | None = None) -> Ledger:
    """A ledger as the engine keeps it: events older than a day folded into minute buckets."""
    led = Ledger(TariffMeter(TARIFF, weighted))
    led.add_all(events)
    if fold_at is not None:
        led.prune(
            calls_before=fold_at - timedelta(days=8),
            mcp_before=fold_at - timedelta(days=31),
            detail_before=fold_at - timedelta(hours=24),
        )
    return led


def snapshot(
    led: Ledger,
    now: datetime,
    *,
    billing: str = "credits",
    plan: str = "pro",
    weekly_reset: datetime | None = None,
    official: Sequence[Mapping[str, Any]] = (),
) -> Snapshot:
    metering = Metering(
        billing=billing,
        pools=TARIFF.pools(billing, plan, now),
        weekly_reset=weekly_reset,
        estimated_services=frozenset({"vision"}),
        peak=TARIFF.is_peak(now),
    )
    return build_snapshot(
        now=now,
        plan=builtin_plans(billing)[plan],
        ledger=led,
        tz=UTC,
        metering=metering,
        official=official,
        sources=[SourceHealth("claude-code", "claude-code", "ok")],
    )


def week_of_credits() -> list[UsageEvent]:
    return [
        call(datetime(2026, 11, 24, 7, 0, tzinfo=UTC), "before"),  # Tue 15:00 UTC+8 peak, the week before
        call(FRI_PEAK, "fri-peak"),
        call(FRI_OFF, "fri-off"),
        mcp(FRI_OFF + timedelta(minutes=1), "search", McpService.SEARCH),
        call(SAT, "sat"),  # Saturday 16:00 UTC+8: off-peak all day
        mcp(SAT + timedelta(minutes=1), "vision", McpService.VISION),  # Saturday: half the 1.5 estimate
    ]
