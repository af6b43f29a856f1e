"""Claude Code source: real transcript files in a temp HOME, appended the way Claude Code writes them."""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import FIXED_NOW
from zai_dash.demo.claude_code import assistant_record, usage, user_record
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, McpService, UsageEvent
from zai_dash.domain.ledger import Counts, Ledger
from zai_dash.sources.base import SourceBatch, SourceContext
from zai_dash.sources.tools.claude_code import ClaudeCodeSource, limit_hit, prompt_text

SESSION = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11"
CWD = "/home/u/proj"
T0 = datetime(2026, 11, 26, 8, 0, 0, tzinfo=timezone.utc)


def iso(offset_s: float = 0.0) -> str:
    """A Claude Code timestamp (`toISOString()`), `offset_s` seconds after T0."""
    t = T0 + timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def user(content: Any, uuid: str, at: float = 0.0, **extra: Any) -> dict[str, Any]:
    rec = user_record(iso(at), content, session=SESSION, cwd=CWD, uuid=uuid)
    rec.update(extra)
    return rec


def assistant(
    mid: str,
    req: str | None,
    at: float = 1.0,
    content: list[dict[str, Any]] | None = None,
    out: int = 10,
    model: str = "glm-4.6",
    **extra: Any,
) -> dict[str, Any]:
    rec = assistant_record(
        iso(at),
        message_id=mid,
        model=model,
        content=content if content is not None else [{"type": "text", "text": "ok"}],
        tokens=usage(100, out, cache_read=1000),
        request_id=req,
        session=SESSION,
        cwd=CWD,
        uuid=f"u-{mid}-{out}",
        parent="p",
        git_branch=None,
    )
    rec.update(extra)
    return rec


def tool_use(use_id: str, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": use_id, "name": name, "input": {"search_query": "backoff jitter"}}


def api_error(text: str, at: float = 5.0) -> dict[str, Any]:
    """An API-error entry as Claude Code writes it when a request fails for good."""
    return {
        "parentUuid": "p", "isSidechain": False, "type": "assistant", "uuid": f"err-{at}", "timestamp": iso(at),
        "error": "rate_limit", "isApiErrorMessage": True, "apiErrorStatus": 429, "cwd": CWD,
        "sessionId": SESSION,
        "message": {"id": f"msg-err-{at}", "model": "<synthetic>", "role": "assistant",
                    "stop_reason": "stop_sequence", "type": "message",
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                    "content": [{"type": "text", "text": text}]},
    }  # fmt: skip


class Claude:
    """A Claude Code config dir in the temp home, written to like Claude Code does."""

    def __init__(self, root: Path, slug: str = "-home-u-proj") -> None:
        self.root = root
        self.project = root / "projects" / slug
        self.project.mkdir(parents=True, exist_ok=True)

    def session_file(self, session: str = SESSION) -> Path:
        return self.project / f"{session}.jsonl"

    def subagent_file(self, agent: str = "a72e8af", session: str = SESSION) -> Path:
        path = self.project / session / "subagents" / f"agent-{agent}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def append(path: Path, *records: dict[str, Any] | bytes, spaced: bool = False) -> None:
        with open(path, "ab") as fh:
            for rec in records:
                if isinstance(rec, bytes):
                    fh.write(rec + b"\n")
                elif spaced:
                    fh.write(json.dumps(rec).encode() + b"\n")
                else:
                    fh.write(orjson.dumps(rec) + b"\n")


@pytest.fixture
def claude(home: Path) -> Claude:
    return Claude(home / ".claude")


@pytest.fixture
def source(ctx: SourceContext) -> ClaudeCodeSource:
    return ClaudeCodeSource(ctx)


class Fed:
    """A source plus a ledger fed with every poll, like the engine does."""

    def __init__(self, source: ClaudeCodeSource) -> None:
        self.source = source
        self.ledger = Ledger()
        self.batches: list[SourceBatch] = []

    def poll(self) -> SourceBatch:
        batch = self.source.poll()
        self.ledger.add_all(batch.events)
        for hit in batch.limit_hits:
            self.ledger.add_limit_hit(hit)
        self.batches.append(batch)
        return batch

    def counts(self) -> Counts:
        return self.ledger.count(T0 - timedelta(days=30), FIXED_NOW + timedelta(days=1), "claude-code")

    def events(self, kind: EventKind | None = None) -> list[UsageEvent]:
        return [e for e in self.ledger.events() if kind is None or e.kind is kind]


@pytest.fixture
def fed(source: ClaudeCodeSource) -> Fed:
    return Fed(source)


# -- the reference example ---------------------------------------------------------------------------

REFERENCE_LINES = [
    user("add exponential backoff to getJson()", "a1"),
    assistant("msg_20251021160103a1b2c3d4e5f6", "req_011CUL8x2Hk9", 3.0,
              [tool_use("call_7d1e", "mcp__web-search-prime__webSearchPrime")], out=88),
    user([{"tool_use_id": "call_7d1e", "type": "tool_result", "content": [{"type": "text", "text": "[]"}]}],
         "c3", 5.0, toolUseResult=[{"type": "text", "text": "[]"}]),
]  # fmt: skip


@pytest.mark.parametrize("spaced", [False, True], ids=["compact", "spaced"])
def test_reference_example_counts_one_prompt_one_call_one_search(claude: Claude, fed: Fed, spaced: bool) -> None:
    Claude.append(claude.session_file(), *REFERENCE_LINES, spaced=spaced)
    fed.poll()
    c = fed.counts()
    assert (c.prompts, c.calls, c.mcp_by_service["search"]) == (1, 1, 1)
    call = fed.events(EventKind.CALL)[0]
    assert call.key == "msg_20251021160103a1b2c3d4e5f6:req_011CUL8x2Hk9"
    assert call.model == "glm-4.6" and call.role is CallRole.MAIN and call.session == SESSION
    assert call.tokens == 100 + 1000 + 88 and call.input_tokens == 1100 and call.output_tokens == 88
    assert call.cached_tokens == 1000  # cache_read_input_tokens: part of input_tokens, priced apart
    assert fed.source.skips.lines == 0


def test_discovered_by_the_package(ctx: SourceContext) -> None:
    # Checked without importing the other adapters, so this test does not depend on them.
    import pkgutil

    from zai_dash.sources import tools
    from zai_dash.sources.tools import claude_code

    assert "claude_code" in {m.name for m in pkgutil.iter_modules(tools.__path__)}
    (source,) = claude_code.create_sources(ctx)
    assert isinstance(source, ClaudeCodeSource) and source.name == "claude-code"


# -- prompt rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    ["fix the flaky test", [{"type": "text", "text": "fix it"}, {"type": "image", "source": {}}]],
    ids=["string", "text-block"],
)
def test_human_text_is_a_prompt(claude: Claude, fed: Fed, content: Any) -> None:
    Claude.append(claude.session_file(), user(content, "u1"))
    fed.poll()
    assert [e.key for e in fed.events(EventKind.PROMPT)] == ["prompt:u1"]


NOT_PROMPTS: dict[str, dict[str, Any]] = {
    "sidechain": user("do the sub-task", "x", isSidechain=True, agentId="a1"),
    "meta": user("Caveat: The messages below were generated by the user", "x", isMeta=True),
    "tool-use-result": user("ran", "x", toolUseResult={"stdout": "ok"}),
    "tool-result-block": user([{"type": "text", "text": "also"},
                               {"type": "tool_result", "tool_use_id": "t", "content": "x"}], "x"),
    "no-text-block": user([{"type": "image", "source": {"type": "base64", "data": ""}}], "x"),
    "compaction-prefix": user("This session is being continued from a previous conversation that ran out of "
                              "context. Summary: …", "x"),
    "compact-summary-flag": user("Summary of the earlier work", "x", isCompactSummary=True),
    "local-command-stdout": user("<local-command-stdout>Set model to glm-4.6</local-command-stdout>", "x"),
    "local-command-stderr": user("<local-command-stderr>oops</local-command-stderr>", "x"),
    "command-name": user("<command-name>/model</command-name>\n<command-message>model</command-message>"
                         "\n<command-args></command-args>", "x"),
    "command-message": user("<command-message>init is analyzing</command-message>\n"
                            "<command-name>/init</command-name>", "x"),
    "bash-input": user("<bash-input>ls</bash-input>", "x"),
    "bash-stdout": user("<bash-stdout>a.txt</bash-stdout><bash-stderr></bash-stderr>", "x"),
    "bash-stderr": user("<bash-stderr>no such file</bash-stderr>", "x"),
    "interrupted": user([{"type": "text", "text": "[Request interrupted by user for tool use]"}], "x"),
    "task-notification": user("<task-notification><task-id>b1</task-id></task-notification>", "x"),
    "warmup": user([{"type": "text", "text": "Warmup"}], "x"),
    "empty": user("   ", "x"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(NOT_PROMPTS))
def test_not_a_prompt(claude: Claude, fed: Fed, name: str) -> None:
    Claude.append(claude.session_file(), NOT_PROMPTS[name], user("a real one", "real", 9.0))
    fed.poll()
    assert [e.key for e in fed.events(EventKind.PROMPT)] == ["prompt:real"]
    assert fed.source.skips.lines == 0


def test_user_line_in_a_subagent_file_is_not_a_prompt(claude: Claude, fed: Fed) -> None:
    # Older sub-agent files did not always mark lines as sidechain: the file itself says so.
    Claude.append(claude.subagent_file(), user("explore the repo", "s1"))
    Claude.append(claude.project / "agent-0ld.jsonl", user("explore more", "s2"))
    fed.poll()
    assert fed.events(EventKind.PROMPT) == []


def test_queue_operations(claude: Claude, fed: Fed) -> None:
    base = {"sessionId": SESSION, "timestamp": iso(2)}
    Claude.append(
        claude.session_file(),
        {"type": "queue-operation", "operation": "enqueue", "content": "and add tests", **base},
        {"type": "queue-operation", "operation": "dequeue", **base},
        {"type": "queue-operation", "operation": "popAll", "content": "and add tests", **base},
        user("and add tests", "q1", 3.0),  # the dequeued copy: the one that counts
        {"type": "queue-operation", "operation": "remove", "content": "use the user's timezone",
         "sessionId": SESSION, "timestamp": iso(4)},
    )  # fmt: skip
    fed.poll()
    assert sorted(e.key for e in fed.events(EventKind.PROMPT)) == [
        "prompt:q1",
        f"steer:{SESSION}:{T0 + timedelta(seconds=4):%Y-%m-%dT%H:%M:%S}+00:00",
    ]
    assert fed.source.skips.lines == 0


def test_prompt_without_uuid_keys_on_session_and_time(claude: Claude, fed: Fed) -> None:
    rec = user("hello", "x")
    del rec["uuid"]
    Claude.append(claude.session_file(), rec)
    fed.poll()
    assert [e.key for e in fed.events(EventKind.PROMPT)] == [f"prompt:{SESSION}:{T0.isoformat()}"]


def test_prompt_text_helper() -> None:
    assert prompt_text("  hi  ") == "hi"
    assert prompt_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "a\nb"
    assert prompt_text(["not a block", {"type": "text", "text": "x"}]) == "x"


# -- model calls and dedup ---------------------------------------------------------------------------


def test_streaming_repeats_are_one_call_with_the_largest_usage(claude: Claude, fed: Fed) -> None:
    # One line per content block: thinking, text, tool_use; output_tokens grows.
    Claude.append(
        claude.session_file(),
        assistant("msg_1", "req_1", 1.0, [{"type": "thinking", "thinking": "hmm"}], out=5),
        assistant("msg_1", "req_1", 1.5, [{"type": "text", "text": "Let me look."}], out=40),
        assistant("msg_1", "req_1", 2.0, [tool_use("toolu_1", "Read")], out=90),
        assistant("msg_1", "req_1", 2.1, [{"type": "text", "text": "again"}], out=60),
    )
    fed.poll()
    calls = fed.events(EventKind.CALL)
    assert len(calls) == 1 and calls[0].output_tokens == 90 and calls[0].tokens == 1190


def test_call_without_request_id_keys_on_message_id(claude: Claude, fed: Fed) -> None:
    Claude.append(claude.session_file(), assistant("msg_1", None, out=5), assistant("msg_1", None, out=7))
    fed.poll()
    assert [(e.key, e.output_tokens) for e in fed.events(EventKind.CALL)] == [("msg_1", 7)]


def test_two_requests_with_one_message_id_in_the_main_chain_are_two_calls(claude: Claude, fed: Fed) -> None:
    Claude.append(claude.session_file(), assistant("msg_1", "req_a"), assistant("msg_1", "req_b", 3.0),
                  assistant("msg_1", "req_b", 3.5, out=20))  # fmt: skip
    fed.poll()
    assert sorted((e.key, e.output_tokens) for e in fed.events(EventKind.CALL)) == [
        ("msg_1:req_a", 10),
        ("msg_1:req_b", 20),
    ]


def test_btw_sidechain_replay_is_not_counted_twice(claude: Claude, fed: Fed) -> None:
    Claude.append(claude.session_file(), user("refactor", "u1"), assistant("msg_parent", "req_a", 2.0))
    # The /btw side conversation replays the parent message with a new request id, then answers.
    Claude.append(
        claude.session_file(),
        assistant("msg_parent", "req_btw", 30.0, isSidechain=True),
        assistant("msg_btw_answer", "req_btw2", 31.0, isSidechain=True),
    )
    fed.poll()
    calls = {e.key: e.role for e in fed.events(EventKind.CALL)}
    assert calls == {"msg_parent:req_a": CallRole.MAIN, "msg_btw_answer:req_btw2": CallRole.SUBAGENT}


def test_replay_read_before_its_parent_still_counts_once(claude: Claude, fed: Fed) -> None:
    # Files are read in path order; a replay in a sub-agent file can arrive first across polls.
    Claude.append(claude.subagent_file(), assistant("msg_parent", "req_btw", 30.0, isSidechain=True))
    fed.poll()
    Claude.append(claude.session_file(), assistant("msg_parent", "req_a", 2.0, out=12))
    fed.poll()
    calls = fed.events(EventKind.CALL)
    assert len(calls) == 1 and calls[0].output_tokens == 12


def test_subagent_files_are_subagent_calls(claude: Claude, fed: Fed) -> None:
    Claude.append(claude.session_file(), assistant("msg_main", "r1"))
    Claude.append(claude.subagent_file(), user([{"type": "text", "text": "Warmup"}], "w", isSidechain=True),
                  assistant("msg_sub", "r2", model="glm-4.5-air"))  # fmt: skip
    Claude.append(claude.project / "agent-0ld.jsonl", assistant("msg_old", "r3"))
    fed.poll()
    c = fed.counts()
    assert c.calls_by_role == {"main": 1, "subagent": 2, "auxiliary": 0} and c.prompts == 0
    sub = next(e for e in fed.events(EventKind.CALL) if e.key == "msg_sub:r2")
    assert sub.model == "glm-4.5-air" and sub.session == SESSION


@pytest.mark.parametrize(
    "rec",
    [
        api_error("API Error: 529 Overloaded"),
        assistant("msg_x", "r", model="<synthetic>", content=[{"type": "text", "text": "No response requested."}]),
        assistant("msg_y", "r", isApiErrorMessage=True),
    ],
    ids=["api-error", "synthetic", "flagged"],
)
def test_error_placeholders_are_not_calls(claude: Claude, fed: Fed, rec: dict[str, Any]) -> None:
    Claude.append(claude.session_file(), rec, assistant("msg_ok", "r_ok", 9.0))
    fed.poll()
    assert [e.key for e in fed.events(EventKind.CALL)] == ["msg_ok:r_ok"]


def test_model_id_is_normalised(claude: Claude, fed: Fed) -> None:
    Claude.append(claude.session_file(), assistant("m1", "r1", model="GLM-4.6"))
    fed.poll()
    assert fed.events(EventKind.CALL)[0].model == "glm-4.6"


# -- MCP ---------------------------------------------------------------------------------------------


def test_mcp_calls_by_service_with_aliases(home: Path, claude: Claude, fed: Fed, tmp_path: Path) -> None:
    proj = tmp_path / "work" / "proj"
    proj.mkdir(parents=True)
    (home / ".claude.json").write_text(json.dumps({
        "oauthAccount": {"emailAddress": "u@example.com"},
        "mcpServers": {
            "my search": {"type": "http", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp",
                          "headers": {"Authorization": "Bearer SECRET-HEADER"}},
            "vis": {"type": "stdio", "command": "npx", "args": ["-y", "@z_ai/mcp-server"],
                    "env": {"Z_AI_API_KEY": "SECRET-ENV"}},
            "github": {"type": "http", "url": "https://api.githubcopilot.com/mcp/"},
        },
        "projects": {"/elsewhere": {"mcpServers": {"repo-reader": {"url": "https://api.z.ai/api/mcp/zread/mcp"}}}},
    }))  # fmt: skip
    (proj / ".mcp.json").write_text(json.dumps({"mcpServers": {"pages": {
        "type": "http", "url": "https://open.bigmodel.cn/api/mcp/web_reader/mcp"}}}))  # fmt: skip
    calls = [
        tool_use("t1", "mcp__my_search__search"),  # URL alias under a custom name (space → _)
        tool_use("t2", "mcp__web-search-prime__webSearchPrime"),  # default name, no alias needed
        tool_use("t3", "mcp__vis__analyze_image"),  # vision by package
        tool_use("t4", "mcp__repo-reader__get_repo_structure"),  # zread, local-scope alias
        tool_use("t5", "mcp__pages__webReader"),  # reader, from the project's .mcp.json
        tool_use("t6", "mcp__github__search_code"),  # not Z.ai
        tool_use("t7", "Bash"),
    ]
    Claude.append(claude.session_file(), *[assistant(f"m{i}", f"r{i}", i + 1.0, [c], cwd=str(proj))
                                          for i, c in enumerate(calls)])  # fmt: skip
    # The same tool_use repeated on a later streamed line of the same message: one call.
    Claude.append(claude.session_file(), assistant("m0", "r0", 1.2, [calls[0]], out=30, cwd=str(proj)))
    fed.poll()
    by_key = {e.key: e.service for e in fed.events(EventKind.MCP)}
    assert by_key == {
        "mcp:t1": McpService.SEARCH,
        "mcp:t2": McpService.SEARCH,
        "mcp:t3": McpService.VISION,
        "mcp:t4": McpService.ZREAD,
        "mcp:t5": McpService.READER,
    }
    kept = repr([c.value for c in fed.source._mcp._files]) + repr(fed.source._mcp._projects[str(proj)].value)
    assert "SECRET" not in kept and "example.com" not in kept


def test_mcp_call_read_from_odd_content(claude: Claude, fed: Fed) -> None:
    # A name spelt with an escape, and a content list with something other than blocks in it.
    escaped = orjson.dumps(assistant("m1", "r1", 1.0, [tool_use("t1", "mcp__zread__search_doc")]))
    Claude.append(
        claude.session_file(),
        escaped.replace(b'"mcp__zread', b'"\\u006dcp__zread'),
        assistant("m2", "r2", 2.0, ["text", 7, tool_use("t2", "mcp__web-search-prime__webSearchPrime")]),
    )
    fed.poll()
    assert {e.key: e.service for e in fed.events(EventKind.MCP)} == {
        "mcp:t1": McpService.ZREAD,
        "mcp:t2": McpService.SEARCH,
    }
    assert {e.key for e in fed.events(EventKind.CALL)} == {"m1:r1", "m2:r2"}


def test_mcp_alias_added_later_applies_on_next_poll(home: Path, claude: Claude, fed: Fed) -> None:
    Claude.append(claude.session_file(), assistant("m1", "r1", 1.0, [tool_use("t1", "mcp__custom__search")]))
    fed.poll()
    assert fed.events(EventKind.MCP) == []
    (home / ".claude.json").write_text(json.dumps({"mcpServers": {"custom": {
        "url": "https://api.z.ai/api/mcp/web_search_prime/mcp"}}}))  # fmt: skip
    Claude.append(claude.session_file(), assistant("m2", "r2", 2.0, [tool_use("t2", "mcp__custom__search")]))
    fed.poll()
    assert [e.key for e in fed.events(EventKind.MCP)] == ["mcp:t2"]


def test_mcp_in_a_subagent_counts(claude: Claude, fed: Fed) -> None:
    Claude.append(claude.subagent_file(), assistant("m1", "r1", 1.0, [tool_use("t1", "mcp__zread__search_doc")],
                                                    isSidechain=True))  # fmt: skip
    fed.poll()
    assert [e.service for e in fed.events(EventKind.MCP)] == [McpService.ZREAD]


# -- configured model and endpoint -------------------------------------------------------------------


def write_settings(root: Path, doc: dict[str, Any], name: str = "settings.json") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("doc", "model", "detail"),
    [
        ({"env": {"ANTHROPIC_MODEL": "GLM-4.6", "ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.5"}, "model": "opus"},
         "glm-4.6", "~/.claude/settings.json env.ANTHROPIC_MODEL"),
        ({"env": {"ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.6", "ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.5",
                  "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air"}},
         "glm-4.6", "~/.claude/settings.json env.ANTHROPIC_DEFAULT_OPUS_MODEL"),
        # Seen in 2.1: with only the sonnet remap set, the client still sends its opus-class default.
        ({"env": {"ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.5"}},
         "opus", "Claude Code's default (opus); ANTHROPIC_DEFAULT_OPUS_MODEL not set"),
        ({"env": {"ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.6", "ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air"}},
         "glm-4.6", "~/.claude/settings.json env.ANTHROPIC_DEFAULT_OPUS_MODEL"),
        ({"env": {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "glm-4.5-air"}, "model": "haiku"},
         "glm-4.5-air", "~/.claude/settings.json env.ANTHROPIC_DEFAULT_HAIKU_MODEL"),
        ({"env": {"ANTHROPIC_DEFAULT_SONNET_MODEL": "glm-4.5", "ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-5.3[1m]"},
          "model": "opus"}, "glm-5.3", "~/.claude/settings.json env.ANTHROPIC_DEFAULT_OPUS_MODEL"),
        ({"model": "sonnet"}, "sonnet", "~/.claude/settings.json model; ANTHROPIC_DEFAULT_SONNET_MODEL not set"),
        ({"model": "glm-4.7"}, "glm-4.7", "~/.claude/settings.json model"),
        ({}, None, None),
    ],
    ids=["anthropic-model", "all-remaps", "only-sonnet", "opus-default", "haiku-alias", "alias-remap", "top-level",
         "full-id", "none"],
)  # fmt: skip
def test_configured_model(home: Path, ctx: SourceContext, doc: dict[str, Any], model: str | None,
                          detail: str | None) -> None:  # fmt: skip
    write_settings(home / ".claude", doc)
    info = ClaudeCodeSource(ctx).configs()["claude-code"]
    assert (info.model, info.model_detail) == (model, detail)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://api.z.ai/api/anthropic", EndpointKind.CODING),
        ("https://open.bigmodel.cn/api/anthropic", EndpointKind.CODING),
        ("https://api.z.ai/api/coding/paas/v4", EndpointKind.CODING),
        ("https://api.z.ai/api/paas/v4", EndpointKind.PAYG),
        ("http://localhost:4000", EndpointKind.OTHER),
    ],
)
def test_base_url_is_classified_and_the_token_never_kept(home: Path, ctx: SourceContext, url: str,
                                                         kind: EndpointKind) -> None:  # fmt: skip
    write_settings(home / ".claude", {"env": {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_AUTH_TOKEN": "SECRET-TOKEN",
                                               "API_TIMEOUT_MS": "3000000"}})  # fmt: skip
    source = ClaudeCodeSource(ctx)
    info = source.configs()["claude-code"]
    assert info.endpoint is kind and info.base_url == url.rstrip("/")
    assert "SECRET" not in repr([f.value for f in source._settings._files]) and "SECRET" not in repr(info)


def test_base_url_credentials_are_dropped(home: Path, ctx: SourceContext) -> None:
    write_settings(home / ".claude", {"env": {"ANTHROPIC_BASE_URL": "https://me:pw@api.z.ai/api/anthropic?key=k"}})
    info = ClaudeCodeSource(ctx).configs()["claude-code"]
    assert info.base_url == "https://api.z.ai/api/anthropic" and info.endpoint is EndpointKind.CODING


def test_settings_local_overrides_settings(home: Path, ctx: SourceContext) -> None:
    write_settings(home / ".claude", {"env": {"ANTHROPIC_MODEL": "glm-4.5", "ANTHROPIC_BASE_URL":
                                              "https://api.z.ai/api/paas/v4"}})  # fmt: skip
    write_settings(home / ".claude", {"env": {"ANTHROPIC_MODEL": "glm-4.6"}}, "settings.local.json")
    info = ClaudeCodeSource(ctx).configs()["claude-code"]
    assert info.model == "glm-4.6" and info.model_detail == "~/.claude/settings.local.json env.ANTHROPIC_MODEL"
    assert info.endpoint is EndpointKind.PAYG  # not set locally: the shared file still answers


def test_broken_settings_are_counted_not_raised(home: Path, ctx: SourceContext) -> None:
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text('{"env": {"ANTHROPIC_MODEL": "glm-4.6"')
    source = ClaudeCodeSource(ctx)
    assert source.configs()["claude-code"].model is None
    source.configs()
    assert source.skips.counts["malformed JSON in config file"] == 1  # counted once, not per read


def test_settings_reread_only_when_the_file_changes(home: Path, ctx: SourceContext) -> None:
    path = write_settings(home / ".claude", {"env": {"ANTHROPIC_MODEL": "glm-4.6"}})
    source = ClaudeCodeSource(ctx)
    assert source.configs()["claude-code"].model == "glm-4.6"
    st = path.stat()
    # Same size, same inode, same mtime: not re-read (proof that the cache is used).
    with open(path, "r+b") as fh:
        fh.write(path.read_bytes().replace(b"4.6", b"4.7"))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert source.configs()["claude-code"].model == "glm-4.6"
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert source.configs()["claude-code"].model == "glm-4.7"


def test_model_from_log_and_from_config_both_available(home: Path, claude: Claude, fed: Fed) -> None:
    write_settings(home / ".claude", {"env": {"ANTHROPIC_DEFAULT_OPUS_MODEL": "glm-4.6"}})
    Claude.append(claude.session_file(), assistant("m1", "r1", 1.0, model="glm-4.5-air"),
                  assistant("m2", "r2", 2.0, model="glm-4.6"))  # fmt: skip
    fed.poll()
    assert fed.ledger.activity("claude-code", FIXED_NOW).model == "glm-4.6"
    assert fed.source.configs()["claude-code"].model == "glm-4.6"


# -- limit hits --------------------------------------------------------------------------------------

LIMIT_TEXTS = {
    "json-envelope": (
        'API Error: 429 {"error":{"code":"1308","message":"Usage limit reached for 5 hour. Your limit will '
        'reset at 2026-11-26 17:38:28"}}', 1308, "2026-11-26T09:38:28+00:00"),
    "anthropic-envelope": (
        'API Error: 429 {"type":"error","error":{"type":"1308","message":"Usage limit reached for 5 hour. '
        'Your limit will reset at 2026-11-26 17:38:28"},"request_id":"20261126160002e1308aa"}', 1308,
        "2026-11-26T09:38:28+00:00"),
    "bracket": (
        "API Error: Request rejected (429) · [1308][Usage limit reached for 5 hour. Your limit will reset at "
        "2026-11-26 17:38:28][20261126160002e5c]", 1308, "2026-11-26T09:38:28+00:00"),
    "chinese": (
        'API Error: 429 {"error":{"code":"1308","message":"已达到 5 小时的使用上限。您的限额将在 2026-11-26 '
        '17:38:28 重置。"}}', 1308, "2026-11-26T09:38:28+00:00"),
    "weekly": (
        'API Error: 429 {"error":{"code":"1310","message":"Weekly/Monthly Limit Exhausted. Your limit will reset '
        'at 2026-11-30 00:00:00"}}', 1310, "2026-11-29T16:00:00+00:00"),
    "code-only": ('API Error: 429 {"error":{"code":1316,"message":"limit reached"}}', 1316, None),
    "text-only": ("Usage limit reached for 5 hour. Your limit will reset at 2026-11-26 17:38:28", None,
                  "2026-11-26T09:38:28+00:00"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(LIMIT_TEXTS))
def test_limit_hits_from_api_errors(claude: Claude, fed: Fed, name: str) -> None:
    text, code, reset = LIMIT_TEXTS[name]
    Claude.append(claude.session_file(), api_error(text, 5.0))
    batch = fed.poll()
    assert len(batch.limit_hits) == 1 and batch.events == []
    hit = batch.limit_hits[0]
    assert hit.code == code and hit.tool == "claude-code" and hit.ts == T0 + timedelta(seconds=5)
    assert (hit.reset_at.isoformat() if hit.reset_at else None) == reset


@pytest.mark.parametrize(
    "text",
    [
        "API Error: 529 Overloaded",
        'API Error: 429 {"error":{"code":"1302","message":"High concurrency usage of this API"}}',
        "API Error: 500 request_id 20261126130812 failed",  # bare digits in an id are not a code
        "You've hit your session limit · resets 10:30pm (Europe/Kyiv)",  # Anthropic's, not Z.ai's
    ],
)
def test_other_api_errors_are_not_limit_hits(text: str) -> None:
    assert limit_hit(text, T0) is None


def test_limit_hit_from_escaped_json_text() -> None:
    hit = limit_hit('API Error: 429 "{\\"error\\":{\\"code\\":\\"1308\\",\\"message\\":\\"x\\"}}"', T0)
    assert hit is not None and hit.code == 1308


# -- roots, discovery and tailing --------------------------------------------------------------------


def test_claude_config_dir_comma_list_replaces_the_defaults(home: Path, tmp_path: Path) -> None:
    a, b = Claude(tmp_path / "cfg-a"), Claude(tmp_path / "cfg-b", slug="-srv-x")
    Claude.append(a.session_file(), user("one", "p1"))
    Claude.append(b.session_file("s2"), user("two", "p2"))
    Claude.append(Claude(home / ".claude").session_file("s3"), user("ignored", "p3"))
    env = {"CLAUDE_CONFIG_DIR": f"{a.root}, {b.root}"}
    fed = Fed(ClaudeCodeSource(SourceContext(home=home, env=env, clock=lambda: FIXED_NOW)))
    fed.poll()
    assert sorted(e.key for e in fed.events(EventKind.PROMPT)) == ["prompt:p1", "prompt:p2"]
    assert [r.path for r in fed.source.roots()] == [a.root / "projects", b.root / "projects"]


def test_default_roots_xdg_and_home(home: Path, ctx: SourceContext) -> None:
    Claude.append(Claude(home / ".config" / "claude").session_file("s1"), user("xdg", "p1"))
    Claude.append(Claude(home / ".claude").session_file("s2"), user("home", "p2"))
    fed = Fed(ClaudeCodeSource(ctx))
    fed.poll()
    assert sorted(e.key for e in fed.events(EventKind.PROMPT)) == ["prompt:p1", "prompt:p2"]
    assert fed.source.file_count() == 2
    assert all(r.exists for r in fed.source.roots())


def test_symlinked_roots_are_read_once(home: Path, ctx: SourceContext) -> None:
    Claude.append(Claude(home / ".claude").session_file(), user("hi", "p1"))
    (home / ".config").mkdir()
    (home / ".config" / "claude").symlink_to(home / ".claude")
    source = ClaudeCodeSource(ctx)
    assert len(source.poll().events) == 1 and source.file_count() == 1


def test_extra_roots(home: Path, tmp_path: Path) -> None:
    extra = Claude(tmp_path / "backup")
    Claude.append(extra.session_file(), user("from backup", "p1"))
    ctx = SourceContext(home=home, env={}, clock=lambda: FIXED_NOW,
                        extra_roots={"claude-code": (extra.root / "projects",)})  # fmt: skip
    assert [e.key for e in ClaudeCodeSource(ctx).poll().events] == ["prompt:p1"]


def test_new_project_dir_and_files_between_polls(home: Path, fed: Fed) -> None:
    assert fed.poll().events == []
    later = Claude(home / ".claude", slug="-home-u-other")
    Claude.append(later.session_file("s9"), user("new project", "p9"))
    Claude.append(later.subagent_file("b1", "s9"), assistant("m9", "r9"))
    fed.poll()
    assert {e.key for e in fed.events()} == {"prompt:p9", "m9:r9"}


def test_partial_last_line_is_counted_once_when_completed(claude: Claude, fed: Fed) -> None:
    line = orjson.dumps(user("finish me", "p1"))
    path = claude.session_file()
    path.write_bytes(line[:40])
    assert fed.poll().events == []
    with open(path, "ab") as fh:
        fh.write(line[40:] + b"\n")
    assert [e.key for e in fed.poll().events] == ["prompt:p1"]
    assert fed.poll().events == [] and fed.source.skips.lines == 0


def test_truncation_and_replacement_do_not_double_count(claude: Claude, fed: Fed) -> None:
    path = claude.session_file()
    Claude.append(path, user("one", "p1"), assistant("m1", "r1"))
    fed.poll()
    path.write_bytes(b"")  # truncated, then rewritten with the same history plus one more line
    Claude.append(path, user("one", "p1"), assistant("m1", "r1"), user("two", "p2", 9.0))
    fed.poll()
    replacement = path.with_suffix(".tmp")
    Claude.append(replacement, user("one", "p1"), assistant("m1", "r1"), user("two", "p2", 9.0),
                  assistant("m2", "r2", 10.0))  # fmt: skip
    os.replace(replacement, path)  # a new inode
    fed.poll()
    c = fed.counts()
    assert (c.prompts, c.calls) == (2, 2)


def test_deleted_file_drops_out_without_error(claude: Claude, fed: Fed) -> None:
    path = claude.session_file()
    Claude.append(path, user("one", "p1"))
    fed.poll()
    path.unlink()
    assert fed.poll().events == [] and fed.source.file_count() == 0
    assert fed.source.skips.lines == 0 and fed.counts().prompts == 1  # usage is not refunded


def test_since_skips_old_records_and_old_files(home: Path, claude: Claude) -> None:
    since = T0 + timedelta(seconds=100)
    old_file = Claude(home / ".claude", slug="-old").session_file("old")
    Claude.append(old_file, user("ancient", "p0"))
    os.utime(old_file, (since.timestamp() - 3600, since.timestamp() - 3600))
    spaced_old = user("spaced old", "p2", 50.0)
    Claude.append(claude.session_file(), user("old", "p1", 10.0), assistant("m1", "r1", 20.0),
                  user("new", "p3", 200.0), assistant("m3", "r3", 210.0))  # fmt: skip
    Claude.append(claude.session_file(), spaced_old, spaced=True)  # goes through the full parse
    ctx = SourceContext(home=home, env={}, since=since, clock=lambda: FIXED_NOW)
    source = ClaudeCodeSource(ctx)
    assert sorted(e.key for e in source.poll().events) == ["m3:r3", "prompt:p3"]
    assert source.file_count() == 1 and source.skips.lines == 0


def test_early_since_skip_only_trusts_the_top_level_timestamp(home: Path, claude: Claude) -> None:
    since = T0 + timedelta(seconds=100)
    # A new record whose last "timestamp" key is nested (not the line's last key) is not skipped early.
    rec = assistant("m1", "r1", 200.0)
    rec = {"timestamp": rec.pop("timestamp"), **rec}
    rec["message"]["content"] = [{"type": "tool_use", "id": "t", "name": "X",
                                  "input": {"timestamp": "2020-01-01T00:00:00.000Z"}}]  # fmt: skip
    rec["toolUseResult"] = None
    Claude.append(claude.session_file(), rec)
    ctx = SourceContext(home=home, env={}, since=since, clock=lambda: FIXED_NOW)
    assert [e.key for e in ClaudeCodeSource(ctx).poll().events] == ["m1:r1"]


# -- bad input ---------------------------------------------------------------------------------------


def _valid_after(claude: Claude, fed: Fed, *bad: dict[str, Any] | bytes) -> None:
    Claude.append(claude.session_file(), *bad, user("still counts", "after", 60.0),
                  assistant("m_after", "r_after", 61.0))  # fmt: skip
    fed.poll()
    assert {e.key for e in fed.events()} == {"prompt:after", "m_after:r_after"}


def _without(rec: dict[str, Any], *path: str) -> dict[str, Any]:
    node = rec
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return rec


def _set(rec: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = rec
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return rec


BAD_LINES: dict[str, tuple[dict[str, Any] | bytes, str]] = {
    "malformed-json": (b'{"type":"user","message":{"content":"torn', "malformed JSON"),
    "garbage": (b"\x00\x01 not json at all", "malformed JSON"),
    "non-utf8": (b'{"type":"user","message":{"content":"caf\xe9"},"uuid":"x","timestamp":"2026-11-26T08:00:00Z"}',
                 "not UTF-8"),
    "not-object": (b'["user", "assistant"]', "not a JSON object"),
    # Bytes a decoder that skips what it does not read would pass: the line is still judged whole.
    "non-utf8-in-a-skipped-field": (
        orjson.dumps(assistant("m", "r")).replace(b'"version":"2.0.14"', b'"version":"caf\xe9"'), "not UTF-8"),
    "nested-too-deep": (orjson.dumps(user("x", "x"))[:-1] + b',"deep":' + b"[" * 2000 + b"]" * 2000 + b"}",
                        "malformed JSON"),
    "missing-type": ({"message": {"role": "user", "content": "hi"}, "timestamp": iso()},
                     "record type missing or not a string"),
    "type-not-string": ({"type": 7, "message": {"role": "assistant"}}, "record type missing or not a string"),
    "user-no-message": (_without(user("x", "x"), "message"), "user record without a message object"),
    "content-wrong-type": (user(42, "x"), "message.content missing or of the wrong type"),
    "assistant-message-string": ({**assistant("m", "r"), "message": "assistant"},
                                 "assistant record without a message object"),
    "usage-wrong-type": (_set(assistant("m", "r"), ("message", "usage"), [1, 2]), "message.usage not an object"),
    "missing-message-id": (_without(assistant("m", "r"), "message", "id"), "assistant usage without message.id"),
    "missing-timestamp": (_without(user("x", "x"), "timestamp"), "timestamp missing or not a string"),
    "timestamp-wrong-type": ({**user("x", "x"), "timestamp": 1764144000}, "timestamp missing or not a string"),
    "timestamp-garbage": ({**user("x", "x"), "timestamp": "yesterday"}, "timestamp not ISO 8601"),
    "no-zone": ({**user("x", "x"), "timestamp": "2026-11-26T08:00:00.000"}, "timestamp without timezone"),
    "far-future": ({**assistant("m", "r"), "timestamp": "2031-01-01T00:00:00.000Z"},
                   "timestamp far in the future"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD_LINES))
def test_bad_line_is_skipped_counted_and_later_lines_count(claude: Claude, fed: Fed, name: str) -> None:
    bad, reason = BAD_LINES[name]
    _valid_after(claude, fed, bad)
    assert fed.source.skips.counts == {reason: 1}
    assert fed.source.skips.first[reason] == f"{claude.session_file()}:1"


def test_a_number_beyond_a_double_in_a_field_not_read_costs_nothing(claude: Claude, fed: Fed) -> None:
    # Valid JSON (RFC 8259 sets no range); only a field the rules read must hold a number a double can.
    line = orjson.dumps(assistant("m", "r")).replace(b'"version":"2.0.14"', b'"version":1e999')
    assert b"1e999" in line
    _valid_after(claude, fed)
    Claude.append(claude.session_file(), line)
    fed.poll()
    assert "m:r" in {e.key for e in fed.events()}
    assert fed.source.skips.lines == 0


def test_legit_non_event_records_are_not_skips(claude: Claude, fed: Fed) -> None:
    _valid_after(
        claude, fed,
        {"type": "summary", "summary": "Backoff for getJson", "leafUuid": "a1"},
        {"type": "file-history-snapshot", "messageId": "m", "snapshot": {"trackedFileBackups": {}}},
        {"type": "progress", "data": {"type": "agent_progress", "message": {"type": "assistant"}}, "timestamp": iso()},
        {"type": "system", "subtype": "turn_duration", "durationMs": 5000, "timestamp": iso()},
        {"type": "attachment", "attachment": {"type": "queued_command", "prompt": "x"}, "timestamp": iso(),
         "userType": "external"},
        {"type": "last-prompt", "lastPrompt": "hi", "sessionId": SESSION},
        {"type": "user-v9", "message": {"role": "user"}, "timestamp": iso()},  # a later client's new type
        b"",
    )  # fmt: skip
    assert fed.source.skips.lines == 0


def test_twenty_megabyte_line_is_skipped(claude: Claude, fed: Fed) -> None:
    huge = user("x" * (20 * 1024 * 1024), "huge")
    _valid_after(claude, fed, huge)
    assert fed.source.skips.counts == {"line longer than 8 MiB": 1}


def test_directory_where_a_file_was_expected(claude: Claude, fed: Fed) -> None:
    (claude.project / "broken.jsonl").mkdir()
    (claude.project / SESSION / "subagents" / "agent-dir.jsonl").mkdir(parents=True)
    _valid_after(claude, fed)
    fed.poll()  # counted once, not on every poll
    assert fed.source.skips.counts == {"a directory where a file was expected": 2}
    assert fed.source.skips.files == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads chmod 000 files; covered by the directory case")
def test_unreadable_file(claude: Claude, fed: Fed) -> None:
    locked = claude.project / "locked.jsonl"
    Claude.append(locked, user("secret", "nope"))
    locked.chmod(0)
    try:
        _valid_after(claude, fed)
        fed.poll()
        assert fed.source.skips.files == 1
    finally:
        locked.chmod(0o600)


def test_health_reports_files_and_skips(claude: Claude, fed: Fed) -> None:
    _valid_after(claude, fed, b"{torn")
    (h,) = fed.source.health()
    assert h.status == "ok" and h.files == 1 and h.skipped == {"malformed JSON": 1} and h.tool == "claude-code"


def test_absent_when_nothing_installed(ctx: SourceContext) -> None:
    source = ClaudeCodeSource(ctx)
    assert source.poll().events == []
    assert source.health()[0].status == "absent"


# -- the benchmark generator agrees with the reader --------------------------------------------------


def _load_generator() -> Any:
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "bench" / "gen_claude.py"
    spec = importlib.util.spec_from_file_location("gen_claude", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules[spec.name]


def test_generated_history_reads_back_to_the_generator_counts(tmp_path: Path) -> None:
    gen = _load_generator()
    start = datetime(2026, 11, 20, tzinfo=timezone.utc)
    stats = gen.generate(tmp_path / "a", 3 * 1024 * 1024, 3, seed=5, start=start)
    assert stats.bytes >= 3 * 1024 * 1024 and stats.calls_subagent > 0 and sum(stats.mcp.values()) > 0
    fed = Fed(ClaudeCodeSource(SourceContext(home=tmp_path / "a", env={}, clock=lambda: FIXED_NOW)))
    fed.poll()
    c = fed.counts()
    assert c.prompts == stats.prompts
    assert c.calls_by_role == {"main": stats.calls_main, "subagent": stats.calls_subagent, "auxiliary": 0}
    assert c.mcp_by_service == stats.mcp
    assert fed.source.skips.lines == 0 and fed.source.file_count() == stats.files
    # Same seed and start: byte-identical files.
    gen.generate(tmp_path / "b", 3 * 1024 * 1024, 3, seed=5, start=start)
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.jsonl"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.jsonl"))
    assert files_a == files_b
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files_a)
