"""Append-only JSONL tailing by byte offset: the one tail loop every JSONL source uses."""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from zai_dash.safeio import UnsafeFile, open_regular
from zai_dash.sources.base import Skips
from zai_dash.sources.jsonutil import loads

MAX_LINE_BYTES = 8 * 1024 * 1024
"""Longer lines are skipped (and counted) without being held in memory."""
READ_CHUNK = 1024 * 1024


@dataclass(slots=True)
class TailLine:
    """One complete line read from a file: bytes without the newline, and its 1-based number."""

    data: bytes
    number: int


FILTER_MAX_BYTES = 32 * 1024 * 1024
"""Files up to this size can be swept whole for a needle on their first read (it is held in memory
whole, so larger ones take the chunked path, whose lines are bounded by `MAX_LINE_BYTES`)."""
PROBE_LINE_BYTES = 1024 * 1024
"""At most this much of one line is read per probe of the first-offset search: a 10 GB file without a
newline must cost a bounded read, not 10 GB of memory."""
FINGERPRINT_BYTES = 64
"""How many bytes before the offset identify what was read: a file truncated and written again (even
longer, under the same inode) is read from the start when these bytes changed."""
SEEK_MIN_BYTES = 1024 * 1024
"""Files smaller than this are read from the start: a binary search would not pay for itself."""
SEEK_MARGIN = 3600.0
"""Seconds of slack before `since` when seeking: lines are only roughly in time order (sub-agents)."""

_TS_KEYS = (b'"timestamp":"', b'"timestamp": "')
_YIELDS = itertools.count(1)
"""Orders lines yielded by every tail set, so the engine can tell which line a failing poll was on."""


def line_timestamp(line: bytes) -> float | None:
    """Epoch seconds of a JSONL record's top-level-looking `"timestamp"` (ISO with zone), else None.

    A byte search, not a parse: it only steers a binary search, never decides what counts.
    """
    for key in _TS_KEYS:
        i = line.find(key)
        if i >= 0:
            start = i + len(key)
            end = line.find(b'"', start)
            if end < 0:
                return None
            text = line[start:end].decode("ascii", "replace").replace("Z", "+00:00")
            try:
                ts = datetime.fromisoformat(text)
            except ValueError:
                return None
            return ts.timestamp() if ts.tzinfo else None
    return None


def first_offset_since(handle: BinaryIO, size: int, since: float) -> int:
    """Byte offset of a line boundary at or before the first line stamped `>= since - SEEK_MARGIN`.

    Binary search over byte positions, reading one line at each probe, so a long append-only file is
    entered near the relevant part without parsing what comes before. Lines without a timestamp are
    stepped over; when in doubt the search errs early (more is read, nothing is lost).
    """
    target = since - SEEK_MARGIN
    lo, hi = 0, size
    while hi - lo > 64 * 1024:
        mid = (lo + hi) // 2
        handle.seek(mid)
        ts = None
        pos = mid
        partial = handle.readline(PROBE_LINE_BYTES)  # finish the line we landed in (bounded)
        if partial.endswith(b"\n"):
            pos = handle.tell()
            for _ in range(16):
                line = handle.readline(PROBE_LINE_BYTES)
                if not line:
                    break
                ts = line_timestamp(line)
                if ts is not None or not line.endswith(b"\n"):
                    break  # found, or a line too long to probe: err early
        if ts is None or ts >= target:
            hi = mid
        else:
            lo = pos
    if lo == 0:
        return 0
    handle.seek(lo)
    return lo


class JsonlTail:
    """Reads only the bytes appended to one file since the last call.

    Keeps `(inode, offset, pending)`: a partial last line stays pending until its newline arrives, so
    it is parsed exactly once. A file that shrank (truncation) or has a new inode (replaced) is read
    again from the start; callers dedup by key, so nothing counts twice. A deleted file yields nothing.
    """

    def __init__(
        self, path: Path, skips: Skips | None = None, max_line: int = MAX_LINE_BYTES, since: float | None = None
    ) -> None:
        self.path = path
        self.since = since
        """On the first read of a long file, start near the first line stamped at or after this (epoch s)."""
        self.skips = skips or Skips()
        self.max_line = max_line
        self.inode: int | None = None
        self.mtime_ns: int | None = None
        """The file's mtime when it was last read (a same-size rewrite changes it)."""
        self.fingerprint = b""
        """The `FINGERPRINT_BYTES` before the last line boundary read (see `boundary`)."""
        self._failed: tuple[int, int, int] | None = None
        self.offset = 0
        self.line_number = 0
        self._pending = b""
        self._discarding = False
        self.resets = 0
        """How many times the file was found truncated or replaced."""
        self.seeked = False
        """Whether the first read skipped an old head of the file (line numbers then count from there)."""

    def read_new(
        self, needle: bytes | tuple[bytes, ...] | None = None, st: os.stat_result | None = None
    ) -> Iterator[TailLine]:
        """Yield complete lines appended since the last call (empty lines are passed over).

        Args:
            needle: on a first read of a file that is not being written any more, yield only the lines
                that contain these bytes (or any of several: one `bytes.find` sweep each, not line by
                line), in file order. The offset still ends at the file's end, so later appends are
                read whole.
            st: the file's stat, taken just before by the caller (a discovery walk): not taken again.
        """
        if st is None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return
            except OSError as exc:
                self.skips.add_file(f"unreadable file ({exc.strerror})", str(self.path))
                return
        if self.inode is not None and (st.st_ino != self.inode or st.st_size < self.offset):
            self._restart()
            self.resets += 1
        self.inode = st.st_ino
        if st.st_size == self.offset and st.st_mtime_ns == self.mtime_ns:
            return
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp == self._failed:
            return  # counted once per version of the file, not once per poll
        try:
            handle = open_regular(self.path)
        except UnsafeFile as exc:  # a directory, FIFO (would block), socket or device
            self._failed = stamp
            self.skips.add_file(exc.reason, str(self.path))
            return
        except OSError as exc:
            self._failed = stamp
            self.skips.add_file(f"unreadable file ({exc.strerror})", str(self.path))
            return
        self._failed = None
        try:
            if self.offset and not self._same_prefix(handle):
                # Truncated and written again (maybe longer than before): what we read is gone.
                self._restart()
                self.resets += 1
            self.mtime_ns = st.st_mtime_ns
            if needle is not None and self.offset == 0 and st.st_size <= FILTER_MAX_BYTES:
                yield from self._read_filtered(handle, needle)
                return
            if self.offset == 0 and self.since is not None and st.st_size >= SEEK_MIN_BYTES:
                self.offset = first_offset_since(handle, st.st_size, self.since)
                self.seeked = self.offset > 0
            handle.seek(self.offset)
            while True:
                chunk = handle.read(READ_CHUNK)
                if not chunk:
                    break
                self.offset += len(chunk)
                yield from self._split(chunk)
        finally:
            self.fingerprint = _bytes_before(handle, self.boundary)
            handle.close()

    @property
    def boundary(self) -> int:
        """The offset of the end of the last complete line read (before any pending partial line)."""
        return self.offset - len(self._pending)

    def _same_prefix(self, handle: BinaryIO) -> bool:
        """Whether the bytes before the last boundary are still the ones read then."""
        return _bytes_before(handle, self.boundary) == self.fingerprint

    def _read_filtered(self, handle: BinaryIO, needle: bytes | tuple[bytes, ...]) -> Iterator[TailLine]:
        data = handle.read()
        end = data.rfind(b"\n") + 1  # a partial last line stays pending, as in a normal read
        self._pending = data[end:]
        self.offset = len(data)
        self.line_number = data.count(b"\n", 0, end)
        starts: set[int] = set()
        for one in (needle,) if isinstance(needle, bytes) else needle:
            pos = data.find(one, 0, end)
            while pos >= 0:
                start = data.rfind(b"\n", 0, pos) + 1
                starts.add(start)
                pos = data.find(one, data.find(b"\n", pos) + 1, end)
        for start in sorted(starts):
            stop = data.find(b"\n", start)
            line = data[start:stop]
            number = data.count(b"\n", 0, start) + 1
            if len(line) > self.max_line:
                self.skips.add("line longer than 8 MiB", f"{self.path}:{number}")
            else:
                yield TailLine(line, number)

    _POSITION = ("inode", "mtime_ns", "fingerprint", "offset", "line_number", "_pending", "_discarding", "seeked")
    """Everything that says where reading stands (for `TailSet.checkpoint`)."""

    def position(self) -> tuple[object, ...]:
        """Where reading stands now (see `_POSITION`)."""
        return tuple(getattr(self, name) for name in self._POSITION)

    def seek(self, position: tuple[object, ...]) -> None:
        """Go back to a `position()`."""
        for name, value in zip(self._POSITION, position, strict=True):
            setattr(self, name, value)

    @property
    def pending(self) -> bytes:
        """Bytes of a partial last line waiting for its newline."""
        return self._pending

    def _restart(self) -> None:
        self.fingerprint = b""
        self.offset = 0
        self.line_number = 0
        self._pending = b""
        self._discarding = False

    def _split(self, chunk: bytes) -> list[TailLine]:
        """The complete lines of `chunk` (a list, not a generator: one frame less per line of a history)."""
        # One C-level split per chunk rather than a find and a slice per line.
        out: list[TailLine] = []
        pieces = chunk.split(b"\n")
        rest = pieces.pop()  # what follows the last newline: the start of a line still being written
        if (
            pieces
            and not self._discarding
            and not self._pending
            and min(map(len, pieces)) > 0
            and max(map(len, pieces)) <= self.max_line
            and not any(map(bytes.isspace, pieces))
        ):
            # The common chunk (no carried-over line, no blank or overlong one): every piece is a line,
            # numbered in one C-level pass instead of the checks below line by line.
            first = self.line_number + 1
            self.line_number += len(pieces)
            out = list(map(TailLine, pieces, range(first, self.line_number + 1)))
            pieces = []
        for piece in pieces:
            self.line_number += 1
            if self._discarding:
                self._discarding = False
                self.skips.add("line longer than 8 MiB", f"{self.path}:{self.line_number}")
                continue
            if self._pending:
                piece = self._pending + piece
                self._pending = b""
            if len(piece) > self.max_line:
                self.skips.add("line longer than 8 MiB", f"{self.path}:{self.line_number}")
                continue
            if piece and not piece.isspace():  # not `strip()`: that copies every line to test it
                out.append(TailLine(piece, self.line_number))
        if self._discarding:
            return out
        if len(self._pending) + len(rest) > self.max_line:
            # Too long to hold: drop what we have and skip to the next newline.
            self._pending = b""
            self._discarding = True
            return out
        self._pending += rest
        return out


class TailSet:
    """Tails every file a discovery function returns; new files are picked up, deleted ones dropped.

    Args:
        discover: returns the files that should be tailed now (called on every poll, so it must be
            cheap: a directory walk, not a read).
        skips: where skipped lines are counted.
    """

    def __init__(
        self,
        discover: Callable[[], list[Path]],
        skips: Skips,
        since: datetime | None = None,
        quiet_before: datetime | None = None,
        needle: bytes | tuple[bytes, ...] | None = None,
        stats: dict[Path, os.stat_result] | None = None,
    ) -> None:
        self._discover = discover
        self.skips = skips
        self.since = since.timestamp() if since is not None else None
        self.quiet_before = quiet_before.timestamp() if quiet_before is not None else None
        """Files last modified before this hold only lines older than it …"""
        self.needle = needle
        """… so on their first read only lines containing `needle` can matter (e.g. MCP calls)."""
        self._stats = stats if stats is not None else {}
        """Stats the discovery walk took of the files it named (taken by the next poll, not taken twice)."""
        self.tails: dict[Path, JsonlTail] = {}
        self._resume: dict[str, list[Any]] = {}
        """Cached `export_state` entries of files not yet seen since a restore."""
        self.last_yielded: tuple[int, Path, TailLine] | None = None
        """(order, path, line) of the line most recently handed out, for `poison`."""
        self._poison: set[tuple[Path, int, int]] = set()
        """Lines whose handling raised: passed over (they were counted as skipped once)."""
        self._focus: list[Path] | None = None
        """While a wake-up's `focus` holds: the only files the next poll reads (no discovery walk)."""

    @contextmanager
    def focus(self, changed: Collection[Path]) -> Iterator[None]:
        """Make polls inside the block read only the `changed` files already followed (or resumed).

        A changed path not followed may be a new file (or a folder of them): then the polls discover as
        usual. Files not named are left where they stand, not dropped: a wake-up says what changed, not
        what still exists.
        """
        known = [p for p in changed if p in self.tails or str(p) in self._resume]
        if len(known) < len(changed):
            yield
            return
        self._focus = known
        try:
            yield
        finally:
            self._focus = None

    def poll(self) -> Iterator[tuple[JsonlTail, TailLine]]:
        """Yield `(tail, line)` for every new complete line in every file (only the focused ones, in a `focus`)."""
        stats = self._stats
        if self._focus is not None:
            current: Collection[Path] = self._focus
            stats.clear()  # no walk took them: what is left there is from an earlier one
        else:
            current = set(self._discover())
            for gone in [p for p in self.tails if p not in current]:
                del self.tails[gone]
        if self._resume and self._focus is None:
            # Cached files discovery no longer names (aged out, deleted) are forgotten, not carried forever.
            names = {str(p) for p in current}
            for stale in [name for name in self._resume if name not in names]:
                del self._resume[stale]
        for path in sorted(current, key=str):  # str() is cached on a Path; Path ordering is not
            tail = self.tails.get(path)
            if tail is None:
                tail = self.tails[path] = self._new_tail(path)
            # A stat the walk took moments ago is as good as a new one: a write after it is read next
            # poll, as one after this poll's read would be.
            st = stats.pop(path, None)
            needle = None
            if self.needle is not None and self.quiet_before is not None and tail.offset == 0:
                try:
                    if (st or os.stat(path)).st_mtime < self.quiet_before:
                        needle = self.needle
                except OSError:
                    continue
            for line in tail.read_new(needle, st):
                if self._poison and (path, line.number, zlib.crc32(line.data)) in self._poison:
                    continue
                self.last_yielded = (next(_YIELDS), path, line)
                yield tail, line

    def poison(self, path: Path, line: TailLine) -> None:
        """Pass over this line of `path` from now on (its handling raised; see `Engine.scan`)."""
        self._poison.add((path, line.number, zlib.crc32(line.data)))

    def export_state(self) -> dict[str, list[Any]]:
        """Per file `[inode, size, mtime_ns, offset, line_number, fingerprint]`.

        The offset is the last line boundary (a pending partial line is read again), the size and
        mtime those of that read, and the fingerprint (hex) the bytes just before the offset.
        """
        state: dict[str, list[Any]] = dict(self._resume)
        for path, tail in self.tails.items():
            if tail.inode is None or tail.mtime_ns is None:
                continue
            fingerprint = tail.fingerprint.hex()
            state[str(path)] = [tail.inode, tail.offset, tail.mtime_ns, tail.boundary, tail.line_number, fingerprint]
        return state

    @staticmethod
    def can_restore(state: object) -> bool:
        """Whether `export_state` output still describes the files on disk.

        Same inode, not shrunk, and (for a file that changed since) the same bytes before the offset:
        a file truncated and written again longer under the same inode is not resumed mid-line.
        """
        if not isinstance(state, dict):
            return False
        try:
            for name, (inode, size, mtime_ns, offset, line, fingerprint) in state.items():
                if not all(type(v) is int for v in (inode, size, mtime_ns, offset, line)):
                    return False
                if not isinstance(name, str) or not isinstance(fingerprint, str) or not 0 <= offset <= size:
                    return False
                st = os.stat(name)
                if st.st_ino != inode or st.st_size < offset:
                    return False
                if (st.st_size, st.st_mtime_ns) != (size, mtime_ns) and not _prefix_matches(name, offset, fingerprint):
                    return False
        except (OSError, TypeError, ValueError):
            return False
        return True

    def restore_state(self, state: dict[str, list[Any]]) -> None:
        """Resume every file at its cached offset (check `can_restore` first).

        Tails are made lazily, when discovery next names the file: a long history has thousands of
        quiet files, and building their objects up front is most of a warm start.
        """
        self._resume.update(state)

    def checkpoint(self) -> TailCheckpoint:
        """Where every file stands now, so a poll whose records were not all taken can be undone."""
        return TailCheckpoint(
            {path: tail.position() for path, tail in self.tails.items()},
            dict(self._resume),
        )

    def rollback(self, checkpoint: TailCheckpoint) -> None:
        """Put every file back where `checkpoint` found it: the next poll reads the same lines again."""
        tails: dict[Path, JsonlTail] = {}
        for path, position in checkpoint.positions.items():
            tail = self.tails.get(path) or JsonlTail(path, self.skips, since=self.since)
            tail.seek(position)
            tails[path] = tail
        self.tails = tails
        self._resume = dict(checkpoint.resume)

    def _new_tail(self, path: Path) -> JsonlTail:
        tail = JsonlTail(path, self.skips, since=self.since)
        resumed = self._resume.pop(str(path), None)
        if resumed is not None:
            inode, _size, mtime_ns, offset, line_number, fingerprint = resumed
            tail.inode, tail.offset, tail.line_number = inode, offset, line_number
            tail.mtime_ns, tail.fingerprint = mtime_ns, bytes.fromhex(fingerprint)
        return tail


def decoded(
    lines: Iterator[tuple[JsonlTail, TailLine]], skips: Skips, not_json: str = "malformed JSON"
) -> Iterator[tuple[JsonlTail, TailLine, str, Any]]:
    """Each line with its place (`file:line`) and its JSON value; a line that is not JSON is skipped and
    counted under `not_json`, so one torn line costs one skip and the tail reads on."""
    for tail, line in lines:
        where = f"{tail.path}:{line.number}"
        try:
            value = loads(line.data)
        except ValueError:
            skips.add(not_json, where)
            continue
        yield tail, line, where, value


@dataclass(frozen=True, slots=True)
class TailCheckpoint:
    """Every tail's position at one instant (see `TailSet.checkpoint`)."""

    positions: dict[Path, tuple[object, ...]]
    resume: dict[str, list[Any]]


def _prefix_matches(name: str, offset: int, fingerprint: str) -> bool:
    try:
        with open_regular(name) as handle:
            return _bytes_before(handle, offset) == bytes.fromhex(fingerprint)
    except (OSError, ValueError):
        return False


def _bytes_before(handle: BinaryIO, offset: int) -> bytes:
    """The up to `FINGERPRINT_BYTES` bytes before `offset` in an open file."""
    start = max(0, offset - FINGERPRINT_BYTES)
    try:
        return os.pread(handle.fileno(), offset - start, start)
    except OSError:
        return b""
