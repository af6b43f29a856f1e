"""What makes a first scan of a long history cheap, without changing a count.

- the byte screen before a parse passes over exactly what it did before (types never events, lines
  without an event marker), while most lines skip it;
- a poll hands its events to the ledger in bounded batches (`ToolSource.spill`), also when it fails;
- Claude Code forgets the message ids of sessions quiet for `MSG_MEMORY` (memory follows recent use);
- `parse_iso` reads `…Z` directly, to the same instant as the general path.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.claude_code import SESSION, T0, Claude, Fed, assistant, iso, user
from tests.support.dataloss import FragileSource
from tests.support.env import FIXED_NOW
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.domain.ledger import Ledger
from zai_dash.engine import Engine
from zai_dash.sources.base import SPILL_EVENTS, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import BadTimestamp, parse_iso
from zai_dash.sources.tools.claude_code import MSG_MEMORY, ClaudeCodeSource

pytestmark = pytest.mark.timeout(60)


# -- the byte screen -----------------------------------------------------------------------------------

PASSED_OVER: dict[str, bytes] = {
    "torn ignored type with a marker": b'{"type":"progress","data":{"type":"assistant","message":{"x":"torn',
    "torn snapshot": b'{"type":"file-history-snapshot","snapshot":{"messageId":"m","x":"{torn',
    "no marker, no type": b'{"uuid":"x","leafUuid":"y"}',
    "no marker, not an object inside": b'{"summary":"a","kind":[1,2]}',
    "api-request after an object": b'{"meta":{"a":1},"type":"api-request","sessionId":"s","id":"r","timestamp":"'
    + iso(1).encode()
    + b'"}',
    "long ignored type": b'{"type":"api-request-blob","body":"' + b"x" * 40_000 + b'"}',
    "long torn attachment": b'{"parentUuid":"p","attachment":{"type":"file","content":"' + b"y" * 40_000,
}


@pytest.mark.parametrize("name", list(PASSED_OVER))
def test_lines_that_are_never_events_are_passed_over_uncounted(claude: Claude, fed: Fed, name: str) -> None:
    Claude.append(claude.session_file(), PASSED_OVER[name], user("hi", "p1", 1.0), assistant("m1", "r1", 2.0))
    fed.poll()
    assert fed.source.skips.lines == 0
    assert [e.kind for e in fed.events()] == [EventKind.PROMPT, EventKind.CALL]


COUNTED: dict[str, tuple[bytes, str]] = {
    "torn user line": (b'{"parentUuid":null,"type":"user","message":{"role":"user","content":"torn', "malformed JSON"),
    "torn line with no marker": (b'{"uuid":"x","leafUuid":"torn', "malformed JSON"),
    "no type but a marker": (b'{"message":{"role":"user","content":"hi"}}', "record type missing or not a string"),
    "an array with a marker": (b'["user"]', "not a JSON object"),
}


@pytest.mark.parametrize("name", list(COUNTED))
def test_lines_that_may_be_events_are_parsed_and_counted_when_bad(claude: Claude, fed: Fed, name: str) -> None:
    bad, reason = COUNTED[name]
    Claude.append(claude.session_file(), bad, user("hi", "p1", 1.0), assistant("m1", "r1", 2.0))
    fed.poll()
    assert fed.source.skips.counts == {reason: 1}
    assert len(fed.events()) == 2


def test_a_leading_api_request_is_read_without_a_parse(claude: Claude, fed: Fed) -> None:
    head = f'{{"type":"api-request","sessionId":"{SESSION}","id":"a-1","timestamp":"{iso(1)}"'.encode()
    # Torn after its head: only the head is read (a full parse would count it as malformed JSON).
    Claude.append(claude.session_file(), head + b',"querySource":"sdk","params":{"model":"glm-4.6","x":"torn',
                  head.replace(b"a-1", b"a-2").replace(iso(1).encode(), iso(2).encode()) + b"}",
                  assistant("m1", "r1", 3.0))  # fmt: skip
    fed.poll()
    assert fed.source.skips.lines == 0
    assert sorted(e.key for e in fed.events(EventKind.CALL)) == ["estimate:retry:a-1", "m1:r1"]


# -- bounded batches -----------------------------------------------------------------------------------


def write_history(claude: Claude, turns: int, start: datetime) -> None:
    """`turns` prompt-and-answer pairs, a second apart from `start`, in one session file."""
    offset = (start - T0).total_seconds()
    records = []
    for i in range(turns):
        records += [user(f"prompt {i}", f"p{i}", offset + 2 * i), assistant(f"m{i}", f"r{i}", offset + 2 * i + 1)]
    Claude.append(claude.session_file(), *records)


def test_a_long_first_scan_hands_its_events_over_in_bounded_batches(
    claude: Claude, ctx: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = SPILL_EVENTS + 500
    write_history(claude, turns, FIXED_NOW - timedelta(hours=3))
    handed: list[int] = []
    spill_if_full = ToolSource.spill_if_full

    def watched(self: ToolSource, batch: SourceBatch) -> None:
        if self.spill is not None and len(batch.events) >= SPILL_EVENTS:
            handed.append(len(batch.events))
        spill_if_full(self, batch)

    monkeypatch.setattr(ToolSource, "spill_if_full", watched)
    engine = Engine(replace(Config(), timezone="UTC"), ctx=ctx, clock=FixedClock(FIXED_NOW))
    assert engine.scan()
    assert handed and max(handed) == SPILL_EVENTS  # handed over as soon as the batch was full
    counts = engine.ledger.count(FIXED_NOW - timedelta(days=1), FIXED_NOW)
    assert (counts.prompts, counts.calls) == (turns, turns)


def test_a_poll_that_fails_after_handing_events_over_loses_and_doubles_nothing(home: Path, ctx: SourceContext) -> None:
    path = home / "fragile" / "a.jsonl"
    path.parent.mkdir(parents=True)
    n = SPILL_EVENTS * 2 + 10
    with open(path, "w") as fh:
        for i in range(n):
            if i == SPILL_EVENTS + 5:
                fh.write('{"boom": true}\n')
            ts = (FIXED_NOW - timedelta(hours=3) + timedelta(seconds=i)).isoformat()
            fh.write(json.dumps({"k": f"k{i}", "ts": ts}) + "\n")
    engine = Engine(replace(Config(), timezone="UTC"), ctx=ctx, clock=FixedClock(FIXED_NOW),
                    sources=[FragileSource(ctx, spill=True)])  # fmt: skip
    engine.scan()
    assert len(engine.ledger) == n
    assert engine.ledger.count(FIXED_NOW - timedelta(days=1), FIXED_NOW).prompts == n
    assert engine.skipped()["reasons"] == {"record could not be read (OverflowError)": 1}


# -- quiet sessions ------------------------------------------------------------------------------------


def btw_replay(claude: Claude, session: str, at: float) -> None:
    """A /btw side conversation replaying `session`'s message `m1` under a new request id."""
    Claude.append(claude.session_file(session), assistant("m1", "r-btw", at, isSidechain=True, sessionId=session))


def other_session_activity(claude: Claude, at: float) -> None:
    """A call in another project: the scan leaves the first session's files behind."""
    other = Claude(claude.root, "-home-u-other")
    Claude.append(other.session_file("other"), assistant("o1", "ro", at, sessionId="other"))


@pytest.mark.parametrize("quiet", [False, True])
def test_a_session_quiet_for_hours_is_forgotten_once_its_files_are_read(
    claude: Claude, home: Path, quiet: bool
) -> None:
    """Its message ids go (memory follows recent use): a /btw replay after such a gap counts as a call of
    its own, as after a restart from the cache; within `MSG_MEMORY` the replay is still recognised."""
    now = T0 + (MSG_MEMORY + timedelta(hours=1) if quiet else timedelta(hours=1))
    fed = Fed(ClaudeCodeSource(SourceContext(home=home, env={}, clock=lambda: now)))
    Claude.append(claude.session_file(), user("go", "p1", 0.0), assistant("m1", "r1", 1.0))
    other_session_activity(claude, 2.0)
    fed.poll()
    btw_replay(claude, SESSION, 3.0)
    other_session_activity(claude, 4.0)  # written too: the next poll moves between the two again
    fed.poll()
    keys = sorted(e.key for e in fed.events(EventKind.CALL))
    assert keys == (["m1:r-btw", "m1:r1", "o1:ro"] if quiet else ["m1:r1", "o1:ro"])


# -- timestamps ----------------------------------------------------------------------------------------

STAMPS = [
    "2026-11-24T13:08:47.983Z", "2026-11-24T13:08:47Z", "2026-11-24T13:08Z", "2026-11-24T13Z", "2026-11-24Z",
    "20261124T130847Z", "2026-11-24T13:08:47.9Z", "2026-11-24T13:08:47.123456Z", "2026-11-24 13:08:47Z",
    " 2026-11-24T13:08:47.983Z", "2026-11-24T13:08:47.983+00:00Z", "2026-11-24T13:08:47.983+05:00",
    "2026-11-24T13:08:47.983z", "Z", "2026-13-24T13:08:47Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
]  # fmt: skip


def general_parse(value: str) -> datetime | str:
    """`parse_iso`'s general path, spelled out: strip, `Z` → `+00:00`, parse, convert to UTC."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return "timestamp not ISO 8601"
    if ts.tzinfo is None:
        return "timestamp without timezone"
    return ts.astimezone(timezone.utc)


@pytest.mark.parametrize("stamp", STAMPS)
def test_a_z_timestamp_parses_to_what_the_general_path_gives(stamp: str) -> None:
    want = general_parse(stamp)
    try:
        got: datetime | str = parse_iso(stamp)
    except BadTimestamp as exc:
        got = str(exc)
    if isinstance(want, datetime) and isinstance(got, str):
        assert got == "timestamp out of range"
    else:
        assert got == want
    if isinstance(got, datetime):
        assert got.tzinfo is timezone.utc and got.isoformat() == want.isoformat()  # type: ignore[union-attr]


# -- the cache's digests -------------------------------------------------------------------------------


def test_folded_digests_survive_the_cache_and_a_bad_one_is_refused() -> None:
    """The folded digests travel as one base64 column: a re-read copy after a restore is still known."""

    def call(i: int) -> UsageEvent:
        ts = FIXED_NOW - timedelta(hours=2, minutes=i % 5, seconds=i)
        return UsageEvent(EventKind.CALL, ts, "claude-code", f"k{i}", tokens=10 + i)

    led = Ledger()
    led.detail_floor = FIXED_NOW - timedelta(hours=1)
    assert all(led.add(call(i)) for i in range(50))
    dump = json.loads(json.dumps(led.dump()))  # through text, as the cache file goes
    again = Ledger()
    again.detail_floor = led.detail_floor
    again.restore(dump)
    assert again.size() == led.size()
    assert not again.add(call(7)) and again.add(call(50))
    window = (FIXED_NOW - timedelta(days=1), FIXED_NOW)
    assert again.count(*window).tokens == led.count(*window).tokens + 60
    for bad in ("not base64!", "AAAA", 12):
        dump["buckets"]["calls"]["seen"] = bad
        with pytest.raises((ValueError, TypeError)):
            Ledger().restore(dump)
