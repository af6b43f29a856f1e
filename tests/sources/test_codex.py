"""Codex CLI rollouts: the recorded real files against the server's truth, and the rules one by one."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.codex import SID, rec, turn, usage, write_codex_session, write_rollout
from tests.support.env import FIXED_NOW
from tests.support.recorded import FIXTURES, RECORDED_AT, truth
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, McpService, UsageEvent
from zai_dash.sources.base import SourceBatch, SourceContext
from zai_dash.sources.tools.codex import TOOLS, CodexSource, create_sources

REAL = FIXTURES / "codex"
TRUTH = truth("codex")
T0 = FIXED_NOW - timedelta(hours=1)


def source(home: Path, env: dict[str, str] | None = None, now: datetime = FIXED_NOW, **kw: Any) -> CodexSource:
    return CodexSource(SourceContext(home=home, env=env or {}, clock=lambda: now, **kw))


def kinds(batch: SourceBatch) -> Counter[str]:
    return Counter(e.kind.value for e in batch.events)


def calls(batch: SourceBatch) -> list[UsageEvent]:
    return [e for e in batch.events if e.kind is EventKind.CALL]


# -- the recorded real rollouts ----------------------------------------------------------------------


@pytest.fixture
def real_home(home: Path) -> Path:
    shutil.copytree(REAL / "sessions", home / ".codex" / "sessions")
    return home


def test_real_rollouts_match_what_the_server_answered(real_home: Path) -> None:
    batch = source(real_home, now=RECORDED_AT).poll()
    total, scenarios = TRUTH["total"], TRUTH["scenarios"]
    found = calls(batch)
    assert len(found) == total["answered"]
    assert sum(e.input_tokens for e in found) == total["input_tokens"]
    assert sum(e.cached_tokens for e in found) == total["cached_tokens"]
    assert sum(e.output_tokens for e in found) == total["output_tokens"]
    assert {e.model for e in found} == set(total["models"])
    # One MCP search reached the server; the one the approval policy refused did not.
    assert [e.service for e in batch.events if e.kind is EventKind.MCP] == [McpService.SEARCH] * total["mcp_calls"]
    # The spawned agent wrote its own rollout: its one call is a sub-agent call, its task no prompt.
    assert [e.role for e in found].count(CallRole.SUBAGENT) == 1
    # Every scenario's prompt was billed except the one the server refused with 429.
    billed = [name for name, s in scenarios.items() if s["answered"]]
    assert kinds(batch)["prompt"] == len(billed) == len(scenarios) - 1
    assert not batch.limit_hits  # Codex writes only "exceeded retry limit, last status: 429"
    assert not source(real_home, now=RECORDED_AT).skips.counts


def test_real_rollouts_read_once(real_home: Path) -> None:
    src = source(real_home, now=RECORDED_AT)
    first = src.poll()
    assert not src.poll()
    again = source(real_home, now=RECORDED_AT).poll()
    assert {e.key for e in again.events} == {e.key for e in first.events}
    assert len({e.key for e in first.events}) == len(first.events)


def test_resume_appends_to_the_same_file(real_home: Path) -> None:
    by_session = Counter(e.session for e in calls(source(real_home, now=RECORDED_AT).poll()))
    # mcp-denied (2 calls) and its resume (1 call) share one rollout and one session id; the spawned
    # agent's call (its own rollout) belongs to its parent's session (3 calls of its own).
    assert sorted(by_session.values()) == [1, 2, 3, 4]


# -- rules ---------------------------------------------------------------------------------------------


def test_token_usage_records_are_calls_and_token_counts_do_not_repeat_them(home: Path) -> None:
    write_rollout(home, T0, turn(T0, 1) + turn(T0 + timedelta(minutes=1), 2, inp=3000, cached=0, out=5))
    batch = source(home).poll()
    assert [(e.key, e.input_tokens, e.cached_tokens, e.output_tokens) for e in calls(batch)] == [
        ("resp:resp_1", 1000, 200, 20),
        ("resp:resp_2", 3000, 0, 5),
    ]
    assert all(e.model == "glm-4.6" and e.session == SID and e.role is CallRole.MAIN for e in calls(batch))
    assert kinds(batch)["prompt"] == 2


def test_legacy_token_counts_dedupe_on_the_cumulative_total(home: Path) -> None:
    def count(total: dict[str, int], last: dict[str, int] | None) -> dict[str, Any]:
        info: dict[str, Any] = {"total_token_usage": total}
        if last is not None:
            info["last_token_usage"] = last
        return {"type": "token_count", "info": info}

    lines = [
        rec(T0, "event_msg", {"type": "user_message", "message": "fix the bug"}),
        rec(T0, "event_msg", count(usage(1000, 100, 10), usage(1000, 100, 10))),
        rec(T0, "event_msg", count(usage(1000, 100, 10), usage(1000, 100, 10))),  # repeated unchanged
        rec(T0, "event_msg", {"type": "token_count", "info": None}),  # rate-limit-only update
        rec(T0 + timedelta(seconds=5), "event_msg", count(usage(2500, 300, 30), usage(1500, 200, 20))),
        rec(T0 + timedelta(seconds=9), "event_msg", count(usage(4000, 300, 40), None)),  # no per-call usage
    ]
    write_rollout(home, T0, lines)
    batch = source(home).poll()
    assert [(e.input_tokens, e.cached_tokens, e.output_tokens) for e in calls(batch)] == [
        (1000, 100, 10),
        (1500, 200, 20),
        (1510, 0, 0),  # only the growth of the cumulative total is known
    ]
    assert kinds(batch)["prompt"] == 1


def test_a_refused_turn_is_not_a_prompt(home: Path) -> None:
    refused = [
        rec(T0, "event_msg", {"type": "task_started"}),
        rec(T0, "event_msg", {"type": "item_completed", "item": {"type": "UserMessage", "id": "u1"}}),
        rec(
            T0,
            "event_msg",
            {"type": "task_complete", "error": {"message": "exceeded retry limit, last status: 429 Too Many Requests"}},
        ),
    ]
    write_rollout(home, T0, refused + turn(T0 + timedelta(minutes=1), 2))
    batch = source(home).poll()
    assert [e.key for e in batch.events if e.kind is EventKind.PROMPT] == ["prompt:u2"]


def test_mcp_calls_that_reached_the_server(home: Path) -> None:
    def item(n: int, status: str, server: str = "web-search-prime", tool: str = "webSearchPrime") -> dict[str, Any]:
        return rec(
            T0,
            "event_msg",
            {
                "type": "item_completed",
                "item": {"type": "McpToolCall", "id": f"call_{n}", "server": server, "tool": tool, "status": status},
            },
        )

    def legacy(n: int, result: dict[str, Any]) -> dict[str, Any]:
        return rec(
            T0,
            "event_msg",
            {
                "type": "mcp_tool_call_end",
                "call_id": f"old_{n}",
                "invocation": {"server": "zread", "tool": "read_file"},
                "result": result,
            },
        )

    write_rollout(
        home,
        T0,
        [
            item(1, "completed"),
            item(2, "failed"),
            item(3, "completed", "web-reader", "webReader"),
            item(4, "completed", "github", "search_code"),
            legacy(5, {"Ok": {"content": []}}),
            legacy(6, {"Err": "boom"}),
        ],
    )
    services = [e.service for e in source(home).poll().events if e.kind is EventKind.MCP]
    assert services == [McpService.SEARCH, McpService.READER, McpService.ZREAD]


def test_mcp_server_aliased_by_url_in_config(home: Path) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        '[mcp_servers.lookup]\nurl = "https://api.z.ai/api/mcp/web_search_prime/mcp"\n'
        '[mcp_servers.lookup.http_headers]\nAuthorization = "Bearer secret-key"\n'
    )
    write_rollout(
        home,
        T0,
        [
            rec(
                T0,
                "event_msg",
                {
                    "type": "item_completed",
                    "item": {
                        "type": "McpToolCall",
                        "id": "c1",
                        "server": "lookup",
                        "tool": "query",
                        "status": "completed",
                    },
                },
            )
        ],
    )
    assert [e.service for e in source(home).poll().events] == [McpService.SEARCH]


def test_config_model_and_endpoint(home: Path) -> None:
    codex_home = home / "elsewhere"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        'model = "GLM-4.6"\nmodel_provider = "zai"\n'
        '[model_providers.zai]\nbase_url = "https://api.z.ai/api/coding/paas/v4"\nenv_key = "ZAI_API_KEY"\n'
    )
    info = source(home, env={"CODEX_HOME": str(codex_home)}).configs()["codex"]
    assert (info.model, info.base_url, info.endpoint) == (
        "glm-4.6",
        "https://api.z.ai/api/coding/paas/v4",
        EndpointKind.CODING,
    )
    assert "ZAI_API_KEY" not in repr(info)
    (codex_home / "config.toml").write_text("model = [broken")
    assert source(home, env={"CODEX_HOME": str(codex_home)}).configs() == {}


def test_codex_home_and_archived_sessions(home: Path) -> None:
    other = home / "codex-home"
    write_rollout(other.parent / "x", T0, turn(T0, 1))  # written under x/.codex, moved below
    (other / "archived_sessions").mkdir(parents=True)
    shutil.move(str(other.parent / "x" / ".codex" / "sessions" / "2026"), other / "archived_sessions" / "2026")
    src = source(home, env={"CODEX_HOME": str(other)})
    assert kinds(src.poll()) == Counter({"prompt": 1, "call": 1})
    assert [r.exists for r in src.roots()] == [False, True]


def test_limit_hit_when_zai_body_is_passed_through(home: Path) -> None:
    body = json.dumps(
        {"error": {"code": "1308", "message": "Usage limit reached. Your limit will reset at 2026-11-26 21:00:00"}}
    )
    write_rollout(home, T0, [rec(T0, "event_msg", {"type": "error", "message": f"unexpected status 429: {body}"})])
    [hit] = source(home).poll().limit_hits
    assert (hit.tool, hit.code, hit.reset_at) == ("codex", 1308, datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc))


def test_subagent_rollout_calls_are_subagent_and_not_prompts(home: Path) -> None:
    path = write_rollout(home, T0, [], sid="01a23416-0000-7013-ba7a-5c72c4aba652")
    path.write_text(
        json.dumps(rec(T0, "session_meta", {"id": "child", "source": {"subagent": {"thread_spawn": {}}}}))
        + "\n"
        + "\n".join(json.dumps(x) for x in turn(T0, 1))
        + "\n"
    )
    batch = source(home).poll()
    assert [(e.kind, e.role, e.session) for e in batch.events] == [(EventKind.CALL, CallRole.SUBAGENT, "child")]


def test_bad_lines_are_counted_and_skipped(home: Path) -> None:
    path = write_rollout(home, T0, turn(T0, 1))
    with path.open("ab") as fh:
        fh.write(b"not json\n[1]\n" + json.dumps({"type": 3}).encode() + b"\n")
        fh.write(json.dumps(rec(T0, "token_usage_record", {"response_id": "r", "usage": usage(5, 9, 1)})).encode())
        fh.write(b"\n" + json.dumps({"timestamp": "yesterday", "type": "token_usage_record", "payload": {}}).encode())
        fh.write(b"\n" + json.dumps(rec(T0, "brand_new_record_type", {"x": 1})).encode() + b"\n")
    src = source(home)
    batch = src.poll()
    assert kinds(batch) == Counter({"prompt": 1, "call": 2})
    assert calls(batch)[-1].cached_tokens == 5  # never more than the input it is part of
    assert src.skips.counts == Counter(
        {
            "malformed JSON": 1,
            "not a JSON object": 1,
            "record type missing or not a string": 1,
            "timestamp not ISO 8601": 1,
        }
    )


def test_since_and_appends(home: Path) -> None:
    old = T0 - timedelta(days=10)
    old_path = write_rollout(home, old, turn(old, 1), sid="01a23416-1111-7013-ba7a-5c72c4aba652")
    os.utime(old_path, (old.timestamp(), old.timestamp()))
    path = write_rollout(home, T0, turn(T0, 2))
    src = source(home, since=T0 - timedelta(days=2))
    assert kinds(src.poll()) == Counter({"prompt": 1, "call": 1})
    write_rollout(home, T0, turn(T0 + timedelta(minutes=5), 3))
    assert [e.key for e in src.poll().events] == ["prompt:u3", "resp:resp_3"]
    assert path.exists()


def test_declares_its_tool() -> None:
    assert [(t.id, t.name, t.env_vars) for t in TOOLS] == [("codex", "Codex CLI", ("CODEX_HOME",))]
    [src] = create_sources(SourceContext(home=Path("/nonexistent"), env={}))
    assert src.tools == ("codex",) and src.health()[0].status == "absent"


def test_a_quiet_rollout_only_adds_its_mcp_calls_under_the_same_keys(home: Path) -> None:
    write_codex_session(home, T0 - timedelta(days=5), "07")
    [path] = (home / ".codex" / "sessions").rglob("*.jsonl")
    old = (T0 - timedelta(days=5)).timestamp()
    os.utime(path, (old, old))
    full = source(home).poll().events
    quiet = source(home, calls_since=T0 - timedelta(days=1)).poll().events
    assert [e.kind for e in quiet] == [EventKind.MCP]
    assert quiet[0].key in {e.key for e in full}
