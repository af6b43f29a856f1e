"""The built-in demo: a simulated coding session written in real tool formats into a temp dir.

The real engine and TUI then run over it, so the demo exercises exactly what users run. Claude Code
history is written here; other tools add theirs through their own demo writers.

It runs the plan Z.ai sells today: Pro on credits, with a weekly window anchored three days back and
earlier days of the week in the logs. Its clock is the wall clock moved to the latest weekday evening
at 18:40 in UTC+8, 2 h 13 min into a 5-hour window that opened at peak: the window crosses the
18:00 peak boundary, so its calls are priced at both rates.
"""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from zai_dash.clock import SYSTEM_CLOCK, ShiftedClock
from zai_dash.config import Config, builtin_plans
from zai_dash.demo.claude_code import ClaudeCodeWriter
from zai_dash.demo.history import PROMPTS, write_demo_history

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
