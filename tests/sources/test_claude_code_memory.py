"""What the Claude Code adapter keeps per record (issue 15 §7): bytes counted by tracemalloc, not time.

The stream is `bench/soak.py`'s (`steady_lines`: a prompt, then the call that answers it, 20 a second);
the events are dropped after each poll, so what stays allocated is the adapter's own state. Its figures
per record, before and after, are in bench/RESULTS.md ("Soak (issue 15)"; `bench/claude_code_memory.py`).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.claude_code import SESSION, Claude, Fed, assistant, steady_lines
from zai_dash.domain.events import EventKind
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.claude_code import RECENT_MSGS, ClaudeCodeSource

START = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
PER_RECORD = 16
"""Bytes a record of a long session may add to the adapter's state: one 8-byte mark per call (two
records), and the set the marks wait in before they join the sorted array."""


class Stream:
    """A temp home's Claude Code project, read by one adapter a second's worth of records at a time."""

    def __init__(self, home: Path) -> None:
        self.project = home / ".claude" / "projects" / "-soak"
        self.project.mkdir(parents=True)
        self.now = START
        self.source = ClaudeCodeSource(SourceContext(home=home, env={}, clock=lambda: self.now))
        self.written = 0

    def feed(self, count: int, sessions: int = 1) -> None:
        lines = steady_lines(count, self.now, sessions=sessions, first=self.written)
        self.written += count
        for i in range(0, len(lines), 20):
            chunk = lines[i : i + 20]
            for session, _at, line in chunk:
                with open(self.project / f"{session}.jsonl", "ab") as fh:
                    fh.write(line + b"\n")
            self.now = chunk[-1][1] + timedelta(seconds=0.05)
            self.source.poll()  # events dropped: only the adapter's own state stays


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start(1)
    try:
        yield
    finally:
        tracemalloc.stop()


def held() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


@pytest.mark.parametrize("sessions", [1, 8])
def test_a_long_stream_adds_at_most_a_few_bytes_per_record(home: Path, traced: None, sessions: int) -> None:
    stream = Stream(home)
    stream.feed(2 * RECENT_MSGS * sessions + 1000, sessions)  # every session's recent ids full
    before = held()
    records = 6000
    stream.feed(records, sessions)
    grown = held() - before
    assert grown <= PER_RECORD * records, f"{grown / records:.1f} bytes per record"


def test_sessions_quiet_for_hours_free_their_state(tmp_path: Path, traced: None) -> None:
    """What stays of 20 sessions once they have been quiet for hours is per file (the tails), not per record."""

    runs = iter(range(3))

    def left_after(records: int) -> int:
        baseline = held()
        stream = Stream(tmp_path / f"run{next(runs)}")
        stream.feed(records, sessions=20)
        remembered = held() - baseline
        assert remembered > records * 4  # their message ids are remembered, ...
        stream.now += timedelta(hours=7)
        (stream.project / "later.jsonl").write_bytes(steady_lines(1, stream.now, first=10**7)[0][2] + b"\n")
        stream.source.poll()  # reading another session leaves theirs behind: forgotten
        left = held() - baseline
        del stream
        return left

    left_after(2000)  # a first run fills the process's caches and free lists, which tracemalloc counts too
    few, many = left_after(2000), left_after(14000)
    # ... until they have been quiet for hours: well under a mark per call (4 bytes a record) stays, the
    # rest is noise of the process (up to ~14 KB seen between two runs).
    assert many - few < 12000 * 2


def test_a_replay_of_a_message_long_out_of_the_recent_ones_is_still_dropped(claude: Claude, fed: Fed) -> None:
    path = claude.session_file()
    Claude.append(path, assistant("msg_parent", "req_a", 1.0))
    Claude.append(path, *(assistant(f"msg_{i}", f"req_{i}", 2.0 + i / 100) for i in range(RECENT_MSGS + 10)))
    fed.poll()
    Claude.append(path, assistant("msg_parent", "req_btw", 30.0, isSidechain=True))
    fed.poll()
    keys = {e.key for e in fed.events(EventKind.CALL)}
    assert "msg_parent:req_a" in keys and "msg_parent:req_btw" not in keys
    assert len(keys) == RECENT_MSGS + 11


def test_a_late_copy_of_an_older_message_keeps_the_largest(claude: Claude, fed: Fed) -> None:
    """Out of the recent ids, a copy in its own chain is emitted again; the ledger keeps the largest."""
    path = claude.session_file()
    Claude.append(path, assistant("msg_old", "req_old", 1.0, out=10))
    Claude.append(path, *(assistant(f"msg_{i}", f"req_{i}", 2.0 + i / 100) for i in range(RECENT_MSGS + 10)))
    fed.poll()
    Claude.append(path, assistant("msg_old", "req_old", 40.0, out=30), assistant("msg_old", "req_old", 41.0, out=20))
    fed.poll()
    calls = [e for e in fed.events(EventKind.CALL) if e.key.startswith("msg_old")]
    assert [(e.key, e.output_tokens, e.session) for e in calls] == [("msg_old:req_old", 30, SESSION)]
