"""Crush: per-project `crush.db` files (real layout, WAL) found through `projects.json`."""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

from tests.support.env import FIXED_NOW
from tests.support.sqlite import CRUSH_DDL, create_db, dir_listing, hold_write_lock, js, summary
from zai_dash.demo.crush import add_crush_turn, crush_project_db, register_crush_project, write_crush_session
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import EventKind
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.crush import CrushSource, create_sources

START = FIXED_NOW - timedelta(hours=1)
T0 = int(START.timestamp())


def test_projects_are_found_and_counted(ctx: SourceContext, home: Path) -> None:
    write_crush_session(home, START, prompts=3, steps_per_prompt=2, searches=2, project=home / "a")
    write_crush_session(home, START, prompts=1, steps_per_prompt=1, searches=0, project=home / "b")
    [source] = create_sources(ctx)
    events = source.poll().events
    counts = summary(events)
    assert counts["prompt"] == 4 and counts["call"] == 7 and counts["search"] == 2
    assert {e.model for e in events if e.kind is EventKind.CALL} == {"glm-4.6"}
    assert min(e.ts for e in events) == START
    assert source.file_count() == 2 and source.error is None
    info = source.configs()["crush"]
    assert info.model == "glm-4.6" and info.endpoint is EndpointKind.CODING
    assert not source.poll().events  # unchanged


def test_subagents_summaries_and_tool_rows(ctx: SourceContext, home: Path) -> None:
    project = home / "p"
    conn = create_db(crush_project_db(project), CRUSH_DDL)
    register_crush_project(home, project)
    conn.execute("INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('top', 't', ?, ?)", (T0, T0))
    conn.execute(
        "INSERT INTO sessions (id, parent_session_id, title, updated_at, created_at) "
        "VALUES ('m1$$call_1', 'top', 'agent', ?, ?)",
        (T0, T0),
    )

    def msg(session: str, role: str, summary_msg: int = 0) -> None:
        conn.execute(
            "INSERT INTO messages (id, session_id, role, parts, model, provider, is_summary_message, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, 'glm-4.6', 'zai', ?, ?, ?)",
            (str(uuid.uuid4()), session, role, js([{"type": "text", "data": {"text": "x"}}]), summary_msg, T0, T0),
        )

    msg("top", "user")
    msg("top", "assistant")
    msg("top", "assistant", summary_msg=1)
    msg("top", "tool")
    msg("m1$$call_1", "user")
    msg("m1$$call_1", "assistant")
    events = CrushSource(ctx).poll().events
    conn.close()
    counts = summary(events)
    assert counts["prompt"] == 1
    assert counts["call:main"] == 1 and counts["call:auxiliary"] == 1 and counts["call:subagent"] == 1


def test_parts_rewritten_in_place_are_picked_up_once(ctx: SourceContext, home: Path) -> None:
    project = home / "p"
    conn = create_db(crush_project_db(project), CRUSH_DDL)
    register_crush_project(home, project)
    conn.execute("INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('s', 't', ?, ?)", (T0, T0))
    conn.execute(
        "INSERT INTO messages (id, session_id, role, parts, model, provider, created_at, updated_at) "
        "VALUES ('a1', 's', 'assistant', ?, 'glm-4.6', 'zai', ?, ?)",
        (js([{"type": "reasoning", "data": {"thinking": "…"}}]), T0, T0),
    )
    source = CrushSource(ctx)
    assert summary(source.poll().events) == Counter({"call": 1, "call:main": 1})
    call = {
        "type": "tool_call",
        "data": {"id": "c1", "name": "mcp_web-search-prime_webSearchPrime", "input": "{}", "finished": True},
    }
    # UpdateMessage: parts rewritten, updated_at bumped by the trigger (strftime('%s','now')).
    conn.execute("UPDATE messages SET parts = ? WHERE id = 'a1'", (js([call]),))
    second = source.poll().events
    conn.execute(
        "UPDATE messages SET parts = ?, finished_at = ? WHERE id = 'a1'",
        (js([call, {"type": "finish", "data": {"reason": "end_turn"}}]), T0 + 3),
    )
    third = source.poll().events
    conn.close()
    counts = summary(second + third)
    assert counts["search"] == 1 and counts["call"] == 1  # same keys: no double count


def test_mcp_alias_from_config_url(ctx: SourceContext, home: Path) -> None:
    cfg = home / ".config" / "crush" / "crush.json"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(
        js(
            {
                "mcp": {
                    "look": {
                        "type": "http",
                        "url": "https://api.z.ai/api/mcp/web_reader/mcp",
                        "headers": {"Authorization": "Bearer k"},
                    }
                },
                "models": {"large": {"model": "glm-4.6", "provider": "zai-api"}},
                "providers": {"zai-api": {"base_url": "https://api.z.ai/api/paas/v4", "api_key": "$K"}},
            }
        )
    )
    project = home / "p"
    conn = create_db(crush_project_db(project), CRUSH_DDL)
    register_crush_project(home, project)
    conn.execute("INSERT INTO sessions (id, title, updated_at, created_at) VALUES ('s', 't', ?, ?)", (T0, T0))
    parts = [
        {"type": "tool_call", "data": {"id": "c", "name": "mcp_look_webReader"}},
        {"type": "tool_call", "data": {"id": "d", "name": "fetch"}},
    ]
    conn.execute(
        "INSERT INTO messages (id, session_id, role, parts, model, created_at, updated_at) "
        "VALUES ('a', 's', 'assistant', ?, 'glm-4.6', ?, ?)",
        (js(parts), T0, T0),
    )
    conn.close()
    source = CrushSource(ctx)
    assert summary(source.poll().events)["reader"] == 1
    info = source.configs()["crush"]
    assert info.endpoint is EndpointKind.PAYG and "k" not in (info.base_url or "").split("/")


def test_lock_degrades_and_recovers_and_no_files_created(ctx: SourceContext, home: Path) -> None:
    db = write_crush_session(home, START, prompts=2, project=home / "p")
    before = dir_listing(db.parent)
    source = CrushSource(ctx)
    assert summary(source.poll().events)["prompt"] == 2
    assert dir_listing(db.parent) == before
    conn = sqlite3.connect(db, isolation_level=None)
    add_crush_turn(conn, next(iter(conn.execute("SELECT id FROM sessions")))[0], T0 + 900, steps=1)
    conn.close()
    with hold_write_lock(db):
        assert not source.poll().events
        assert source.error and "locked" in source.error
        assert source.health()[0].status == "error"
    assert summary(source.poll().events)["prompt"] == 1
    assert source.error is None


def test_corrupt_project_db_does_not_stop_the_others(ctx: SourceContext, home: Path) -> None:
    write_crush_session(home, START, prompts=1, project=home / "good")
    bad = crush_project_db(home / "bad")
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"\x00" * 8192)
    register_crush_project(home, home / "bad")
    source = CrushSource(ctx)
    assert summary(source.poll().events)["prompt"] == 1
    assert source.error and "crush.db" in source.error


def test_absent_when_no_projects(ctx: SourceContext) -> None:
    source = CrushSource(ctx)
    assert not source.poll().events
    assert source.health()[0].status == "absent"
