"""The snapshot document: numbers and the `report --json` shape."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from zai_dash.config import builtin_plans
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.snapshot import SourceHealth, Thresholds, ToolConfigInfo, build_snapshot, gauge_level
from zai_dash.sources.tools import registered_tool_ids, registered_tools

START = datetime(2026, 11, 26, 9, 17, 3, tzinfo=timezone.utc)
NOW = START + timedelta(hours=2)


def _ledger() -> Ledger:
    led = Ledger()
    for i in range(4):
        led.add(UsageEvent(EventKind.PROMPT, START + timedelta(minutes=20 * i), "claude-code", f"p{i}"))
    for i in range(70):
        led.add(
            UsageEvent(
                EventKind.CALL,
                START + timedelta(minutes=i, seconds=1),
                "claude-code",
                f"c{i}",
                model="glm-4.6" if i < 60 else "glm-4.5-air",
                tokens=100,
                role=CallRole.SUBAGENT if i % 10 == 0 else CallRole.MAIN,
            )
        )
    led.add(UsageEvent(EventKind.MCP, START + timedelta(minutes=5), "claude-code", "s1", service=McpService.SEARCH))
    led.add(UsageEvent(EventKind.MCP, START + timedelta(minutes=6), "claude-code", "v1", service=McpService.VISION))
    # Earlier this month, outside the cycle: counts for the month only.
    led.add(UsageEvent(EventKind.MCP, START - timedelta(days=3), "claude-code", "s0", service=McpService.READER))
    return led


def test_snapshot_numbers_and_document() -> None:
    plan = builtin_plans()["pro"]
    snap = build_snapshot(
        now=NOW,
        plan=plan,
        ledger=_ledger(),
        tz=ZoneInfo("UTC"),
        tool_configs={"claude-code": ToolConfigInfo("glm-4.6", "settings.json", "https://x", EndpointKind.CODING)},
        sources=[SourceHealth("claude-code", "claude-code", "ok", "1 file(s)")],
        tools=registered_tools(),
    )
    assert snap.cycle.state == "open" and snap.cycle.start == START
    p = snap.prompts
    assert (p.used, p.calls, p.vision) == (4, 70, 1)
    assert p.equivalents == max(4, 5) + 1  # ceil(70/15) = 5, plus one vision call
    assert p.left == 600 - 6
    assert p.calls_subagent == 7 and p.calls_main == 63
    assert snap.searches.cycle == 1 and snap.searches.month == 2
    assert snap.searches.by_service["reader"] == 1
    row = next(t for t in snap.tools if t.tool == "claude-code")
    assert row.model == "glm-4.5-air" and row.model_source == "log"
    assert row.status == "idle"  # last call 50 min before now
    assert sum(snap.timeline.equivalents) == p.equivalents

    doc = json.loads(json.dumps(snap.to_json(ZoneInfo("Asia/Shanghai"))))
    for key in ("schema", "at", "plan", "cycle", "prompts", "searches", "tools", "sources", "skipped"):
        assert key in doc
    assert doc["at"].endswith("+08:00")
    assert doc["plan"] == {
        "name": "pro",
        "prompts_per_cycle": 600,
        "searches_per_month": 1000,
        "calls_per_prompt": 15,
        "cycle_hours": 5.0,
    }
    assert set(doc["cycle"]) >= {"start", "end", "seconds_left", "anchor"}
    assert doc["cycle"]["anchor"] == "local" and doc["cycle"]["seconds_left"] == 3 * 3600
    assert set(doc["prompts"]) >= {"used", "calls", "equivalents", "limit", "left"}
    assert set(doc["searches"]) >= {"cycle", "month", "month_limit", "month_start", "by_service"}
    assert set(doc["searches"]["by_service"]) == {"search", "reader", "zread", "vision"}
    assert [t["tool"] for t in doc["tools"]] == list(registered_tool_ids())
    cc = doc["tools"][0]
    assert set(cc) >= {"tool", "found", "model", "model_source", "prompts", "calls", "searches", "last_activity"}
    assert cc["found"] is True and doc["tools"][1]["found"] is False
    assert doc["sources"][0] == {
        "name": "claude-code",
        "tool": "claude-code",
        "status": "ok",
        "detail": "1 file(s)",
        "roots": [],
        "files": 0,
        "skipped": {},
        "refused": None,
    }


def test_model_falls_back_to_config() -> None:
    snap = build_snapshot(
        now=NOW,
        plan=builtin_plans()["lite"],
        ledger=Ledger(),
        tz=timezone.utc,
        tool_configs={
            "crush": ToolConfigInfo("glm-4.6", "crush.json", "https://api.z.ai/api/paas/v4", EndpointKind.PAYG)
        },
        sources=[SourceHealth("crush", "crush", "ok")],
    )
    row = next(t for t in snap.tools if t.tool == "crush")
    assert row.found and row.model == "glm-4.6" and row.model_source == "config"
    assert row.warning and "pay-as-you-go" in row.warning
    assert snap.cycle.state == "not-started"
    assert snap.prompts.equivalents == 0 and snap.forecast is None


def test_gauge_levels() -> None:
    th = Thresholds(0.75, 0.9)
    assert gauge_level(449, 600, th) == "ok"
    assert gauge_level(450, 600, th) == "warning"
    assert gauge_level(540, 600, th) == "critical"
    assert gauge_level(600, 600, th) == "exhausted"
