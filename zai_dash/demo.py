"""The built-in demo: a simulated coding session written in real tool formats into a temp dir.

The real engine and TUI then run over it, so the demo exercises exactly what users run. Claude Code
history is written here; other tools add theirs through their own demo writers.

It runs the plan Z.ai sells today: Pro on credits, with a weekly window anchored three days back and
earlier days of the week in the logs. Its clock is the wall clock moved to the latest weekday evening
at 18:40 in UTC+8, 2 h 13 min into a 5-hour window that opened at peak: the window crosses the
18:00 peak boundary, so its calls are priced at both rates.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from zai_dash.clock import SYSTEM_CLOCK, ShiftedClock
from zai_dash.config import Config, builtin_plans

DEMO_PROJECT = "/home/demo/shop-api"
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


def _iso(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ClaudeCodeWriter:
    """Appends records to a Claude Code session file the way Claude Code does (one line per block)."""

    def __init__(self, home: Path, session: str, cwd: str = DEMO_PROJECT) -> None:
        slug = "".join(c if c.isalnum() else "-" for c in cwd)
        self.dir = home / ".claude" / "projects" / slug
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / f"{session}.jsonl"
        self.session = session
        self.cwd = cwd
        self._n = 0
        self._parent: str | None = None

    def _base(self, ts: datetime, kind: str) -> dict[str, Any]:
        self._n += 1
        uid = str(uuid.UUID(int=random.Random(f"{self.session}{self._n}").getrandbits(128)))
        rec = {
            "parentUuid": self._parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.session,
            "version": "2.0.14",
            "gitBranch": "main",
            "type": kind,
            "uuid": uid,
            "timestamp": _iso(ts),
        }
        self._parent = uid
        return rec

    def _append(self, *records: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")

    def prompt(self, ts: datetime, text: str) -> None:
        """A human prompt."""
        rec = self._base(ts, "user")
        rec["message"] = {"role": "user", "content": text}
        self._append(rec)

    def call(self, ts: datetime, model: str, *, tool: str | None = None, text: str = "Done.") -> str | None:
        """One model call: a thinking line and a text or tool_use line sharing the message id."""
        msg_id = f"msg_{ts:%Y%m%d%H%M%S}{self._n:06d}"
        usage = {
            "input_tokens": 900 + self._n % 700,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 12000 + 37 * self._n,
            "output_tokens": 60 + self._n % 400,
        }
        tool_id = None
        blocks: list[dict[str, Any]] = [{"type": "thinking", "thinking": "Let me look at this."}]
        if tool:
            tool_id = f"call_{self.session[:4]}{self._n:05d}"
            blocks.append({"type": "tool_use", "id": tool_id, "name": tool, "input": {"query": "demo"}})
        else:
            blocks.append({"type": "text", "text": text})
        lines = []
        for block in blocks:
            rec = self._base(ts, "assistant")
            rec["message"] = {
                "id": msg_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [block],
                "stop_reason": "tool_use" if tool else "end_turn",
                "usage": usage,
            }
            rec["requestId"] = f"req_{msg_id[4:]}"
            lines.append(rec)
        self._append(*lines)
        return tool_id

    def tool_result(self, ts: datetime, tool_id: str) -> None:
        """The result of a tool call (not a prompt)."""
        rec = self._base(ts, "user")
        rec["message"] = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "ok"}]}
        rec["toolUseResult"] = {"stdout": "ok"}
        self._append(rec)


def write_claude_settings(home: Path, model: str = "glm-5.3") -> None:
    """Claude Code pointed at the Coding Plan with the Z.ai MCP servers, as Z.ai's set-up guide does."""
    claude = home / ".claude"
    claude.mkdir(parents=True, exist_ok=True)
    settings = {"env": {"ANTHROPIC_BASE_URL": "https://api.z.ai/api/anthropic", "ANTHROPIC_MODEL": model}}
    (claude / "settings.json").write_text(json.dumps(settings, indent=2))
    mcp = {
        "mcpServers": {
            "web-search-prime": {"type": "http", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp"},
            "zread": {"type": "http", "url": "https://api.z.ai/api/mcp/zread/mcp"},
            "zai-mcp-server": {"type": "stdio", "command": "npx", "args": ["-y", "@z_ai/mcp-server"]},
        }
    }
    (home / ".claude.json").write_text(json.dumps(mcp, indent=2))


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


DEMO_EVENING = timedelta(hours=10, minutes=40)
"""18:40 in UTC+8 (as UTC after midnight): 40 minutes past the end of the peak period."""
DEMO_WEEK_AGE = timedelta(days=3, hours=5)
"""How long before the demo's now its weekly window opened."""


def demo_instant(real: datetime) -> datetime:
    """The demo's now for a wall-clock instant: the latest weekday 18:40 UTC+8 (10:40 UTC) not after it."""
    day = real.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    at = day + DEMO_EVENING
    while at > real or at.weekday() >= 5:
        at -= timedelta(days=1)
    return at


def demo_config(config: Config, now: datetime) -> Config:
    """The demo's config: the user's display settings, Pro on credits with a weekly anchor, offline."""
    plans = builtin_plans("credits")
    return replace(
        config,
        billing="credits",
        plan=plans["pro"],
        plans=plans,
        weekly_reset=now - DEMO_WEEK_AGE,
        # The demo never polls the real quota endpoint or proxies: it shows only simulated data.
        api=replace(config.api, enabled=False),
        proxies=(),
    )


def _write_other_tools(home: Path, now: datetime) -> None:
    """The same hours in the other tools people use on the plan, each in its real storage format."""
    from zai_dash.demo_files import write_cline_task, write_droid_session
    from zai_dash.demo_sqlite import write_crush_session, write_opencode_session

    write_opencode_session(home, now - timedelta(hours=1, minutes=40), prompts=6, steps_per_prompt=4, searches=2)
    write_crush_session(home, now - timedelta(minutes=55), prompts=4, steps_per_prompt=3, model="glm-4.5-air")
    write_cline_task(home, [now - timedelta(minutes=m) for m in (80, 65, 41)], task_id="1764140000000")
    write_droid_session(home, [now - timedelta(minutes=m) for m in (31, 12)], session_id=_DROID_SESSION)


_DROID_SESSION = "9d3e2b1a-6c4f-4e8a-b2d7-5f0a1c3e7b90"


class LiveDemo(threading.Thread):
    """Appends a prompt every few seconds (calls and searches in between) until stopped."""

    def __init__(self, home: Path, clock: Callable[[], datetime], seed: int = 11) -> None:
        super().__init__(name="zai-dash-demo", daemon=True)
        self.writer = ClaudeCodeWriter(home, "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11")
        self.clock = clock
        self.rng = random.Random(seed)
        self.stopped = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopped.wait(self.rng.uniform(2.5, 4.5)):
            model = "glm-4.7" if (n // 5) % 2 else "glm-5.3"
            now = self.clock()
            self.writer.prompt(now, PROMPTS[n % len(PROMPTS)])
            for i in range(self.rng.randint(3, 8)):
                if self.stopped.wait(self.rng.uniform(0.2, 0.5)):
                    return
                tool = "mcp__web-search-prime__webSearchPrime" if i == 1 and self.rng.random() < 0.4 else None
                tool_id = self.writer.call(self.clock(), model, tool=tool)
                if tool_id:
                    self.writer.tool_result(self.clock(), tool_id)
            n += 1


def run_demo(config: Config, *, mouse: bool = True, theme: str | None = None, title: bool = True) -> int:
    """`zai-dash --demo`: write the demo into a temp dir, run the real engine and TUI over it, clean up."""
    from zai_dash.engine import Engine
    from zai_dash.sources.base import SourceContext
    from zai_dash.ui.app import run_dashboard

    root = Path(tempfile.mkdtemp(prefix="zai-dash-demo-"))
    try:
        real = SYSTEM_CLOCK.now()
        clock = ShiftedClock(demo_instant(real) - real)  # real speed, from the demo's evening
        now = clock.now()
        write_demo_history(root, now)
        env = {"HOME": str(root), "XDG_CONFIG_HOME": str(root / ".config"), "XDG_DATA_HOME": str(root / ".local/share")}
        ctx = SourceContext(home=root, env=env)
        engine = Engine(demo_config(config, now), ctx=ctx, clock=clock, demo=True)
        live = LiveDemo(root, clock.now)
        live.start()
        try:
            return run_dashboard(engine, clock, demo=True, bell=False, theme=theme, mouse=mouse, title=title)
        finally:
            live.stopped.set()
            live.join(timeout=2)
    finally:
        shutil.rmtree(root, ignore_errors=True)
