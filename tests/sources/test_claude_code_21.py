"""Claude Code 2.1 behaviour seen in real runs (log-formats.md §11): new record types, denied MCP calls,
refused prompts and the calls the plan bills that no assistant record shows."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.claude_code import CWD, SESSION, T0, Claude, Fed, api_error, assistant, iso, tool_use, user
from zai_dash.domain.events import CallRole, EventKind
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.claude_code import ClaudeCodeSource

LIMIT_BODY = (
    'API Error: 429 {"type":"error","error":{"type":"1308","message":"Usage limit reached for 5 hour. '
    'Your limit will reset at 2026-11-26 17:38:28"}}'
)


@pytest.fixture
def live(home: Path) -> Fed:
    """A source whose wall clock is just after the records (nothing settles by age)."""
    clock = [T0 + timedelta(minutes=2)]
    fed = Fed(ClaudeCodeSource(SourceContext(home=home, env={}, clock=lambda: clock[0])))
    fed.clock = clock  # type: ignore[attr-defined]
    return fed


def result(use_id: str, text: str, at: float, error: bool) -> dict[str, Any]:
    block = {"type": "tool_result", "tool_use_id": use_id, "content": text, "is_error": error}
    return user([block], f"res-{use_id}", at, toolUseResult=f"Error: {text}" if error else text)


def system(subtype: str, at: float, **extra: Any) -> dict[str, Any]:
    rec = {"parentUuid": "p", "isSidechain": False, "type": "system", "subtype": subtype, "sessionId": SESSION,
           "cwd": CWD, "uuid": f"sys-{subtype}-{at}", "timestamp": iso(at)}  # fmt: skip
    rec.update(extra)
    return rec


def test_21_record_types_are_known_and_heavy_ones_are_never_parsed(claude: Claude, fed: Fed) -> None:
    torn_blob = b'{"type":"api-request-blob","messages":[{"role":"user","content":"assistant' + b"x" * 4096
    Claude.append(
        claude.session_file(),
        torn_blob,  # not even valid JSON: proves it is passed over by its prefix, unparsed
        b'{"type":"api-request-shape","sessionId":"s","shape":{"role":"assistant"',
        {"type": "atis-latch", "sessionId": SESSION, "latched": True},
        {"type": "tools-used", "sessionId": SESSION, "tools": ["Read"]},
        {"type": "cost-state", "sessionId": SESSION, "usage": {"glm-4.6": {"inputTokens": 5}}},
        {"type": "attachment", "attachment": {"type": "prompt_snapshot", "prompt": "user"}, "timestamp": iso()},
        {"type": "mode", "mode": "default", "sessionId": SESSION},
        {"type": "permission-mode", "permissionMode": "default", "sessionId": SESSION},
        user("count me", "p1", 1.0),
        assistant("m1", "r1", 2.0),
    )
    fed.poll()
    assert fed.source.skips.lines == 0
    assert {e.key for e in fed.events()} == {"prompt:p1", "m1:r1"}


def test_denied_or_unsent_mcp_call_is_not_a_search(claude: Claude, live: Fed) -> None:
    search = "mcp__web-search-prime__webSearchPrime"
    Claude.append(
        claude.session_file(),
        user("search three ways", "p1", 0.0),
        assistant("m1", "r1", 1.0, [tool_use("t_denied", search)]),
        result("t_denied", "The user doesn't want to proceed with this tool use. The tool use was rejected.", 2.0,
               error=True),
        assistant("m2", "r2", 3.0, [tool_use("t_perm", search)]),
        result("t_perm", f"Claude requested permissions to use {search}, but you haven't granted it yet.", 4.0,
               error=True),
        assistant("m3", "r3", 5.0, [tool_use("t_server", search)]),
        result("t_server", "MCP error -32603: upstream search failed", 6.0, error=True),  # it reached the server
        assistant("m4", "r4", 7.0, [tool_use("t_ok", search)]),
    )  # fmt: skip
    live.poll()
    assert sorted(e.key for e in live.events(EventKind.MCP)) == ["mcp:t_server"]  # t_ok: no result yet
    Claude.append(claude.session_file(), result("t_ok", "[]", 8.0, error=False))
    live.poll()
    assert sorted(e.key for e in live.events(EventKind.MCP)) == ["mcp:t_ok", "mcp:t_server"]
    assert live.events(EventKind.MCP)[-1].ts == T0 + timedelta(seconds=7)  # when it was called


def test_mcp_call_without_a_result_counts_once_settled(claude: Claude, live: Fed) -> None:
    Claude.append(claude.session_file(), assistant("m1", "r1", 1.0, [tool_use("t1", "mcp__zread__search_doc")]))
    live.poll()
    assert live.events(EventKind.MCP) == []
    live.clock[0] = T0 + timedelta(hours=1)  # type: ignore[attr-defined]
    live.poll()
    assert [e.key for e in live.events(EventKind.MCP)] == ["mcp:t1"]


def test_prompt_refused_with_429_is_not_billed(claude: Claude, live: Fed) -> None:
    Claude.append(
        claude.session_file(),
        user("refused", "p1", 0.0),
        *(system("api_error", 1.0 + i, level="error", error={"status": 429, "body": LIMIT_BODY}) for i in range(3)),
        api_error("API Error: Usage limit reached for 5 hour. Your limit will reset at 2026-11-26 17:38:28", 5.0),
    )
    batch = live.poll()
    assert live.events(EventKind.PROMPT) == []
    assert live.source.refused == 1
    assert live.source.health()[0].refused == 1 and not live.source.skips.counts
    assert {h.code for h in batch.limit_hits} == {1308, None}  # the code from api_error, the reset from the text
    Claude.append(claude.session_file(), user("later, answered", "p2", 60.0), assistant("m1", "r1", 61.0))
    live.poll()
    assert [e.key for e in live.events(EventKind.PROMPT)] == ["prompt:p2"]
    live.clock[0] = T0 + timedelta(hours=2)  # type: ignore[attr-defined]
    live.poll()
    assert [e.key for e in live.events(EventKind.PROMPT)] == ["prompt:p2"]  # the refused one never comes back


def test_prompt_waits_for_its_answer_then_counts(claude: Claude, live: Fed) -> None:
    Claude.append(claude.session_file(), user("hello", "p1", 0.0))
    live.poll()
    assert live.events(EventKind.PROMPT) == []  # sent or refused? not known yet
    Claude.append(claude.session_file(), assistant("m1", "r1", 3.0))
    live.poll()
    assert [e.key for e in live.events(EventKind.PROMPT)] == ["prompt:p1"]
    assert live.events(EventKind.PROMPT)[0].ts == T0


def test_typed_again_before_an_answer_counts_both(claude: Claude, live: Fed) -> None:
    Claude.append(claude.session_file(), user("one", "p1", 0.0), user("two", "p2", 1.0), assistant("m1", "r1", 3.0))
    live.poll()
    assert sorted(e.key for e in live.events(EventKind.PROMPT)) == ["prompt:p1", "prompt:p2"]


def test_compaction_and_title_calls_are_estimated_auxiliary_calls(claude: Claude, live: Fed) -> None:
    Claude.append(
        claude.session_file(),
        user("hi", "p1", 0.0),
        assistant("m1", "r1", 1.0, model="glm-5.3"),
        {"type": "ai-title", "aiTitle": "Greeting", "sessionId": SESSION},
        system("compact_boundary", 30.0, content="Conversation compacted", compactMetadata={"trigger": "manual"}),
    )
    live.poll()
    calls = live.events(EventKind.CALL)
    estimated = {e.origin: e for e in calls if e.origin}
    assert set(estimated) == {"estimate:title", "estimate:compact"}
    assert all(e.role is CallRole.AUXILIARY for e in estimated.values())
    assert estimated["estimate:title"].ts == T0 + timedelta(seconds=1)  # the record before it: it has no time
    assert estimated["estimate:compact"].model == "glm-5.3"  # compaction runs on the session's model
    live.poll()
    fresh = Fed(ClaudeCodeSource(live.source.ctx))
    fresh.poll()
    assert {e.key for e in fresh.events(EventKind.CALL)} == {e.key for e in calls}  # stable keys on re-read


def api_request(ident: str, at: float, source: str = "sdk", base: str | None = None) -> bytes:
    """An `api-request` record as 2.1 writes it (one per attempt; big `params`/`tail` elided)."""
    rec: dict[str, Any] = {
        "type": "api-request",
        "sessionId": SESSION,
        "id": ident,
        "timestamp": iso(at),
        "version": "2.1.332",
        "querySource": source,
        "shapeHash": "8c4f",
        "params": {"model": "glm-4.6[1m]", "max_tokens": 32000},
        "thread": {"type": "none"},
    }
    if base:
        rec["base"] = base
    rec["tail"] = [{"role": "user", "content": "x" * 2000}]
    return json.dumps(rec, separators=(",", ":")).encode()  # fmt: skip


def test_an_attempt_never_answered_is_a_billed_retry(claude: Claude, live: Fed) -> None:
    Claude.append(
        claude.session_file(),
        user("hi", "p1", 0.0),
        api_request("req-1", 0.5),  # the stream was cut before any block was written
        api_request("req-2", 2.0, base="req-1"),
        assistant("m1", "r1", 3.0),
        api_request("req-3", 4.0),
        system("api_error", 5.0, error={"status": 429, "body": LIMIT_BODY}),  # refused: not billed
        api_request("req-4", 6.0),
        assistant("m2", "r2", 7.0),
    )
    live.poll()
    calls = live.events(EventKind.CALL)
    assert sorted(e.key for e in calls) == ["estimate:retry:req-1", "m1:r1", "m2:r2"]
    retry = next(e for e in calls if e.origin == "estimate:retry")
    assert retry.role is CallRole.MAIN and retry.model == "glm-4.6" and retry.ts == T0 + timedelta(seconds=0.5)
    assert live.source.skips.lines == 0


def test_subagent_attempts_are_subagent_retries(claude: Claude, live: Fed) -> None:
    Claude.append(
        claude.subagent_file(),
        api_request("a-1", 1.0, "agent:builtin:general-purpose"),
        api_request("a-2", 2.0, "agent:builtin:general-purpose"),
        assistant("m1", "r1", 3.0, isSidechain=True),
    )
    live.poll()
    [retry] = [e for e in live.events(EventKind.CALL) if e.origin]
    assert retry.role is CallRole.SUBAGENT and retry.key == "estimate:retry:a-1"


def test_title_written_before_any_timed_record_takes_the_next_time(claude: Claude, live: Fed) -> None:
    title = {"type": "ai-title", "aiTitle": "Hello", "sessionId": SESSION}
    Claude.append(claude.session_file(), title, user("hi", "p1", 4.0), title, assistant("m1", "r1", 5.0))
    live.poll()
    [estimate] = [e for e in live.events(EventKind.CALL) if e.origin == "estimate:title"]
    assert estimate.ts == T0 + timedelta(seconds=4)


def test_attachment_records_are_passed_over_unparsed(claude: Claude, fed: Fed) -> None:
    big = b'{"parentUuid":"p","isSidechain":false,"attachment":{"type":"environment","text":"user ' + b"x" * 60_000
    Claude.append(claude.session_file(), big, user("hi", "p1", 1.0), assistant("m1", "r1", 2.0))
    fed.poll()
    assert fed.source.skips.lines == 0  # torn, yet not "malformed JSON": never parsed


def test_cost_state_prices_the_title_and_compaction_calls(claude: Claude, live: Fed) -> None:
    """What `cost-state` holds beyond the assistant records is the hidden calls' usage (seen in 2.1.332)."""
    usage = {
        "glm-4.5-air": {"inputTokens": 872, "outputTokens": 27, "cacheReadInputTokens": 0},  # the title call
        # assistant m1: 100 + 1000 cached in, 10 out; the rest is the compaction's.
        "glm-4.6[1m]": {"inputTokens": 600, "outputTokens": 40, "cacheReadInputTokens": 3000,
                        "cacheCreationInputTokens": 50},
    }  # fmt: skip
    Claude.append(
        claude.session_file(),
        {"type": "ai-title", "aiTitle": "Greeting", "sessionId": SESSION},
        user("hi", "p1", 0.0),
        assistant("m1", "r1", 1.0),
        system("compact_boundary", 30.0, compactMetadata={"trigger": "manual"}),
        {"type": "cost-state", "sessionId": SESSION, "totalCostUSD": 0.03, "modelUsage": usage},
    )
    live.poll()
    by_origin = {e.origin: e for e in live.events(EventKind.CALL)}
    title, compact = by_origin["estimate:title"], by_origin["estimate:compact"]
    assert (title.model, title.input_tokens, title.cached_tokens, title.output_tokens) == ("glm-4.5-air", 872, 0, 27)
    assert (compact.model, compact.input_tokens, compact.cached_tokens, compact.output_tokens) == (
        "glm-4.6",
        600 + 3000 + 50 - 1100,
        3000 - 1000,
        40 - 10,
    )
    assert live.ledger.count(T0, T0 + timedelta(hours=1)).tokens == 872 + 27 + 3650 + 40  # every call, once


def test_quiet_transcript_sweep_still_sees_a_denial(claude: Claude, home: Path) -> None:
    """A transcript untouched since the cycle horizon is swept, not parsed; a denial is still seen."""
    search = "mcp__web-search-prime__webSearchPrime"
    path = claude.session_file()
    Claude.append(
        path,
        user("search twice", "p1", 0.0),
        assistant("m1", "r1", 1.0, [tool_use("t_no", search)]),
        result("t_no", "The user doesn't want to proceed with this tool use.", 2.0, error=True),
        assistant("m2", "r2", 3.0, [tool_use("t_yes", search)]),
        result("t_yes", "[]", 4.0, error=False),
    )
    old = (T0 + timedelta(minutes=1)).timestamp()
    os.utime(path, (old, old))
    now = T0 + timedelta(days=3)
    ctx = SourceContext(home=home, env={}, since=T0 - timedelta(days=1), calls_since=now - timedelta(hours=24),
                        clock=lambda: now)  # fmt: skip
    fed = Fed(ClaudeCodeSource(ctx))
    fed.poll()
    assert [e.key for e in fed.events(EventKind.MCP)] == ["mcp:t_yes"]


def test_a_prompt_is_dated_by_its_first_request(claude: Claude, live: Fed) -> None:
    """2.1 writes the user record, then sends (`api-request`) seconds later: the plan meters the request."""
    Claude.append(
        claude.session_file(),
        user("hi", "p1", 0.0),
        api_request("req-1", 2.5),
        assistant("m1", "r1", 4.0),
        user("again", "p2", 10.0),
        assistant("m2", "r2", 12.0),  # an older client: no api-request, the typed time stands
    )
    live.poll()
    assert [e.ts for e in live.events(EventKind.PROMPT)] == [T0 + timedelta(seconds=2.5), T0 + timedelta(seconds=10)]
