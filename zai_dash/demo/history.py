"""The demo's history: three earlier days of the week, an earlier cycle today and the current one."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from zai_dash.demo.claude_code import ClaudeCodeWriter, write_claude_settings
from zai_dash.demo.cline import write_cline_task
from zai_dash.demo.crush import write_crush_session
from zai_dash.demo.droid import write_droid_session
from zai_dash.demo.opencode import write_opencode_session

PROMPTS = (
    "add exponential backoff to getJson()",
    "write tests for the retry helper",
    "why does the checkout test flake on CI?",
    "refactor the cart service into smaller modules",
    "look up the current best practice for idempotency keys",
    "add a migration for the orders.status column",
    "explain this stack trace",
    "make the price formatter locale-aware",
    "summarise what changed in this branch",
    "fix the N+1 query in /orders",
)


def _turn(w: ClaudeCodeWriter, ts: datetime, rng: random.Random, model: str, prompt: str) -> datetime:
    """One prompt and the calls it causes; returns the time after the turn."""
    w.prompt(ts, prompt)
    calls = rng.randint(8, 18)
    for i in range(calls):
        ts += timedelta(seconds=rng.randint(3, 12))
        tool = None
        if i == 1 and rng.random() < 0.35:
            tool = "mcp__web-search-prime__webSearchPrime"
        elif i == 2 and rng.random() < 0.1:
            tool = "mcp__zread__search_doc"
        elif i == 3 and rng.random() < 0.05:
            tool = "mcp__zai-mcp-server__analyze_image"
        elif i < calls - 1 and rng.random() < 0.5:
            tool = "Edit"
        tool_id = w.call(ts, model, tool=tool)
        if tool_id:
            ts += timedelta(seconds=1)
            w.tool_result(ts, tool_id)
    return ts


def write_demo_history(home: Path, now: datetime, seed: int = 7) -> None:
    """Write a realistic history ending at `now`: three earlier days of the week, an earlier cycle today
    and the current one, 2 h 13 min in.

    Deterministic for a given `now` and `seed` (screenshots rely on it).
    """
    rng = random.Random(seed)
    write_claude_settings(home)
    week = ClaudeCodeWriter(home, "6a0d9e21-3c4b-4f7a-8e1d-2b9c5a7f0e33")
    for day in (3, 2, 1):  # a working afternoon on each earlier day of the week
        ts = now - timedelta(days=day, hours=3)
        for i in range(12):
            ts = _turn(week, ts, rng, "glm-5.3", PROMPTS[i % len(PROMPTS)]) + timedelta(minutes=rng.randint(3, 9))
    earlier = ClaudeCodeWriter(home, "0b7c1d52-5f7e-4b8e-9d8e-6a1f0c2e9a11")
    ts = now - timedelta(hours=9, minutes=40)
    for i in range(14):
        ts = _turn(earlier, ts, rng, "glm-5.3", PROMPTS[i % len(PROMPTS)]) + timedelta(minutes=rng.randint(4, 12))
    current = ClaudeCodeWriter(home, "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11")
    ts = now - timedelta(hours=2, minutes=13)
    i = 0
    while ts < now - timedelta(minutes=3):
        model = "glm-5.3" if i < 30 else "glm-4.7"
        ts = _turn(current, ts, rng, model, PROMPTS[i % len(PROMPTS)]) + timedelta(seconds=rng.randint(20, 120))
        i += 1
    _write_other_tools(home, now)


def _write_other_tools(home: Path, now: datetime) -> None:
    """The same hours in the other tools people use on the plan, each in its real storage format."""
    write_opencode_session(home, now - timedelta(hours=1, minutes=40), prompts=6, steps_per_prompt=4, searches=2)
    write_crush_session(home, now - timedelta(minutes=55), prompts=4, steps_per_prompt=3, model="glm-4.5-air")
    write_cline_task(home, [now - timedelta(minutes=m) for m in (80, 65, 41)], task_id="1764140000000")
    write_droid_session(home, [now - timedelta(minutes=m) for m in (31, 12)], session_id=_DROID_SESSION)


_DROID_SESSION = "9d3e2b1a-6c4f-4e8a-b2d7-5f0a1c3e7b90"
