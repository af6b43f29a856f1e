"""Builders of realistic snapshots for the UI tests: a real Ledger fed real events, then `build_snapshot`.

The numbers on screen are therefore the engine's own arithmetic, not hand-written dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, LimitHit, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.plans import Plan
from zai_dash.domain.snapshot import Snapshot, SourceHealth, Thresholds, ToolConfigInfo, build_snapshot

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
"""Same instant as `tests.conftest.FIXED_NOW`."""

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
    return build_snapshot(now=now, plan=PLANS["pro"], ledger=Ledger(), tz=timezone.utc, sources=sources)


def not_started_snapshot(now: datetime = NOW) -> Snapshot:
    """Activity long ago, nothing in the last five hours: the cycle has not started."""
    old = [Session("claude-code", 10, 80, {})]
    ledger = ledger_for(old, now - timedelta(hours=9), now - timedelta(hours=7))
    root = ("/home/u/.claude/projects", True)
    sources = [SourceHealth("claude-code", "claude-code", "ok", roots=(root,), files=1)]
    return build_snapshot(now=now, plan=PLANS["pro"], ledger=ledger, tz=timezone.utc, sources=sources)


def claude_prompt_line(ts: datetime, n: int, session: str = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11") -> str:
    """One Claude Code transcript line: a human prompt (log-formats.md §1 example, line 1)."""
    import json

    return json.dumps(
        {
            "parentUuid": None,
            "isSidechain": False,
            "userType": "external",
            "cwd": "/home/u/proj",
            "sessionId": session,
            "version": "2.0.14",
            "gitBranch": "main",
            "type": "user",
            "message": {"role": "user", "content": f"prompt number {n}: add backoff to getJson()"},
            "uuid": f"a1f0c8e2-1111-4a2b-8c3d-{n:012d}",
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
    )


def claude_call_line(ts: datetime, n: int, session: str = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11") -> str:
    """One Claude Code transcript line: an assistant reply with usage (one model call)."""
    import json

    return json.dumps(
        {
            "parentUuid": f"a1f0c8e2-1111-4a2b-8c3d-{n:012d}",
            "isSidechain": False,
            "userType": "external",
            "cwd": "/home/u/proj",
            "sessionId": session,
            "version": "2.0.14",
            "gitBranch": "main",
            "message": {
                "id": f"msg_20261126{n:012d}",
                "type": "message",
                "role": "assistant",
                "model": "glm-4.6",
                "content": [{"type": "text", "text": "Done."}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 1520,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 11904,
                    "output_tokens": 88,
                },
            },
            "requestId": f"req_{n:012d}",
            "type": "assistant",
            "uuid": f"b2e1d9f3-2222-4b3c-9d4e-{n:012d}",
            "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        }
    )


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
