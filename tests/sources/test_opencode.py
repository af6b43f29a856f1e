"""OpenCode and Kilo CLI: real `opencode.db` / `kilo.db` layouts in WAL mode, rows as OpenCode writes them."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from conformance.sandbox import install_fixture
from tests.support.env import FIXED_NOW
from tests.support.recorded import FIXTURES, truth
from tests.support.sqlite import OPENCODE_SESSION_MESSAGE_DDL, create_db, dir_listing, hold_write_lock, js, summary
from zai_dash.demo.opencode import OPENCODE_DDL, add_opencode_turn, opencode_db_path, write_opencode_session
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, McpService
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.opencode import KILO, OPENCODE, OpenCodeSource, create_sources

START = FIXED_NOW - timedelta(hours=1)
T0 = int(START.timestamp() * 1000)


def new_db(home: Path, app: str = "opencode") -> sqlite3.Connection:
    conn = create_db(opencode_db_path(home, app), OPENCODE_DDL)
    conn.execute("INSERT INTO project VALUES ('prj', '/p', 'git', NULL, ?, ?)", (T0, T0))
    return conn


DEFAULT_TITLE = "New session - 2026-11-26T08:00:00.000Z"
"""What OpenCode names a session until its title call is made."""


def add_session(conn: sqlite3.Connection, sid: str, parent: str | None = None, title: str = DEFAULT_TITLE) -> None:
    conn.execute(
        "INSERT INTO session (id, project_id, parent_id, slug, directory, title, version, time_created, time_updated)"
        " VALUES (?, 'prj', ?, 's', '/p', ?, '1.0', ?, ?)",
        (sid, parent, title, T0, T0),
    )


def add_message(conn: sqlite3.Connection, mid: str, sid: str, at: int, data: dict[str, object]) -> None:
    conn.execute("INSERT INTO message VALUES (?, ?, ?, ?, ?)", (mid, sid, at, at, js(data)))


def add_part(conn: sqlite3.Connection, pid: str, mid: str, sid: str, at: int, data: dict[str, object]) -> None:
    conn.execute("INSERT INTO part VALUES (?, ?, ?, ?, ?, ?)", (pid, mid, sid, at, at, js(data)))


def typed(conn: sqlite3.Connection, mid: str, sid: str, at: int, text: str = "hi") -> None:
    """A user message with its text part, as OpenCode writes a typed prompt."""
    add_message(conn, mid, sid, at, user(at))
    add_part(conn, f"prt_{mid}", mid, sid, at, {"type": "text", "text": text})


def user(at: int) -> dict[str, object]:
    return {
        "role": "user",
        "time": {"created": at},
        "agent": "build",
        "model": {"providerID": "zai-coding-plan", "modelID": "glm-4.6"},
    }


def assistant(at: int, **extra: object) -> dict[str, object]:
    return {
        "role": "assistant",
        "time": {"created": at, "completed": at + 10},
        "modelID": "GLM-4.6",
        "providerID": "zai-coding-plan",
        "mode": "build",
        "agent": "build",
        "tokens": {"input": 100, "output": 10, "reasoning": 0, "cache": {"read": 0, "write": 0}},
        **extra,
    }


STEP = {
    "type": "step-finish",
    "reason": "stop",
    "cost": 0,
    "tokens": {"input": 100, "output": 10, "reasoning": 5, "cache": {"read": 50, "write": 0}},
}


def test_session_counts_prompts_calls_searches_and_model(ctx: SourceContext, home: Path) -> None:
    write_opencode_session(home, START, prompts=3, steps_per_prompt=3, searches=2)
    source = OpenCodeSource(ctx)
    events = source.poll().events
    counts = summary(events)
    assert counts["prompt"] == 3 and counts["call"] == 9 + 1 and counts["search"] == 2
    assert counts["call:main"] == 9 and counts["call:auxiliary"] == 1  # the session-title call, estimated
    assert {e.model for e in events if e.kind is EventKind.CALL and not e.origin} == {"glm-4.6"}
    assert all(e.tool == "opencode" for e in events)
    call = next(e for e in events if e.kind is EventKind.CALL)
    assert call.tokens == call.input_tokens + call.output_tokens > 0
    assert START <= min(e.ts for e in events) < START + timedelta(minutes=1)
    info = source.configs()["opencode"]
    assert info.model == "glm-4.6" and info.endpoint is EndpointKind.CODING
    assert source.error is None and source.file_count() >= 1
    [health] = source.health()
    assert health.status == "ok" and health.tool == "opencode"


def test_unchanged_database_yields_nothing(ctx: SourceContext, home: Path) -> None:
    write_opencode_session(home, START, prompts=1)
    source = OpenCodeSource(ctx)
    assert source.poll().events
    assert not source.poll().events


def test_new_rows_are_read_incrementally(ctx: SourceContext, home: Path) -> None:
    path = write_opencode_session(home, START, prompts=1, steps_per_prompt=1, session_id="ses_a")
    source = OpenCodeSource(ctx)
    assert summary(source.poll().events)["prompt"] == 1
    conn = sqlite3.connect(path, isolation_level=None)
    add_opencode_turn(conn, "ses_a", T0 + 600_000, steps=2)
    new = source.poll().events
    conn.close()
    counts = summary(new)
    assert counts["prompt"] == 1 and counts["call"] == 2  # only the new turn


def test_subsessions_synthetic_and_compaction_are_not_prompts(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    add_session(conn, "ses_top")
    add_session(conn, "ses_sub", parent="ses_top")
    add_message(conn, "msg_1", "ses_top", T0, user(T0))
    add_part(conn, "prt_1", "msg_1", "ses_top", T0, {"type": "text", "text": "hi"})
    add_message(conn, "msg_1a", "ses_top", T0 + 1, assistant(T0 + 1, parentID="msg_1"))
    add_message(conn, "msg_2", "ses_top", T0 + 1, user(T0 + 1))  # only synthetic text: injected
    add_part(conn, "prt_2", "msg_2", "ses_top", T0 + 1, {"type": "text", "text": "ctx", "synthetic": True})
    add_message(conn, "msg_3", "ses_top", T0 + 2, user(T0 + 2))  # compaction trigger
    add_part(conn, "prt_3", "msg_3", "ses_top", T0 + 2, {"type": "compaction", "auto": True})
    add_message(conn, "msg_4", "ses_sub", T0 + 3, user(T0 + 3))  # a Task sub-agent's prompt
    add_part(conn, "prt_4", "msg_4", "ses_sub", T0 + 3, {"type": "text", "text": "do it"})
    add_message(conn, "msg_5", "ses_sub", T0 + 4, assistant(T0 + 4))
    add_part(conn, "prt_5", "msg_5", "ses_sub", T0 + 5, STEP)
    add_message(
        conn, "msg_6", "ses_top", T0 + 6, assistant(T0 + 6, mode="compaction", agent="compaction", summary=True)
    )
    add_part(conn, "prt_6", "msg_6", "ses_top", T0 + 7, STEP)
    events = OpenCodeSource(ctx).poll().events
    conn.close()
    counts = summary(events)
    assert counts["prompt"] == 1
    assert counts["call:subagent"] == 1 and counts["call:auxiliary"] == 1
    sub = next(e for e in events if e.key == "call:prt_5")
    assert sub.model == "glm-4.6" and sub.tokens == 165 and sub.role is CallRole.SUBAGENT
    # OpenCode's `input` excludes the cache: input = 100 + 50 cached, output = 10 + 5 reasoning.
    assert (sub.input_tokens, sub.cached_tokens, sub.output_tokens) == (150, 50, 15)


def test_user_message_waits_for_its_parts(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    add_session(conn, "ses_a")
    add_message(conn, "msg_1", "ses_a", T0, user(T0))
    source = OpenCodeSource(ctx)
    assert summary(source.poll().events)["prompt"] == 0
    add_part(conn, "prt_1", "msg_1", "ses_a", T0 + 5, {"type": "text", "text": "hello"})
    assert summary(source.poll().events)["prompt"] == 0  # no request behind it yet
    add_message(conn, "msg_2", "ses_a", T0 + 6, assistant(T0 + 6, parentID="msg_1"))
    assert summary(source.poll().events)["prompt"] == 1
    conn.close()


def test_rows_updated_in_place_or_reinserted_do_not_double_count(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    add_session(conn, "ses_a")
    add_message(conn, "msg_1", "ses_a", T0, assistant(T0))
    add_part(
        conn,
        "prt_1",
        "msg_1",
        "ses_a",
        T0 + 1,
        {
            "type": "tool",
            "callID": "c",
            "tool": "web-search-prime_webSearchPrime",
            "state": {"status": "running", "input": {}},
        },
    )
    source = OpenCodeSource(ctx)
    ledger = Ledger()
    for e in source.poll().events:
        ledger.add(e)
    assert summary(list(ledger._events.values()))["search"] == 0  # still running
    done = {
        "type": "tool",
        "callID": "c",
        "tool": "web-search-prime_webSearchPrime",
        "state": {"status": "completed", "input": {}, "output": "x", "time": {"start": T0 + 1, "end": T0 + 2}},
    }
    conn.execute("UPDATE part SET data = ?, time_updated = ? WHERE id = 'prt_1'", (js(done), T0 + 3))
    add_part(conn, "prt_2", "msg_1", "ses_a", T0 + 4, STEP)
    for e in source.poll().events:
        ledger.add(e)
    # The same step row deleted and re-inserted (a revert/redo), and the tool part rewritten again.
    conn.execute("DELETE FROM part WHERE id = 'prt_2'")
    add_part(conn, "prt_2", "msg_1", "ses_a", T0 + 9, STEP)
    conn.execute("UPDATE part SET time_updated = ? WHERE id = 'prt_1'", (T0 + 10,))
    for e in source.poll().events:
        ledger.add(e)
    counts = summary(list(ledger._events.values()))
    assert counts["search"] == 1 and counts["call"] == 1
    conn.close()


def test_lock_degrades_then_recovers(ctx: SourceContext, home: Path) -> None:
    path = write_opencode_session(home, START, prompts=2, steps_per_prompt=1)
    source = OpenCodeSource(ctx)
    with hold_write_lock(path):
        assert not source.poll().events
        assert source.error and "locked" in source.error
        [health] = source.health()
        assert health.status == "error" and "locked" in health.detail
    events = source.poll().events
    assert source.error is None
    assert summary(events)["prompt"] == 2


def test_corrupt_database_is_an_error_not_a_traceback(ctx: SourceContext, home: Path) -> None:
    path = opencode_db_path(home)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"SQLite format 3\x00" + b"\x00\xff" * 3000)
    source = OpenCodeSource(ctx)
    assert not source.poll().events
    assert source.error and "corrupt" in source.error
    path.unlink()
    write_opencode_session(home, START, prompts=1)
    assert summary(source.poll().events)["prompt"] == 1
    assert source.error is None


def test_unknown_schema_is_reported(ctx: SourceContext, home: Path) -> None:
    create_db(opencode_db_path(home), "CREATE TABLE session (id TEXT PRIMARY KEY, parent_id TEXT);").close()
    source = OpenCodeSource(ctx)
    source.poll()
    assert source.error and "unknown schema" in source.error and "message" in source.error


def test_never_creates_files_beside_the_database(ctx: SourceContext, home: Path) -> None:
    path = write_opencode_session(home, START, prompts=1)
    before = dir_listing(path.parent)
    assert not any(n.endswith(("-wal", "-shm")) for n in before)
    source = OpenCodeSource(ctx)
    assert source.poll().events
    source.poll()
    assert dir_listing(path.parent) == before


def test_mcp_server_aliases_come_from_config_urls(ctx: SourceContext, home: Path) -> None:
    cfg = home / ".config" / "opencode" / "opencode.jsonc"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(
        '{// mine\n "mcp": {"my search": {"type": "remote", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp",'
        ' "headers": {"Authorization": "Bearer k"}},\n "eyes": {"type": "local", "command": ["npx", "-y", '
        '"@z_ai/mcp-server"]}, "other": {"type": "remote", "url": "https://example.com/mcp"}}}'
    )
    conn = new_db(home)
    add_session(conn, "ses_a")
    add_message(conn, "msg_1", "ses_a", T0, assistant(T0))
    for n, tool in enumerate(["my_search_search", "eyes_analyze_image", "other_search", "zread_read_file"]):
        add_part(
            conn,
            f"prt_{n}",
            "msg_1",
            "ses_a",
            T0 + n,
            {"type": "tool", "callID": f"c{n}", "tool": tool, "state": {"status": "completed", "input": {}}},
        )
    events = OpenCodeSource(ctx).poll().events
    conn.close()
    services = sorted(e.service.value for e in events if e.service)
    assert services == sorted([McpService.SEARCH.value, McpService.VISION.value, McpService.ZREAD.value])


def test_state_model_json_is_the_fallback_model(ctx: SourceContext, home: Path) -> None:
    state = home / ".local" / "state" / "opencode" / "model.json"
    state.parent.mkdir(parents=True)
    state.write_text(js({"recent": [{"providerID": "zai", "modelID": "glm-4.5"}], "favorite": []}))
    info = OpenCodeSource(ctx).configs()["opencode"]
    assert info.model == "glm-4.5" and info.endpoint is EndpointKind.PAYG and "model.json" in (info.model_detail or "")


def test_kilo_cli_database_is_tool_kilo_code(home: Path) -> None:
    custom = home / "elsewhere"
    write_opencode_session(home, START, prompts=2, app="kilo")
    (home / ".local" / "share" / "kilo" / "kilo.db").rename(home / ".local" / "share" / "kilo" / "mine.db")
    env = dict(os.environ, KILO_DB="mine.db")
    ctx = SourceContext(home=home, env=env, clock=lambda: FIXED_NOW)
    sources = {s.name: s for s in create_sources(ctx)}
    kilo = sources["kilo-code"]
    events = kilo.poll().events
    assert summary(events)["prompt"] == 2 and {e.tool for e in events} == {"kilo-code"}
    assert not sources["opencode"].poll().events
    assert kilo.configs()["kilo-code"].model == "glm-4.6"
    assert not custom.exists()
    assert KILO.tool == "kilo-code" and OPENCODE.tool == "opencode"


def test_channel_database_and_opencode_db_env(home: Path) -> None:
    path = write_opencode_session(home, START, prompts=1)
    path.rename(path.with_name("opencode-dev.db"))
    ctx = SourceContext(home=home, env={"XDG_DATA_HOME": str(home / ".local" / "share")}, clock=lambda: FIXED_NOW)
    assert summary(OpenCodeSource(ctx).poll().events)["prompt"] == 1
    moved = home / "x" / "oc.db"
    moved.parent.mkdir()
    path.with_name("opencode-dev.db").rename(moved)
    ctx2 = SourceContext(home=home, env={"OPENCODE_DB": str(moved)}, clock=lambda: FIXED_NOW)
    assert summary(OpenCodeSource(ctx2).poll().events)["prompt"] == 1


def test_since_skips_old_rows(home: Path) -> None:
    write_opencode_session(home, START - timedelta(days=3), prompts=2)
    write_opencode_session(home, START, prompts=1)
    ctx = SourceContext(home=home, env=dict(os.environ), since=START - timedelta(hours=1), clock=lambda: FIXED_NOW)
    assert summary(OpenCodeSource(ctx).poll().events)["prompt"] == 1


def test_session_message_table_for_sessions_without_message_rows(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    conn.executescript(OPENCODE_SESSION_MESSAGE_DDL)
    add_session(conn, "ses_v2")
    rows = [
        ("sm_1", "user", {"time": {"created": T0}, "text": "hi", "files": [], "agents": [], "references": []}),
        (
            "sm_2",
            "assistant",
            {
                "time": {"created": T0 + 5, "completed": T0 + 9},
                "agent": "build",
                "model": {"id": "glm-4.6", "providerID": "zai-coding-plan"},
                "tokens": {"input": 5, "output": 1, "reasoning": 0, "cache": {"read": 0, "write": 0}},
                "content": [
                    {
                        "type": "tool",
                        "id": "t1",
                        "name": "web-search-prime_webSearchPrime",
                        "state": {"status": "completed", "input": {}},
                        "time": {"created": T0 + 6},
                    }
                ],
            },
        ),
    ]
    for sid, kind, data in rows:
        at = data["time"]["created"]  # type: ignore[index]
        conn.execute("INSERT INTO session_message VALUES (?, 'ses_v2', ?, ?, ?, ?)", (sid, kind, at, at, js(data)))
    # A dual-written session: rows in both tables count once, from `message`/`part`.
    add_session(conn, "ses_dual")
    add_message(conn, "msg_d", "ses_dual", T0, user(T0))
    add_part(conn, "prt_d", "msg_d", "ses_dual", T0, {"type": "text", "text": "hi"})
    add_message(conn, "msg_da", "ses_dual", T0 + 1, assistant(T0 + 1, parentID="msg_d"))
    conn.execute(
        "INSERT INTO session_message VALUES ('sm_d', 'ses_dual', 'user', ?, ?, ?)",
        (T0, T0, js({"time": {"created": T0}, "text": "hi"})),
    )
    events = OpenCodeSource(ctx).poll().events
    conn.close()
    counts = summary(events)
    assert counts["prompt"] == 2 and counts["call"] == 1 and counts["search"] == 1
    assert next(e for e in events if e.kind is EventKind.CALL).model == "glm-4.6"


def test_legacy_json_tree(ctx: SourceContext, home: Path) -> None:
    storage = home / ".local" / "share" / "opencode" / "storage"

    def put(kind: str, folder: str, name: str, data: dict[str, object]) -> None:
        path = storage / kind / folder / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(js(data))

    put("session", "prj", "ses_l", {"id": "ses_l", "projectID": "prj", "title": "t"})
    put("session", "prj", "ses_k", {"id": "ses_k", "parentID": "ses_l", "title": "sub"})
    put("message", "ses_l", "msg_u", {"id": "msg_u", "sessionID": "ses_l", **user(T0)})
    put(
        "part",
        "msg_u",
        "prt_u",
        {"id": "prt_u", "messageID": "msg_u", "sessionID": "ses_l", "type": "text", "text": "x"},
    )
    put("message", "ses_l", "msg_a", {"id": "msg_a", "sessionID": "ses_l", **assistant(T0 + 10, parentID="msg_u")})
    put("part", "msg_a", "prt_s", {"id": "prt_s", "messageID": "msg_a", "sessionID": "ses_l", **STEP})
    put(
        "part",
        "msg_a",
        "prt_t",
        {
            "id": "prt_t",
            "messageID": "msg_a",
            "sessionID": "ses_l",
            "type": "tool",
            "tool": "web-search-prime_webSearchPrime",
            "state": {"status": "completed", "time": {"start": T0 + 12, "end": T0 + 13}},
        },
    )
    put("message", "ses_k", "msg_k", {"id": "msg_k", "sessionID": "ses_k", **user(T0 + 20)})
    put(
        "part",
        "msg_k",
        "prt_k",
        {"id": "prt_k", "messageID": "msg_k", "sessionID": "ses_k", "type": "text", "text": "y"},
    )
    (storage / "part" / "msg_a" / "torn.json").write_text('{"id": "prt_x", "type": "step-fin')
    source = OpenCodeSource(ctx)
    events = source.poll().events
    counts = summary(events)
    assert counts["prompt"] == 1 and counts["call"] == 1 and counts["search"] == 1
    step = next(e for e in events if e.kind is EventKind.CALL)
    assert step.ts == datetime.fromtimestamp((T0 + 20) / 1000, tz=timezone.utc)
    assert any("torn" in r for r in source.skips.counts)
    assert not source.poll().events


def test_user_message_with_no_request_behind_it_is_not_a_prompt(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    add_session(conn, "ses_a")  # keeps its default title: no title call was made either
    typed(conn, "msg_1", "ses_a", T0)  # an unknown model: written, never sent
    source = OpenCodeSource(ctx)
    assert not source.poll().events
    # Rows much later: the unanswered message is given up on, not counted.
    add_message(conn, "msg_9", "ses_a", T0 + 2 * 3_600_000, assistant(T0 + 2 * 3_600_000, parentID="msg_x"))
    source.poll()
    add_message(conn, "msg_1a", "ses_a", T0 + 2 * 3_600_000 + 5, assistant(T0, parentID="msg_1"))
    assert summary(source.poll().events)["prompt"] == 0
    conn.close()


def test_prompt_every_attempt_of_which_was_refused_is_counted_apart(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    add_session(conn, "ses_a")
    typed(conn, "msg_1", "ses_a", T0)
    error = {"name": "APIError", "data": {"statusCode": 429, "message": "Usage limit reached for 5 hour"}}
    refused = assistant(T0 + 1, parentID="msg_1", error=error)
    refused["tokens"] = {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    add_message(conn, "msg_1a", "ses_a", T0 + 1, refused)
    source = OpenCodeSource(ctx)
    assert summary(source.poll().events)["prompt"] == 0
    assert source.refused == 1 and source.health()[0].refused == 1
    assert OpenCodeSource(ctx).poll() is not None and source.refused == 1  # counted once per message
    conn.close()


def test_session_title_call_is_estimated_once_the_title_changes(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    add_session(conn, "ses_a")
    add_session(conn, "ses_sub", parent="ses_a", title="Explore the repo (@explore subagent)")
    source = OpenCodeSource(ctx)
    assert not source.poll().events  # default title: no title call yet; sub-sessions get none
    conn.execute("UPDATE session SET title = 'Add backoff', time_updated = ? WHERE id = 'ses_a'", (T0 + 9,))
    [title] = source.poll().events
    assert title.key == "estimate:title:ses_a" and title.role is CallRole.AUXILIARY
    assert title.origin == "estimate:title" and title.ts == datetime.fromtimestamp(T0 / 1000, tz=timezone.utc)
    conn.execute("UPDATE session SET time_updated = ? WHERE id = 'ses_a'", (T0 + 99,))
    assert not source.poll().events
    conn.close()


def test_one_kilo_db_reached_two_ways_is_read_once(home: Path) -> None:
    path = write_opencode_session(home, START, prompts=2, app="kilo")
    link = home / "kilo-link.db"
    link.symlink_to(path)
    ctx = SourceContext(home=home, env={"KILO_DB": str(link)}, clock=lambda: FIXED_NOW)
    kilo = OpenCodeSource(ctx, KILO)
    assert kilo.db_paths().count(link) == 1 and path not in kilo.db_paths()
    assert summary(kilo.poll().events)["prompt"] == 2 and kilo.file_count() == 1


# --- refusals: Z.ai's 1308/1310 as limit hits ----------------------------------------------------

RESET_UTC = datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)
"""The reset the hand-built refusal names: 21:00:00 in UTC+8, as Z.ai writes it."""
REFUSAL_BODY = (
    '{"error": {"code": "1308", "message": "Usage limit reached for 5 hour. '
    'Your limit will reset at 2026-11-26 21:00:00"}}'
)


def refusal_error(body: str = REFUSAL_BODY) -> dict[str, object]:
    """The `error` OpenCode 1.18.33 writes on the assistant message once it gives up retrying a 429."""
    return {
        "name": "APIError",
        "data": {
            "message": "Usage limit reached for 5 hour. Your limit will reset at 2026-11-26 21:00:00",
            "statusCode": 429,
            "isRetryable": True,
            "responseHeaders": {"content-type": "application/json"},
            "responseBody": body,
            "metadata": {"url": "https://api.z.ai/api/coding/paas/v4/chat/completions"},
        },
    }


def refused_turn(conn: sqlite3.Connection, at: int = T0, error: dict[str, object] | None = None) -> None:
    """A typed prompt whose every attempt was refused: no parts on the answer, no tokens, the error."""
    add_session(conn, "ses_r")
    typed(conn, "msg_r", "ses_r", at, text="zd:refuse this one hits the 5-hour limit")
    answer = assistant(at + 5, parentID="msg_r", error=error or refusal_error())
    answer["time"] = {"created": at + 5, "completed": at + 68_000}
    answer["tokens"] = {"input": 0, "output": 0, "reasoning": 0, "cache": {"read": 0, "write": 0}}
    add_message(conn, "msg_ra", "ses_r", at + 5, answer)


def test_refusal_error_on_the_assistant_message_is_a_limit_hit(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    refused_turn(conn)
    source = OpenCodeSource(ctx)
    batch = source.poll()
    [hit] = batch.limit_hits
    assert (hit.tool, hit.code, hit.reset_at) == ("opencode", 1308, RESET_UTC)
    assert hit.ts == datetime.fromtimestamp((T0 + 68_000) / 1000, tz=timezone.utc)  # when it was given up
    assert summary(batch.events)["prompt"] == 0 and source.refused == 1
    conn.close()


def test_weekly_refusal_and_chinese_notice(ctx: SourceContext, home: Path) -> None:
    """A 1310 with the reset only in Z.ai's Chinese wording still names its code and reset."""
    conn = new_db(home)
    body = '{"error": {"code": "1310", "message": "您的周限额已用完，将在 2026-11-26 21:00:00 重置"}}'
    error = {"name": "APIError", "data": {"message": "您的周限额已用完", "statusCode": 429, "responseBody": body}}
    refused_turn(conn, error=error)
    [hit] = OpenCodeSource(ctx).poll().limit_hits
    assert (hit.code, hit.reset_at) == (1310, RESET_UTC)
    conn.close()


def test_1308_in_the_conversation_is_no_limit_hit(ctx: SourceContext, home: Path) -> None:
    """Only the assistant's `error` is read: a prompt or an answer quoting the refusal is no refusal."""
    conn = new_db(home)
    add_session(conn, "ses_a")
    typed(conn, "msg_1", "ses_a", T0, text=f"why did I get {REFUSAL_BODY}? [1308]")
    add_message(conn, "msg_1a", "ses_a", T0 + 10, assistant(T0 + 10, parentID="msg_1"))
    add_part(conn, "prt_1s", "msg_1a", "ses_a", T0 + 10, STEP)
    add_part(conn, "prt_1t", "msg_1a", "ses_a", T0 + 10, {"type": "text", "text": REFUSAL_BODY})
    other = {"name": "APIError", "data": {"message": "Internal error", "statusCode": 500, "responseBody": "{}"}}
    add_message(conn, "msg_1b", "ses_a", T0 + 20, assistant(T0 + 20, parentID="msg_1", error=other))
    batch = OpenCodeSource(ctx).poll()
    assert summary(batch.events)["prompt"] == 1
    assert batch.limit_hits == []
    conn.close()


def test_refusal_is_handed_over_once(ctx: SourceContext, home: Path) -> None:
    """A second poll, the row rewritten in place, and a restart (which reads the database again) add no
    second limit hit to the ledger."""
    conn = new_db(home)
    refused_turn(conn)
    source = OpenCodeSource(ctx)
    [hit] = source.poll().limit_hits
    assert source.poll().limit_hits == []
    conn.execute("UPDATE message SET time_updated = ? WHERE id = 'msg_ra'", (T0 + 70_000,))
    assert source.poll().limit_hits == []
    ledger = Ledger()
    assert ledger.add_limit_hit(hit)
    [again] = OpenCodeSource(ctx).poll().limit_hits  # a restart re-reads the database
    assert again == hit and not ledger.add_limit_hit(again)
    conn.close()


def test_legacy_json_tree_refusal_is_a_limit_hit(ctx: SourceContext, home: Path) -> None:
    folder = home / ".local" / "share" / "opencode" / "storage" / "message" / "ses_l"
    folder.mkdir(parents=True)
    answer = {"id": "msg_a", "sessionID": "ses_l", **assistant(T0, parentID="msg_u", error=refusal_error())}
    (folder / "msg_a.json").write_text(js(answer))
    source = OpenCodeSource(ctx)
    [hit] = source.poll().limit_hits
    assert (hit.code, hit.reset_at) == (1308, RESET_UTC)
    (folder / "msg_a.json").write_text(js({**answer, "summary": False}))  # rewritten whole
    assert source.poll().limit_hits == []


def test_recorded_opencode_refusal_is_a_limit_hit(home: Path) -> None:
    """OpenCode 1.18.33's own refused session (`make conformance --record`): one hit, code and reset as the
    server sent them (5 h after the run's first request, to the second)."""
    recorded = truth("opencode")
    at = datetime.fromisoformat(recorded["report_at"])
    install_fixture(FIXTURES / "opencode" / "home.tar.xz", home, mtime=at.timestamp() - 30)
    source = OpenCodeSource(SourceContext(home=home, env={}, clock=lambda: at))
    [hit] = source.poll().limit_hits
    first = datetime.fromisoformat(recorded["exchanges"][0]["ts"])
    last_refused = max(datetime.fromisoformat(e["ts"]) for e in recorded["exchanges"] if e["status"] == 429)
    assert hit.tool == "opencode" and hit.code == 1308
    assert hit.reset_at == (first + timedelta(hours=5)).replace(microsecond=0)
    assert timedelta(0) <= hit.ts - last_refused < timedelta(seconds=5)  # written as the last attempt failed
    assert source.refused == recorded["refused"]
    assert source.poll().limit_hits == []
