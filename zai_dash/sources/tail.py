"""Append-only JSONL tailing by byte offset: the one tail loop every JSONL source uses."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from zai_dash.sources.base import Skips

MAX_LINE_BYTES = 8 * 1024 * 1024
"""Longer lines are skipped (and counted) without being held in memory."""
READ_CHUNK = 1024 * 1024


@dataclass(slots=True)
class TailLine:
    """One complete line read from a file: bytes without the newline, and its 1-based number."""

    data: bytes
    number: int


class JsonlTail:
    """Reads only the bytes appended to one file since the last call.

    Keeps `(inode, offset, pending)`: a partial last line stays pending until its newline arrives, so
    it is parsed exactly once. A file that shrank (truncation) or has a new inode (replaced) is read
    again from the start; callers dedup by key, so nothing counts twice. A deleted file yields nothing.
    """

    def __init__(self, path: Path, skips: Skips | None = None, max_line: int = MAX_LINE_BYTES) -> None:
        self.path = path
        self.skips = skips or Skips()
        self.max_line = max_line
        self.inode: int | None = None
        self.offset = 0
        self.line_number = 0
        self._pending = b""
        self._discarding = False
        self.resets = 0
        """How many times the file was found truncated or replaced."""

    def read_new(self) -> Iterator[TailLine]:
        """Yield complete lines appended since the last call (empty lines are passed over)."""
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
        if st.st_size == self.offset:
            return
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed in finally, read in chunks
        except IsADirectoryError:
            self.skips.add_file("a directory where a file was expected", str(self.path))
            return
        except OSError as exc:
            self.skips.add_file(f"unreadable file ({exc.strerror})", str(self.path))
            return
        try:
            handle.seek(self.offset)
            while True:
                chunk = handle.read(READ_CHUNK)
                if not chunk:
                    break
                self.offset += len(chunk)
                yield from self._split(chunk)
        finally:
            handle.close()

    def _restart(self) -> None:
        self.offset = 0
        self.line_number = 0
        self._pending = b""
        self._discarding = False

    def _split(self, chunk: bytes) -> Iterator[TailLine]:
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                rest = chunk[start:]
                if self._discarding:
                    return
                if len(self._pending) + len(rest) > self.max_line:
                    # Too long to hold: drop what we have and skip to the next newline.
                    self._pending = b""
                    self._discarding = True
                    return
                self._pending += rest
                return
            self.line_number += 1
            piece = chunk[start:nl]
            start = nl + 1
            if self._discarding:
                self._discarding = False
                self.skips.add("line longer than 8 MiB", f"{self.path}:{self.line_number}")
                continue
            line = self._pending + piece if self._pending else piece
            self._pending = b""
            if len(line) > self.max_line:
                self.skips.add("line longer than 8 MiB", f"{self.path}:{self.line_number}")
                continue
            if line.strip():
                yield TailLine(line, self.line_number)


class TailSet:
    """Tails every file a discovery function returns; new files are picked up, deleted ones dropped.

    Args:
        discover: returns the files that should be tailed now (called on every poll, so it must be
            cheap: a directory walk, not a read).
        skips: where skipped lines are counted.
    """

    def __init__(self, discover: Callable[[], list[Path]], skips: Skips) -> None:
        self._discover = discover
        self.skips = skips
        self.tails: dict[Path, JsonlTail] = {}

    def poll(self) -> Iterator[tuple[JsonlTail, TailLine]]:
        """Yield `(tail, line)` for every new complete line in every file."""
        current = set(self._discover())
        for gone in [p for p in self.tails if p not in current]:
            del self.tails[gone]
        for path in sorted(current):
            tail = self.tails.get(path)
            if tail is None:
                tail = self.tails[path] = JsonlTail(path, self.skips)
            for line in tail.read_new():
                yield tail, line
