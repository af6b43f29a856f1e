"""The state file a running dashboard publishes, so `zai-dash status` can answer without scanning.

`$XDG_CACHE_HOME/zai-dash/state.json` holds the latest snapshot document, the writer's pid, and a
fingerprint of the config it was built with. It is written atomically (temp file + rename), so a
reader never sees half a file, and two dashboards at once simply take turns being the latest.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from zai_dash.clock import seconds_since_mtime
from zai_dash.paths import dashboard_state_file
from zai_dash.safeio import STATE_MAX_BYTES, read_capped

STALE_TEMP_AFTER = 600.0
"""Seconds after which a temp file beside ours is the leftover of a killed write (a live one takes ms)."""
FRESH_FOR = timedelta(seconds=90)
"""A state file older than this is ignored (the dashboard heartbeats every 30 s)."""


def write_atomic(path: Path, data: bytes | Iterable[bytes], durable: bool = False) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a mix.

    Args:
        path: the file to replace.
        data: its new content, or its parts in order (written as they come, so a large file need never
            be whole in memory; an exception while they are made leaves the old file).
        durable: `fsync` the file and its directory, so the new content survives a crash (the cache;
            the state file is rewritten every few seconds and need not be).
    """
    import tempfile  # here, not at the top: `status` only reads, and tempfile pulls in shutil, random, bz2, lzma

    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, bytes):
                fh.write(data)
            else:
                for part in data:
                    fh.write(part)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        with contextlib.suppress(OSError):
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)


def remove_stale_temps(path: Path, older_than: float = STALE_TEMP_AFTER) -> int:
    """Delete temp files a killed `write_atomic` of `path` left behind; returns how many."""
    removed = 0
    prefix = f".{path.name}."
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        with contextlib.suppress(OSError):
            if (
                entry.is_file(follow_symlinks=False)
                and seconds_since_mtime(entry.stat(follow_symlinks=False).st_mtime) > older_than
            ):
                os.unlink(entry.path)
                removed += 1
    return removed


def publish(doc: dict[str, Any], fingerprint: str, path: Path | None = None) -> None:
    """Publish a snapshot document (best effort: a full disk must not stop the dashboard)."""
    payload = {"pid": os.getpid(), "fingerprint": fingerprint, "doc": doc}
    try:
        write_atomic(path or dashboard_state_file(), json.dumps(payload, ensure_ascii=False).encode())
    except OSError:
        pass


def read_fresh(fingerprint: str, now: datetime, path: Path | None = None) -> dict[str, Any] | None:
    """The published document if it is fresh, from a live dashboard, built with the same config."""
    try:
        payload = json.loads(read_capped(path or dashboard_state_file(), STATE_MAX_BYTES))
        doc = payload["doc"]
        pid = int(payload["pid"])
        written = datetime.fromisoformat(doc["at"])
        if not isinstance(doc, dict) or payload.get("fingerprint") != fingerprint or pid <= 0:
            return None
        if not timedelta(0) <= now - written <= FRESH_FOR or not _alive(pid):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None
    return doc


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
