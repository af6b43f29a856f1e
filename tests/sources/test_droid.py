"""Factory Droid sessions: JSONL tailed by offset, cumulative tokens in `<uuid>.settings.json`."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from conformance.sandbox import install_fixture
from tests.support.env import FIXED_NOW
from tests.support.recorded import FIXTURES, truth
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import EventKind
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.droid import DroidSource, create_sources, resolve_model

T0 = FIXED_NOW - timedelta(hours=1)
WINDOW = (FIXED_NOW - timedelta(hours=5), FIXED_NOW + timedelta(hours=1))
SID = "6c0f2a1e-5b7d-4e8f-9a10-2b3c4d5e6f70"


def iso(offset_s: float) -> str:
    return (T0 + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def user(
    mid: str, offset: float, content: list[dict[str, Any]], outer: str | None = None, inner: str | None = None
) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "type": "message",
        "id": mid,
        "timestamp": iso(offset),
        "message": {"role": "user", "content": content},
    }
    if outer:
        rec["visibility"] = outer
    if inner:
        rec["message"]["visibility"] = inner
    return rec


def asst(mid: str, offset: float, content: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": mid,
        "timestamp": iso(offset),
        "message": {"role": "assistant", "content": content or [{"type": "text", "text": "ok"}], **extra},
    }


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def session_lines() -> list[dict[str, Any]]:
    return [
        {"type": "session_start", "id": SID, "title": "add backoff", "owner": "u", "version": 2, "cwd": "/home/u/p"},
        user("ctx-1", 0, [text("<system-reminder>Model: GLM-4.6 [Z.AI]</system-reminder>")], outer="llm_only"),
        user("ctx-2", 0.5, [text("<system-reminder>todo list is empty</system-reminder>")], inner="llm_only"),
        user("ctx-3", 0.7, [text("<system-reminder>cwd /home/u/p</system-reminder>\n")]),  # reminder only
        user("m1", 1, [text("<system-reminder>x</system-reminder>add exponential backoff to getJson()")]),
        asst(
            "m2",
            4,
            [
                {
                    "type": "tool_use",
                    "id": "call_7d1e",
                    "name": "web-search-prime___webSearchPrime",
                    "input": {"search_query": "backoff jitter"},
                }
            ],
        ),
        user("m3", 6, [{"type": "tool_result", "tool_use_id": "call_7d1e", "content": "[…]"}]),
        {"type": "todo_state", "id": "td", "timestamp": iso(6.5), "todos": []},
        asst("m4", 8),
        user("m5", 20, [text("also add jitter")]),
        asst("m6", 24, [{"type": "tool_use", "id": "call_2", "name": "Read", "input": {}}]),
    ]


def write_session(
    home: Path,
    lines: list[dict[str, Any]],
    sid: str = SID,
    slug: str = "-home-u-p",
    model: str = "custom:GLM-4.6-[Z.AI]-0",
    usage: dict[str, int] | None = None,
) -> Path:
    path = home / ".factory" / "sessions" / slug / f"{sid}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    write_settings(path, model, usage or {"inputTokens": 1000, "outputTokens": 100})
    return path


def write_settings(session: Path, model: str, usage: dict[str, int]) -> None:
    settings = session.with_name(session.stem + ".settings.json")
    tmp = settings.with_name(settings.name + ".tmp")
    tmp.write_text(
        json.dumps(
            {
                "model": model,
                "reasoningEffort": "none",
                "autonomyMode": "auto-low",
                "tokenUsage": {"cacheCreationTokens": 0, "cacheReadTokens": 0, "thinkingTokens": 0, **usage},
            }
        )
    )
    os.replace(tmp, settings)


def write_factory_settings(home: Path) -> None:
    factory = home / ".factory"
    factory.mkdir(parents=True, exist_ok=True)
    (factory / "settings.json").write_text(
        json.dumps(
            {
                "customModels": [
                    {
                        "model": "glm-4.6",
                        "displayName": "GLM-4.6 [Z.AI]",
                        "baseUrl": "https://api.z.ai/api/anthropic",
                        "apiKey": "sk-never-shown",
                        "provider": "anthropic",
                        "maxOutputTokens": 16384,
                    },
                    {
                        "model": "glm-4.5-air",
                        "displayName": "Air",
                        "baseUrl": "https://api.z.ai/api/paas/v4",
                        "provider": "generic-chat-completion-api",
                    },
                ]
            }
        )
    )


def test_prompts_calls_search_and_model(home: Path, ctx: SourceContext) -> None:
    write_factory_settings(home)
    write_session(home, session_lines())
    source = DroidSource(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    c = ledger.count(*WINDOW, tool="droid")
    assert (c.prompts, c.calls, c.mcp_by_service["search"]) == (2, 3, 1)
    calls = [e for e in ledger.events(*WINDOW) if e.kind is EventKind.CALL]
    assert {e.model for e in calls} == {"glm-4.6"} and {e.session for e in calls} == {SID}


def test_appended_lines_and_partial_last_line(home: Path, ctx: SourceContext) -> None:
    path = write_session(home, session_lines()[:5])
    source = DroidSource(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).prompts == 0  # typed; counted once an answer shows it was sent
    rest = "".join(json.dumps(line) + "\n" for line in session_lines()[5:])
    with open(path, "a") as handle:
        handle.write(rest[:30])  # a line still being written
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).calls == 0 and ledger.count(*WINDOW).prompts == 0
    with open(path, "a") as handle:
        handle.write(rest[30:])
    ledger.add_all(source.poll().events)
    c = ledger.count(*WINDOW)
    assert (c.prompts, c.calls) == (2, 3)
    for _ in range(10):  # re-reading from scratch (a restart) changes nothing
        ledger.add_all(DroidSource(ctx).poll().events)
    assert (ledger.count(*WINDOW).prompts, ledger.count(*WINDOW).calls) == (2, 3)


def test_task_subsession_counts_calls_not_prompts(home: Path, ctx: SourceContext) -> None:
    write_session(
        home,
        [
            {
                "type": "session_start",
                "id": "sub-1",
                "title": "# Task Tool Invocation\nFind usages",
                "callingSessionId": SID,
                "callingToolUseId": "toolu_1",
                "version": 2,
            },
            user("s1", 1, [text("# Task Tool Invocation\nFind usages of getJson")]),
            asst("s2", 2),
        ],
        sid="sub-1",
    )
    write_session(
        home,
        [  # an older sub-session: only its first prompt says what it is
            {"type": "session_start", "id": "sub-2", "title": "", "version": 2},
            user("s1", 1, [text("# Task Tool Invocation\nlist files")]),
            asst("s2", 2),
            user("s3", 3, [text("more")]),
        ],
        sid="sub-2",
    )
    ledger = Ledger()
    ledger.add_all(DroidSource(ctx).poll().events)
    c = ledger.count(*WINDOW, tool="droid")
    assert (c.prompts, c.calls, c.calls_by_role["subagent"]) == (0, 2, 2)


def test_settings_token_growth_is_added_to_the_latest_call(home: Path, ctx: SourceContext) -> None:
    path = write_session(home, session_lines()[:6], usage={"inputTokens": 50_000, "outputTokens": 900})
    source = DroidSource(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 0  # history before we started watching: baseline only
    with open(path, "a") as handle:
        handle.write(json.dumps(asst("m9", 30)) + "\n")
    write_settings(
        path, "custom:GLM-4.6-[Z.AI]-0", {"inputTokens": 52_000, "outputTokens": 1_000, "cacheReadTokens": 500}
    )
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 2_000 + 100 + 500
    [call] = [e for e in ledger.events(*WINDOW) if e.tokens]
    assert (call.input_tokens, call.cached_tokens, call.output_tokens) == (2_500, 500, 100)
    for _ in range(10):
        ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 2_600


def test_new_session_while_watching_counts_all_its_tokens(home: Path) -> None:
    clock = [T0 - timedelta(minutes=5)]
    ctx = SourceContext(home=home, env={}, clock=lambda: clock[0])
    source = DroidSource(ctx)
    source.poll()  # we start watching five minutes before the session begins
    write_session(home, session_lines(), usage={"inputTokens": 3_000, "outputTokens": 300})
    clock[0] = T0 + timedelta(minutes=1)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 3_300


def test_resumed_old_session_does_not_dump_its_history_into_the_window(home: Path, ctx: SourceContext) -> None:
    source = DroidSource(ctx)
    source.poll()  # started watching at FIXED_NOW; this session began an hour earlier
    path = write_session(home, session_lines(), usage={"inputTokens": 900_000, "outputTokens": 9_000})
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 0
    with open(path, "a") as handle:
        handle.write(json.dumps(asst("m9", 30)) + "\n")
    write_settings(path, "custom:GLM-4.6-[Z.AI]-0", {"inputTokens": 901_000, "outputTokens": 9_050})
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 1_050


def test_per_message_usage_wins_over_settings(home: Path) -> None:
    ctx = SourceContext(home=home, env={}, clock=lambda: T0 - timedelta(minutes=5))
    source = DroidSource(ctx)
    source.poll()  # watching before the session begins, so settings growth would count
    usage = {"input_tokens": 10, "cache_read_input_tokens": 30, "output_tokens": 5}
    lines = [*session_lines()[:5], asst("m2", 4, usage=usage)]
    write_session(home, lines, usage={"inputTokens": 9_999, "outputTokens": 9_999})
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).tokens == 45
    [call] = [e for e in ledger.events(*WINDOW) if e.tokens]
    assert (call.input_tokens, call.cached_tokens) == (40, 30)  # Anthropic-style: the cache added back in


def test_model_resolution_through_custom_models(home: Path) -> None:
    models = [
        {"model": "glm-4.6", "displayName": "GLM-4.6 [Z.AI]", "baseUrl": "https://api.z.ai/api/anthropic"},
        {"model": "glm-4.5-air", "displayName": "Air"},
    ]
    assert resolve_model("custom:GLM-4.6-[Z.AI]-0", models).model == "glm-4.6"
    assert resolve_model("custom:GLM-4.6-[Z.AI]-0", models).base_url == "https://api.z.ai/api/anthropic"
    # The list was edited and indexes shifted: the display name still finds it.
    assert resolve_model("custom:Air-5", models).model == "glm-4.5-air"
    assert resolve_model("custom:GLM-4.7-[Z.AI]-3", []).model == "glm-4.7"
    assert resolve_model("claude-sonnet-4-5-20250929", models).model == "claude-sonnet-4-5-20250929"
    assert resolve_model(None, models).model is None
    legacy = [{"model_display_name": "GLM", "model": "GLM-4.6", "base_url": "https://api.z.ai/api/coding/paas/v4"}]
    assert resolve_model("custom:GLM-0", legacy) == resolve_model("custom:GLM-0", legacy)
    assert resolve_model("custom:GLM-0", legacy).model == "glm-4.6"


def test_configs_report_model_and_endpoint(home: Path, ctx: SourceContext) -> None:
    write_factory_settings(home)
    write_session(home, session_lines())
    (source,) = create_sources(ctx)
    source.poll()
    conf = source.configs()["droid"]
    assert (conf.model, conf.endpoint) == ("glm-4.6", EndpointKind.CODING)
    assert "sk-never-shown" not in repr(conf)


def test_legacy_config_json_and_payg_warning(home: Path, ctx: SourceContext) -> None:
    (home / ".factory").mkdir()
    (home / ".factory" / "config.json").write_text(
        json.dumps(
            {
                "custom_models": [
                    {
                        "model_display_name": "GLM 4.6",
                        "model": "glm-4.6",
                        "base_url": "https://api.z.ai/api/paas/v4",
                        "api_key": "k",
                        "provider": "generic-chat-completion-api",
                    }
                ]
            }
        )
    )
    write_session(home, session_lines(), model="custom:GLM 4.6-0")
    source = DroidSource(ctx)
    source.poll()
    assert source.configs()["droid"].endpoint is EndpointKind.PAYG


def test_mcp_alias_from_mcp_json(home: Path, ctx: SourceContext) -> None:
    (home / ".factory").mkdir()
    (home / ".factory" / "mcp.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "look": {
                        "type": "stdio",
                        "command": "npx",
                        "args": ["-y", "@z_ai/mcp-server"],
                        "env": {"Z_AI_API_KEY": "k"},
                    },
                }
            }
        )
    )
    write_session(
        home,
        [
            {"type": "session_start", "id": "v", "title": "see", "version": 2},
            user("u", 1, [text("what is in this screenshot")]),
            asst("a", 2, [{"type": "tool_use", "id": "t1", "name": "look___analyze_image", "input": {}}]),
        ],
        sid="v",
    )
    ledger = Ledger()
    ledger.add_all(DroidSource(ctx).poll().events)
    assert ledger.count(*WINDOW).mcp_by_service["vision"] == 1


def test_flat_old_layout_and_bad_lines(home: Path, ctx: SourceContext) -> None:
    flat = home / ".factory" / "sessions" / "old.jsonl"
    flat.parent.mkdir(parents=True)
    flat.write_text(
        "not json\n[1,2]\n"
        + json.dumps({"type": "message", "id": "x", "message": {"role": "user", "content": [text("hi")]}})
        + "\n"
        + json.dumps(
            {
                "type": "message",
                "id": "y",
                "timestamp": "2026-11-26T11:00:00",
                "message": {"role": "user", "content": [text("no zone")]},
            }
        )
        + "\n"
        + json.dumps({"type": "message", "message": {"role": "user"}})
        + "\n"
        + json.dumps(user("ok", 1, [text("a real prompt")]))
        + "\n"
        + json.dumps(asst("ok-a", 2))
        + "\n"
    )
    source = DroidSource(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW).prompts == 1
    reasons = source.skips.counts
    assert reasons["malformed JSON line"] == 1
    assert reasons["JSON line is not an object"] == 1
    assert reasons["message: timestamp missing or not a string"] == 1
    assert reasons["message: timestamp without timezone"] == 1
    assert reasons["message record without message or id"] == 1


def test_health(home: Path, ctx: SourceContext) -> None:
    source = DroidSource(ctx)
    assert source.health()[0].status == "absent"
    write_session(home, session_lines())
    source.poll()
    row = source.health()[0]
    assert (row.status, row.tool, row.files) == ("ok", "droid", 1)


def test_resumed_tail_still_knows_a_subsession_from_its_header(home: Path, ctx: SourceContext) -> None:
    lines = [
        {
            "type": "session_start",
            "id": "sub-3",
            "title": "# Task Tool Invocation\nrun tests",
            "callingSessionId": SID,
            "version": 2,
        },
        user("s1", 1, [text("run the tests")]),
        asst("s2", 2),
    ]
    path = write_session(home, lines, sid="sub-3")
    first = DroidSource(ctx)
    first.poll()
    state = first.tail_sets()[0].export_state()
    with open(path, "a") as handle:
        handle.write(json.dumps(user("s3", 3, [text("and lint")])) + "\n" + json.dumps(asst("s4", 4)) + "\n")
    resumed = DroidSource(ctx)
    resumed.tail_sets()[0].restore_state(state)
    ledger = Ledger()
    ledger.add_all(resumed.poll().events)
    c = ledger.count(*WINDOW)
    assert (c.prompts, c.calls, c.calls_by_role["subagent"]) == (0, 1, 1)


def test_factory_dir_env_relocates_everything(home: Path, tmp_path: Path) -> None:
    write_factory_settings(home)
    write_session(home, session_lines())
    moved = tmp_path / "factory"
    (home / ".factory").rename(moved)
    ctx = SourceContext(home=home, env={"FACTORY_DIR": str(moved)}, clock=lambda: FIXED_NOW)
    source = DroidSource(ctx)
    assert source.roots()[0].path == moved / "sessions" and source.roots()[0].exists
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW, tool="droid").prompts == 2
    assert source.configs()["droid"].model == "glm-4.6"  # customModels from $FACTORY_DIR/settings.json


def test_tool_search_loading_an_mcp_tool_is_not_a_search(home: Path, ctx: SourceContext) -> None:
    """0.225.2 reaches MCP tools through `ToolSearch` first; only the `server___tool` call is one."""
    write_session(
        home,
        [
            {"type": "session_start", "id": "ts", "title": "find", "version": 2},
            user("u", 1, [text("search the web for jitter")]),
            asst("a1", 2, [{"type": "tool_use", "id": "t0", "name": "ToolSearch", "input": {"query": "web search"}}]),
            user("r0", 3, [{"type": "tool_result", "tool_use_id": "t0", "content": "webSearchPrime"}]),
            asst("a2", 4, [{"type": "tool_use", "id": "t1", "name": "web-search-prime___webSearchPrime", "input": {}}]),
        ],
        sid="ts",
    )
    ledger = Ledger()
    ledger.add_all(DroidSource(ctx).poll().events)
    assert ledger.count(*WINDOW).mcp_by_service["search"] == 1


def test_sessions_named_by_the_discovery_index_are_read(home: Path, ctx: SourceContext, tmp_path: Path) -> None:
    elsewhere = write_session(home, session_lines(), slug="-srv-work")
    moved = tmp_path / "kept" / elsewhere.name
    moved.parent.mkdir()
    elsewhere.rename(moved)
    elsewhere.with_name(f"{SID}.settings.json").rename(moved.with_name(f"{SID}.settings.json"))
    index = {"version": 1, "sessions": [{"id": SID, "cwd": "/srv/work", "path": str(moved)},
                                        {"id": "gone", "path": "-home-u-p/gone.jsonl"}]}  # fmt: skip
    (home / ".factory" / "sessions-index.json").write_text(json.dumps(index))
    source = DroidSource(ctx)
    ledger = Ledger()
    ledger.add_all(source.poll().events)
    assert ledger.count(*WINDOW, tool="droid").prompts == 2
    assert source.file_count() == 1 and not source.skips.counts


def test_a_prompt_nothing_answered_is_not_billed(home: Path, ctx: SourceContext) -> None:
    """A prompt nothing answered (`droid exec` never sent it, or stopped before an outcome) leaves only its
    user message: not billed, and nothing says it was refused."""
    write_session(
        home,
        [
            {"type": "session_start", "id": "r", "title": "refused", "version": 2},
            user("u1", 1, [text("this one hits the 5-hour limit")]),
            user("u2", 60, [text("and this one is answered")]),
            asst("a2", 62),
            user("u3", 90, [text("typed, not answered yet")]),
        ],
        sid="r",
    )
    source = DroidSource(ctx)
    events = source.poll().events
    assert [e.key for e in events if e.kind is EventKind.PROMPT] == ["r:u2:prompt"]
    assert source.health()[0].refused is None  # refused and never sent look the same here


def test_cold_read_counts_the_tokens_of_a_session_inside_the_horizon(home: Path) -> None:
    """Droid writes usage only to settings.json; `report` (one cold read) must still see it."""
    write_session(home, session_lines(), usage={"inputTokens": 1854, "outputTokens": 40, "cacheReadTokens": 1853})
    ctx = SourceContext(home=home, env={}, calls_since=T0 - timedelta(hours=1), clock=lambda: FIXED_NOW)
    ledger = Ledger()
    ledger.add_all(DroidSource(ctx).poll().events)
    [call] = [e for e in ledger.events(*WINDOW) if e.tokens]
    assert (call.input_tokens, call.cached_tokens, call.output_tokens) == (1854 + 1853, 1853, 40)


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any directory")
def test_unreadable_session_directory_is_reported_once(home: Path, ctx: SourceContext) -> None:
    write_session(home, session_lines())
    locked = home / ".factory" / "sessions" / "-home-u-locked"
    write_session(home, session_lines(), sid="22222222-2222-4222-8222-222222222222", slug="-home-u-locked")
    locked.chmod(0)
    try:
        source = DroidSource(ctx)
        events = source.poll().events
        source.poll()
        # The readable project counts as usual; the locked one is named in `doctor`, once, not on every poll.
        assert sum(e.kind is EventKind.PROMPT for e in events) == 2
        assert source.skips.counts["unreadable directory (Permission denied)"] == 1
        assert source.skips.first["unreadable directory (Permission denied)"] == str(locked)
    finally:
        locked.chmod(0o755)


def test_sessions_root_that_is_a_file_is_reported(home: Path, ctx: SourceContext) -> None:
    # Works as root too: listing a file where a directory is expected fails whoever asks.
    write_session(home, session_lines())
    kept = home / "kept-sessions"
    (home / ".factory" / "sessions").rename(kept)
    (home / ".factory" / "sessions").write_text("not a directory\n")
    source = DroidSource(replace(ctx, extra_roots={"droid": (kept,)}))
    events = source.poll().events
    source.poll()
    # The sessions under the extra root count; the file in the way is named once.
    assert sum(e.kind is EventKind.PROMPT for e in events) == 2
    assert source.skips.counts["not a directory"] == 1
    assert source.skips.first["not a directory"] == str(home / ".factory" / "sessions")
    assert source.skips.files == 1


# --- refusals: Z.ai's 1308/1310 as limit hits ----------------------------------------------------

RESET_UTC = datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)
"""The reset the hand-built notice names: 21:00:00 in UTC+8, as Z.ai writes it."""
REFUSAL_BODY = (
    '{"type":"error","error":{"type":"1308","message":"Usage limit reached for 5 hour. '
    'Your limit will reset at 2026-11-26 21:00:00"}}'
)


def refusal_lines(sid: str = "r") -> list[dict[str, Any]]:
    """A refused prompt as 0.225.2 writes it: the prompt, Droid's `user_only` error notice, the outcome."""
    notice = user(
        "e1",
        95,
        [text(f"BYOK Error: 429 {REFUSAL_BODY}\n\nIf this persists, verify your custom model configuration.")],
        inner="user_only",
    )
    notice["parentId"] = "u1"
    return [
        {"type": "session_start", "id": sid, "title": "zd:refuse", "owner": "user", "version": 2},
        user("u1", 1, [text("zd:refuse this one hits the 5-hour limit")]),
        notice,
        {"type": "agent_turn_outcome", "turnId": "u1", "reason": "model_rate_limited", "resultKind": "text"},
    ]


def test_refusal_notice_is_a_limit_hit_and_the_prompt_is_refused(home: Path, ctx: SourceContext) -> None:
    write_session(home, refusal_lines(), sid="r", usage={"inputTokens": 0, "outputTokens": 0})
    source = DroidSource(ctx)
    batch = source.poll()
    [hit] = batch.limit_hits
    assert (hit.tool, hit.code, hit.reset_at) == ("droid", 1308, RESET_UTC)
    assert hit.ts == T0 + timedelta(seconds=95)
    assert [e for e in batch.events if e.kind is EventKind.PROMPT] == []
    assert source.refused == 1 and source.health()[0].refused == 1


def test_refused_prompt_is_not_billed_by_a_later_answer(home: Path, ctx: SourceContext) -> None:
    """The error notice is no prompt, and an assistant message after the refused turn answers nothing."""
    lines = [*refusal_lines(), asst("a2", 120)]
    write_session(home, lines, sid="r")
    events = DroidSource(ctx).poll().events
    assert [e for e in events if e.kind is EventKind.PROMPT] == []


def test_1308_typed_by_the_user_is_no_limit_hit(home: Path, ctx: SourceContext) -> None:
    """A prompt (or an answer) quoting the refusal is a prompt; only Droid's own `user_only` notice counts."""
    lines = [
        {"type": "session_start", "id": "q", "title": "why", "version": 2},
        user("u1", 1, [text(f"why did I get BYOK Error: 429 {REFUSAL_BODY} [1308]?")]),
        asst("a1", 3, [text(f"Because of {REFUSAL_BODY}")]),
        user("n1", 4, [text("Droid is up to date.")], inner="user_only"),  # a notice, but no refusal
    ]
    write_session(home, lines, sid="q")
    source = DroidSource(ctx)
    batch = source.poll()
    assert batch.limit_hits == []
    assert [e.key for e in batch.events if e.kind is EventKind.PROMPT] == ["q:u1:prompt"]
    assert source.refused is None


def test_refusal_is_handed_over_once(home: Path, ctx: SourceContext) -> None:
    """A second poll reads nothing again, nor does a restart resumed at the saved offsets."""
    path = write_session(home, refusal_lines(), sid="r")
    first = DroidSource(ctx)
    assert len(first.poll().limit_hits) == 1
    assert first.poll().limit_hits == []
    state = first.tail_sets()[0].export_state()
    with open(path, "a") as handle:
        handle.write(json.dumps(user("u2", 200, [text("and now?")])) + "\n")
    resumed = DroidSource(ctx)
    resumed.tail_sets()[0].restore_state(state)
    assert resumed.poll().limit_hits == []


def test_recorded_droid_refusal_is_a_limit_hit(home: Path) -> None:
    """Droid 0.225.2's own refused session (`make conformance --record`): one hit, code and reset as the
    server sent them (5 h after the run's first request, to the second), and one refused prompt."""
    recorded = truth("droid")
    at = datetime.fromisoformat(recorded["report_at"])
    install_fixture(FIXTURES / "droid" / "home.tar.xz", home, mtime=at.timestamp() - 30)
    source = DroidSource(SourceContext(home=home, env={}, clock=lambda: at))
    batch = source.poll()
    [hit] = batch.limit_hits
    first = datetime.fromisoformat(recorded["exchanges"][0]["ts"])
    last_refused = max(datetime.fromisoformat(e["ts"]) for e in recorded["exchanges"] if e["status"] == 429)
    assert hit.tool == "droid" and hit.code == 1308
    assert hit.reset_at == (first + timedelta(hours=5)).replace(microsecond=0)
    assert timedelta(0) <= hit.ts - last_refused < timedelta(seconds=5)  # written as the last attempt failed
    assert source.refused == recorded["refused"] == 1
    assert source.poll().limit_hits == []
