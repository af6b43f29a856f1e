"""The contract every registered tool adapter keeps, run over the registry (not a list of modules).

For each registered tool, a sample of its real storage layout is written into a temp home; then:
bad bytes never raise, re-reading never changes the counts, `since` is honoured, and health is
reported. A new adapter module is picked up by the registry alone (last test).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.codex import write_codex_session
from tests.support.env import FIXED_NOW
from tests.support.pi import write_pi_session
from tests.support.sqlite import GOOSE_DDL, create_db, js
from tests.support.zcode import write_zcode_session
from zai_dash.demo.claude_code import ClaudeCodeWriter
from zai_dash.demo.cline import write_cline_task
from zai_dash.demo.crush import write_crush_session
from zai_dash.demo.droid import write_droid_session
from zai_dash.demo.opencode import write_opencode_session
from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.sources import tools as registry
from zai_dash.sources.base import SourceContext, ToolSource
from zai_dash.sources.tools import create_all_sources, registered_tool_ids, registered_tools

NEW = FIXED_NOW - timedelta(hours=1)
"""When the recent sample session happens."""
OLD = FIXED_NOW - timedelta(days=20)
"""When the old sample session happens (before `SINCE`)."""
SINCE = FIXED_NOW - timedelta(days=2)

Sample = Callable[[Path, datetime, str], None]
"""Writes one session of a tool into a home at an instant (`tag` keeps ids apart)."""


def _claude(home: Path, at: datetime, tag: str) -> None:
    w = ClaudeCodeWriter(home, f"3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c{tag}")
    w.prompt(at, "add exponential backoff")
    tool_id = w.call(at + timedelta(seconds=3), "glm-4.6", tool="mcp__web-search-prime__webSearchPrime")
    assert tool_id
    w.tool_result(at + timedelta(seconds=5), tool_id)
    w.call(at + timedelta(seconds=9), "glm-4.6")


def _cline(home: Path, at: datetime, tag: str) -> None:
    write_cline_task(home, [at, at + timedelta(minutes=2)], task_id=str(int(at.timestamp() * 1000)))


def _roo(home: Path, at: datetime, tag: str) -> None:
    task_id = str(int(at.timestamp() * 1000))
    cline = write_cline_task(home / "scratch", [at], task_id=task_id)
    storage = home / ".config" / "Code" / "User" / "globalStorage" / "rooveterinaryinc.roo-cline"
    task = storage / "tasks" / task_id
    shutil.copytree(cline, task)
    (task / "history_item.json").write_text(json.dumps({"id": task_id, "ts": int(at.timestamp() * 1000)}))
    shutil.rmtree(home / "scratch")


def _opencode(app: str) -> Sample:
    def write(home: Path, at: datetime, tag: str) -> None:
        write_opencode_session(home, at, prompts=2, steps_per_prompt=2, app=app, session_id=f"ses_{app}{tag}")

    return write


def _crush(home: Path, at: datetime, tag: str) -> None:
    write_crush_session(home, at, prompts=2, project=home / f"proj{tag}")


def _goose(home: Path, at: datetime, tag: str) -> None:
    path = home / ".local" / "share" / "goose" / "sessions" / "sessions.db"
    conn = create_db(path, GOOSE_DDL) if not path.exists() else sqlite3.connect(path)
    sid = f"{at:%Y%m%d}_{tag}"
    conn.execute(
        "INSERT INTO sessions (id, name, session_type, working_dir, provider_name, model_config_json) "
        "VALUES (?, 'n', 'user', '/p', 'custom_zai', ?)",
        (sid, js({"model_name": "GLM-4.6"})),
    )
    t0 = int(at.timestamp())
    for i, role in enumerate(("user", "assistant", "user", "assistant")):
        conn.execute(
            "INSERT INTO messages (message_id, session_id, role, content_json, created_timestamp, metadata_json) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (f"m_{sid}_{i}", sid, role, js([{"type": "text", "text": "hi"}]), t0 + i, js({"userVisible": True})),
        )
    conn.commit()
    conn.close()


def _droid(home: Path, at: datetime, tag: str) -> None:
    write_droid_session(home, [at, at + timedelta(minutes=3)], session_id=f"9d3e2b1a-6c4f-4e8a-b2d7-5f0a1c3e7b{tag}")


SAMPLES: dict[str, Sample] = {
    "claude-code": _claude,
    "cline": _cline,
    "roo-code": _roo,
    "kilo-code": _opencode("kilo"),
    "opencode": _opencode("opencode"),
    "crush": _crush,
    "goose": _goose,
    "droid": _droid,
    "codex": write_codex_session,
    "pi": write_pi_session,
    "zcode": write_zcode_session,
}
"""A sample of each registered tool's storage, written the way the tool writes it."""


def _sources(home: Path, tool: str, since: datetime | None = None) -> list[ToolSource]:
    ctx = SourceContext(home=home, env=dict(os.environ), since=since, clock=lambda: FIXED_NOW)
    return [s for s in create_all_sources(ctx) if tool in s.tools]


def _poll(sources: list[ToolSource]) -> list[UsageEvent]:
    return [e for s in sources for e in s.poll().events]


def _counts(ledger: Ledger, tool: str) -> tuple[int, int, Counter[str]]:
    c = ledger.count(OLD - timedelta(days=1), FIXED_NOW + timedelta(days=1), tool)
    return c.prompts, c.calls, Counter(c.mcp_by_service)


def _files(home: Path) -> Iterator[Path]:
    return (p for p in sorted(home.rglob("*")) if p.is_file())


@pytest.fixture(params=sorted(SAMPLES))
def tool(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_every_registered_tool_has_a_sample() -> None:
    missing = set(registered_tool_ids()) - set(SAMPLES)
    assert not missing, f"add a sample of {sorted(missing)} to SAMPLES in {__file__}"


def test_sample_is_read_and_reread_is_idempotent(home: Path, tool: str) -> None:
    SAMPLES[tool](home, NEW, "01")
    sources = _sources(home, tool)
    assert sources, f"no registered source reads {tool}"
    ledger = Ledger()
    events = [e for e in _poll(sources) if e.tool == tool]
    ledger.add_all(events)
    first = _counts(ledger, tool)
    assert first[0] >= 1 and first[1] >= 1, f"{tool}: the sample's prompt and calls were not read ({first})"
    ledger.add_all(_poll(sources))  # the same sources again: nothing new
    assert _counts(ledger, tool) == first
    fresh = [e for e in _poll(_sources(home, tool)) if e.tool == tool]  # a restart re-reads everything
    assert {e.key for e in fresh} == {e.key for e in events}
    ledger.add_all(fresh)
    assert _counts(ledger, tool) == first


def test_since_is_honoured(home: Path, tool: str) -> None:
    SAMPLES[tool](home, OLD, "02")
    old_mtime = OLD.timestamp()
    for path in _files(home):
        os.utime(path, (old_mtime, old_mtime))
    SAMPLES[tool](home, NEW, "03")
    events = [e for e in _poll(_sources(home, tool, since=SINCE)) if e.tool == tool]
    assert any(e.ts >= NEW for e in events), f"{tool}: the recent session was not read"
    early = [e for e in events if e.ts < SINCE]
    assert not early, f"{tool}: events before since: {early[:3]}"


def _corruptions(data: bytes) -> Iterator[tuple[str, bytes]]:
    yield "random", os.urandom(64) + b"\xff\xfe\x00" * 50
    yield "truncated", data[: len(data) // 2]
    yield "bad utf-8 appended", data + b'\n\xc3\x28{"type": \xff}\n'
    yield "empty", b""


def test_bad_bytes_never_raise_and_health_is_reported(home: Path, tool: str) -> None:
    SAMPLES[tool](home, NEW, "04")
    files = list(_files(home))
    originals = {p: p.read_bytes() for p in files}
    live = _sources(home, tool)
    _poll(live)
    for path in files:
        for what, data in _corruptions(originals[path]):
            path.write_bytes(data)
            st = path.stat()
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
            for sources in (live, _sources(home, tool)):  # a running source, and one starting on the bad file
                _poll(sources)
                for source in sources:
                    health = source.health()
                    assert health and all(h.status in ("ok", "error", "absent", "stale") for h in health), (
                        tool,
                        path.name,
                        what,
                    )
        path.write_bytes(originals[path])


def test_health_is_reported_when_absent(home: Path, tool: str) -> None:
    for source in _sources(home, tool):
        assert not source.poll()
        [*health] = source.health()
        assert health and all(h.status == "absent" for h in health)
        assert all(not exists for h in health for _, exists in h.roots)


def test_calls_are_calls(home: Path, tool: str) -> None:
    SAMPLES[tool](home, NEW, "05")
    events = [e for e in _poll(_sources(home, tool)) if e.tool == tool]
    for e in events:
        assert e.ts.tzinfo is not None
        assert e.cached_tokens <= e.input_tokens, e
        if e.kind is not EventKind.CALL:
            assert e.input_tokens == e.output_tokens == e.cached_tokens == 0, e


PLUGIN = '''
"""A tool zai-dash has never heard of, added as one file."""

from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import Root, SourceBatch, ToolSource

TOOLS = (ToolInfo("newtool", "New Tool", ("NEWTOOL_HOME",), order=999),)


class NewToolSource(ToolSource):
    name = "newtool"
    tools = ("newtool",)

    def roots(self):
        return [Root(self.ctx.home / ".newtool", True)]

    def poll(self):
        return SourceBatch([UsageEvent(EventKind.PROMPT, self.ctx.clock(), "newtool", "p1")])

    def file_count(self):
        return 1


def create_sources(ctx):
    return [NewToolSource(ctx)]
'''


def test_a_new_adapter_file_alone_is_picked_up(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "plugins"
    extra.mkdir()
    (extra / "newtool.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.setattr(registry, "__path__", [*registry.__path__, str(extra)])
    monkeypatch.delitem(sys.modules, "zai_dash.sources.tools.newtool", raising=False)
    try:
        tools = registered_tools()
        assert tools[-1].id == "newtool" and tools[-1].name == "New Tool"
        ctx = SourceContext(home=home, env={}, clock=lambda: FIXED_NOW)
        [source] = [s for s in create_all_sources(ctx) if s.tools == ("newtool",)]
        assert [e.key for e in source.poll().events] == ["p1"]
        assert [s for s in create_all_sources(ctx, disabled={"newtool"}) if s.tools == ("newtool",)] == []

        from tests.support.env import tool_env_prefixes
        from zai_dash.config import ConfigError, builtin_plans, load_config
        from zai_dash.domain.snapshot import build_snapshot

        assert "NEWTOOL_" in tool_env_prefixes()
        cfg_file = tmp_path / "c.toml"
        cfg_file.write_text("[tools.newtool]\nenabled = false\n")
        assert load_config(cfg_file, env={}, known_tools=registered_tool_ids).disabled_tools == {"newtool"}
        cfg_file.write_text("[tools.oldtool]\nenabled = false\n")
        with pytest.raises(ConfigError, match="unknown tool 'oldtool'"):
            load_config(cfg_file, env={}, known_tools=registered_tool_ids)
        snap = build_snapshot(now=FIXED_NOW, plan=builtin_plans()["pro"], ledger=Ledger(), tz=timezone.utc, tools=tools)
        assert snap.tool_names["newtool"] == "New Tool"
    finally:
        sys.modules.pop("zai_dash.sources.tools.newtool", None)
