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

from zai_dash.sources.safeio import STATE_MAX_BYTES, read_capped
from zai_dash.statefile import cache_dir, write_atomic

log = logging.getLogger(__name__)


def memory_path(env: dict[str, str]) -> Path:
    """Where the last reading lives for this environment."""
    return cache_dir(env) / "official-v1.json"


def identity(key: str | None, endpoint: str) -> str:
    """A short hash naming the account and endpoint (never the key)."""
    return hashlib.sha256(f"{key or ''}\0{endpoint}".encode()).hexdigest()[:16]


def save(path: Path, who: str, data: Any, fetched_at: datetime) -> None:
    """Remember a successful reading (best effort)."""
    try:
        payload = json.dumps({"identity": who, "fetched_at": fetched_at.timestamp(), "data": data})
        write_atomic(path, payload.encode())
    except (OSError, TypeError, ValueError) as exc:
        log.info("official reading not saved: %s", exc)


def load(path: Path, who: str, now: datetime) -> tuple[Any, datetime] | None:
    """The remembered `(data, fetched_at)` for this account, or None (missing, other account, bad shape,
    or fetched in the future)."""
    try:
        doc = json.loads(read_capped(path, STATE_MAX_BYTES))
        if not isinstance(doc, dict) or doc.get("identity") != who:
            return None
        fetched_at = datetime.fromtimestamp(float(doc["fetched_at"]), tz=timezone.utc)
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None
    if fetched_at > now:
        return None
    return doc.get("data"), fetched_at
