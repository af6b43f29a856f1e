"""ZCode's `model_usage` ledger, in a real SQLite database with the layout public readers of it describe."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.support.env import FIXED_NOW
from tests.support.zcode import insert, open_db, write_zcode_session
from zai_dash.domain.events import CallRole, EventKind
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.zcode import TOOLS, ZcodeSource, create_sources

T0 = FIXED_NOW - timedelta(hours=1)
CCUSAGE_MINIMAL = """
CREATE TABLE model_usage (id TEXT PRIMARY KEY, session_id TEXT, started_at INTEGER, model_id TEXT, status TEXT,
  input_tokens INTEGER, output_tokens INTEGER, reasoning_tokens INTEGER, cache_creation_input_tokens INTEGER,
  cache_read_input_tokens INTEGER, computed_total_tokens INTEGER);
CREATE TABLE session (id TEXT PRIMARY KEY, directory TEXT);
"""
"""The layout ccusage's own ZCode tests create (no `turn_id`, no `query_source`)."""


def source(home: Path, env: dict[str, str] | None = None, **kw: Any) -> ZcodeSource:
    return ZcodeSource(SourceContext(home=home, env=env or {}, clock=lambda: FIXED_NOW, **kw))


def test_calls_prompts_and_tokens(home: Path) -> None:
    write_zcode_session(home, T0, "01")
    batch = source(home).poll()
    assert Counter((e.kind, e.role) for e in batch.events) == Counter(
        {
            (EventKind.CALL, CallRole.MAIN): 3,
            (EventKind.CALL, CallRole.AUXILIARY): 1,
            (EventKind.PROMPT, CallRole.MAIN): 2,
        }
    )
    call = next(e for e in batch.events if e.kind is EventKind.CALL)
    # input_tokens already includes the cached part: kept as is, the cached part named.
    assert (call.input_tokens, call.cached_tokens, call.output_tokens, call.model) == (16507, 11712, 59, "glm-5.3")
    assert (call.tool, call.session, call.ts) == ("zcode", "sess-01", T0)
    prompts = [e for e in batch.events if e.kind is EventKind.PROMPT]
    assert [(e.key, e.ts) for e in prompts] == [
        ("prompt:sess-01:t1", T0),
        ("prompt:sess-01:t2", T0 + timedelta(seconds=3)),
    ]


def test_status_rules_and_reasoning_outside_output(home: Path) -> None:
    conn = open_db(home / ".zcode")
    insert(conn, "err", T0, status="error", input_tokens=0, output_tokens=0, cache_read_input_tokens=0)
    insert(conn, "cut", T0, status="cancelled", input_tokens=900, output_tokens=12, cache_read_input_tokens=0)
    insert(conn, "think", T0, input_tokens=1000, output_tokens=100, reasoning_tokens=40, computed_total_tokens=1140)
    insert(conn, "inside", T0, input_tokens=1000, output_tokens=100, reasoning_tokens=40, computed_total_tokens=1100)
    insert(conn, "odd", T0, input_tokens=10, output_tokens=5, cache_read_input_tokens=40)
    by_key = {e.key: e for e in source(home).poll().events if e.kind is EventKind.CALL}
    assert set(by_key) == {"call:cut", "call:think", "call:inside", "call:odd"}
    assert (by_key["call:think"].output_tokens, by_key["call:inside"].output_tokens) == (140, 100)
    assert by_key["call:odd"].cached_tokens == 10  # never more than the input it is part of


def test_a_row_finished_in_place_is_read_on_the_next_poll(home: Path) -> None:
    conn = open_db(home / ".zcode")
    insert(
        conn,
        "live",
        T0,
        status="running",
        input_tokens=0,
        output_tokens=0,
        cache_read_input_tokens=0,
        turn_id="t1",
        query_source="main_turn",
    )
    src = source(home)
    assert not src.poll()
    conn.execute("UPDATE model_usage SET status='completed', input_tokens=5000, output_tokens=80 WHERE id='live'")
    assert [(e.kind, e.input_tokens) for e in src.poll().events] == [(EventKind.CALL, 5000), (EventKind.PROMPT, 0)]
    assert not src.poll()  # unchanged rows re-read over the overlap are not emitted again
    ledger = Ledger()
    ledger.add_all(source(home).poll().events)
    ledger.add_all(source(home).poll().events)
    counts = ledger.count(T0 - timedelta(hours=1), FIXED_NOW, "zcode")
    assert (counts.prompts, counts.calls) == (1, 1)


def test_ccusage_minimal_layout_several_homes_and_since(home: Path) -> None:
    first, second = home / "z1", home / "z2"
    conn = open_db(first, CCUSAGE_MINIMAL)
    insert(conn, "old", T0 - timedelta(days=10))
    insert(conn, "new", T0)
    conn.close()
    conn = open_db(second, CCUSAGE_MINIMAL)
    insert(conn, "new", T0)  # the same row id in a copied database: one call in the ledger
    insert(conn, "other", T0)
    conn.close()
    src = source(home, env={"ZCODE_HOME": f"{first}, {second}"}, since=T0 - timedelta(days=2))
    events = src.poll().events
    assert sorted(e.key for e in events) == ["call:new", "call:new", "call:other"]
    assert all(e.kind is EventKind.CALL and e.role is CallRole.MAIN for e in events)
    assert src.file_count() == 2 and src.health()[0].status == "ok"


def test_unknown_schema_is_reported(home: Path) -> None:
    open_db(home / ".zcode", "CREATE TABLE unrelated (id TEXT);").close()
    src = source(home)
    assert not src.poll()
    [health] = src.health()
    assert health.status == "error" and "model_usage" in health.detail


def test_declares_its_tool() -> None:
    assert [(t.id, t.name, t.env_vars) for t in TOOLS] == [("zcode", "ZCode", ("ZCODE_HOME",))]
    [src] = create_sources(SourceContext(home=Path("/nonexistent"), env={}))
    assert src.health()[0].status == "absent"
