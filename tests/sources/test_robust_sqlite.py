"""SQLite rows decoded per row (issue 15 §3): one bad row is one skip, never a dead database."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.env import FIXED_NOW
from tests.support.goose import TEXT, msg
from tests.support.goose import new_db as goose_db
from tests.support.sqlite import summary
from zai_dash.demo.opencode import opencode_db_path, write_opencode_session
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.goose import GooseSource
from zai_dash.sources.tools.opencode import OpenCodeSource

pytestmark = pytest.mark.timeout(60)

START = FIXED_NOW - timedelta(hours=1)


def opencode_conn(home: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(opencode_db_path(home, "opencode"), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


def test_opencode_part_with_non_json_data(ctx: SourceContext, home: Path) -> None:
    """One `part` row whose `data` is not JSON: the 3 prompts and 9 calls around it still count."""
    write_opencode_session(home, START, prompts=3, steps_per_prompt=3, searches=0)
    clean = summary(OpenCodeSource(ctx).poll().events)  # the same session without the bad row
    conn = opencode_conn(home)
    mid, sid = conn.execute("SELECT id, session_id FROM message LIMIT 1").fetchone()
    at = int(START.timestamp() * 1000) + 1
    conn.execute("INSERT INTO part VALUES ('prt_bad', ?, ?, ?, ?, ?)", (mid, sid, at, at, "{not json"))
    source = OpenCodeSource(ctx)
    counts = summary(source.poll().events)
    conn.close()
    assert source.error is None
    assert counts["prompt"] == clean["prompt"] == 3 and counts["call"] == clean["call"] >= 9


@pytest.mark.parametrize("bad_time", ["yesterday", float("inf"), 1e300])
def test_opencode_bad_time_column_is_one_skip(ctx: SourceContext, home: Path, bad_time: object) -> None:
    write_opencode_session(home, START, prompts=3, steps_per_prompt=3, searches=0)
    clean = summary(OpenCodeSource(ctx).poll().events)
    conn = opencode_conn(home)
    sid, data = conn.execute("SELECT session_id, data FROM message LIMIT 1").fetchone()
    conn.execute("INSERT INTO message VALUES ('msg_bad', ?, ?, ?, ?)", (sid, bad_time, bad_time, data))
    source = OpenCodeSource(ctx)
    counts = summary(source.poll().events)
    assert source.error is None
    assert counts["prompt"] == clean["prompt"] == 3 and counts["call"] == clean["call"] >= 9
    assert sum(source.skips.counts.values()) == 1
    source.poll()
    conn.close()
    assert sum(source.skips.counts.values()) == 1  # reported once, not on every poll


@pytest.mark.parametrize("bad_time", ["noon", float("inf"), float("-inf")])
def test_goose_bad_time_column_is_one_skip(ctx: SourceContext, home: Path, bad_time: object) -> None:
    conn = goose_db(home)
    t0 = int(START.timestamp())
    user, text = "20261126_1", list[object](TEXT)
    msg(conn, user, "user", t0, text)
    msg(conn, user, "assistant", t0 + 3, text)
    msg(conn, user, "user", bad_time, text, mid="msg_bad")  # type: ignore[arg-type]
    msg(conn, user, "user", t0 + 10, text)
    msg(conn, user, "assistant", t0 + 13, text)
    source = GooseSource(ctx)
    counts = summary(source.poll().events)
    conn.close()
    assert source.error is None
    assert counts["prompt"] == 2 and counts["call"] == 2
    assert sum(source.skips.counts.values()) == 1


def test_an_adapter_bug_on_a_row_is_reported_and_read_again(ctx: SourceContext, home: Path) -> None:
    """A row that makes the adapter raise: the database shows an error (never silent) and is read whole later."""
    write_opencode_session(home, START, prompts=2, steps_per_prompt=1, searches=0)
    clean = summary(OpenCodeSource(ctx).poll().events)
    source = OpenCodeSource(ctx)
    real = source._read_db
    calls = {"n": 0}

    def flaky(state: object, batch: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ZeroDivisionError("adapter bug")
        real(state, batch)  # type: ignore[arg-type]

    source._read_db = flaky  # type: ignore[method-assign]
    assert not source.poll().events
    assert source.error is not None and "internal error" in source.error
    counts = summary(source.poll().events)
    assert source.error is None
    assert counts == clean and counts["prompt"] == 2
