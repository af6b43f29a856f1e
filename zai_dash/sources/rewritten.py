"""JSON files rewritten whole on every save: the one reader every such source uses.

Cline, Roo Code and Kilo Code rewrite `ui_messages.json` whole on each save (Cline with a plain
`writeFile`, so a reader can catch it half written; Roo with temp file + rename, so the inode changes),
the Cline SDK rewrites `*.messages.json`, Droid rewrites `*.settings.json`. None of them can be tailed.

The reader keeps a stamp `(inode, size, mtime_ns)` per path and parses again only when it changes.
Following an atomic replace needs nothing special: the path is stat'ed each time, so the new inode is
seen. A read that fails to parse, or during which the stamp moved, is retried a few times with a short
sleep (a writer is mid-`writeFile`); if it still fails the stamp is not recorded, so the next poll tries
again, and the failure is counted once per stamp rather than once per poll.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zai_dash.safeio import UnsafeFile, open_regular
from zai_dash.sources.base import Skips
from zai_dash.sources.jsonutil import loads
from zai_dash.sources.stamp import FileStamp

MAX_JSON_BYTES = 256 * 1024 * 1024
"""Larger files are skipped (and counted): a task file this big is not something to hold in memory."""
TORN_RETRIES = 3
"""Extra attempts after a failed parse before giving up until the file changes again."""
TORN_DELAY = 0.03
"""Seconds between attempts: long enough for a `writeFile` of a few MiB to finish."""


@dataclass(frozen=True, slots=True)
class JsonVersion:
    """One successfully parsed version of a file."""

    value: Any
    stamp: FileStamp
    mtime: float
    """Modification time in epoch seconds (for callers that need a fallback timestamp)."""


class RewrittenJson:
    """Parses JSON files only when they changed, surviving torn writes and atomic replaces.

    Args:
        skips: where unreadable or malformed files are counted.
        retries: extra attempts after a failed parse.
        delay: seconds to sleep between attempts.
        max_bytes: files larger than this are skipped.
    """

    def __init__(
        self,
        skips: Skips,
        retries: int = TORN_RETRIES,
        delay: float = TORN_DELAY,
        max_bytes: int = MAX_JSON_BYTES,
    ) -> None:
        self.skips = skips
        self.retries = retries
        self.delay = delay
        self.max_bytes = max_bytes
        self._good: dict[Path, JsonVersion] = {}
        self._failed: dict[Path, FileStamp] = {}
        self.parses = 0
        """How many times a file was actually parsed (tests use it to prove unchanged files are not)."""

    def changed(self, path: Path) -> JsonVersion | None:
        """The new version of `path` if it changed since the last successful read, else None.

        None also covers a missing file, an unreadable one and one that is still torn after the retries.
        """
        st = self._stat(path)
        if st is None:
            return None
        stamp = FileStamp.of(st)
        good = self._good.get(path)
        if good is not None and good.stamp == stamp:
            return None
        if self._failed.get(path) == stamp:
            return None  # same broken bytes as last time: wait for the writer
        version = self._read(path, st)
        if version is not None:
            self._good[path] = version
            self._failed.pop(path, None)
        return version

    def current(self, path: Path) -> JsonVersion | None:
        """The latest good version of `path` (parsing it again if it changed), or None if there is none.

        Keeps the last good value while the file is torn; forgets it when the file is gone.
        """
        if not path.exists():
            self._good.pop(path, None)
            self._failed.pop(path, None)
            return None
        self.changed(path)
        return self._good.get(path)

    def forget(self, path: Path) -> None:
        """Drop what is remembered of `path` (the next `changed` parses it again)."""
        self._good.pop(path, None)
        self._failed.pop(path, None)

    def retain(self, keep: set[Path]) -> None:
        """Forget every path not in `keep` (files that vanished or fell out of the window)."""
        for path in [p for p in self._good if p not in keep]:
            del self._good[path]
        for path in [p for p in self._failed if p not in keep]:
            del self._failed[path]

    def _stat(self, path: Path) -> os.stat_result | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            self.skips.add_file(f"unreadable file ({exc.strerror})", str(path))
            return None
        return st

    def _read(self, path: Path, st: os.stat_result) -> JsonVersion | None:
        """Read and parse, retrying while the file is torn or moving under us."""
        reason = "malformed or torn JSON file"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.delay)
                fresh = self._stat(path)
                if fresh is None:
                    return None
                st = fresh
            if st.st_size > self.max_bytes:
                self._fail(path, FileStamp.of(st), "JSON file larger than 256 MiB")
                return None
            try:
                with open_regular(path) as handle:
                    data = handle.read(self.max_bytes + 1)
            except FileNotFoundError:
                return None  # replaced or deleted between stat and open: the next poll sees the new file
            except UnsafeFile as exc:  # a directory, FIFO (would block), socket or device
                self._fail(path, FileStamp.of(st), exc.reason)
                return None
            except OSError as exc:
                self.skips.add_file(f"unreadable file ({exc.strerror})", str(path))
                return None
            after = self._stat(path)
            if after is None:
                return None
            if FileStamp.of(after) != FileStamp.of(st) or len(data) != st.st_size:
                st = after
                continue  # the writer moved on while we read: the bytes may be a mix
            if not data.strip():
                reason = "empty JSON file"
                continue  # `writeFile` truncates first: an empty file is usually mid-write
            self.parses += 1
            try:
                value = loads(data)
            except ValueError:
                reason = "malformed or torn JSON file"
                continue
            return JsonVersion(value, FileStamp.of(st), st.st_mtime)
        self._fail(path, FileStamp.of(st), reason)
        return None

    def _fail(self, path: Path, stamp: FileStamp, reason: str) -> None:
        if self._failed.get(path) != stamp:
            self.skips.add_file(reason, str(path))
        self._failed[path] = stamp
