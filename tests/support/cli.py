"""Running the CLI in a subprocess over a temp HOME, and the known Claude Code fixture it reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.env import home_env
from zai_dash.demo.claude_code import assistant_record, usage, user_record

AT = "2026-11-26T10:00:00+00:00"


SESSION = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11"


def _user(ts: str, text: Any, uid: str, **extra: Any) -> dict[str, Any]:
    rec = user_record(ts, text, session=SESSION, cwd="/home/u/proj", uuid=uid, git_branch=None)
    rec.update(extra)
    return rec


def _assistant(ts: str, mid: str, block: dict[str, Any], model: str = "glm-4.6", out: int = 50, **extra: Any) -> dict:
    rec = assistant_record(
        ts,
        message_id=mid,
        model=model,
        content=[block],
        tokens=usage(1000, out, cache_read=5000),
        request_id=f"req_{mid}",
        session=SESSION,
        cwd="/home/u/proj",
        uuid=f"u-{mid}-{out}",
        git_branch=None,
    )
    rec.update(extra)
    return rec


def _tool(tid: str, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": tid, "name": name, "input": {}}


def _write(path: Path, records: list[dict[str, Any]], spaced: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sep = (", ", ": ") if spaced else (",", ":")
    path.write_text("".join(json.dumps(r, separators=sep) + "\n" for r in records))


def write_known_fixture(home: Path) -> None:
    """A day with a known answer (see `test_report_json_known_answer`)."""
    proj = home / ".claude" / "projects" / "-home-u-proj"
    _write(
        proj / f"{SESSION}.jsonl",
        [
            # Previous cycle (01:00–06:00): more than 5 h before the current one.
            _user("2026-11-26T01:00:00.000Z", "old prompt", "p0"),
            _assistant("2026-11-26T01:00:05.000Z", "msg_m0", {"type": "text", "text": "x"}),
            # Current cycle opens at 08:13:27.450.
            _user("2026-11-26T08:13:27.450Z", "add backoff to getJson()", "p1"),
            _assistant("2026-11-26T08:13:30.000Z", "msg_m1", {"type": "thinking", "thinking": "hm"}, out=10),
            _assistant(
                "2026-11-26T08:13:31.000Z", "msg_m1", _tool("t1", "mcp__web-search-prime__webSearchPrime"), out=80
            ),
            _user(
                "2026-11-26T08:13:33.000Z",
                [{"type": "tool_result", "tool_use_id": "t1", "content": "r"}],
                "r1",
                toolUseResult={"ok": True},
            ),
            _assistant("2026-11-26T08:14:00.000Z", "msg_m2", {"type": "text", "text": "done"}),
            _user("2026-11-26T08:40:00.000Z", [{"type": "text", "text": "now read the repo docs"}], "p2"),
            _assistant("2026-11-26T08:40:05.000Z", "msg_m3", _tool("t2", "mcp__zread__search_doc")),
            _assistant("2026-11-26T08:41:00.000Z", "msg_m4", _tool("t3", "mcp__zai-mcp-server__analyze_image")),
        ],
    )
    _write(
        proj / SESSION / "subagents" / "agent-a72e8af.jsonl",
        [
            _user(
                "2026-11-26T08:45:00.000Z",
                [{"type": "text", "text": "Warmup"}],
                "w1",
                isSidechain=True,
                agentId="a72e8af",
            ),
            _assistant(
                "2026-11-26T08:50:00.000Z",
                "msg_m5",
                {"type": "text", "text": "ok"},
                model="glm-4.5-air",
                isSidechain=True,
                agentId="a72e8af",
            ),
        ],
        spaced=True,
    )
    # Earlier this month: a Web Reader call counts toward the month only.
    _write(
        proj / "0b7c1d52-0000-4000-8000-000000000001.jsonl",
        [_assistant("2026-11-20T09:00:00.000Z", "msg_old", _tool("t0", "mcp__web-reader__webReader"))],
    )
    settings = {
        "env": {
            "ANTHROPIC_BASE_URL": "https://api.z.ai/api/anthropic",
            "ANTHROPIC_MODEL": "glm-4.6",
            "ANTHROPIC_AUTH_TOKEN": "sk-secret-do-not-print-1234",
        }
    }
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    mcp = {
        "mcpServers": {
            "web-search-prime": {
                "type": "http",
                "url": "https://api.z.ai/api/mcp/web_search_prime/mcp",
                "headers": {"Authorization": "Bearer sk-secret-do-not-print-1234"},
            }
        }
    }
    (home / ".claude.json").write_text(json.dumps(mcp))


def cli_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a zai-dash child process: HOME and XDG_* in the temp home, no tool variables.

    `status` starts no lingering publisher (`ZAI_DASH_PUBLISHER=0`) unless `extra` turns it on.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "ANTHROPIC_", "ZAI_", "TEXTUAL"))}
    env.update(home_env(home), ZAI_DASH_TIMEZONE="UTC", LANG="C.UTF-8", ZAI_DASH_PUBLISHER="0")
    env.update(extra or {})
    return env


def run_cli(
    home: Path, *args: str, config: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = cli_env(home, extra_env)
    cmd = [sys.executable, "-m", "zai_dash", *args]
    if config is not None:
        cmd += ["--config", str(config)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def publish_running_dashboard(
    home: Path, *, inputs: bool = False, doc: dict[str, Any] | None = None, extra_env: dict[str, str] | None = None
) -> Path:
    """The known fixture's report published as a live dashboard (this process's pid) would, 123 credits
    used and 1 h 05 min to go by the wall clock; returns the state file.

    Args:
        home: the temp home (the fixture is written there).
        inputs: also publish the raw-inputs digest of `run_cli`'s environment (`extra_env` included) and
            the zone, as a dashboard started there would, so `status` takes the fast path
            (`statusline.fast_status`); without, only the config fingerprint (the full path reads it).
        doc: the document to publish instead of the fixture's report (its `at` is set to now).
        extra_env: the child's extra environment the digest is taken over (with `inputs`).
    """
    from datetime import datetime, timedelta, timezone

    from zai_dash import paths, statefile
    from zai_dash.config import load_config

    write_known_fixture(home)
    now = datetime.now(timezone.utc)
    if doc is None:
        doc = json.loads(run_cli(home, "report", "--json", "--at", AT).stdout)
        doc["headline"]["end"] = (now + timedelta(hours=1, minutes=5)).isoformat()
        doc["headline"]["used"] = 123
    doc["at"] = now.isoformat()
    env = cli_env(home, extra_env)
    digest = statefile.inputs_digest(None, None, env) if inputs else None
    config = load_config(env=env)
    path = paths.dashboard_state_file(env)
    statefile.note_inputs(digest, config)
    try:
        statefile.publish(doc, config.fingerprint(), path)
    finally:
        statefile.note_inputs(None, None)  # this process publishes nothing else with it
    return path
