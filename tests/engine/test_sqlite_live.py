"""Engine-level liveness: rows a tool writes to its SQLite database while the engine watches are counted
within a second (watchfiles wake-up on the `-wal` → stat-gated read → watermark query)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta
from pathlib import Path

from tests.support.env import FIXED_NOW
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.demo.crush import add_crush_turn, write_crush_session
from zai_dash.demo.opencode import add_opencode_turn, write_opencode_session
from zai_dash.domain.snapshot import Snapshot
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.crush import CrushSource
from zai_dash.sources.tools.opencode import OpenCodeSource


def prompts(snap: Snapshot, tool: str) -> int:
    return next(row.prompts for row in snap.tools if row.tool == tool)


async def next_matching(queue: asyncio.Queue[Snapshot], check: object, timeout: float) -> Snapshot:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        snap = await asyncio.wait_for(queue.get(), timeout=max(0.0, deadline - loop.time()))
        if check(snap):  # type: ignore[operator]
            return snap


async def test_rows_written_while_watching_are_counted(home: Path, ctx: SourceContext) -> None:
    # On the injected clock: records are relative to FIXED_NOW, never to today. The waits are hang guards;
    # the latency is a bench figure.
    now = FIXED_NOW
    oc_db = write_opencode_session(home, now - timedelta(minutes=10), prompts=1, session_id="ses_live")
    crush_db = write_crush_session(home, now - timedelta(minutes=10), prompts=1, project=home / "proj")
    engine = Engine(Config(), ctx, FixedClock(FIXED_NOW), sources=[OpenCodeSource(ctx), CrushSource(ctx)])
    engine.publish_state = False
    engine.scan()
    first = engine.snapshot()
    assert prompts(first, "opencode") == 1 and prompts(first, "crush") == 1
    assert oc_db.parent in engine.watch_paths() and crush_db.parent in engine.watch_paths()

    stop = asyncio.Event()
    queue: asyncio.Queue[Snapshot] = asyncio.Queue()

    async def run() -> None:
        async for snap in engine.watch(stop):
            queue.put_nowait(snap)

    task = asyncio.create_task(run())
    await asyncio.sleep(0.5)  # let the watcher start
    # The tools keep their databases open while writing: new rows sit in the -wal.
    oc = sqlite3.connect(oc_db, isolation_level=None)
    crush = sqlite3.connect(crush_db, isolation_level=None)
    try:
        at = int((FIXED_NOW - timedelta(minutes=1)).timestamp() * 1000)
        add_opencode_turn(oc, "ses_live", at, steps=2)
        snap = await next_matching(queue, lambda s: prompts(s, "opencode") == 2, timeout=30)
        assert snap.prompts.calls >= 3
        session = crush.execute("SELECT id FROM sessions").fetchone()[0]
        add_crush_turn(crush, session, int(at / 1000), steps=1)
        await next_matching(queue, lambda s: prompts(s, "crush") == 2, timeout=30)
    finally:
        oc.close()
        crush.close()
        stop.set()
        await asyncio.wait_for(task, timeout=15)
