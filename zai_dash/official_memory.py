"""The last official quota reading, kept on disk so `zai-dash status` never has to wait for the network.

`$XDG_CACHE_HOME/zai-dash/official-v1.json` holds the `data` of the last successful quota response and
when it arrived, written atomically by whichever process polled (dashboard, `report`, `doctor`,
`export`, or the background refresh below). The file names the account only by a short hash of the
key and endpoint: the key itself is never written.

`status` never polls: it shows this reading with its age. When the reading is stale and nobody tried
the endpoint within an interval, it starts `python -m zai_dash.official_memory` detached (its own
session, no terminal, no pipes the caller waits on) and returns at once; that child polls once, within
the source's total deadline, and saves what it got for the next `status`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash.detached import start_detached
from zai_dash.paths import cache_dir
from zai_dash.safeio import STATE_MAX_BYTES, read_capped
from zai_dash.statefile import write_atomic

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from zai_dash.sources.zai_quota import ZaiQuotaSource

log = logging.getLogger(__name__)

REFRESH_MODULE = "zai_dash.official_memory"
"""What `refresh_in_background` runs with `python -m` (this module's `main`)."""


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


def locate(quota: ZaiQuotaSource, env: Mapping[str, str]) -> tuple[Path, str]:
    """`(path, identity)` of the reading for this quota source's account and endpoint."""
    return memory_path(dict(env)), identity(quota.key.key, quota.endpoint())


def remember(path: Path, who: str, data: Any, at: datetime) -> None:
    """Record a poll's outcome: the reading when there is one (`data`), else that it was tried."""
    if data is not None:
        save(path, who, data, at)
    else:
        note_attempt(path, who, at)


def refresh_due(quota: ZaiQuotaSource, env: Mapping[str, str], now: datetime) -> bool:
    """Whether a new reading is wanted: a key, no fresh reading, and no poll by anyone within an interval."""
    if not quota.key.key or quota.is_fresh(now):
        return False
    path, who = locate(quota, env)
    return not attempted_within(path, who, now, quota.poller.interval)


def refresh_in_background(
    quota: ZaiQuotaSource, env: Mapping[str, str], now: datetime, config_path: Path | None
) -> bool:
    """Start one detached poll (`main` in a child process) and return at once.

    The attempt is noted first, so the `status` calls of the next interval do not start another. The
    child inherits the environment (the key stays there, never on a command line) and has no pipe the
    caller could wait on: a status bar reads `status`'s stdout to its end.

    Returns:
        Whether the child was started.
    """
    path, who = locate(quota, env)
    note_attempt(path, who, now)
    args = ["--config", str(config_path)] if config_path else []
    return start_detached(REFRESH_MODULE, args, what="official reading not refreshed")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zai_dash.official_memory [--config PATH]`: poll the quota endpoint once and remember it.

    Bounded by the source's own total deadline (`timeout` plus a little), like `report`'s poll.
    """
    import argparse
    import asyncio

    from zai_dash.config import ConfigError, load_config
    from zai_dash.sources.base import SourceContext
    from zai_dash.sources.tools import registered_tool_ids
    from zai_dash.sources.zai_quota import ZaiQuotaSource

    parser = argparse.ArgumentParser(prog=f"python -m {REFRESH_MODULE}", description=main.__doc__)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, known_tools=registered_tool_ids)
    except ConfigError:
        return 2
    if not config.api.enabled:
        return 0
    ctx = SourceContext.from_environment()
    quota = ZaiQuotaSource(config.api, ctx)
    attempt = asyncio.run(quota.refresh())
    path, who = locate(quota, ctx.env)
    remember(path, who, quota.last_data if attempt.ok else None, ctx.clock())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
