"""A snapshot to export."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from tests.support.env import FIXED_NOW
from tests.support.http import V1
from zai_dash.config import builtin_plans
from zai_dash.domain.events import EventKind, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.official import parse_limits, row_json
from zai_dash.domain.snapshot import Snapshot, SourceHealth, build_snapshot

START = FIXED_NOW - timedelta(hours=1)


def _snapshot(prompts: int, calls: int, tool: str = "claude-code", official: bool = False) -> Snapshot:
    led = Ledger()
    for i in range(prompts):
        led.add(UsageEvent(EventKind.PROMPT, START + timedelta(minutes=i), tool, f"p{i}"))
    for i in range(calls):
        led.add(UsageEvent(EventKind.CALL, START + timedelta(minutes=i, seconds=5), tool, f"c{i}", model="glm-4.6"))
    led.add(UsageEvent(EventKind.MCP, START + timedelta(minutes=3), tool, "s1", service=McpService.SEARCH))
    rows = ()
    if official:
        reading = parse_limits(V1["data"], FIXED_NOW)
        rows = tuple(row_json(r, FIXED_NOW, stale=False, level="lite", version="V1") for r in reading.rows)
    return build_snapshot(
        now=FIXED_NOW,
        plan=builtin_plans()["pro"],
        ledger=led,
        tz=ZoneInfo("UTC"),
        sources=[SourceHealth(tool, tool, "ok")],
        official=rows,
    )
