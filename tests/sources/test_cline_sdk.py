"""Cline's `~/.cline/data`: classic task folders (CLI / JetBrains) and SDK `*.messages.json` sessions."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tests.support.env import FIXED_NOW
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import EventKind
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.cline_sdk import ClineDataSource, create_sources

T0 = FIXED_NOW - timedelta(hours=2)
WINDOW = (FIXED_NOW - timedelta(hours=5), FIXED_NOW + timedelta(hours=1))


def ms(offset_s: float) -> int:
    return int((T0 + timedelta(seconds=offset_s)).timestamp() * 1000)


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def assistant(
    mid: str,
    offset: float,
    content: list[dict[str, Any]],
    metrics: dict[str, int] | None = None,
    model: str = "glm-4.6",
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "id": mid,
        "role": "assistant",
        "ts": ms(offset),
        "modelInfo": {"id": model, "provider": "openai-compatible"},
        "content": content,
    }
    if metrics:
        msg["metrics"] = metrics
    return msg


def write_session(data: Path, sid: str, agent: str, messages: list[dict[str, Any]]) -> Path:
    """`writeFileSync` of the whole document, as the SDK's session store does."""
    path = data / "sessions" / sid / f"{sid}.messages.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "version": 1,
        "updated_at": (T0 + timedelta(minutes=30)).isoformat().replace("+00:00", "Z"),
        "agent": agent,
        "sessionId": sid,
        "messages": messages,
    }
    path.write_text(json.dumps(doc))
    return path


def bump(path: Path) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def lead_messages() -> list[dict[str, Any]]:
    return [
        {"id": "u1", "role": "user", "content": [text("Inspect the README and summarize it.")]},
        assistant(
            "a1",
            5,
            [
                {
                    "type": "tool_use",
                    "id": "tu1",
                    "name": "web-search-prime__webSearchPrime",
                    "input": {"search_query": "readme"},
                }
            ],
        ),
        {"id": "u2", "role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": "[]"}]},
        assistant("a2", 9, [{"type": "tool_use", "id": "tu2", "name": "read_files", "input": {}}]),
        {"id": "u3", "role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu2", "content": "#"}]},
        assistant(
            "a3",
            12,
            [text("The README describes a fixture.")],
            metrics={"inputTokens": 21, "outputTokens": 8, "cacheReadTokens": 3, "cacheWriteTokens": 1},
        ),
        {"id": "u4", "role": "user", "content": "now shorten it"},
    ]


def test_sdk_lead_session_prompts_calls_and_search(home: Path, ctx: SourceContext) -> None:
    data = home / ".cline" / "data"
    write_session(data, "1784094124598_rruoq", "lead", lead_messages())
    ledger = Ledger()
    ledger.add_all(ClineDataSource(ctx).poll().events)
    c = ledger.count(*WINDOW, tool="cline")
    assert (c.prompts, c.calls, c.mcp_by_service["search"]) == (2, 3, 1)
    assert c.tokens == 21 + 8  # Cline CLI's inputTokens already include the cache (metering.md §2)
    [call] = [e for e in ledger.events(*WINDOW) if e.kind is EventKind.CALL and e.input_tokens]
    assert (call.input_tokens, call.cached_tokens, call.output_tokens) == (21, 3, 8)
    prompts = [e for e in ledger.events(*WINDOW) if e.kind is EventKind.PROMPT]
    # The first prompt takes the next reply's ts; the last (no reply yet) the document's updated_at.
    assert prompts[0].ts == datetime.fromtimestamp(ms(5) / 1000, tz=timezone.utc)
    assert prompts[1].ts == T0 + timedelta(minutes=30)
    assert {e.model for e in ledger.events(*WINDOW) if e.kind is EventKind.CALL} == {"glm-4.6"}


def test_subagent_sessions_count_calls_but_not_prompts(home: Path, ctx: SourceContext) -> None:
    data = home / ".cline" / "data"
    write_session(
        data,
        "s_sub",
        "subagent",
        [
            {"id": "u1", "role": "user", "content": [text("Find usages of getJson")]},
            assistant("a1", 3, [text("found 3")]),
        ],
    )
    write_session(
        data,
        "s_team",
        "teammate",
        [
            {"id": "u1", "role": "user", "content": [text("review this")]},
            assistant("a1", 4, [text("ok")]),
        ],
    )
    ledger = Ledger()
    ledger.add_all(ClineDataSource(ctx).poll().events)
    c = ledger.count(*WINDOW, tool="cline")
    assert (c.prompts, c.calls, c.calls_by_role["subagent"]) == (0, 2, 2)


def test_rewrite_adds_only_new_messages_and_rereads_are_idempotent(home: Path, ctx: SourceContext) -> None:
    data = home / ".cline" / "data"
    messages = lead_messages()[:3]
    path = write_session(data, "s1", "lead", messages)
    source = ClineDataSource(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert (ledger.count(*WINDOW).prompts, ledger.count(*WINDOW).calls) == (1, 1)
    path = write_session(data, "s1", "lead", lead_messages())
    bump(path)
    for _ in range(10):
        ledger.add_all(source.poll().events)
        ledger.add_all(ClineDataSource(ctx).poll().events)
    c = ledger.count(*WINDOW)
    assert (c.prompts, c.calls, c.mcp_by_service["search"], c.tokens) == (2, 3, 1, 29)


def test_cline_data_dir_env_and_classic_tasks_there(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    task = data / "tasks" / "1762355683581"
    task.mkdir(parents=True)
    ts = ms(0)
    task.joinpath("ui_messages.json").write_text(
        json.dumps(
            [
                {"ts": ts, "type": "say", "say": "text", "text": "from the CLI"},
                {
                    "ts": ts + 500,
                    "type": "say",
                    "say": "api_req_started",
                    "text": json.dumps({"tokensIn": 100, "tokensOut": 5}),
                    "modelInfo": {"providerId": "zai", "modelId": "glm-4.6"},
                },
                {
                    "ts": ts + 900,
                    "type": "say",
                    "say": "use_mcp_server",
                    "partial": False,
                    "text": json.dumps({"type": "use_mcp_tool", "serverName": "s", "toolName": "webSearchPrime"}),
                },
                {"ts": ts + 950, "type": "say", "say": "mcp_server_request_started"},
            ]
        )
    )
    write_session(data, "sdk1", "lead", lead_messages())
    ctx = SourceContext(home=home, env={"CLINE_DATA_DIR": str(data)}, clock=lambda: FIXED_NOW)
    (source,) = create_sources(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    c = ledger.count(*WINDOW, tool="cline")
    assert (c.prompts, c.calls, c.mcp_by_service["search"]) == (3, 4, 2)
    assert all(exists for _, exists in source.health()[0].roots)
    assert source.health()[0].tool == "cline" and source.file_count() == 2


def test_session_dir_env_overrides(home: Path, tmp_path: Path) -> None:
    sessions = tmp_path / "sess"
    write_session(tmp_path / "x", "s9", "lead", lead_messages())
    (tmp_path / "x" / "sessions").rename(sessions)
    ctx = SourceContext(home=home, env={"CLINE_SESSION_DATA_DIR": str(sessions)}, clock=lambda: FIXED_NOW)
    assert ClineDataSource(ctx).poll().events


def test_mcp_alias_from_cline_data_settings(home: Path, ctx: SourceContext) -> None:
    data = home / ".cline" / "data"
    (data / "settings").mkdir(parents=True)
    (data / "settings" / "cline_mcp_settings.json").write_text(
        json.dumps(
            {"mcpServers": {"zr": {"url": "https://api.z.ai/api/mcp/zread/mcp", "headers": {"Authorization": "k"}}}}
        )
    )
    write_session(
        data,
        "s2",
        "lead",
        [
            {"id": "u1", "role": "user", "content": [text("how does repo x do it")]},
            assistant("a1", 2, [{"type": "tool_use", "id": "t", "name": "zr__search_doc", "input": {}}]),
        ],
    )
    ledger = Ledger()
    ledger.add_all(ClineDataSource(ctx).poll().events)
    assert ledger.count(*WINDOW).mcp_by_service["zread"] == 1


def test_malformed_session_files_are_skipped(home: Path, ctx: SourceContext) -> None:
    data = home / ".cline" / "data" / "sessions"
    (data / "bad").mkdir(parents=True)
    (data / "bad" / "bad.messages.json").write_text('{"messages": [')
    (data / "odd").mkdir()
    (data / "odd" / "odd.messages.json").write_text('{"messages": {"x": 1}}')
    (data / "nomsgid").mkdir()
    (data / "nomsgid" / "nomsgid.messages.json").write_text(
        json.dumps(
            {"agent": "lead", "messages": [{"role": "user", "content": "hi"}, "junk", {"id": "a", "role": "assistant"}]}
        )
    )
    source = ClineDataSource(ctx)
    source._reader.delay = 0.001
    assert source.poll().events == []
    reasons = source.skips.counts
    assert reasons["malformed or torn JSON file"] == 1
    assert reasons["session file without a messages array"] == 1
    assert reasons["session message without an id"] == 2
    assert reasons["assistant message: timestamp missing or not a number"] == 1


def test_absent_when_nothing_there(ctx: SourceContext) -> None:
    source = ClineDataSource(ctx)
    assert source.poll().events == []
    assert source.health()[0].status == "absent"


def test_cli3_subagent_files_are_subagent_calls_of_their_session(home: Path, ctx: SourceContext) -> None:
    data = home / ".cline" / "data"
    sid = "1784094124598_rruoq"
    write_session(data, sid, "lead", lead_messages())
    sub = data / "sessions" / sid / "agent_a1b2c3.messages.json"
    sub.write_text(
        json.dumps(
            {
                "version": 1,
                "agent": "lead",  # what the document says does not matter: the file name does
                "sessionId": f"{sid}__a1b2c3",
                "messages": [
                    {"id": "u1", "role": "user", "content": [text("Search the web for the README's claims.")]},
                    assistant(
                        "a1",
                        20,
                        [{"type": "tool_use", "id": "st1", "name": "web-search-prime__webSearchPrime", "input": {}}],
                        metrics={"inputTokens": 9, "outputTokens": 2},
                    ),
                ],
            }
        )
    )
    ledger = Ledger()
    source = ClineDataSource(ctx)
    ledger.add_all(source.poll().events)
    c = ledger.count(*WINDOW, tool="cline")
    assert (c.prompts, c.calls, c.mcp_by_service["search"]) == (2, 4, 2)
    assert c.calls_by_role["subagent"] == 1
    sub_events = [e for e in ledger.events(*WINDOW) if e.key.startswith(f"{sid}__a1b2c3:")]
    assert {e.session for e in sub_events} == {sid} and len(sub_events) == 2
    assert source.file_count() == 2


def test_cli3_providers_json_gives_model_and_endpoint_never_the_key(home: Path, ctx: SourceContext) -> None:
    settings = home / ".cline" / "data" / "settings"
    settings.mkdir(parents=True)
    (settings / "providers.json").write_text(
        json.dumps(
            {
                "version": 1,
                "lastUsedProvider": "openai-compatible",
                "providers": {
                    "anthropic": {"settings": {"provider": "anthropic", "model": "claude-x"}},
                    "openai-compatible": {
                        "settings": {
                            "provider": "openai-compatible",
                            "model": "GLM-4.6",
                            "baseUrl": "https://api.z.ai/api/coding/paas/v4",
                            "apiKey": "sk-not-to-be-kept",
                        }
                    },
                },
            }
        )
    )
    source = ClineDataSource(ctx)
    info = source.configs()["cline"]
    assert info.model == "glm-4.6" and info.endpoint is EndpointKind.CODING
    assert info.model_detail == "settings/providers.json (openai-compatible)"
    assert "sk-not" not in repr(info) and "sk-not" not in repr(vars(source))


def test_session_dir_precedence(home: Path, tmp_path: Path) -> None:
    """`CLINE_SESSION_DATA_DIR` before `CLINE_DATA_DIR` before `CLINE_DIR`."""
    ctx = SourceContext(
        home=home,
        env={
            "CLINE_SESSION_DATA_DIR": str(tmp_path / "s"),
            "CLINE_DATA_DIR": str(tmp_path / "d"),
            "CLINE_DIR": str(tmp_path / "c"),
        },
    )
    assert ClineDataSource(ctx).sessions_dir == tmp_path / "s"
    assert ClineDataSource(ctx).data_dir == tmp_path / "d"
    ctx = SourceContext(home=home, env={"CLINE_DATA_DIR": str(tmp_path / "d"), "CLINE_DIR": str(tmp_path / "c")})
    assert ClineDataSource(ctx).sessions_dir == tmp_path / "d" / "sessions"
    ctx = SourceContext(home=home, env={"CLINE_DIR": str(tmp_path / "c")})
    assert ClineDataSource(ctx).sessions_dir == tmp_path / "c" / "data" / "sessions"


def test_cli3_refused_prompt_is_counted_apart_and_its_error_is_a_limit_hit(home: Path, ctx: SourceContext) -> None:
    """3.0.65: after every attempt got 429, Cline writes a display-only `error_…` assistant message."""
    data = home / ".cline" / "data"
    error_text = "Usage limit reached for 5 hour. Your limit will reset at 2026-11-26 14:02:16"
    write_session(
        data,
        "1796173437156_7adhi",
        "lead",
        [
            {"id": "u1", "role": "user", "ts": ms(0), "content": [text('<user_input mode="act">go</user_input>')]},
            {
                "id": "error_8222ba50",
                "role": "assistant",
                "ts": ms(60),
                "content": [text(error_text)],
                "metadata": {"displayOnly": True, "displayRole": "error"},
                "modelInfo": {"id": "glm-4.6", "provider": "openai-compatible"},
            },
        ],
    )
    source = ClineDataSource(ctx)
    batch = source.poll()
    assert batch.events == []  # neither a prompt nor a call
    assert source.refused == 1 and source.health()[0].refused == 1
    [hit] = batch.limit_hits
    assert hit.tool == "cline" and hit.reset_at == datetime(2026, 11, 26, 6, 2, 16, tzinfo=timezone.utc)
    source.poll()
    assert ClineDataSource(ctx).poll().events == [] and source.refused == 1
