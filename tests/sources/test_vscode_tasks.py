"""Cline / Roo Code / Kilo Code task folders in VS Code-like hosts, written the way each extension writes them."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import FIXED_NOW
from tests.support.vscode import storage
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import EventKind
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.vscode_tasks import VscodeTasksSource, create_sources
from zai_dash.sources.vscode import candidate_hosts, read_state_item

T0 = FIXED_NOW - timedelta(hours=1)
WINDOW = (FIXED_NOW - timedelta(hours=5), FIXED_NOW + timedelta(hours=1))


def ms(offset_s: float) -> int:
    return int((T0 + timedelta(seconds=offset_s)).timestamp() * 1000)


def say(offset: float, kind: str, text: Any = None, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"ts": ms(offset), "type": "say", "say": kind}
    if text is not None:
        rec["text"] = text if isinstance(text, str) else json.dumps(text)
    rec.update(extra)
    return rec


def ask(offset: float, kind: str, text: Any, **extra: Any) -> dict[str, Any]:
    return {"ts": ms(offset), "type": "ask", "ask": kind, "text": json.dumps(text), **extra}


def req(tokens_in: int | None = None, tokens_out: int = 0, reads: int = 0) -> dict[str, Any]:
    if tokens_in is None:
        return {"request": "<task>…</task>"}  # just started: tokens arrive when the stream ends
    return {
        "request": "…",
        "tokensIn": tokens_in,
        "tokensOut": tokens_out,
        "cacheWrites": 0,
        "cacheReads": reads,
        "cost": 0,
    }


def mcp(server: str, tool: str) -> dict[str, Any]:
    return {"type": "use_mcp_tool", "serverName": server, "toolName": tool, "arguments": "{}"}


def write_plain(path: Path, value: Any) -> None:
    """Cline: `fs.writeFile` in place (same inode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def write_atomic(path: Path, value: Any) -> None:
    """Roo: `safeWriteJson`, a temp file renamed over the target (new inode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{time.monotonic_ns()}")
    tmp.write_text(json.dumps(value))
    os.replace(tmp, path)


def bump(path: Path, seconds: float = 1.0) -> None:
    """Move mtime forward so a same-second rewrite is visible whatever the filesystem granularity."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + int(seconds * 1e9)))


def make_state_db(db: Path, items: dict[str, Any]) -> None:
    """A `state.vscdb` with VS Code's real table layout, in WAL mode."""
    db.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS ItemTable (key TEXT UNIQUE ON CONFLICT REPLACE, value BLOB)")
    for key, value in items.items():
        conn.execute("INSERT INTO ItemTable (key, value) VALUES (?, ?)", (key, json.dumps(value)))
    conn.commit()
    conn.close()


def poll_into(source: VscodeTasksSource, ledger: Ledger, times: int = 1) -> None:
    for _ in range(times):
        ledger.add_all(source.poll().events)


def counts(ledger: Ledger, tool: str) -> tuple[int, int, dict[str, int]]:
    c = ledger.count(*WINDOW, tool=tool)
    return c.prompts, c.calls, {k: v for k, v in c.mcp_by_service.items() if v}


def cline_task(home: Path) -> Path:
    task = storage(home, "saoudrizwan.claude-dev") / "tasks" / str(ms(0))
    info = {"providerId": "openai", "modelId": "GLM-4.6"}
    write_plain(
        task / "ui_messages.json",
        [
            say(0, "text", "add exponential backoff to getJson()", images=[], modelInfo=info),
            say(1, "api_req_started", req(10_512, 211, 9_984), modelInfo=info),
            say(2, "text", "I'll read the file first.", modelInfo=info),  # assistant text: not a prompt
            say(3, "use_mcp_server", mcp("web-search-prime", "webSearchPrime"), partial=False, modelInfo=info),
            say(3.2, "mcp_server_request_started"),
            ask(4, "use_mcp_server", mcp("web-search-prime", "webSearchPrime"), partial=False),  # denied: never ran
            say(5, "api_req_started", req(12_000, 300)),  # no modelInfo: task_metadata.json decides
            say(6, "use_mcp_server", mcp("github", "search_code"), partial=False),
            say(6.1, "mcp_server_request_started"),
            say(7, "user_feedback", "also add jitter", images=[]),
            say(8, "api_req_started", req(13_000, 400), modelInfo=info),
            say(9, "user_feedback_diff", '{"tool":"editedExistingFile"}'),
            say(10, "api_req_started", req(1_000, 10, 0), modelInfo=info),
        ],
    )
    write_plain(
        task / "task_metadata.json",
        {
            "files_in_context": [],
            "model_usage": [{"ts": ms(0.9), "model_id": "glm-4.5-air", "model_provider_id": "openai", "mode": "act"}],
        },
    )
    return task


def test_cline_task_counts_prompts_calls_searches_and_models(home: Path, ctx: SourceContext) -> None:
    cline_task(home)
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "cline") == (3, 4, {"search": 1})
    calls = [e for e in ledger.events(*WINDOW) if e.kind is EventKind.CALL]
    assert [e.model for e in calls] == ["glm-4.6", "glm-4.5-air", "glm-4.6", "glm-4.6"]
    assert calls[0].tokens == 10_512 + 211 + 9_984 and calls[0].output_tokens == 211
    assert calls[0].input_tokens == 10_512 + 9_984 and calls[0].cached_tokens == 9_984
    assert {e.session for e in calls} == {str(ms(0))}
    assert counts(ledger, "roo-code") == (0, 0, {})


def test_rereading_ten_times_gives_the_same_numbers(home: Path, ctx: SourceContext) -> None:
    task = cline_task(home)
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    before = counts(ledger, "cline"), ledger.count(*WINDOW).tokens
    for _ in range(10):
        write_plain(task / "ui_messages.json", json.loads((task / "ui_messages.json").read_text()))
        bump(task / "ui_messages.json")
        poll_into(source, ledger)
        fresh = VscodeTasksSource(ctx)  # a restart reads everything again
        poll_into(fresh, ledger)
    assert (counts(ledger, "cline"), ledger.count(*WINDOW).tokens) == before


def test_partial_records_are_replaced_in_place(home: Path, ctx: SourceContext) -> None:
    ui = storage(home, "saoudrizwan.claude-dev") / "tasks" / "t1" / "ui_messages.json"
    records = [say(0, "text", "search the docs"), say(1, "api_req_started", req())]
    write_plain(ui, records)
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "cline") == (1, 1, {})
    assert ledger.count(*WINDOW).tokens == 0
    # The stream ended: the same record (same ts) now carries tokens; an MCP call is still streaming.
    records[1] = say(1, "api_req_started", req(5_000, 100))
    records.append(say(2, "use_mcp_server", mcp("web-search-prime", "webSearch"), partial=True))
    write_plain(ui, records)
    bump(ui)
    poll_into(source, ledger)
    assert counts(ledger, "cline") == (1, 1, {})
    assert ledger.count(*WINDOW).tokens == 5_100
    records[2] = say(2, "use_mcp_server", mcp("web-search-prime", "webSearchPrime"), partial=False)
    records.append(say(2.5, "mcp_server_request_started"))
    write_plain(ui, records)
    bump(ui, 2)
    poll_into(source, ledger)
    assert counts(ledger, "cline") == (1, 1, {"search": 1})


def test_torn_write_is_skipped_then_read_when_complete(home: Path, ctx: SourceContext) -> None:
    ui = storage(home, "saoudrizwan.claude-dev") / "tasks" / "t2" / "ui_messages.json"
    whole = json.dumps([say(0, "text", "hi"), say(1, "api_req_started", req(10, 1))])
    ui.parent.mkdir(parents=True)
    ui.write_text(whole[:40])
    source = VscodeTasksSource(ctx)
    source._folders["cline"].reader.delay = 0.001
    ledger = Ledger()
    poll_into(source, ledger, times=3)
    assert counts(ledger, "cline") == (0, 0, {})
    assert source.skips.counts["malformed or torn JSON file"] == 1
    ui.write_text(whole)
    bump(ui)
    poll_into(source, ledger)
    assert counts(ledger, "cline") == (1, 1, {})


def roo_task(
    home: Path, ext: str, task_id: str, offset: float, parent: str | None, host: str = "Code", base: Path | None = None
) -> Path:
    task = (base or storage(home, ext, host)) / "tasks" / task_id
    write_atomic(
        task / "ui_messages.json",
        [
            say(offset, "text", f"task {task_id}", images=[]),
            say(
                offset + 1,
                "api_req_started",
                {
                    "apiProtocol": "openai",
                    "tokensIn": 100,
                    "tokensOut": 10,
                    "cacheWrites": 0,
                    "cacheReads": 0,
                    "cost": 0,
                },
            ),
            ask(offset + 2, "use_mcp_server", mcp("zai-reader", "webReader"), partial=False, isAnswered=True),
            say(offset + 2.2, "mcp_server_request_started"),
            say(offset + 3, "mcp_server_response", "[]"),
            say(offset + 4, "user_feedback", "looks good, continue"),
            say(offset + 5, "api_req_started", {"apiProtocol": "openai", "tokensIn": 200, "tokensOut": 20}),
        ],
    )
    write_atomic(
        task / "api_conversation_history.json",
        [
            {
                "role": "user",
                "ts": ms(offset + 1.01),
                "content": [
                    {"type": "text", "text": f"<task>task {task_id}</task>"},
                    {"type": "text", "text": "<environment_details>\n<model>glm-4.6</model>\n</environment_details>"},
                ],
            },
            {"role": "assistant", "ts": ms(offset + 1.5), "content": [{"type": "text", "text": "ok"}]},
            {
                "role": "user",
                "ts": ms(offset + 5.01),
                "content": [
                    {"type": "text", "text": "<environment_details><model>GLM-4.5-Air</model></environment_details>"},
                ],
            },
        ],
    )
    item: dict[str, Any] = {"id": task_id, "number": 1, "ts": ms(offset), "task": f"task {task_id}"}
    if parent:
        item["parentTaskId"] = parent
        item["rootTaskId"] = parent
    write_atomic(task / "history_item.json", item)
    return task


def test_roo_subtask_opening_is_not_a_prompt_and_models_come_from_env_details(home: Path, ctx: SourceContext) -> None:
    write_atomic(
        storage(home, "rooveterinaryinc.roo-cline") / "settings" / "mcp_settings.json",
        {
            "mcpServers": {
                "zai-reader": {
                    "type": "streamable-http",
                    "url": "https://api.z.ai/api/mcp/web_reader/mcp",
                    "headers": {"Authorization": "Bearer not-read"},
                }
            }
        },
    )
    roo_task(home, "rooveterinaryinc.roo-cline", "parent-uuid", 0, None)
    roo_task(home, "rooveterinaryinc.roo-cline", "child-uuid", 100, "parent-uuid")
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger, times=3)
    # Parent: opening + feedback; child: only the human's feedback.
    assert counts(ledger, "roo-code") == (3, 4, {"reader": 2})
    calls = [e for e in ledger.events(*WINDOW) if e.kind is EventKind.CALL]
    assert [e.model for e in calls] == ["glm-4.6", "glm-4.5-air", "glm-4.6", "glm-4.5-air"]
    c = ledger.count(*WINDOW, tool="roo-code")
    assert c.calls_by_role["subagent"] == 2 and c.calls_by_role["main"] == 2


def test_roo_atomic_rewrite_is_followed(home: Path, ctx: SourceContext) -> None:
    task = roo_task(home, "rooveterinaryinc.roo-cline", "t-atomic", 0, None)
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[0] == 2
    ui = task / "ui_messages.json"
    records = json.loads(ui.read_text())
    inode = ui.stat().st_ino
    records.append(say(50, "user_feedback", "one more thing"))
    write_atomic(ui, records)
    assert ui.stat().st_ino != inode
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[0] == 3


def test_kilo_legacy_in_cursor_counts_as_kilo_code(home: Path, ctx: SourceContext) -> None:
    roo_task(home, "kilocode.kilo-code", "k1", 0, None, host="Cursor")
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    # The reader MCP server has no alias here, but its tool name says what it is.
    assert counts(ledger, "kilo-code") == (2, 2, {"reader": 1})
    assert counts(ledger, "roo-code") == (0, 0, {})
    row = {h.tool: h for h in source.health()}["kilo-code"]
    assert row.status == "ok" and any(exists and "Cursor" in path for path, exists in row.roots)


def test_roo_custom_storage_path_from_jsonc_settings(home: Path, ctx: SourceContext, tmp_path: Path) -> None:
    custom = tmp_path / "roo-store"
    settings = home / ".config" / "Code" / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{\n  // moved to a bigger disk\n  "roo-cline.customStoragePath": "' + str(custom) + '",\n}\n')
    roo_task(home, "rooveterinaryinc.roo-cline", "c1", 0, None, base=custom)
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[:2] == (2, 2)
    assert Path(custom / "tasks") in [r.path for r in source.roots() if r.exists]


@pytest.mark.wall_clock
def test_roo_parent_unknown_waits_then_falls_back_to_global_state(home: Path, ctx: SourceContext) -> None:
    task = roo_task(home, "rooveterinaryinc.roo-cline", "orphan", 0, None)
    (task / "history_item.json").unlink()  # an older Roo build, or not written yet
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[0] == 1  # the feedback; the opening waits for parentage
    # Global state's taskHistory says it is a sub-task.
    db = home / ".config" / "Code" / "User" / "globalStorage" / "state.vscdb"
    make_state_db(db, {"RooVeterinaryInc.roo-cline": {"taskHistory": [{"id": "orphan", "parentTaskId": "p"}]}})
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[0] == 1
    # A task nobody claims is taken as top-level once its file has settled.
    other = roo_task(home, "rooveterinaryinc.roo-cline", "lonely", 200, None)
    (other / "history_item.json").unlink()
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[0] == 2
    old = time.time() - 60
    os.utime(other / "ui_messages.json", (old, old))
    poll_into(source, ledger)
    assert counts(ledger, "roo-code")[0] == 3


def test_old_task_folders_are_skipped_without_parsing(home: Path, ctx: SourceContext) -> None:
    task = cline_task(home)
    old = (FIXED_NOW - timedelta(days=60)).timestamp()
    os.utime(task / "ui_messages.json", (old, old))
    source = VscodeTasksSource(replace(ctx, since=FIXED_NOW - timedelta(days=31)))
    assert source.poll().events == []
    assert source._folders["cline"].reader.parses == 0


def test_bad_records_are_skipped_and_counted(home: Path, ctx: SourceContext) -> None:
    tasks = storage(home, "saoudrizwan.claude-dev") / "tasks"
    write_plain(tasks / "a" / "ui_messages.json", {"not": "a list"})
    write_plain(
        tasks / "b" / "ui_messages.json",
        [
            "string",
            {"type": "say", "say": "text", "ts": "yesterday"},
            say(0, "api_req_started", "not json"),
            {"type": "say", "say": "user_feedback", "ts": 10**20},
        ],
    )
    (tasks / "_index.json").write_text("[]")
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "cline") == (0, 1, {})  # an api_req_started with unparsable text is still a request
    reasons = source.skips.counts
    assert reasons["ui_messages.json is not a JSON array"] == 1
    assert reasons["ui message is not an object"] == 1
    assert reasons["ui message: timestamp missing or not a number"] == 1
    assert sum(n for r, n in reasons.items() if r.startswith("ui message: timestamp")) == 2


def test_mcp_alias_by_url_counts_a_custom_server_name(home: Path, ctx: SourceContext) -> None:
    gs = storage(home, "saoudrizwan.claude-dev")
    write_plain(
        gs / "settings" / "cline_mcp_settings.json",
        {
            "mcpServers": {
                "search": {"url": "https://open.bigmodel.cn/api/mcp/web_search_prime/mcp"},
                "eyes": {"command": "npx", "args": ["-y", "@z_ai/mcp-server"], "env": {"Z_AI_API_KEY": "x"}},
            }
        },
    )
    write_plain(
        gs / "tasks" / "m" / "ui_messages.json",
        [
            say(0, "text", "go"),
            say(1, "use_mcp_server", mcp("search", "search"), partial=False),
            say(1.1, "mcp_server_request_started"),
            say(2, "use_mcp_server", mcp("eyes", "analyze_image"), partial=False),
            say(2.1, "mcp_server_response", "…"),
        ],
    )
    source = VscodeTasksSource(ctx)
    ledger = Ledger()
    poll_into(source, ledger)
    assert counts(ledger, "cline")[2] == {"search": 1, "vision": 1}


# -- settings ------------------------------------------------------------------------------------------


def test_cline_classic_zai_provider_is_flagged_pay_as_you_go(home: Path, ctx: SourceContext) -> None:
    db = home / ".config" / "Code" / "User" / "globalStorage" / "state.vscdb"
    make_state_db(
        db,
        {
            "saoudrizwan.claude-dev": {
                "actModeApiProvider": "zai",
                "actModeApiModelId": "glm-4.6",
                "zaiApiLine": "international",
            }
        },
    )
    (db.parent / "saoudrizwan.claude-dev").mkdir()
    (db.parent / "saoudrizwan.claude-dev" / "secrets.json").write_text('{"zaiApiKey": "sk-never-read"}')
    conf = VscodeTasksSource(ctx).configs()["cline"]
    assert conf.model == "glm-4.6"
    assert conf.base_url == "https://api.z.ai/api/paas/v4"
    assert conf.endpoint is EndpointKind.PAYG
    assert "sk-never-read" not in repr(conf)


def test_cline_global_state_json_wins_and_honours_cline_dir(home: Path, tmp_path: Path) -> None:
    db = home / ".config" / "Code" / "User" / "globalStorage" / "state.vscdb"
    make_state_db(db, {"saoudrizwan.claude-dev": {"actModeApiProvider": "zai", "actModeApiModelId": "glm-4.5"}})
    cline_dir = tmp_path / "cline-home"
    write_plain(
        cline_dir / "data" / "globalState.json",
        {
            "mode": "plan",
            "planModeApiProvider": "openai-compatible",
            "planModeOpenAiModelId": "GLM-4.6",
            "actModeApiProvider": "zai",
            "openAiBaseUrl": "https://api.z.ai/api/coding/paas/v4",
        },
    )
    ctx = SourceContext(home=home, env={"CLINE_DIR": str(cline_dir)}, clock=lambda: FIXED_NOW)
    conf = VscodeTasksSource(ctx).configs()["cline"]
    assert (conf.model, conf.endpoint) == ("glm-4.6", EndpointKind.CODING)
    assert conf.model_detail is not None and "globalState.json" in conf.model_detail


@pytest.mark.parametrize(
    ("line", "kind"),
    [(None, EndpointKind.CODING), ("china_coding", EndpointKind.CODING), ("international_api", EndpointKind.PAYG)],
)
def test_roo_zai_api_line_endpoint(home: Path, ctx: SourceContext, line: str | None, kind: EndpointKind) -> None:
    state: dict[str, Any] = {
        "apiProvider": "zai",
        "apiModelId": "glm-4.6",
        "currentApiConfigName": "default",
        "listApiConfigMeta": [{"id": "x", "name": "default", "apiProvider": "zai"}],
    }
    if line:
        state["zaiApiLine"] = line
    make_state_db(
        home / ".config" / "Code" / "User" / "globalStorage" / "state.vscdb", {"RooVeterinaryInc.roo-cline": state}
    )
    conf = VscodeTasksSource(ctx).configs()["roo-code"]
    assert conf.model == "glm-4.6" and conf.endpoint is kind


def test_kilo_profile_model_from_list_api_config_meta(home: Path, ctx: SourceContext) -> None:
    make_state_db(
        home / ".config" / "VSCodium" / "User" / "globalStorage" / "state.vscdb",
        {
            "kilocode.kilo-code": {
                "apiProvider": "openai",
                "openAiBaseUrl": "https://api.z.ai/api/coding/paas/v4",
                "currentApiConfigName": "glm",
                "listApiConfigMeta": [{"name": "glm", "apiProvider": "openai", "modelId": "glm-4.6"}],
            }
        },
    )
    conf = VscodeTasksSource(ctx).configs()["kilo-code"]
    assert (conf.model, conf.endpoint) == ("glm-4.6", EndpointKind.CODING)


def test_state_db_is_opened_read_only_and_key_matched_case_insensitively(home: Path) -> None:
    db = home / "state.vscdb"
    make_state_db(db, {"RooVeterinaryInc.roo-cline": {"apiProvider": "zai"}})
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    assert read_state_item(db, "rooveterinaryinc.roo-cline") == {"apiProvider": "zai"}
    assert read_state_item(db, "missing.ext") is None
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before  # never written
    assert read_state_item(home / "absent.vscdb", "x") is None
    assert not (home / "absent.vscdb").exists()  # mode=ro never creates a database


def test_locked_or_corrupt_state_db_never_raises(home: Path, ctx: SourceContext) -> None:
    db = home / ".config" / "Code" / "User" / "globalStorage" / "state.vscdb"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"not a database at all" * 100)
    source = VscodeTasksSource(ctx)
    assert source.configs() == {}
    source.poll()
    assert all(h.status != "error" for h in source.health())


# -- where ---------------------------------------------------------------------------------------------


def test_host_discovery_covers_forks_remote_and_flatpak(home: Path, ctx: SourceContext) -> None:
    paths = {str(h.user_data.relative_to(home)) for h in candidate_hosts(ctx)}
    for expected in (
        ".config/Code",
        ".config/Code - Insiders",
        ".config/Cursor",
        ".config/Windsurf",
        ".config/VSCodium",
        ".config/Positron",
        ".config/Antigravity",
        "Library/Application Support/Code",
        "Library/Application Support/Cursor",
        ".vscode-server/data",
        ".cursor-server/data",
        ".var/app/com.visualstudio.code/config/Code",
    ):
        assert expected in paths


def test_remote_server_tasks_are_found(home: Path, ctx: SourceContext) -> None:
    task = home / ".vscode-server" / "data" / "User" / "globalStorage" / "saoudrizwan.claude-dev" / "tasks" / "r"
    write_plain(task / "ui_messages.json", [say(0, "text", "over ssh"), say(1, "api_req_started", req(1, 1))])
    ledger = Ledger()
    poll_into(VscodeTasksSource(ctx), ledger)
    assert counts(ledger, "cline")[:2] == (1, 1)


def test_health_has_one_row_per_tool_with_its_roots(home: Path, ctx: SourceContext) -> None:
    cline_task(home)
    (source,) = create_sources(ctx)
    source.poll()
    rows = {h.tool: h for h in source.health()}
    assert set(rows) == {"cline", "roo-code", "kilo-code"}
    assert rows["cline"].status == "ok" and rows["cline"].files == 1
    assert any(exists for _, exists in rows["cline"].roots)
    assert rows["roo-code"].status == "absent"
    assert all(path.endswith("tasks") for path, _ in rows["roo-code"].roots)


def test_nothing_installed_is_absent_not_an_error(ctx: SourceContext) -> None:
    source = VscodeTasksSource(ctx)
    assert source.poll().events == []
    assert source.configs() == {}
    assert {h.status for h in source.health()} == {"absent"}


def test_timestamps_are_aware_utc(home: Path, ctx: SourceContext) -> None:
    cline_task(home)
    events = VscodeTasksSource(ctx).poll().events
    assert events and all(e.ts.tzinfo is not None and e.ts.utcoffset() == timedelta(0) for e in events)
    assert min(e.ts for e in events) == datetime.fromtimestamp(ms(0) / 1000, tz=timezone.utc)
