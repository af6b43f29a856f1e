"""A week of heavy use fed to a ledger pruned as the engine prunes it (tests and the weekly bench)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from zai_dash.domain.events import CallRole, EventKind, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger

DAY = timedelta(days=1)
TOOLS = ("claude-code", "opencode")
MODELS = ("glm-5.3", "glm-5.3-flash")

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)


def heavy_week(days: int = 8, per_minute: int = 3) -> list[UsageEvent]:
    """Eight days of heavy use: 3 calls a minute around the clock, a prompt every 5 min, a search an hour."""
    events = []
    start = NOW - days * DAY
    for minute in range(days * 1440):
        t = start + timedelta(minutes=minute, seconds=7)
        for i in range(per_minute):
            events.append(
                UsageEvent(
                    EventKind.CALL,
                    t + timedelta(seconds=i),
                    TOOLS[i % 2],
                    f"c{minute}-{i}",
                    session=f"s{minute // 60}",
                    model=MODELS[minute % 2],
                    role=CallRole.MAIN,
                    tokens=6000,
                    input_tokens=5000,
                    output_tokens=1000,
                    cached_tokens=2000,
                )
            )
        if minute % 5 == 0:
            events.append(UsageEvent(EventKind.PROMPT, t, TOOLS[0], f"p{minute}", session=f"s{minute // 60}"))
        if minute % 60 == 0:
            events.append(UsageEvent(EventKind.MCP, t, TOOLS[0], f"m{minute}", service=McpService.SEARCH))
    return events


def engine_prune(led: Ledger, now: datetime) -> None:
    led.prune(calls_before=now - 8 * DAY, mcp_before=now - 31 * DAY, detail_before=now - DAY)
