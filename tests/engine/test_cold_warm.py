"""A cold scan and a warm start from the cache give the same document, whatever the history's age.

Real transcripts in a temp home, the real cache file, the real engine: for each instant the same files
are read with no cache (cold), then with the cache the first run wrote (warm), and every window, credit
and count must agree. The instants put the history on each side of the ledger's tiers: all of it in the
last day (detail), some of it folded into minute buckets (older than a day, inside the week), some of it
past the week and past the 8-day horizon. A cold start once counted the weekly window as 0 while a warm
one counted 6.893: its floors came from the clock, pruning then moved the detail floor back to the newest
event's day, and the folded buckets above it were no longer read.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import _assistant, _tool, _user, _write, write_known_fixture
from tests.support.env import FIXED_NOW
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.demo.claude_code import ClaudeCodeWriter
from zai_dash.demo.droid import write_droid_session
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext

OTHER = "7a2b9c4d-0000-4000-8000-00000000a11d"


def _stamp(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def write_history(home: Path, at: datetime) -> None:
    """The known fixture (26 Nov 2026) and a session spread over the month before `at`.

    Prompts and answered calls 30 min, 4 h, 6 h, 23 h, 25 h, 2 days, 6 days, 7 days + 1 min and 9 days
    before `at` (each side of the 5-hour window, the day of detail, the week and the 8-day horizon), a
    web search in some of them and a Web Reader call 20 days before (the month's MCP pool only).
    """
    write_known_fixture(home)
    ages = [
        timedelta(minutes=30), timedelta(hours=4), timedelta(hours=6), timedelta(hours=23), timedelta(hours=25),
        timedelta(days=2), timedelta(days=6), timedelta(days=7, minutes=1), timedelta(days=9),
    ]  # fmt: skip
    records: list[dict[str, Any]] = []
    for i, age in enumerate(sorted(ages, reverse=True)):
        ts = at - age
        records.append(_user(_stamp(ts), f"step {i}", f"o-p{i}", sessionId=OTHER))
        block = _tool(f"o-t{i}", "mcp__web-search-prime__webSearchPrime") if i % 3 == 0 else {"type": "text"}
        records.append(_assistant(_stamp(ts + timedelta(seconds=7)), f"o-m{i}", block, out=40 + i, sessionId=OTHER))
    reader = at - timedelta(days=20)
    records.insert(0, _assistant(_stamp(reader), "o-r", _tool("o-r", "mcp__web-reader__webReader"), sessionId=OTHER))
    _write(home / ".claude" / "projects" / "-home-u-other" / f"{OTHER}.jsonl", records)


def document(ctx: SourceContext, at: datetime, *, use_cache: bool) -> tuple[dict[str, Any], Engine]:
    """One `report --json` run at `at`: scan, save the cache (when used), snapshot."""
    engine = Engine(
        replace(Config(), timezone="UTC"),
        ctx=replace(ctx, clock=lambda: at),
        clock=FixedClock(at),
        use_cache=use_cache,
    )
    engine.scan()
    engine.save_cache()
    return engine.snapshot().to_json(), engine


def figures(doc: dict[str, Any]) -> dict[str, Any]:
    """What a user reads: the windows, the headline, credits, prompts, searches, cycle and timeline."""
    return {k: doc[k] for k in ("windows", "headline", "credits", "prompts", "searches", "cycle", "timeline")}


AGES = {
    "same day": timedelta(hours=0),
    "next day": timedelta(days=1),
    "six days on": timedelta(days=6, hours=1, minutes=46),
    "past the week": timedelta(days=7, hours=12),
    "past the horizon": timedelta(days=8, hours=21),
}


@pytest.mark.parametrize("later", list(AGES.values()), ids=list(AGES))
def test_cold_and_warm_agree_at_every_age_of_the_history(home: Path, ctx: SourceContext, later: timedelta) -> None:
    at = FIXED_NOW + later
    write_history(home, at)
    cold, engine = document(ctx, at, use_cache=False)
    assert not engine.cache_used
    first, engine = document(ctx, at, use_cache=True)  # cold again, and it writes the cache
    assert not engine.cache_used
    warm, engine = document(ctx, at, use_cache=True)
    assert engine.cache_used
    assert figures(first) == figures(cold)
    assert figures(warm) == figures(cold), json.dumps(figures(warm)["windows"]) + json.dumps(figures(cold)["windows"])
    assert warm == cold


def test_the_week_counts_what_was_folded_out_of_the_detail_day(home: Path, ctx: SourceContext) -> None:
    """The case that was 0 cold: every event of the week is older than a day, none older than the week."""
    at = FIXED_NOW + AGES["six days on"]
    write_known_fixture(home)
    cold, _ = document(ctx, at, use_cache=True)
    warm, engine = document(ctx, at, use_cache=True)
    assert engine.cache_used
    week = {w["id"]: w for w in cold["windows"]}["weekly"]
    # Every 26 Nov event and none of 20 Nov: 6 calls (2.499 + 0.55 credits, each streamed call at its
    # fullest copy) and the search, ZRead and vision calls (1.2 + 1.2 + 1.5).
    assert week["used"] == cold["credits"]["week"] == pytest.approx(6.949)
    assert figures(warm) == figures(cold)


def test_a_cache_written_while_the_history_was_recent_agrees_with_a_cold_scan_later(
    home: Path, ctx: SourceContext
) -> None:
    """Warm from a cache written on the day (events one by one), cold six days on (folded as they are read).

    The streamed call `msg_m1` (10 output tokens, then 80, a second apart) counts at its fullest copy in
    both: the detail tier keeps the copy with the most tokens, and so does a fold on arrival.

    The "≈ prompts left" basis (`median_per_prompt`, `prompts_sampled`, the headline's `prompts_left`)
    agrees too: the warm engine remembers a prompt's credits when it leaves the detail tier, the cold one
    prices a prompt folded on arrival as its session's calls are folded after it (it once had no sample
    of prompts older than a day, and `prompts_left` was null).
    """
    write_known_fixture(home)
    document(ctx, FIXED_NOW, use_cache=True)
    at = FIXED_NOW + AGES["six days on"]
    warm, engine = document(ctx, at, use_cache=True)
    assert engine.cache_used
    cold, _ = document(ctx, at, use_cache=False)
    assert figures(warm) == figures(cold)
    assert {w["id"]: w["used"] for w in cold["windows"]}["weekly"] == pytest.approx(6.949)


def write_droid_and_claude(home: Path, t0: datetime, sessions: int) -> None:
    """`sessions` Factory Droid sessions of 3 turns each (a second apart from `t0`) and 8 Claude Code prompts.

    Droid 0.225.2 writes no per-message usage: a session's tokens are only the cumulative totals of its
    `<uuid>.settings.json`, attributed to its latest call.
    """
    for n in range(sessions):
        start = t0 + timedelta(seconds=n)
        times = [start, start + timedelta(minutes=5), start + timedelta(minutes=10)]
        write_droid_session(home, times, session_id=str(uuid.UUID(int=n + 1)))
    writer = ClaudeCodeWriter(home, "11111111-2222-4333-8444-555555555555")
    for i in range(8):
        ts = t0 + timedelta(minutes=1 + 3 * i)
        writer.prompt(ts, f"step {i}")
        writer.call(ts + timedelta(seconds=5), "glm-5.3")


@pytest.mark.parametrize("sessions", [1, 120])
def test_droid_tokens_older_than_the_detail_day_count_cold_as_warm(
    home: Path, ctx: SourceContext, sessions: int
) -> None:
    """25 h after the data: a cold scan prices Droid's calls as an engine that read them an hour after.

    120 sessions are 1,200 events folded on arrival, more than the ledger's `RECENT_FOLDS_KEPT`: a call
    sent before its session's token totals were read, and again with them, kept its first copy (zero
    tokens: 1.2 credits a session, the web search alone, instead of 10.2).
    """
    t0 = FIXED_NOW - timedelta(hours=25)
    write_droid_and_claude(home, t0, sessions)
    document(ctx, t0 + timedelta(hours=1), use_cache=True)
    warm, engine = document(ctx, FIXED_NOW, use_cache=True)
    assert engine.cache_used
    cold, _ = document(ctx, FIXED_NOW, use_cache=False)
    assert cold["credits"]["by_tool_week"]["droid"] == pytest.approx(10.2 * sessions)
    assert cold["credits"]["by_tool_week"] == warm["credits"]["by_tool_week"]
    assert cold["credits"]["week"] == pytest.approx(warm["credits"]["week"])
    assert {w["id"]: w["used"] for w in cold["windows"]} == {w["id"]: w["used"] for w in warm["windows"]}
    # The "≈ prompts left" basis: the prompts' credits, remembered by the warm engine as they left the
    # detail day, and by the cold one as their calls were folded.
    for key in ("prompts_sampled", "median_per_prompt"):
        assert cold["credits"][key] == warm["credits"][key]
    assert cold["credits"]["prompts_sampled"] >= 8
    assert cold["headline"]["prompts_left"] == warm["headline"]["prompts_left"] is not None
