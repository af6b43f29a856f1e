"""The shared shape of an adapter over append-only JSONL files: tail, parse, stamp, never raise.

A subclass says where its files are (`_discover`) and what one parsed record means (`_record`); this class
tails them by byte offset, turns each line into a JSON object or a counted skip, guards the tail against
an odd record, and stamps records with their own ISO `timestamp` (before `since`: dropped).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from datetime import datetime
from pathlib import Path
from typing import Any

from zai_dash.sources.base import SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import record_time
from zai_dash.sources.tail import TailSet, decoded


class JsonlSource(ToolSource):
    """A tool adapter whose data is append-only JSONL files.

    Args:
        ctx: where to look.
        needle: bytes every MCP-call line contains; a file untouched since `ctx.calls_since` can only add
            MCP calls to the month, so on its first read only lines with these bytes are parsed.
    """

    def __init__(self, ctx: SourceContext, needle: bytes | None = None) -> None:
        super().__init__(ctx)
        self._tails = TailSet(self._discover, self.skips, since=ctx.since, quiet_before=ctx.calls_since, needle=needle)
        self._wall = ctx.clock()

    @abstractmethod
    def _discover(self) -> list[Path]:
        """The files to tail now (a directory walk, no reads)."""

    @abstractmethod
    def _record(self, path: Path, rec: dict[str, Any], where: str, batch: SourceBatch) -> None:
        """Turn one JSON object (line `where` of `path`) into events."""

    def file_count(self) -> int:
        """How many files are being tailed."""
        return len(self._tails.tails)

    def tail_sets(self) -> list[TailSet]:
        """The tails, whose offsets the engine's cache keeps."""
        return [self._tails]

    def poll(self) -> SourceBatch:
        """Read every line appended since the last poll; never raises for bad input."""
        batch = SourceBatch()
        self._wall = self.ctx.clock()
        self._refresh()
        for tail, _line, where, rec in decoded(self._tails.poll(), self.skips):
            if not isinstance(rec, dict):
                self.skips.add("not a JSON object", where)
                continue
            if not isinstance(rec.get("type"), str):
                self.skips.add("record type missing or not a string", where)
                continue
            try:
                self._record(tail.path, rec, where, batch)
            except Exception as exc:  # one odd record must never stop the tail
                self.skips.add(f"unexpected record shape ({type(exc).__name__})", where)
            self.spill_if_full(batch)
        return batch

    def _refresh(self) -> None:
        """Re-read what a poll needs besides the files (configs); nothing by default."""

    def _stamp(self, rec: dict[str, Any], where: str) -> datetime | None:
        """The record's `timestamp` (aware UTC), or None when it is bad (counted) or before `since`."""
        return record_time(rec, where, self.skips.add, self._wall, self.ctx.since)


def find_jsonl(folder: Path, depth: int, ctx: SourceContext, found: list[Path]) -> None:
    """Append every `*.jsonl` below `folder` (at most `depth` folders down) modified since `ctx.since`."""
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir():
                if depth > 0:
                    find_jsonl(Path(entry.path), depth - 1, ctx, found)
            elif entry.name.endswith(".jsonl") and ctx.mtime_relevant(entry.stat().st_mtime):
                found.append(Path(entry.path))
        except OSError:
            continue  # vanished between listing and stat


__all__ = ["JsonlSource", "find_jsonl"]
