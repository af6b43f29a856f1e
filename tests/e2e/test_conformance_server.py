"""The conformance suite's recording fake GLM server, over real HTTP on 127.0.0.1 (no client needed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conformance.server import FakeGlmServer, refusal_message
from conformance.truth import Typed, build_truth

BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[FakeGlmServer]:
    with FakeGlmServer(str(tmp_path), log_path=str(tmp_path / "requests.jsonl")) as server:
        yield server


def _sse(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def test_anthropic_stream_scripts_a_tool_call_then_text(srv: FakeGlmServer) -> None:
    url = f"{srv.anthropic_url}/v1/messages"
    first = {"model": "glm-4.6", "stream": True, "tools": [BASH], "messages": [{"role": "user", "content": "zd:multi"}]}
    events = _sse(httpx.post(url, json=first, timeout=10).text)
    start = events[0]["message"]
    block = events[1]["content_block"]
    assert block["type"] == "tool_use" and block["name"] == "Bash"
    assert start["id"].startswith("msg_zd0001")
    follow = {
        **first,
        "messages": [
            {"role": "user", "content": "zd:multi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": block["id"], "name": "Bash", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"], "content": "ok"}]},
        ],
    }
    events = _sse(httpx.post(url, json=follow, timeout=10).text)
    assert events[1]["content_block"]["type"] == "text"
    usage = events[0]["message"]["usage"]
    ex = srv.recorder.snapshot()[-1]
    # Anthropic reports input without the cached part; the record keeps input with cached.
    assert usage["input_tokens"] + usage["cache_read_input_tokens"] == ex.input_tokens
    assert [e.action for e in srv.recorder.snapshot()] == ["tool:Bash", "text"]


def test_refusals_carry_zai_codes_in_each_envelope(srv: FakeGlmServer) -> None:
    body = {"model": "glm-4.6", "messages": [{"role": "user", "content": "zd:refuse"}]}
    anthropic = httpx.post(f"{srv.anthropic_url}/v1/messages", json=body, timeout=10)
    assert anthropic.status_code == 429
    assert anthropic.json()["error"]["type"] == "1308"
    body["messages"] = [{"role": "user", "content": "zd:refuse-weekly"}]
    chat = httpx.post(f"{srv.openai_url}/chat/completions", json=body, timeout=10)
    assert chat.status_code == 429
    assert chat.json()["error"]["code"] == "1310"
    assert "reset at" in chat.json()["error"]["message"]
    assert [e.status for e in srv.recorder.snapshot()] == [429, 429]


def test_refusal_names_the_reset_in_utc_plus_8() -> None:
    from datetime import datetime, timezone

    reset = datetime(2026, 12, 2, 5, 0, tzinfo=timezone.utc)
    assert refusal_message(1308, reset).endswith("reset at 2026-12-02 13:00:00")


def test_responses_stream_and_mcp_search_are_recorded(srv: FakeGlmServer) -> None:
    tools = [{"type": "function", "name": "web-search-prime__webSearchPrime", "parameters": {}}]
    body = {"model": "glm-4.6", "stream": True, "tools": tools, "input": "zd:search it"}
    events = _sse(httpx.post(f"{srv.openai_url}/responses", json=body, timeout=10).text)
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert item["type"] == "function_call" and item["name"].endswith("webSearchPrime")
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "webSearchPrime", "arguments": {}}}
    answer = httpx.post(srv.mcp_url, json=rpc, timeout=10).json()
    assert answer["result"]["isError"] is False
    listed = httpx.post(srv.mcp_url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, timeout=10).json()
    assert listed["result"]["tools"][0]["name"] == "webSearchPrime"
    truth = build_truth(
        tool="t",
        client="c",
        version="1",
        exchanges=srv.recorder.snapshot(),
        typed=[Typed("zd:search it")],
        traced=set(),
        interactive_sessions=0,
    )
    assert (truth.prompts, truth.calls, truth.searches, truth.hidden_calls) == (1, 1, 1, 1)


def test_binds_loopback_only(srv: FakeGlmServer) -> None:
    assert srv.server_address[0] == "127.0.0.1"
