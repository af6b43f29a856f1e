"""The persistent cache: the ledger and every tailed file's offset, so a restart reads only new bytes.

`$XDG_CACHE_HOME/zai-dash/cache-v4.json`: versioned, written atomically (so two zai-dash processes at
once never see half a file; the last writer wins) a part at a time (the document is never whole in memory
beside the ledger), and rebuilt silently when corrupt, from another
version, built with another config, or when any cached file was replaced, truncated or deleted since
(restoring then would not be invisible: the numbers must equal a cold scan's).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from zai_dash.domain.ledger import Ledger, Packed
from zai_dash.paths import cache_dir
from zai_dash.safeio import STATE_MAX_BYTES, read_capped
from zai_dash.scan import paused_gc
from zai_dash.sources.base import SavedState, ToolSource
from zai_dash.statefile import write_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 4
"""2: the ledger keeps a week in minute buckets, events carry cached tokens and credits. 3: each minute's
digests as one base64 string (a warm start decodes them in one call per minute, not one int each). 4: the
ledger's detail events and buckets as columns (base64 arrays, strings in one table), so a warm start
decodes a few long strings instead of a list per event and per tally."""
FUTURE_SLACK = timedelta(minutes=5)
"""A cache saved later than now plus this was written by a clock that ran ahead: it is not trusted."""


def cache_path(env: dict[str, str]) -> Path:
    """Where the cache lives for this environment."""
    return cache_dir(env) / f"cache-v{CACHE_VERSION}.json"


def save(
    path: Path, fingerprint: str, ledger: Ledger, sources: list[ToolSource], saved_at: datetime | None = None
) -> None:
    """Write the cache (best effort: a read-only cache dir costs speed, not correctness).

    What each source keeps comes from its own `export_state` (its offsets, and the skip counts behind
    them, without whole files: those are looked at and counted again after a restart). The document is
    encoded and written a part at a time (`_encode`): the ledger's columns, then each source's offsets.
    """
    tails = {}
    skips = {}
    for source in sources:
        state = source.export_state()
        if state is not None:
            tails[source.name] = state.tails
            skips[source.name] = state.skips  # skipped lines behind the offsets are not read again
    parts = iter((
        ("version", CACHE_VERSION),
        ("fingerprint", fingerprint),
        ("saved_at", saved_at.timestamp() if saved_at is not None else None),
        ("ledger", ledger.dump_parts()),
        ("skips", skips),
        ("tails", iter(tails.items())),
    ))  # fmt: skip
    try:
        with paused_gc():  # the dump is many short-lived strings and arrays
            write_atomic(path, _encode(parts), durable=True)
    except TypeError as exc:  # orjson meets a value it cannot encode (the old file stays)
        log.warning("cache not written: %s", exc)
        return
    except OSError as exc:
        log.warning("cache not written: %s", exc)
        return
    remove_superseded(path.parent)


def _encode(parts: Iterator[tuple[str, Any]]) -> Iterator[bytes]:
    """One JSON object, written part by part: a value that is itself an iterator of (name, value) pairs is an
    object written the same way, and a `Packed` column is written a chunk at a time, so only one column
    (or one source's offsets) is being encoded at any moment."""
    yield b"{"
    for i, (name, value) in enumerate(parts):
        yield (b"," if i else b"") + orjson.dumps(name) + b":"
        if isinstance(value, Iterator):
            yield from _encode(value)
        elif isinstance(value, Packed):
            yield b'"'  # base64 needs no escaping
            yield from value.chunks()
            yield b'"'
        else:
            yield orjson.dumps(value)
    yield b"}"


def remove_superseded(folder: Path) -> None:
    """Delete the caches of earlier versions beside this one (best effort).

    A version bump changes the file name, and no later run ever reads the old file again: without this
    an upgrade would leave the previous cache (often megabytes) in the cache folder for good.
    """
    for version in range(1, CACHE_VERSION):
        try:
            (folder / f"cache-v{version}.json").unlink(missing_ok=True)
        except OSError as exc:  # a read-only or foreign file costs disk space, never a command
            log.info("old cache not removed: %s", exc)


def load(path: Path, fingerprint: str, ledger: Ledger, sources: list[ToolSource], now: datetime | None = None) -> bool:
    """Restore the ledger and tail offsets from the cache if it is valid for this run.

    Any shape error anywhere in the document (not just a bad version) means a cold scan, never a
    crash; a cache saved in the future (a clock that ran ahead) is not trusted either.

    Returns:
        Whether the cache was used. On False nothing was changed and the caller scans cold.
    """
    try:
        with paused_gc(freeze=True):  # what a warm start restores lives as long as the process
            return _load(path, fingerprint, ledger, sources, now)
    except Exception as exc:  # a cache of any shape must never stop a command
        log.info("cache ignored: %s: %s", type(exc).__name__, exc)
        return False


def _load(path: Path, fingerprint: str, ledger: Ledger, sources: list[ToolSource], now: datetime | None) -> bool:
    try:
        doc: Any = orjson.loads(read_capped(path, STATE_MAX_BYTES))
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION or doc.get("fingerprint") != fingerprint:
        return False
    saved_at = doc.get("saved_at")
    if now is not None and (not isinstance(saved_at, (int, float)) or saved_at > (now + FUTURE_SLACK).timestamp()):
        return False
    tails = doc.get("tails")
    if not isinstance(tails, dict):
        return False
    by_name = {s.name: s for s in sources}
    # Check every file before changing anything, so a stale cache is all-or-nothing.
    for name, states in tails.items():
        source = by_name.get(name)
        if source is None or not source.can_restore(states):
            return False
    restored = Ledger(ledger.meter)
    restored.calls_floor, restored.mcp_floor = ledger.calls_floor, ledger.mcp_floor
    restored.detail_floor = ledger.detail_floor
    restored.restore(doc["ledger"])
    skips = _saved_skips(doc.get("skips"), by_name)
    ledger.adopt(restored)
    for name, states in tails.items():
        by_name[name].restore_state(SavedState(states, skips.get(name, {})))
    return True


def _saved_skips(saved: object, by_name: dict[str, ToolSource]) -> dict[str, dict[str, dict[str, Any]]]:
    """Validated per-source `Skips.export_lines` entries from the cache (raises on a bad shape)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    if not isinstance(saved, dict):
        raise TypeError("skips is not an object")
    for name, entry in saved.items():
        counts, first = entry["counts"], entry["first"]
        if name not in by_name or not isinstance(counts, dict) or not isinstance(first, dict):
            raise TypeError("skips entry of the wrong shape")
        if not all(type(n) is int and n >= 0 for n in counts.values()):
            raise ValueError("skip count not a non-negative integer")
        out[name] = {
            "counts": {str(k): n for k, n in counts.items()},
            "first": {str(k): str(v) for k, v in first.items()},
        }
    return out
