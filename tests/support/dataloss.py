"""An engine over a log at a chosen instant, and turns written into it (issue 15 data-loss tests)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.cli import SESSION, _assistant, _user
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.engine import Engine
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.tail import TailSet

NOW = datetime.fromisoformat("2026-11-26T10:00:00+00:00")


def log_path(home: Path, name: str = SESSION) -> Path:
    return home / ".claude" / "projects" / "-home-u-proj" / f"{name}.jsonl"


def turn(i: int, at: datetime) -> list[dict[str, Any]]:
    """One prompt and its model call, `i` minutes after `at`."""
    ts = at + timedelta(minutes=i)
    stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    call = (ts + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return [_user(stamp, f"prompt {i}", f"p{i}"), _assistant(call, f"msg_{i}", {"type": "text", "text": "ok"})]


def write_turns(path: Path, first: int, n: int, at: datetime = NOW - timedelta(hours=1), mode: str = "a") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as fh:
        for i in range(first, first + n):
            fh.write("".join(json.dumps(r) + "\n" for r in turn(i, at)))


def counts(engine: Engine) -> tuple[int, int]:
    """(prompts, calls) the ledger holds."""
    events = engine.ledger.events()
    return (
        sum(e.kind is EventKind.PROMPT for e in events),
        sum(e.kind is EventKind.CALL for e in events),
    )


def engine_at(ctx: SourceContext, clock: FixedClock, use_cache: bool = True) -> Engine:
    engine = Engine(replace(Config(), timezone="UTC"), ctx=ctx, clock=clock, use_cache=use_cache)
    engine.scan()
    return engine


class FragileSource(ToolSource):
    """A JSONL adapter with no guard of its own: a `boom` record raises, as an adapter bug would.

    With `spill`, it hands its events over every `SPILL_EVENTS` as the real adapters do (`spill_if_full`),
    so a failure can come after some of a poll's events have already left.
    """

    name = "fragile"
    tools = ("claude-code",)

    def __init__(self, ctx: SourceContext, *, spill: bool = False) -> None:
        super().__init__(ctx)
        self.spill = spill
        self.dir = ctx.home / "fragile"
        self._tails = TailSet(lambda: sorted(self.dir.glob("*.jsonl")), self.skips)

    def roots(self) -> list[Root]:
        return [Root(self.dir, self.dir.is_dir())]

    def file_count(self) -> int:
        return len(self._tails.tails)

    def tail_sets(self) -> list[TailSet]:
        return [self._tails]

    def poll(self) -> SourceBatch:
        batch = SourceBatch()
        for _tail, line in self._tails.poll():
            rec = json.loads(line.data)
            if rec.get("boom"):
                raise OverflowError("date value out of range")
            batch.events.append(
                UsageEvent(EventKind.PROMPT, datetime.fromisoformat(rec["ts"]), "claude-code", rec["k"])
            )
            if self.spill:
                self.spill_if_full(batch)
        return batch
