"""Data loss (issue 15 §1): a scan is a transaction per source; the cache survives clock jumps and rewrites.

Every case has known valid records around the bad one, and restarts the engine from its cache to check
the counts survive: what was lost live or after a restart would show here.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.cli import _user
from tests.support.dataloss import NOW, FragileSource, counts, engine_at, log_path, write_turns
from zai_dash import cache
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.domain.events import EventKind
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext

pytestmark = pytest.mark.timeout(60)


def write_fragile(home: Path, keys: list[str]) -> None:
    path = home / "fragile" / "a.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        for i, k in enumerate(keys):
            rec = {"boom": True} if k == "boom" else {"k": k, "ts": (NOW - timedelta(minutes=30 - i)).isoformat()}
            fh.write(json.dumps(rec) + "\n")


def fragile_engine(ctx: SourceContext) -> Engine:
    engine = Engine(
        replace(Config(), timezone="UTC"), ctx=ctx, clock=FixedClock(NOW), sources=[FragileSource(ctx)], use_cache=True
    )
    engine.scan()
    return engine


def test_a_record_that_raises_is_one_skip_and_survives_a_restart(home: Path, ctx: SourceContext) -> None:
    """A record whose handling raises (any adapter bug) is skipped once; the 6 records around it are kept."""
    write_fragile(home, ["a", "b", "c", "boom", "d", "e", "f"])
    engine = fragile_engine(ctx)
    assert len(engine.ledger) == 6
    assert engine.skipped()["reasons"] == {"record could not be read (OverflowError)": 1}
    assert engine.sources[0].error is None
    engine.save_cache()
    write_fragile(home, ["g"])
    again = fragile_engine(ctx)
    assert again.cache_used
    assert len(again.ledger) == 7
    assert again.skipped()["lines"] == 1  # restored once, not added up
    again.save_cache()
    assert fragile_engine(ctx).skipped()["lines"] == 1


def test_droid_year_9999_timestamp_is_one_skip(home: Path, ctx: SourceContext) -> None:
    """`9999-12-31T23:59:59-01:00` overflows UTC: one skipped record, the others counted, also after restart."""
    path = log_path(home)
    write_turns(path, 0, 2)
    bad = _user("9999-12-31T23:59:59-01:00", "far", "far")
    with open(path, "a") as fh:
        fh.write(json.dumps(bad) + "\n")
    write_turns(path, 2, 2)
    engine = engine_at(ctx, FixedClock(NOW))
    assert counts(engine) == (4, 4)
    assert sum(engine.skipped()["reasons"].values()) == 1
    engine.save_cache()
    again = engine_at(ctx, FixedClock(NOW))
    assert again.cache_used and counts(again) == (4, 4)


def test_clock_jump_ahead_and_back_loses_nothing(home: Path, ctx: SourceContext) -> None:
    """Two days ahead then back: nothing pruned against the jumped clock, no cache saved from it."""
    path = log_path(home)
    write_turns(path, 0, 7)
    clock = FixedClock(NOW)
    engine = engine_at(ctx, clock)
    assert counts(engine) == (7, 7)
    engine.save_cache()
    clock.set(NOW + timedelta(days=2))
    engine.scan()
    assert counts(engine) == (7, 7)
    assert engine.clock_guard.jumped(clock.now())
    write_turns(path, 7, 1)  # written while the clock is off
    engine.scan()
    engine.save_cache()  # refused: the clock jumped
    clock.set(NOW)
    engine.scan()
    assert counts(engine) == (8, 8)
    engine.save_cache()
    again = engine_at(ctx, FixedClock(NOW))
    assert again.cache_used and counts(again) == (8, 8)


def test_cache_written_in_the_future_is_not_trusted(home: Path, ctx: SourceContext) -> None:
    write_turns(log_path(home), 0, 3)
    future = engine_at(ctx, FixedClock(NOW + timedelta(days=2)))
    future.save_cache()
    now = engine_at(ctx, FixedClock(NOW))
    assert not now.cache_used
    assert counts(now) == (3, 3)


@pytest.mark.parametrize("restart", [False, True])
def test_truncated_and_rewritten_longer_is_read_again(home: Path, ctx: SourceContext, restart: bool) -> None:
    """Same inode, truncated, written back longer than before: the new content is read, live and after restart."""
    path = log_path(home)
    write_turns(path, 0, 2)
    engine = engine_at(ctx, FixedClock(NOW))
    engine.save_cache()
    inode = os.stat(path).st_ino
    with open(path, "r+") as fh:
        fh.truncate(0)
    write_turns(path, 10, 8, at=NOW - timedelta(minutes=50))  # other turns, longer than before
    assert os.stat(path).st_ino == inode
    if restart:
        engine = engine_at(ctx, FixedClock(NOW))
        assert not engine.cache_used
    else:
        engine.scan()
    prompts, calls = counts(engine)
    assert prompts >= 8 and calls >= 8
    assert {e.key for e in engine.ledger.events() if e.kind is EventKind.PROMPT} >= {
        f"prompt:p{i}" for i in range(10, 18)
    }


def test_same_size_rewrite_is_noticed(home: Path, ctx: SourceContext) -> None:
    """A rewrite to exactly the same length changes the bytes before the offset: read again."""
    path = log_path(home)
    write_turns(path, 0, 2)
    engine = engine_at(ctx, FixedClock(NOW))
    size = os.stat(path).st_size
    with open(path, "r+") as fh:  # truncate and write other turns of the same length, same inode
        fh.truncate(0)
    write_turns(path, 5, 2)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 1_000_000))
    assert os.stat(path).st_size == size
    engine.scan()
    assert {"prompt:p5", "prompt:p6"} <= {e.key for e in engine.ledger.events()}


def test_skip_counts_do_not_grow_across_restarts(home: Path, ctx: SourceContext) -> None:
    """A whole-file skip (a directory named like a transcript) and a bad line: the same counts every restart."""
    path = log_path(home)
    write_turns(path, 0, 2)
    with open(path, "a") as fh:
        fh.write("{broken\n")
    (path.parent / "dir.jsonl").mkdir()
    seen = []
    for _ in range(3):
        engine = engine_at(ctx, FixedClock(NOW))
        engine.save_cache()
        seen.append((engine.skipped()["lines"], engine.skipped()["files"], counts(engine)))
    assert seen == [(1, 1, (2, 2))] * 3


@pytest.mark.wall_clock  # compares file mtimes with the wall clock
def test_killed_write_temp_files_are_cleaned(home: Path, ctx: SourceContext) -> None:
    write_turns(log_path(home), 0, 1)
    engine = engine_at(ctx, FixedClock(NOW))
    engine.save_cache()
    path = cache.cache_path(dict(ctx.env))
    leftover = path.parent / f".{path.name}.killed"
    leftover.write_bytes(b"half")
    old = os.stat(leftover).st_mtime - 3600
    os.utime(leftover, (old, old))
    fresh = path.parent / f".{path.name}.writing"
    fresh.write_bytes(b"someone else is writing")
    engine._saved_version = -1
    engine.save_cache()
    assert not leftover.exists()
    assert fresh.exists()  # a live writer's temp file is left alone
