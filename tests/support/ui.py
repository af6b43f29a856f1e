"""Builders of realistic snapshots for the UI tests: a real Ledger fed real events, then `build_snapshot`.

The numbers on screen are therefore the engine's own arithmetic, not hand-written dataclasses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from textual.content import Content
from textual.widget import Widget

from zai_dash.demo.claude_code import assistant_record, usage, user_record
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, LimitHit, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.plans import Plan
from zai_dash.domain.snapshot import Snapshot, SourceHealth, Thresholds, ToolConfigInfo, build_snapshot
from zai_dash.sources.tools import registered_tools
from zai_dash.ui.live import LiveDigits, LiveStatic

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
"""Same instant as `tests.support.env.FIXED_NOW`."""

PLANS: dict[str, Plan] = {
    "lite": Plan("lite", 120, 0),
    "pro": Plan("pro", 600, 1000),
    "max": Plan("max", 2400, 4000),
}


@dataclass
class Session:
    """Activity of one tool inside the window, spread evenly from `first` to `last`.

    Attributes:
        tool: tool id.
        prompts: prompts to spread.
        calls: model calls to spread (every 10th from a sub-agent).
        searches: per service, MCP calls to spread.
        model: model on the calls.
        first: minutes after the window opened of the first event.
        last: minutes before `now` of the last event.
    """

    tool: str = "claude-code"
    prompts: int = 0
    calls: int = 0
    searches: Mapping[str, int] = field(default_factory=dict)
    model: str = "glm-4.6"
    first: float = 0.0
    last: float = 1.0


def ledger_for(sessions: list[Session], opened: datetime, now: datetime) -> Ledger:
    """A ledger with every session's events, spread between `opened + first` and `now − last`."""
    ledger = Ledger()
    n = 0
    for s in sessions:
        a = opened + timedelta(minutes=s.first)
        b = now - timedelta(minutes=s.last)

        def spread(k: int, i: int, a: datetime = a, b: datetime = b) -> datetime:
            return a if k <= 1 else a + (b - a) * (i / (k - 1))

        for i in range(s.prompts):
            n += 1
            ledger.add(UsageEvent(EventKind.PROMPT, spread(s.prompts, i), s.tool, f"p{n}", session="s1"))
        for i in range(s.calls):
            n += 1
            role = CallRole.SUBAGENT if i % 10 == 9 else CallRole.MAIN
            ts = spread(s.calls, i)
            ledger.add(UsageEvent(EventKind.CALL, ts, s.tool, f"c{n}", model=s.model, role=role, tokens=1000))
        for service, k in s.searches.items():
            for i in range(k):
                n += 1
                ts = spread(k, i)
                ledger.add(UsageEvent(EventKind.MCP, ts, s.tool, f"m{n}", service=McpService(service)))
    return ledger


def make_snapshot(
    *,
    prompts: int = 120,
    calls: int = 900,
    searches: Mapping[str, int] | None = None,
    plan: str = "pro",
    opened_ago: timedelta = timedelta(hours=2, minutes=10),
    now: datetime = NOW,
    extra: list[Session] | None = None,
    limit_hit_reset: datetime | None = None,
    payg_tool: str | None = None,
    thresholds: Thresholds | None = None,
    demo: bool = False,
    official_reset: datetime | None = None,
    official: Sequence[Mapping[str, object]] = (),
) -> Snapshot:
    """A snapshot of a Claude Code session that opened `opened_ago` before `now`.

    Args:
        prompts: Claude Code prompts in the window.
        calls: Claude Code model calls in the window.
        searches: Claude Code MCP calls per service in the window.
        plan: built-in plan name.
        opened_ago: how long ago the window opened (the first event).
        now: the instant.
        extra: more tools' sessions.
        limit_hit_reset: add a 1308 limit hit a minute ago naming this reset.
        payg_tool: a tool whose configured endpoint is pay-as-you-go.
        thresholds: gauge levels.
        demo: the demo flag.
        official_reset: a fresh official 5-hour reset time that anchors the cycle (as the engine passes it).
        official: official rows (`official_rows`), which the builder holds against the windows.
    """
    opened = now - opened_ago
    sessions = [
        Session(
            "claude-code",
            prompts,
            calls,
            searches if searches is not None else {"search": 14, "reader": 5, "zread": 2, "vision": 3},
        ),
        *(extra or []),
    ]
    ledger = ledger_for(sessions, opened, now)
    if limit_hit_reset is not None:
        ledger.add_limit_hit(LimitHit(now - timedelta(minutes=1), "claude-code", 1308, limit_hit_reset))
    configs = {"claude-code": ToolConfigInfo("glm-4.6", "settings.json env.ANTHROPIC_MODEL", None, EndpointKind.CODING)}
    if payg_tool:
        payg_url = "https://api.z.ai/api/paas/v4"
        configs[payg_tool] = ToolConfigInfo("glm-4.5", "config", payg_url, EndpointKind.PAYG)
    sources = [SourceHealth(s.tool, s.tool, "ok", roots=((f"/home/u/.{s.tool}", True),), files=1) for s in sessions]
    return build_snapshot(
        now=now,
        plan=PLANS[plan],
        ledger=ledger,
        tz=timezone.utc,
        thresholds=thresholds,
        tool_configs=configs,
        sources=sources,
        demo=demo,
        official_reset=official_reset,
        official=official,
        tools=registered_tools(),
    )


def at_percent(percent: float, *, plan: str = "pro", **kwargs: object) -> Snapshot:
    """A snapshot whose prompt-equivalents are `percent` % of the plan's limit (prompts only)."""
    limit = PLANS[plan].prompts_per_cycle
    return make_snapshot(prompts=round(limit * percent / 100), calls=0, plan=plan, **kwargs)  # type: ignore[arg-type]


def empty_snapshot(now: datetime = NOW) -> Snapshot:
    """No tool found anywhere: the empty state."""
    sources = [
        SourceHealth("claude-code", "claude-code", "absent", roots=(("/home/u/.claude/projects", False),)),
        SourceHealth("opencode", "opencode", "absent", roots=(("/home/u/.local/share/opencode", False),)),
    ]
    return build_snapshot(
        now=now, plan=PLANS["pro"], ledger=Ledger(), tz=timezone.utc, sources=sources, tools=registered_tools()
    )


def not_started_snapshot(now: datetime = NOW) -> Snapshot:
    """Activity long ago, nothing in the last five hours: the cycle has not started."""
    old = [Session("claude-code", 10, 80, {})]
    ledger = ledger_for(old, now - timedelta(hours=9), now - timedelta(hours=7))
    root = ("/home/u/.claude/projects", True)
    sources = [SourceHealth("claude-code", "claude-code", "ok", roots=(root,), files=1)]
    return build_snapshot(
        now=now, plan=PLANS["pro"], ledger=ledger, tz=timezone.utc, sources=sources, tools=registered_tools()
    )


def claude_prompt_line(ts: datetime, n: int, session: str = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11") -> str:
    """One Claude Code transcript line: a human prompt (log-formats.md §1 example, line 1)."""
    text = f"prompt number {n}: add backoff to getJson()"
    return json.dumps(
        user_record(ts, text, session=session, cwd="/home/u/proj", uuid=f"a1f0c8e2-1111-4a2b-8c3d-{n:012d}")
    )


def claude_call_line(ts: datetime, n: int, session: str = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11") -> str:
    """One Claude Code transcript line: an assistant reply with usage (one model call)."""
    rec = assistant_record(
        ts,
        message_id=f"msg_20261126{n:012d}",
        model="glm-4.6",
        content=[{"type": "text", "text": "Done."}],
        tokens=usage(1520, 88, cache_read=11904),
        request_id=f"req_{n:012d}",
        stop_reason="end_turn",
        session=session,
        cwd="/home/u/proj",
        uuid=f"b2e1d9f3-2222-4b3c-9d4e-{n:012d}",
        parent=f"a1f0c8e2-1111-4a2b-8c3d-{n:012d}",
    )
    return json.dumps(rec)


def write_claude_history(home: Path, now: datetime, prompts: int = 3) -> Path:
    """A Claude Code transcript under `home/.claude/projects/`: `prompts` turns, 10 min apart, before `now`."""
    path = home / ".claude" / "projects" / "-home-u-proj" / "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for n in range(prompts):
        ts = now - timedelta(minutes=10 * (prompts - n))
        lines += [claude_prompt_line(ts, n + 1), claude_call_line(ts + timedelta(seconds=3), n + 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- official quota and proxies (issue 6): rows built by the real domain functions ---------------


def quota_payload(*limits: dict[str, object], level: str = "pro") -> dict[str, object]:
    """A quota/limit success envelope with these `data.limits` rows (reference §7 shapes)."""
    from tests.support.http import envelope

    return envelope({"level": level, "limits": list(limits)})


def five_hour_limit(percentage: float, reset: datetime | None = NOW + timedelta(hours=1)) -> dict[str, object]:
    """A V1/V2 5-hour TOKENS_LIMIT row with a rounded percentage."""
    row: dict[str, object] = {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": percentage}
    if reset is not None:
        row["nextResetTime"] = int(reset.timestamp() * 1000)
    return row


def weekly_limit(percentage: float, reset: datetime = NOW + timedelta(days=3, hours=4)) -> dict[str, object]:
    """A V2 weekly TOKENS_LIMIT row."""
    ms = int(reset.timestamp() * 1000)
    return {"type": "TOKENS_LIMIT", "unit": 6, "number": 1, "percentage": percentage, "nextResetTime": ms}


def official_rows(
    payload: Mapping[str, object],
    *,
    now: datetime = NOW,
    fetched_ago: timedelta = timedelta(seconds=20),
    stale: bool = False,
) -> tuple[dict[str, object], ...]:
    """`Snapshot.official` for one response body: `parse_limits` then `row_json`, as the quota source does."""
    from zai_dash.domain.official import parse_limits, row_json

    reading = parse_limits(payload["data"], now - fetched_ago)
    return tuple(row_json(r, now, stale=stale, level=reading.level, version=reading.version) for r in reading.rows)


def with_official(
    snap: Snapshot,
    payload: Mapping[str, object],
    *,
    fetched_ago: timedelta = timedelta(seconds=20),
    stale: bool = False,
    calibration: list[tuple[float, int]] | None = None,
    health: tuple[str, str] | None = None,
    margin: float = 15.0,
) -> Snapshot:
    """`snap` as the engine builds it with the quota endpoint on: official rows, reconciliation, the
    official monthly MCP row in the search gauge, and a `zai-quota` health row.

    Args:
        snap: the local snapshot.
        payload: the quota response envelope.
        fetched_ago: age of the reading.
        stale: whether the reading is stale (the last poll failed or is too old).
        calibration: (official percent, local equivalents) observations fed to a real `Calibration`.
        health: (status, detail) of the quota source; ok with a success line by default.
        margin: the drift margin.
    """
    from dataclasses import replace

    from zai_dash.domain.official import Calibration, reconcile
    from zai_dash.domain.snapshot import official_searches

    rows = official_rows(payload, now=snap.at, fetched_ago=fetched_ago, stale=stale)
    cal = Calibration()
    five = next((r for r in rows if r["kind"] == "five-hour"), None)
    for percent, equivalents in calibration or []:
        cal.observe(percent, equivalents, five["next_reset"] if five else None)  # type: ignore[arg-type]
    recon = reconcile(rows, snap.prompts.percent, margin=margin, calibration=cal)
    status, detail = health or ("ok", "ok: quota row(s) from 127.0.0.1 (plan pro, V1)")
    sources = (*snap.sources, SourceHealth("zai-quota", None, status, detail))
    monthly = next((r for r in rows if r["kind"] == "monthly-mcp" and not r["stale"]), None)
    searches = official_searches(snap.searches, monthly) if monthly else snap.searches
    return replace(snap, official=rows, reconciliation=recon, searches=searches, sources=sources)


def litellm_row(
    name: str = "litellm",
    *,
    now: datetime = NOW,
    cycle_start: datetime | None = NOW - timedelta(hours=2),
    calls: Mapping[str, int] | None = None,
    scraped_ago: timedelta = timedelta(seconds=10),
    status: str = "ok",
    message: str = "ok: 42 samples, 5 series matched",
) -> dict[str, object]:
    """A LiteLLM endpoint's `proxy_row`: a real `prometheus_client` exposition, parsed by the real parser,
    fed to a real `ProxyState` (a baseline scrape, then one after `calls` more requests per model)."""
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    from tests.support.http import LiteLLMMetrics
    from zai_dash.domain.proxy import ProxyState, build_metric_map, proxy_row
    from zai_dash.sources.prometheus import parse_exposition

    metrics = LiteLLMMetrics()
    metrics.call("glm-4.6", 500, 100)
    state = ProxyState(build_metric_map("litellm"))
    last = now - scraped_ago
    state.update(
        parse_exposition(generate_latest(metrics.registry).decode(), CONTENT_TYPE_LATEST), last - timedelta(minutes=5)
    )
    for model, n in (calls if calls is not None else {"glm-4.6": 12, "glm-4.5-air": 3}).items():
        for _ in range(n):
            metrics.call(model, 1000, 200)
    state.update(parse_exposition(generate_latest(metrics.registry).decode(), CONTENT_TYPE_LATEST), last)
    return proxy_row(
        name=name,
        url="http://127.0.0.1:4000/metrics",
        preset="litellm",
        state=state,
        status=status,
        message=message,
        now=now,
        cycle_start=cycle_start,
        stale_after=timedelta(seconds=90),
    )


def unauthorized_row(name: str = "litellm", now: datetime = NOW) -> dict[str, object]:
    """A LiteLLM endpoint that answered 401 before any good scrape (its message from the real source)."""
    from zai_dash.domain.proxy import ProxyState, build_metric_map, proxy_row
    from zai_dash.sources.prometheus import LITELLM_401

    return proxy_row(
        name=name,
        url="http://127.0.0.1:4000/metrics",
        preset="litellm",
        state=ProxyState(build_metric_map("litellm")),
        status="unauthorized",
        message=LITELLM_401.format(name=name),
        now=now,
        cycle_start=None,
        stale_after=timedelta(seconds=90),
    )


def exporter_row(
    machine: str, snap: Snapshot, *, now: datetime = NOW, scraped_ago: timedelta = timedelta(seconds=10)
) -> dict[str, object]:
    """Another machine's zai-dash exporter as a proxy row: `exporter.render` of its snapshot, parsed by the
    real parser into a `ProxyState` with the `zai-dash` preset."""
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from zai_dash.domain.proxy import ProxyState, build_metric_map, proxy_row
    from zai_dash.exporter import render
    from zai_dash.sources.prometheus import parse_exposition

    state = ProxyState(build_metric_map("zai-dash"))
    state.update(parse_exposition(render(snap, machine).decode(), CONTENT_TYPE_LATEST), now - scraped_ago)
    return proxy_row(
        name=machine,
        url=f"http://{machine}:9464/metrics",
        preset="zai-dash",
        state=state,
        status="ok",
        message="ok",
        now=now,
        cycle_start=snap.cycle.start,
        stale_after=timedelta(seconds=90),
    )


def shown(widget: Widget) -> str:
    """The plain text a text widget shows; for a live one off screen, what it will show when next shown.

    The live widgets (`zai_dash.ui.live`) keep off-screen text waiting instead of painting it, so a test
    of a form the layout hides reads the waiting text.
    """
    if isinstance(widget, LiveDigits):
        return widget.wanted
    if isinstance(widget, LiveStatic):
        return Content.from_markup(widget.wanted).plain
    return str(widget.render())
