"""The state file a running dashboard publishes, so `zai-dash status` can answer without scanning.

`$XDG_CACHE_HOME/zai-dash/state.json` holds the latest snapshot document, the writer's pid, and a
fingerprint of the config it was built with. It is written atomically (temp file + rename), so a
reader never sees half a file, and two dashboards at once simply take turns being the latest.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

FRESH_FOR = timedelta(seconds=90)
"""A state file older than this is ignored (the dashboard heartbeats every 30 s)."""


def cache_dir(env: dict[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/zai-dash` (or the platform's cache dir)."""
    env = dict(os.environ) if env is None else env
    if env.get("XDG_CACHE_HOME"):
        return Path(env["XDG_CACHE_HOME"]) / "zai-dash"
    import platformdirs

    return Path(platformdirs.user_cache_dir("zai-dash"))


def state_path(env: dict[str, str] | None = None) -> Path:
    """Where the state file lives."""
    return cache_dir(env) / "state.json"


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def publish(doc: dict[str, Any], fingerprint: str, path: Path | None = None) -> None:
    """Publish a snapshot document (best effort: a full disk must not stop the dashboard)."""
    payload = {"pid": os.getpid(), "fingerprint": fingerprint, "doc": doc}
    try:
        write_atomic(path or state_path(), json.dumps(payload, ensure_ascii=False).encode())
    except OSError:
        pass


def read_fresh(fingerprint: str, now: datetime, path: Path | None = None) -> dict[str, Any] | None:
    """The published document if it is fresh, from a live dashboard, built with the same config."""
    try:
        payload = json.loads((path or state_path()).read_bytes())
        doc = payload["doc"]
        pid = int(payload["pid"])
        written = datetime.fromisoformat(doc["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if payload.get("fingerprint") != fingerprint or not _alive(pid):
        return None
    if not timedelta(0) <= now - written <= FRESH_FOR:
        return None
    return doc if isinstance(doc, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
