"""The on-disk cache is invisible: cold, warm, corrupt, old-version and files changed behind it agree."""

from __future__ import annotations

import base64
import json
import os
import struct
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import AT, SESSION, write_known_fixture
from zai_dash import cache
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext

NOW = datetime.fromisoformat(AT)


def _doc(ctx: SourceContext, use_cache: bool) -> tuple[dict[str, Any], Engine]:
    engine = Engine(replace(Config(), timezone="UTC"), ctx=ctx, clock=FixedClock(NOW), use_cache=use_cache)
    engine.scan()
    engine.save_cache()
    return engine.snapshot().to_json(), engine


def _log(home: Path) -> Path:
    return home / ".claude" / "projects" / "-home-u-proj" / f"{SESSION}.jsonl"


def _append_prompt(home: Path, text: str, ts: str) -> None:
    rec = {"type": "user", "isSidechain": False, "sessionId": SESSION, "uuid": f"u-{ts}", "timestamp": ts,
           "message": {"role": "user", "content": text}}  # fmt: skip
    with open(_log(home), "a") as fh:
        fh.write(json.dumps(rec) + "\n")


@pytest.fixture
def fixture_home(home: Path) -> Path:
    write_known_fixture(home)
    with open(_log(home), "ab") as fh:
        fh.write(b"{broken json\n")
    return home


def test_warm_equals_cold_and_reads_only_new_bytes(fixture_home: Path, ctx: SourceContext) -> None:
    cold, _ = _doc(ctx, use_cache=False)
    first, engine = _doc(ctx, use_cache=True)
    assert not engine.cache_used and first == cold
    warm, engine = _doc(ctx, use_cache=True)
    assert engine.cache_used
    assert warm == cold
    # Resumed at the cached offsets: nothing old is read again.
    tails = engine.sources[0].tail_sets()[0].tails
    assert all(t.offset == os.path.getsize(p) for p, t in tails.items())

    _append_prompt(fixture_home, "one more", "2026-11-26T09:30:00.000Z")
    warm2, engine = _doc(ctx, use_cache=True)
    cold2, _ = _doc(ctx, use_cache=False)
    assert engine.cache_used and warm2 == cold2
    assert warm2["prompts"]["used"] == 3


def test_corrupt_or_old_cache_is_rebuilt_silently(fixture_home: Path, ctx: SourceContext) -> None:
    cold, _ = _doc(ctx, use_cache=False)
    _doc(ctx, use_cache=True)
    path = cache.cache_path(dict(ctx.env))
    path.write_bytes(path.read_bytes()[:50])
    torn, engine = _doc(ctx, use_cache=True)
    assert not engine.cache_used and torn == cold
    data = json.loads(path.read_bytes())
    data["version"] = 0
    path.write_text(json.dumps(data))
    old, engine = _doc(ctx, use_cache=True)
    assert not engine.cache_used and old == cold
    data = json.loads(path.read_bytes())
    data["ledger"]["events"] = [["nonsense"]]
    path.write_text(json.dumps(data))
    bad, engine = _doc(ctx, use_cache=True)
    assert not engine.cache_used and bad == cold
    # The columns: one that is not base64, one a number short, a string index past the table.
    for column in ("ts", "tokens", "model"):
        _doc(ctx, use_cache=True)
        data = json.loads(path.read_bytes())
        n = len(data["ledger"]["events"]["keys"])
        assert n  # the fixture has detail events to spoil
        value = {
            "ts": "not base64!",
            "tokens": base64.b64encode(bytes(8 * (n - 1))).decode(),
            "model": base64.b64encode(struct.pack(f"<{n}i", *[10**6] * n)).decode(),
        }[column]
        data["ledger"]["events"][column] = value
        path.write_text(json.dumps(data))
        bad, engine = _doc(ctx, use_cache=True)
        assert not engine.cache_used and bad == cold, column


@pytest.mark.parametrize("change", ["truncate", "replace"])
def test_file_changed_behind_the_cache(fixture_home: Path, ctx: SourceContext, change: str) -> None:
    _doc(ctx, use_cache=True)
    log = _log(fixture_home)
    lines = log.read_text().splitlines(keepends=True)
    kept = "".join(lines[:4])  # the old prompt, its call, and the current cycle's first prompt and line
    if change == "truncate":
        log.write_text(kept)
    else:
        tmp = log.with_suffix(".tmp")
        tmp.write_text(kept)
        os.replace(tmp, log)
    warm, engine = _doc(ctx, use_cache=True)
    assert not engine.cache_used
    cold, _ = _doc(ctx, use_cache=False)
    assert warm == cold
    assert warm["prompts"]["used"] == 1


def test_two_writers_never_leave_a_torn_cache(fixture_home: Path, ctx: SourceContext) -> None:
    """Two processes saving at once: a reader always finds one whole cache, never a mix."""
    import threading

    _, a = _doc(ctx, use_cache=True)
    _, b = _doc(ctx, use_cache=True)
    path = cache.cache_path(dict(ctx.env))
    done = threading.Event()
    torn: list[str] = []

    def writer(engine: Engine) -> None:
        for _ in range(30):
            engine._saved_version = -1
            engine.save_cache()

    def reader() -> None:
        while not done.is_set():
            try:
                json.loads(path.read_bytes())
            except ValueError as exc:
                torn.append(str(exc))

    threads = [threading.Thread(target=writer, args=(e,)) for e in (a, b)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    assert torn == []
    assert [p for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_an_upgrade_removes_the_caches_of_earlier_versions(fixture_home: Path, ctx: SourceContext) -> None:
    """After a version bump the old cache file is never read again: the first save deletes it."""
    folder = cache.cache_path(dict(ctx.env)).parent
    folder.mkdir(parents=True, exist_ok=True)
    older = [folder / f"cache-v{v}.json" for v in range(1, cache.CACHE_VERSION)]
    for path in older:
        path.write_text('{"version": 0}')
    keep = [folder / "state.json", folder / "official-v1.json"]
    for path in keep:
        path.write_text("{}")
    _doc(ctx, use_cache=True)
    assert cache.cache_path(dict(ctx.env)).is_file()
    assert not any(path.exists() for path in older)
    assert all(path.read_text() == "{}" for path in keep)
