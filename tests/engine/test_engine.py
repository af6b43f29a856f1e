"""Engine behaviour that no single source owns: targeted wake-ups, fault isolation, live watch."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from tests.support.cli import SESSION, write_known_fixture
from tests.support.env import FIXED_NOW
from tests.support.ui import claude_call_line
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.engine import Engine
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource


class CountingSource(ToolSource):
    """A source that only counts its polls."""

    tools = ("goose",)

    def __init__(self, ctx: SourceContext, name: str, root: Path, fail: bool = False) -> None:
        super().__init__(ctx)
        self.name, self.root, self.fail, self.polls = name, root, fail, 0

    def roots(self) -> list[Root]:
        return [Root(self.root, self.root.exists())]

    def poll(self) -> SourceBatch:
        self.polls += 1
        if self.fail:
            raise RuntimeError("adapter bug")
        return SourceBatch()

    def file_count(self) -> int:
        return 0


def test_wake_up_polls_only_the_sources_under_the_changed_paths(tmp_path: Path, ctx: SourceContext) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    sa, sb = CountingSource(ctx, "a", a), CountingSource(ctx, "b", b)
    engine = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW), sources=[sa, sb])
    engine.scan({a / "x" / "session.jsonl"})
    assert (sa.polls, sb.polls) == (1, 0)
    engine.scan(None)
    assert (sa.polls, sb.polls) == (2, 1)


def test_a_failing_adapter_is_isolated_and_reported(tmp_path: Path, ctx: SourceContext) -> None:
    bad = CountingSource(ctx, "bad", tmp_path, fail=True)
    good = CountingSource(ctx, "good", tmp_path)
    engine = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW), sources=[bad, good])
    engine.scan()
    assert good.polls == 1
    health = {h.name: h for h in engine.snapshot().sources}
    assert health["bad"].status == "error" and "adapter bug" in health["bad"].detail


def test_watch_sees_an_appended_prompt(home: Path, ctx: SourceContext) -> None:
    # The latency itself is measured in bench/ (RESULTS.md), never asserted here: the wait below is a hang guard.
    write_known_fixture(home)
    log = home / ".claude" / "projects" / "-home-u-proj" / f"{SESSION}.jsonl"
    engine = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW))
    engine.publish_state = False
    engine.scan()

    async def run() -> float:
        stop = asyncio.Event()
        watcher = engine.watch(stop)
        first = asyncio.ensure_future(watcher.__anext__())
        await asyncio.sleep(0.3)  # let the watcher start
        ts = (FIXED_NOW - timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
        rec = {"type": "user", "sessionId": SESSION, "uuid": "live-1", "timestamp": ts,
               "message": {"role": "user", "content": "one more"}}  # fmt: skip
        answer = claude_call_line(FIXED_NOW - timedelta(seconds=55), 901, SESSION)  # a prompt counts once answered
        with open(log, "a") as fh:
            fh.write(json.dumps(rec) + "\n" + answer + "\n")
        snap = await asyncio.wait_for(first, timeout=30)
        stop.set()
        await watcher.aclose()
        assert snap is not None
        assert snap.prompts.used == 3

    asyncio.run(run())
    assert any(e.tool == "claude-code" and "live-1" in e.key for e in engine.ledger.events())


def test_a_tool_folder_created_after_the_start_is_read_at_the_next_tick(home: Path, ctx: SourceContext) -> None:
    """First run, then the user starts Claude Code: its folder did not exist, so nothing watched it.

    The watcher looks for missing roots on each tick (TICK = 1 s), so the first prompt shows within
    seconds. The wait is a hang guard well below the 60 s rescan, the only other way the folder is found.
    """
    engine = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW))
    engine.publish_state = False
    engine.scan()
    projects = home / ".claude" / "projects"
    assert projects in engine.missing_roots()

    async def run() -> None:
        stop = asyncio.Event()
        watcher = engine.watch(stop)
        first = asyncio.ensure_future(watcher.__anext__())
        await asyncio.sleep(2.5)  # past the watcher's start and its first tick's catch-up scan
        write_known_fixture(home)
        snap = await asyncio.wait_for(first, timeout=20)
        stop.set()
        await watcher.aclose()
        assert snap.prompts.used == 2

    asyncio.run(run())
    assert projects not in engine.missing_roots()


def test_a_write_between_the_first_scan_and_the_watcher_is_caught_up(home: Path, ctx: SourceContext) -> None:
    write_known_fixture(home)
    log = home / ".claude" / "projects" / "-home-u-proj" / f"{SESSION}.jsonl"
    engine = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW))
    engine.publish_state = False
    engine.scan()
    ts = (FIXED_NOW - timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    rec = {"type": "user", "sessionId": SESSION, "uuid": "gap-1", "timestamp": ts,
           "message": {"role": "user", "content": "written before the watcher started"}}  # fmt: skip
    answer = claude_call_line(FIXED_NOW - timedelta(seconds=115), 902, SESSION)  # a prompt counts once answered
    with open(log, "a") as fh:
        fh.write(json.dumps(rec) + "\n" + answer + "\n")

    async def run() -> None:
        stop = asyncio.Event()
        watcher = engine.watch(stop)
        await asyncio.wait_for(watcher.__anext__(), timeout=30)
        stop.set()
        await watcher.aclose()

    asyncio.run(run())
    assert any("gap-1" in e.key for e in engine.ledger.events())
