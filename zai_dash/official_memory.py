"""The last official quota reading, kept on disk so `zai-dash status` never has to wait for the network.

`$XDG_CACHE_HOME/zai-dash/official-v1.json` holds the `data` of the last successful quota response and
when it arrived, written atomically by whichever process polled (dashboard, `report`, `doctor`,
`export`, `status`). `status` shows it with its age while its own poll, given a few tens of
milliseconds, either improves on it or is abandoned. The file names the account only by a short hash
of the key and endpoint: the key itself is never written.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from zai_dash.paths import cache_dir
from zai_dash.sources.safeio import STATE_MAX_BYTES, read_capped
from zai_dash.statefile import write_atomic

log = logging.getLogger(__name__)


def memory_path(env: dict[str, str]) -> Path:
    """Where the last reading lives for this environment."""
    return cache_dir(env) / "official-v1.json"


def identity(key: str | None, endpoint: str) -> str:
    """A short hash naming the account and endpoint (never the key)."""
    return hashlib.sha256(f"{key or ''}\0{endpoint}".encode()).hexdigest()[:16]


def save(path: Path, who: str, data: Any, fetched_at: datetime) -> None:
    """Remember a successful reading (best effort)."""
    _write(path, {"identity": who, "fetched_at": fetched_at.timestamp(), "attempted_at": fetched_at.timestamp(),
                  "data": data})  # fmt: skip


def note_attempt(path: Path, who: str, at: datetime) -> None:
    """Remember that a poll was tried (failed, abandoned): `status` then leaves the endpoint alone a while."""
    doc = _read(path, who) or {"identity": who}
    doc["attempted_at"] = at.timestamp()
    _write(path, doc)


def attempted_within(path: Path, who: str, now: datetime, seconds: float) -> bool:
    """Whether any process polled this account's endpoint in the last `seconds`."""
    doc = _read(path, who)
    at = doc.get("attempted_at") if doc else None
    return isinstance(at, (int, float)) and 0 <= now.timestamp() - at < seconds


def _write(path: Path, doc: dict[str, Any]) -> None:
    try:
        write_atomic(path, json.dumps(doc).encode())
    except (OSError, TypeError, ValueError) as exc:
        log.info("official reading not saved: %s", exc)


def _read(path: Path, who: str) -> dict[str, Any] | None:
    try:
        doc = json.loads(read_capped(path, STATE_MAX_BYTES))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("identity") == who else None


def load(path: Path, who: str, now: datetime) -> tuple[Any, datetime] | None:
    """The remembered `(data, fetched_at)` for this account, or None (missing, other account, bad shape,
    or fetched in the future)."""
    doc = _read(path, who)
    if doc is None:
        return None
    try:
        fetched_at = datetime.fromtimestamp(float(doc["fetched_at"]), tz=timezone.utc)
    except (ValueError, KeyError, TypeError, OverflowError):
        return None
    if fetched_at > now:
        return None
    return doc.get("data"), fetched_at
