"""The persistent cache: the ledger and every tailed file's offset, so a restart reads only new bytes.

`$XDG_CACHE_HOME/zai-dash/cache-v2.json`: versioned, written atomically (so two zai-dash processes at
once never see half a file; the last writer wins), and rebuilt silently when corrupt, from another
version, built with another config, or when any cached file was replaced, truncated or deleted since
(restoring then would not be invisible: the numbers must equal a cold scan's).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson

from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import ToolSource
from zai_dash.statefile import cache_dir, write_atomic

log = logging.getLogger(__name__)

CACHE_VERSION = 2
"""2: the ledger keeps a week in minute buckets, events carry cached tokens and credits."""


def cache_path(env: dict[str, str]) -> Path:
    """Where the cache lives for this environment."""
    return cache_dir(env) / f"cache-v{CACHE_VERSION}.json"


def save(path: Path, fingerprint: str, ledger: Ledger, sources: list[ToolSource]) -> None:
    """Write the cache (best effort: a read-only cache dir costs speed, not correctness)."""
    tails = {}
    skips = {}
    for source in sources:
        sets = source.tail_sets()
        if sets:
            tails[source.name] = [ts.export_state() for ts in sets]
            # Skipped lines behind the cached offsets are not read again: keep their counts.
            skips[source.name] = {
                "counts": dict(source.skips.counts),
                "first": source.skips.first,
                "files": source.skips.files,
            }
    doc = {
        "version": CACHE_VERSION,
        "fingerprint": fingerprint,
        "ledger": ledger.dump(),
        "tails": tails,
        "skips": skips,
    }
    try:
        write_atomic(path, orjson.dumps(doc))
    except OSError as exc:
        log.warning("cache not written: %s", exc)


def load(path: Path, fingerprint: str, ledger: Ledger, sources: list[ToolSource]) -> bool:
    """Restore the ledger and tail offsets from the cache if it is valid for this run.

    Returns:
        Whether the cache was used. On False nothing was changed and the caller scans cold.
    """
    try:
        doc: Any = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    if not isinstance(doc, dict) or doc.get("version") != CACHE_VERSION or doc.get("fingerprint") != fingerprint:
        return False
    tails = doc.get("tails")
    if not isinstance(tails, dict):
        return False
    by_name = {s.name: s for s in sources}
    plan: list[tuple[Any, Any]] = []
    for name, states in tails.items():
        source = by_name.get(name)
        if source is None or not isinstance(states, list) or len(states) != len(source.tail_sets()):
            return False
        plan.extend(zip(source.tail_sets(), states, strict=True))
    # Check every file before changing anything, so a stale cache is all-or-nothing.
    if not all(ts.can_restore(state) for ts, state in plan):
        return False
    restored = Ledger(ledger.meter)
    restored.calls_floor, restored.mcp_floor = ledger.calls_floor, ledger.mcp_floor
    restored.detail_floor = ledger.detail_floor
    try:
        restored.restore(doc["ledger"])
    except (KeyError, TypeError, ValueError) as exc:
        log.info("cache ignored: %s", exc)
        return False
    ledger.adopt(restored)
    for ts, state in plan:
        ts.restore_state(state)
    for name, saved in (doc.get("skips") or {}).items():
        source = by_name.get(name)
        if source is None or not isinstance(saved, dict):
            continue
        source.skips.counts.update({str(k): int(v) for k, v in saved.get("counts", {}).items()})
        for reason, where in saved.get("first", {}).items():
            source.skips.first.setdefault(str(reason), str(where))
        source.skips.files += int(saved.get("files", 0))
    return True
