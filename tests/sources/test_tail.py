"""The shared JSONL tailer: offsets, partial lines, truncation, replacement, deletion, long lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zai_dash.sources.base import Skips
from zai_dash.sources.tail import JsonlTail, TailSet


def _read(tail: JsonlTail) -> list[bytes]:
    return [line.data for line in tail.read_new()]


def test_reads_only_appended_bytes(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a":1}\n{"a":2}\n')
    tail = JsonlTail(p)
    assert _read(tail) == [b'{"a":1}', b'{"a":2}']
    assert _read(tail) == []
    with open(p, "ab") as fh:
        fh.write(b'{"a":3}\n')
    assert _read(tail) == [b'{"a":3}']


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a":1}\n{"a":')
    tail = JsonlTail(p)
    assert _read(tail) == [b'{"a":1}']
    with open(p, "ab") as fh:
        fh.write(b"2}")
    assert _read(tail) == []  # still no newline: never parsed half
    with open(p, "ab") as fh:
        fh.write(b"\n")
    assert _read(tail) == [b'{"a":2}']  # exactly once
    assert _read(tail) == []


def test_truncation_rereads_from_start(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a":1}\n{"a":2}\n')
    tail = JsonlTail(p)
    _read(tail)
    p.write_bytes(b'{"b":1}\n')
    assert _read(tail) == [b'{"b":1}']
    assert tail.resets == 1


def test_new_inode_rereads(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a":1}\n')
    tail = JsonlTail(p)
    _read(tail)
    tmp = tmp_path / "a.tmp"
    tmp.write_bytes(b'{"a":1}\n{"a":2}\n')
    os.replace(tmp, p)
    assert _read(tail) == [b'{"a":1}', b'{"a":2}']
    assert tail.resets == 1


def test_deleted_file_yields_nothing(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b"{}\n")
    tail = JsonlTail(p)
    _read(tail)
    p.unlink()
    assert _read(tail) == []


def test_overlong_line_is_skipped_and_counted_and_next_line_survives(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    skips = Skips()
    tail = JsonlTail(p, skips, max_line=1000)
    with open(p, "wb") as fh:
        fh.write(b'{"ok":1}\n' + b"x" * 5000)
    assert _read(tail) == [b'{"ok":1}']
    with open(p, "ab") as fh:
        fh.write(b"x" * 5000 + b'\n{"ok":2}\n')
    assert _read(tail) == [b'{"ok":2}']
    assert skips.lines == 1
    assert tail.line_number == 3


def test_directory_is_counted_not_raised(tmp_path: Path) -> None:
    d = tmp_path / "dir.jsonl"
    d.mkdir()
    skips = Skips()
    assert _read(JsonlTail(d, skips)) == []
    assert skips.files == 1


def test_tailset_picks_up_new_files_and_drops_deleted(tmp_path: Path) -> None:
    skips = Skips()
    ts = TailSet(lambda: sorted(tmp_path.glob("*.jsonl")), skips)
    (tmp_path / "a.jsonl").write_bytes(b"1\n")
    assert [line.data for _, line in ts.poll()] == [b"1"]
    (tmp_path / "b.jsonl").write_bytes(b"2\n")
    assert [line.data for _, line in ts.poll()] == [b"2"]
    (tmp_path / "a.jsonl").unlink()
    assert list(ts.poll()) == []
    assert set(ts.tails) == {tmp_path / "b.jsonl"}


def test_long_file_is_entered_near_since_without_losing_relevant_lines(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from zai_dash.sources.tail import SEEK_MARGIN

    p = tmp_path / "long.jsonl"
    t0 = datetime(2026, 10, 1, tzinfo=timezone.utc)
    pad = "x" * 300
    with open(p, "w") as fh:
        for i in range(20000):  # ~6.5 MB, one line a minute
            ts = (t0 + timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
            fh.write(f'{{"type":"user","timestamp":"{ts}","n":{i},"pad":"{pad}"}}\n')
    since = t0 + timedelta(minutes=15000)
    tail = JsonlTail(p, since=since.timestamp())
    got = [int(line.data.split(b'"n":')[1].split(b",")[0]) for line in tail.read_new()]
    assert tail.seeked
    assert got[-1] == 19999
    assert 15000 in got and got == list(range(got[0], 20000))  # contiguous from the entry point
    first_needed = 15000 - int(SEEK_MARGIN // 60)
    assert first_needed - 500 <= got[0] <= first_needed  # entered within a few hundred lines of the margin
    # Short files are read whole.
    short = tmp_path / "short.jsonl"
    short.write_text('{"timestamp":"2026-10-01T00:00:00Z"}\n')
    assert len(list(JsonlTail(short, since=since.timestamp()).read_new())) == 1


def test_quiet_file_is_swept_for_the_needle_and_later_appends_are_read_whole(tmp_path: Path) -> None:
    import time
    from datetime import datetime, timezone

    p = tmp_path / "old.jsonl"
    p.write_bytes(b'{"n":1}\n{"n":2,"t":"mcp__x"}\n{"n":3}\n{"n":4,"mcp__y":1}\n{"n":5')
    old = time.time() - 3 * 86400
    os.utime(p, (old, old))
    skips = Skips()
    quiet = datetime.fromtimestamp(time.time() - 86400, tz=timezone.utc)
    ts = TailSet(lambda: [p], skips, quiet_before=quiet, needle=b"mcp__")
    got = [(line.number, line.data) for _, line in ts.poll()]
    assert got == [(2, b'{"n":2,"t":"mcp__x"}'), (4, b'{"n":4,"mcp__y":1}')]
    tail = ts.tails[p]
    assert tail.pending == b'{"n":5' and tail.offset == p.stat().st_size
    with open(p, "ab") as fh:
        fh.write(b'}\n{"n":6}\n')
    assert [line.data for _, line in ts.poll()] == [b'{"n":5}', b'{"n":6}']


@pytest.mark.wall_clock
def test_recent_file_is_read_line_by_line_even_with_a_needle(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    p = tmp_path / "new.jsonl"
    p.write_bytes(b'{"n":1}\n{"n":2,"t":"mcp__x"}\n')
    quiet = datetime.now(timezone.utc) - timedelta(days=1)
    ts = TailSet(lambda: [p], Skips(), quiet_before=quiet, needle=b"mcp__")
    assert [line.data for _, line in ts.poll()] == [b'{"n":1}', b'{"n":2,"t":"mcp__x"}']


@pytest.mark.parametrize("chunk", [16, 48, 64, 100, 4096])
@pytest.mark.parametrize("odd", [False, True])
def test_lines_keep_their_numbers_across_chunks_plain_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, odd: bool
) -> None:
    # Lines of 16 bytes with their newline: chunks of a multiple of that hold whole plain lines (split in
    # one pass) until an odd line (blank, whitespace, overlong) shifts them; others carry a line's head
    # over to the next chunk.
    monkeypatch.setattr("zai_dash.sources.tail.READ_CHUNK", chunk)
    lines = [b'{"n":%03d,"p":1}' % i for i in range(60)]
    if odd:
        lines[9], lines[23], lines[41] = b"", b"   ", b'{"long":"' + b"y" * 300 + b'"}'
    p = tmp_path / "a.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    skips = Skips()
    tail = JsonlTail(p, skips, max_line=200)
    got = [(line.number, line.data) for line in tail.read_new()]
    assert got == [(i + 1, data) for i, data in enumerate(lines) if data.strip() and len(data) <= 200]
    assert skips.lines == (1 if odd else 0)
    assert tail.line_number == len(lines)


def test_a_focused_poll_takes_no_stat_left_from_a_walk(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a":1}\n')
    stats: dict[Path, os.stat_result] = {}

    def discover() -> list[Path]:
        stats[p] = os.stat(p)  # as Claude Code's walk does: the stat it took, for the read
        return [p]

    ts = TailSet(discover, Skips(), stats=stats)
    assert [line.data for _, line in ts.poll()] == [b'{"a":1}']
    stats[p] = os.stat(p)  # a walk's stat no poll took (the file then grows)
    with open(p, "ab") as fh:
        fh.write(b'{"a":2}\n')
    with ts.focus([p]):
        assert [line.data for _, line in ts.poll()] == [b'{"a":2}']
