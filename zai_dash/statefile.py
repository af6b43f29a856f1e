"""The state file a running dashboard publishes, so `zai-dash status` can answer without scanning.

`$XDG_CACHE_HOME/zai-dash/state.json` holds the latest snapshot document, the writer's pid, a
fingerprint of the config it was built with and, when the process noted them (`note_inputs`), a digest
of its raw inputs and the time zone it formats with. It is written atomically (temp file + rename), so
a reader never sees half a file, and two dashboards at once simply take turns being the latest.

The raw-inputs digest (`inputs_digest`) lets `status` trust the document before loading any config: it
covers what the config is made of (the file's path, size, mtime and a CRC of its bytes; the variables
`load_config` and the time zone read; `--plan`; the package), so equal digests mean the same config.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from zai_dash import __version__
from zai_dash.clock import seconds_since_mtime
from zai_dash.paths import dashboard_state_file
from zai_dash.safeio import CONFIG_MAX_BYTES, STATE_MAX_BYTES, read_capped

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


INPUT_VARIABLES = (
    "ZAI_DASH_CONFIG", "ZAI_DASH_PLAN", "ZAI_DASH_BILLING", "ZAI_DASH_WEEKLY_RESET", "ZAI_DASH_RENEWAL_DAY",
    "ZAI_DASH_TIMEZONE", "TZ", "HOME", "XDG_CONFIG_HOME",
)  # fmt: skip
"""The environment `load_config` reads (the file's location, its `ZAI_DASH_<NAME>` overrides, `~` in
roots) and the time zone falls back to; `tests/commands/test_status_fast.py` holds it to config's list."""

LOCALTIME = "/etc/localtime"
"""The system zone's link, the last time-zone input (`config.resolve_timezone` reads its target)."""


def inputs_digest(config_arg: str | None, plan: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """A digest of everything the config in effect is made of, read without parsing anything.

    Args:
        config_arg: `--config` as given (None: `$ZAI_DASH_CONFIG`, else the XDG location).
        plan: `--plan` as given.
        env: the environment (default: the process's).

    Returns:
        16 hex digits, or None when the inputs cannot be read as the config would read them (then no
        document is trusted on them).
    """
    from zai_dash.paths import config_file  # paths: stdlib only (platformdirs only off Linux)

    env = os.environ if env is None else env
    try:
        path = os.path.abspath(config_file(env) if config_arg is None else config_arg)
        try:
            st = os.stat(path)
            data = read_capped(path, CONFIG_MAX_BYTES)  # a FIFO here is refused, as the config refuses it
            file = (st.st_size, st.st_mtime_ns, zlib.crc32(data))
        except FileNotFoundError:
            file = None
        try:
            zone_link: str | None = os.readlink(LOCALTIME)
        except OSError:
            zone_link = None
    except (OSError, ValueError):
        return None
    parts = (
        __version__, os.path.dirname(os.path.abspath(__file__)), sys.platform, path, file,
        tuple(env.get(name) for name in INPUT_VARIABLES), (plan or "").lower(), zone_link,
    )  # fmt: skip
    text = repr(parts).encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}"


_noted: list[tuple[str, Any, str | None]] = []
"""`(digest, config, fingerprint once computed)` noted by this process's entry point (`note_inputs`)."""


def note_inputs(digest: str | None, config: Any) -> None:
    """Remember the raw-inputs digest `config` was loaded from (the CLI and the publisher, before loading it).

    `publish` writes it beside a document built with a config of the same fingerprint (the same numbers),
    and only then: an engine built in the same process with another config publishes no digest.

    Args:
        digest: `inputs_digest` of the inputs, taken before they were read (a file changed meanwhile then
            makes a digest `status` will not match, never a match on the wrong config).
        config: the `zai_dash.config.Config` loaded from them (not imported here: `status` reads this module).
    """
    _noted.clear()
    if digest is not None:
        _noted.append((digest, config, None))


def _inputs_for(fingerprint: str) -> dict[str, Any]:
    """The `inputs` and `zone` keys for a document built with a config of `fingerprint`, if noted."""
    if not _noted:
        return {}
    digest, config, known = _noted[0]
    if known is None:
        known = config.fingerprint()
        _noted[0] = (digest, config, known)
    if known != fingerprint:
        return {}
    return {"inputs": digest, "zone": getattr(config.tz(), "key", None)}


def publish(doc: dict[str, Any], fingerprint: str, path: Path | None = None) -> None:
    """Publish a snapshot document (best effort: a full disk must not stop the dashboard)."""
    payload = {"pid": os.getpid(), "fingerprint": fingerprint, **_inputs_for(fingerprint), "doc": doc}
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


def read_for_inputs(digest: str, now: datetime, path: Path | str) -> tuple[dict[str, Any], str | None] | None:
    """`(doc, zone)` when the published document is fresh, from a live process, made from the same raw inputs.

    `zone` is the IANA key of the time zone the publisher formats with (None: the machine's fixed offset).
    """
    try:
        payload = json.loads(read_capped(path, STATE_MAX_BYTES))
        doc, zone = payload["doc"], payload.get("zone")
        pid = int(payload["pid"])
        if payload.get("inputs") != digest or not isinstance(doc, dict) or pid <= 0:
            return None
        if zone is not None and not isinstance(zone, str):
            return None
        written = datetime.fromisoformat(doc["at"])
        if not timedelta(0) <= now - written <= FRESH_FOR or not _alive(pid):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None
    return doc, zone


def live_writer(now: datetime, path: Path | None = None) -> int | None:
    """The pid of a live process whose document (any config) is fresh in the state file, else None."""
    try:
        payload = json.loads(read_capped(path or dashboard_state_file(), STATE_MAX_BYTES))
        pid = int(payload["pid"])
        written = datetime.fromisoformat(payload["doc"]["at"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None
    return pid if pid > 0 and timedelta(0) <= now - written <= FRESH_FOR and _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


PUBLISHER_LOCK = "publisher.lock"
"""Beside the state file: held (`flock`) by the lingering publisher while it runs; its mtime is the last read."""


def publisher_lock(path: Path | str | None = None) -> str:
    """The lingering publisher's lock file for the state file at `path`."""
    return os.path.join(os.path.dirname(path or dashboard_state_file()), PUBLISHER_LOCK)


def note_read(path: Path | str) -> None:
    """Tell a lingering publisher that `status` read the state file at `path` (its lock file's mtime)."""
    with contextlib.suppress(OSError):  # no publisher ever ran here: nothing to keep alive
        os.utime(publisher_lock(path))
