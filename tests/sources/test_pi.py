"""Pi sessions: the recorded real files against the server's truth, and the rules one by one."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.env import FIXED_NOW
from tests.support.pi import SID, assistant, entry, user, write_session
from tests.support.recorded import FIXTURES, RECORDED_AT, iso, truth
from zai_dash.domain.endpoints import EndpointKind
from zai_dash.domain.events import CallRole, EventKind, McpService, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.pi import TOOLS, PiSource, create_sources

REAL = FIXTURES / "pi"
TRUTH = truth("pi")
T0 = FIXED_NOW - timedelta(hours=1)


def source(home: Path, env: dict[str, str] | None = None, now: datetime = FIXED_NOW, **kw: Any) -> PiSource:
    return PiSource(SourceContext(home=home, env=env or {}, clock=lambda: now, **kw))


def unique(events: list[UsageEvent]) -> list[UsageEvent]:
    return list({e.key: e for e in events}.values())


# -- the recorded real sessions ----------------------------------------------------------------------


@pytest.fixture
def real_home(home: Path) -> Path:
    shutil.copytree(REAL / "agent", home / ".pi" / "agent")
    return home


def test_real_sessions_match_what_the_server_answered(real_home: Path) -> None:
    src = source(real_home, now=RECORDED_AT)
    batch = src.poll()
    events = unique(batch.events)  # the fork copied its parent's entries, same ids: one event each
    total, scenarios = TRUTH["total"], TRUTH["scenarios"]
    calls = [e for e in events if e.kind is EventKind.CALL]
    assert len(calls) == total["answered"]
    assert sum(e.input_tokens for e in calls) == total["input_tokens"]
    assert sum(e.cached_tokens for e in calls) == total["cached_tokens"]
    assert sum(e.output_tokens for e in calls) == total["output_tokens"]
    assert {e.model for e in calls} == set(total["models"])
    prompts = [e for e in events if e.kind is EventKind.PROMPT]
    assert len(prompts) == sum(1 for s in scenarios.values() if s["answered"])  # the 429 one is not billed
    # One error entry per client-level retry of the refused prompt, each naming the reset time (UTC+8 → UTC).
    assert {h.reset_at for h in batch.limit_hits} == {datetime(2026, 12, 2, 5, 0, tzinfo=timezone.utc)}
    assert scenarios["refused-429"]["refused_429"] > len(batch.limit_hits) > 0
    assert not src.skips.counts
    info = src.configs()["pi"]
    assert (info.model, info.endpoint) == ("glm-4.6", EndpointKind.OTHER)
    assert "FAKE_PI_KEY" not in repr(info)


def test_real_sessions_in_the_ledger(real_home: Path) -> None:
    ledger = Ledger()
    ledger.add_all(source(real_home, now=RECORDED_AT).poll().events)
    ledger.add_all(source(real_home, now=RECORDED_AT).poll().events)  # a restart re-reads: no change
    counts = ledger.count(RECORDED_AT - timedelta(days=1), RECORDED_AT, "pi")
    assert (counts.prompts, counts.calls) == (5, TRUTH["total"]["answered"])


# -- rules ---------------------------------------------------------------------------------------------


def test_tokens_put_the_cached_part_back_into_input(home: Path) -> None:
    s = timedelta(seconds=1)
    write_session(home, T0, [user(1, T0), assistant(2, T0 + s, inp=700, cache=300, out=9)])
    [prompt, call] = source(home).poll().events
    assert (prompt.kind, prompt.session) == (EventKind.PROMPT, SID)
    assert (call.input_tokens, call.cached_tokens, call.output_tokens, call.model) == (1000, 300, 9, "glm-4.6")


def test_refused_and_errored_turns(home: Path) -> None:
    s = timedelta(seconds=1)
    refused = "429 Usage limit reached for 5 hour. Your limit will reset at 2026-11-26 21:00:00"
    write_session(
        home,
        T0,
        [
            user(1, T0),
            assistant(2, T0 + s, 0, 0, 0, stopReason="error", errorMessage=refused),
            assistant(3, T0 + 2 * s, 0, 0, 0, stopReason="error", errorMessage=refused),
            user(4, T0 + 9 * s, "try again"),
            assistant(5, T0 + 10 * s),
        ],
    )
    batch = source(home).poll()
    assert [e.key for e in batch.events if e.kind is EventKind.PROMPT] == [f"prompt:e0000004:{iso(T0 + 9 * s)}"]
    assert [h.reset_at for h in batch.limit_hits] == [datetime(2026, 11, 26, 13, 0, tzinfo=timezone.utc)] * 2


def test_summaries_are_auxiliary_calls_and_mcp_results_count(home: Path) -> None:
    s = timedelta(seconds=1)
    ok = {"role": "toolResult", "toolCallId": "c1", "toolName": "web-search-prime_webSearchPrime", "isError": False}
    write_session(
        home,
        T0,
        [
            user(1, T0),
            assistant(2, T0 + s),
            entry(3, T0 + 2 * s, message=ok),
            entry(4, T0 + 3 * s, message={**ok, "isError": True}),
            entry(5, T0 + 4 * s, message={**ok, "toolName": "bash"}),
            entry(6, T0 + 5 * s, "compaction", summary="…", tokensBefore=50000),
            entry(7, T0 + 6 * s, "branch_summary", summary="…", fromHook=True),
            entry(8, T0 + 7 * s, "label", targetId="e0000001", label="x"),
        ],
    )
    events = source(home).poll().events
    assert [(e.kind, e.role, e.service) for e in events] == [
        (EventKind.PROMPT, CallRole.MAIN, None),
        (EventKind.CALL, CallRole.MAIN, None),
        (EventKind.MCP, CallRole.MAIN, McpService.SEARCH),
        (EventKind.CALL, CallRole.AUXILIARY, None),
    ]


def test_session_dirs_from_env_and_settings(home: Path) -> None:
    agent = home / "pi-agent"
    flat = home / "flat-sessions"
    write_session(home, T0, [user(1, T0), assistant(2, T0)])
    shutil.move(str(home / ".pi" / "agent" / "sessions"), agent / "sessions")
    (agent / "settings.json").write_text(json.dumps({"sessionDir": "custom"}))
    write_session(home / "b", T0, [user(1, T0), assistant(2, T0)], sid="01a23417-d942-72f6-afbb-2108e57af300")
    flat.mkdir()
    shutil.move(str(next((home / "b").rglob("*.jsonl"))), flat / "s.jsonl")
    src = source(home, env={"PI_CODING_AGENT_DIR": str(agent), "PI_CODING_AGENT_SESSION_DIR": str(flat)})
    assert [r.path for r in src.roots()] == [flat, agent / "custom", agent / "sessions"]
    assert Counter(e.kind for e in src.poll().events) == Counter({EventKind.PROMPT: 2, EventKind.CALL: 2})


def test_builtin_zai_provider_is_the_coding_plan(home: Path) -> None:
    agent = home / ".pi" / "agent"
    agent.mkdir(parents=True)
    (agent / "settings.json").write_text(json.dumps({"defaultProvider": "zai", "defaultModel": "glm-4.6"}))
    assert source(home).configs()["pi"].endpoint is EndpointKind.CODING
    (agent / "settings.json").write_text("{broken")
    assert source(home).configs() == {}


def test_bad_lines_since_and_appends(home: Path) -> None:
    old = T0 - timedelta(days=10)
    old_path = write_session(home, old, [user(1, old), assistant(2, old)], sid="01a23417-d942-72f6-afbb-2108e57af311")
    os.utime(old_path, (old.timestamp(), old.timestamp()))
    path = write_session(home, T0, [user(1, T0), assistant(2, T0)])
    with path.open("ab") as fh:
        fh.write(b"{not json\n[]\n" + json.dumps({"type": None}).encode() + b"\n")
        fh.write(json.dumps({"type": "message", "id": "x", "timestamp": "soon", "message": {}}).encode() + b"\n")
        fh.write(json.dumps(entry(9, T0, message="text")).encode() + b"\n")
    src = source(home, since=T0 - timedelta(days=2))
    assert len(src.poll().events) == 2
    assert src.skips.counts == Counter(
        {
            "malformed JSON": 1,
            "not a JSON object": 1,
            "timestamp not ISO 8601": 1,
            "record type missing or not a string": 1,
            "message entry without a message object": 1,
        }
    )
    write_session(home, T0, [user(10, T0 + timedelta(minutes=1)), assistant(11, T0 + timedelta(minutes=2))])
    assert len(src.poll().events) == 2
    assert not src.poll()


def test_declares_its_tool() -> None:
    assert [t.id for t in TOOLS] == ["pi"] and "PI_CODING_AGENT_DIR" in TOOLS[0].env_vars
    [src] = create_sources(SourceContext(home=Path("/nonexistent"), env={}))
    assert src.health()[0].status == "absent"
