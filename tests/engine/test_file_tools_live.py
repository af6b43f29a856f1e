"""Live: a task file rewritten while the engine watches shows up as a new prompt within a second."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from tests.support.env import FIXED_NOW
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.demo.cline import write_cline_task
from zai_dash.demo.droid import append_droid_turn, write_droid_session
from zai_dash.domain.snapshot import Snapshot
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.droid import DroidSource
from zai_dash.sources.tools.vscode_tasks import VscodeTasksSource

T0 = FIXED_NOW - timedelta(minutes=30)


def _prompts(snap: Snapshot, tool: str) -> int:
    return next(row.prompts for row in snap.tools if row.tool == tool)


async def _see(engine: Engine, tool: str, want: int, change: object) -> int:
    """Start watching, apply `change` once the watcher is up, return the prompts seen within 1 s."""
    stop = asyncio.Event()
    seen: asyncio.Queue[int] = asyncio.Queue()

    async def consume() -> None:
        async for snap in engine.watch(stop):
            await seen.put(_prompts(snap, tool))

    task = asyncio.create_task(consume())
    try:
        await asyncio.sleep(0.3)  # let the inotify watch be set up; not part of what is measured
        assert callable(change)
        await asyncio.to_thread(change)
        count = -1

        async def until() -> None:
            nonlocal count
            while count < want:
                count = await seen.get()

        await asyncio.wait_for(until(), timeout=1.0)
        return count
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def test_rewritten_cline_task_is_seen_within_a_second(home: Path, ctx: SourceContext) -> None:
    task = write_cline_task(home, [T0])
    engine = Engine(
        replace(Config(), timezone="UTC"), ctx=ctx, clock=FixedClock(FIXED_NOW), sources=[VscodeTasksSource(ctx)]
    )
    engine.scan()
    assert _prompts(engine.snapshot(), "cline") == 1

    def rewrite() -> None:
        # Cline's writeFile: the whole array again, one user_feedback longer.
        ui = task / "ui_messages.json"
        records = json.loads(ui.read_text())
        ts = int((T0 + timedelta(minutes=5)).timestamp() * 1000)
        records.append({"ts": ts, "type": "say", "say": "user_feedback", "text": "also add jitter", "images": []})
        ui.write_text(json.dumps(records))
        st = ui.stat()
        os.utime(ui, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))

    assert await _see(engine, "cline", 2, rewrite) == 2


async def test_appended_droid_turn_is_seen_within_a_second(home: Path, ctx: SourceContext) -> None:
    session = write_droid_session(home, [T0])
    engine = Engine(replace(Config(), timezone="UTC"), ctx=ctx, clock=FixedClock(FIXED_NOW), sources=[DroidSource(ctx)])
    engine.scan()
    assert _prompts(engine.snapshot(), "droid") == 1
    assert await _see(engine, "droid", 2, lambda: append_droid_turn(session, T0 + timedelta(minutes=3))) == 2


def test_demo_files_read_back_with_counts_models_and_endpoints(home: Path, ctx: SourceContext) -> None:
    write_cline_task(home, [T0, T0 + timedelta(minutes=4), T0 + timedelta(minutes=9)])
    write_droid_session(home, [T0, T0 + timedelta(minutes=2)])
    engine = Engine(
        replace(Config(), timezone="UTC"),
        ctx=ctx,
        clock=FixedClock(FIXED_NOW),
        sources=[VscodeTasksSource(ctx), DroidSource(ctx)],
    )
    engine.scan()
    rows = {row.tool: row for row in engine.snapshot().tools}
    assert (rows["cline"].prompts, rows["cline"].calls, rows["cline"].searches) == (3, 6, 1)
    assert (rows["droid"].prompts, rows["droid"].calls, rows["droid"].searches) == (2, 4, 1)
    configs = engine.tool_configs()
    assert configs["cline"].model == "glm-4.6" and configs["cline"].endpoint is not None
    assert configs["droid"].model == "glm-4.6" and configs["droid"].base_url == "https://api.z.ai/api/anthropic"
