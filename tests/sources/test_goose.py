"""Goose: `sessions.db` (real v13 layout, WAL; `usage_ledger` when present) and legacy JSONL sessions."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from tests.support.env import FIXED_NOW
from tests.support.goose import TEXT, db_path, msg, new_db
from tests.support.sqlite import dir_listing, hold_write_lock, js, summary
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import EventKind
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.goose import GooseSource, create_sources

START = FIXED_NOW - timedelta(hours=1)
T0 = int(START.timestamp())


SEARCH = [
    {
        "type": "toolRequest",
        "id": "call_1",
        "toolCall": {
            "status": "success",
            "value": {"name": "web-search-prime__webSearchPrime", "arguments": {"search_query": "jitter"}},
        },
    }
]
RESPONSE = [{"type": "toolResponse", "id": "call_1", "toolResult": {"status": "success", "value": {"content": []}}}]


def test_messages_without_ledger(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    user = "20261126_1"
    msg(conn, user, "user", T0, TEXT)
    msg(conn, user, "assistant", T0 + 3, SEARCH, {"userVisible": True, "inference": {"requestedModel": "glm-4.6"}})
    msg(conn, user, "user", T0 + 5, RESPONSE)  # a tool result, not a prompt
    msg(conn, user, "user", T0 + 6, TEXT, {"userVisible": False, "agentVisible": True})  # injected
    msg(conn, user, "assistant", T0 + 8, TEXT)
    msg(conn, "20261126_2", "user", T0 + 9, TEXT)  # a sub-agent's instructions
    msg(conn, "20261126_2", "assistant", T0 + 10, TEXT)
    msg(conn, "20261126_3", "assistant", T0 + 11, TEXT)
    [source] = create_sources(ctx)
    events = source.poll().events
    conn.close()
    counts = summary(events)
    assert counts["prompt"] == 1 and counts["call"] == 4 and counts["search"] == 1
    assert counts["call:subagent"] == 1 and counts["call:auxiliary"] == 1
    models = {e.model for e in events if e.kind is EventKind.CALL}
    assert models == {"glm-4.6"}  # from inference metadata, else the session's model_config_json
    assert min(e.ts for e in events) == START
    assert not source.poll().events


def test_usage_ledger_rows_are_the_calls(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home, ledger=True)
    user = "20261126_1"
    msg(conn, user, "user", T0, TEXT)
    msg(conn, user, "assistant", T0 + 3, SEARCH)
    for at, compaction in ((T0 + 3, 0), (T0 + 4, 0), (T0 + 30, 1)):
        conn.execute(
            "INSERT INTO usage_ledger (session_id, created_timestamp, model, input_tokens, output_tokens, "
            "total_tokens, cache_read_tokens, cache_write_tokens, is_compaction) VALUES (?, ?, 'glm-4.6', 10234, "
            "321, 10555, 8192, 0, ?)",
            (user, at, compaction),
        )
    events = GooseSource(ctx).poll().events
    conn.close()
    counts = summary(events)
    assert counts["call"] == 3 and counts["call:auxiliary"] == 1 and counts["search"] == 1 and counts["prompt"] == 1
    call = next(e for e in events if e.kind is EventKind.CALL)
    assert call.tokens == 10555 and (call.input_tokens, call.cached_tokens) == (10234, 8192)


def test_replace_conversation_does_not_double_count(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    user = "20261126_1"
    msg(conn, user, "user", T0, TEXT, mid="msg_a")
    msg(conn, user, "assistant", T0 + 2, SEARCH, mid="msg_b")
    source = GooseSource(ctx)
    first = source.poll().events
    # replace_conversation(): every message of the session deleted and re-inserted (new rowids).
    conn.execute("DELETE FROM messages WHERE session_id = ?", (user,))
    msg(conn, user, "user", T0, TEXT, mid="msg_a")
    msg(conn, user, "assistant", T0 + 2, SEARCH, mid="msg_b")
    msg(conn, user, "user", T0 + 60, TEXT, mid="msg_c")
    second = source.poll().events
    conn.close()
    counts = summary(first + second)
    assert counts["prompt"] == 2 and counts["call"] == 1 and counts["search"] == 1


def test_lock_and_no_files_created(ctx: SourceContext, home: Path) -> None:
    conn = new_db(home)
    msg(conn, "20261126_1", "user", T0, TEXT)
    conn.close()
    before = dir_listing(db_path(home).parent)
    source = GooseSource(ctx)
    assert summary(source.poll().events)["prompt"] == 1
    assert dir_listing(db_path(home).parent) == before
    conn = sqlite3.connect(db_path(home), isolation_level=None)
    msg(conn, "20261126_1", "user", T0 + 100, TEXT)
    conn.close()
    with hold_write_lock(db_path(home)):
        source.poll()
        assert source.error and "locked" in source.error
    assert summary(source.poll().events)["prompt"] == 1 and source.error is None


def test_config_model_custom_provider_and_extension_aliases(ctx: SourceContext, home: Path) -> None:
    cfg = home / ".config" / "goose"
    (cfg / "custom_providers").mkdir(parents=True)
    (cfg / "config.yaml").write_text(
        "GOOSE_PROVIDER: custom_zai\nGOOSE_MODEL: GLM-4.6\nextensions:\n  My Search:\n    enabled: true\n"
        "    type: streamable_http\n    uri: https://api.z.ai/api/mcp/web_search_prime/mcp\n"
    )
    (cfg / "custom_providers" / "custom_zai.json").write_text(
        js(
            {
                "name": "custom_zai",
                "engine": "anthropic",
                "api_url": "https://api.z.ai/api/anthropic",
                "api_key_env": "K",
            }
        )
    )
    conn = new_db(home)
    call = [
        {"type": "toolRequest", "id": "c", "toolCall": {"status": "success", "value": {"name": "mysearch__search"}}}
    ]
    msg(conn, "20261126_1", "assistant", T0, call)
    conn.close()
    source = GooseSource(ctx)
    assert summary(source.poll().events)["search"] == 1
    info = source.configs()["goose"]
    assert info.model == "glm-4.6" and info.endpoint is EndpointKind.CODING


def test_goose_path_root_and_legacy_jsonl(home: Path) -> None:
    root = home / "gooseroot"
    sessions = root / "data" / "sessions"
    sessions.mkdir(parents=True)
    lines = [
        js({"working_dir": "/p", "description": "Backoff", "message_count": 3}),
        js({"id": "m1", "role": "user", "created": T0, "content": TEXT, "metadata": {}}),
        js({"id": "m2", "role": "assistant", "created": T0 + 3, "content": SEARCH, "metadata": {}}),
        "{broken",
    ]
    (sessions / "20251021_101010.jsonl").write_text("\n".join(lines) + "\n")
    ctx = SourceContext(home=home, env={"GOOSE_PATH_ROOT": str(root)}, clock=lambda: FIXED_NOW)
    source = GooseSource(ctx)
    events = source.poll().events
    counts = summary(events)
    assert counts["prompt"] == 1 and counts["call"] == 1 and counts["search"] == 1
    assert source.skips.lines == 1
    assert source.health()[0].status == "ok"
