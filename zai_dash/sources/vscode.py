"""VS Code-like hosts: where their user data lives, and reading their global state read-only.

Extensions such as Cline, Roo Code and Kilo Code keep task files under
`<user data>/User/globalStorage/<extension id>/` and their settings in VS Code's global state, the
SQLite file `<user data>/User/globalStorage/state.vscdb` (table `ItemTable`, one row per extension id,
a JSON value). Every fork (Cursor, Windsurf, VSCodium, …) uses the same layout under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zai_dash.sources.base import SourceContext
from zai_dash.sources.jsonutil import loads
from zai_dash.sources.stamp import file_stamp

HOST_NAMES: tuple[str, ...] = (
    "Code",
    "Code - Insiders",
    "Code - OSS",
    "Cursor",
    "Windsurf",
    "VSCodium",
    "VSCodium - Insiders",
    "Positron",
    "Antigravity",
)
"""Desktop hosts: the user-data folder name under `~/.config` (Linux) or Application Support (macOS)."""

REMOTE_HOSTS: tuple[tuple[str, str], ...] = (
    ("vscode-server", ".vscode-server/data"),
    ("vscode-server-insiders", ".vscode-server-insiders/data"),
    ("cursor-server", ".cursor-server/data"),
    ("windsurf-server", ".windsurf-server/data"),
    ("vscodium-server", ".vscodium-server/data"),
    ("positron-server", ".positron-server/data"),
    ("antigravity-server", ".antigravity-server/data"),
)
"""Remote-SSH / WSL / tunnel servers: the host name and its user data under home."""

FLATPAK_HOSTS: tuple[tuple[str, str], ...] = (
    ("Code (flatpak)", ".var/app/com.visualstudio.code/config/Code"),
    ("Code - Insiders (flatpak)", ".var/app/com.visualstudio.code.insiders/config/Code - Insiders"),
    ("VSCodium (flatpak)", ".var/app/com.vscodium.codium/config/VSCodium"),
)
"""Flatpak sandboxes keep `~/.config` inside `~/.var/app/<app id>/config`."""

BUSY_TIMEOUT_MS = 2000
"""VS Code holds short write locks on state.vscdb; wait this long before giving up on one read."""


@dataclass(frozen=True, slots=True)
class VscodeHost:
    """One VS Code-like installation's user-data directory.

    Attributes:
        name: the host's display name (`Code`, `Cursor`, `vscode-server`, …).
        user_data: the directory holding `User/`.
    """

    name: str
    user_data: Path

    @property
    def global_storage(self) -> Path:
        """`User/globalStorage`: one folder per extension (lower-cased id) plus `state.vscdb`."""
        return self.user_data / "User" / "globalStorage"

    @property
    def state_db(self) -> Path:
        """The global-state SQLite database."""
        return self.global_storage / "state.vscdb"

    @property
    def user_settings(self) -> Path:
        """The user `settings.json` (JSON with comments)."""
        return self.user_data / "User" / "settings.json"

    def extension_dir(self, extension_id: str) -> Path:
        """An extension's global-storage folder. VS Code lower-cases the id on disk."""
        return self.global_storage / extension_id.lower()

    def exists(self) -> bool:
        """Whether this host has been run here (its `User` folder exists)."""
        return (self.user_data / "User").is_dir()


def candidate_hosts(ctx: SourceContext) -> list[VscodeHost]:
    """Every VS Code-like user-data location worth probing, found or not.

    Linux and macOS locations are both listed whatever the platform: probing a path that cannot exist
    costs one `stat`, and it keeps the discovery identical in tests on either OS.
    """
    config_home = ctx.xdg("XDG_CONFIG_HOME", ".config")
    mac_support = ctx.home / "Library" / "Application Support"
    hosts: list[VscodeHost] = []
    for name in HOST_NAMES:
        hosts.append(VscodeHost(name, config_home / name))
        hosts.append(VscodeHost(f"{name} (macOS)", mac_support / name))
    for name, rel in (*REMOTE_HOSTS, *FLATPAK_HOSTS):
        hosts.append(VscodeHost(name, ctx.home / rel))
    seen: set[Path] = set()
    unique: list[VscodeHost] = []
    for host in hosts:
        if host.user_data not in seen:
            seen.add(host.user_data)
            unique.append(host)
    return unique


def existing_hosts(ctx: SourceContext) -> list[VscodeHost]:
    """The hosts that have been run on this machine."""
    return [h for h in candidate_hosts(ctx) if h.exists()]


class StateReadError(Exception):
    """state.vscdb could not be read (locked, corrupt, not a database); the message says why."""


def read_state_item(db: Path, key: str) -> Any | None:
    """Read one extension's global state from a `state.vscdb`, read-only.

    The key is matched case-insensitively: VS Code stores it as the id is spelled in the extension's
    package.json (`RooVeterinaryInc.roo-cline`), which callers should not have to know.

    Args:
        db: the `state.vscdb` path.
        key: the extension id.

    Returns:
        The parsed JSON value, or None when the database or the key is absent.

    Raises:
        StateReadError: the database is locked, corrupt, or the value is not JSON.
    """
    if not db.is_file():
        return None
    import sqlite3  # here, not at the top: only when a host's state database exists

    # mode=ro: never write, never create a journal; not immutable, so a live -wal is honoured.
    uri = f"{db.as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise StateReadError(f"cannot open state.vscdb: {exc}") from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        row = conn.execute("SELECT value FROM ItemTable WHERE key = ? COLLATE NOCASE LIMIT 1", (key,)).fetchone()
    except sqlite3.Error as exc:
        raise StateReadError(f"cannot read state.vscdb: {exc}") from None
    finally:
        conn.close()
    if row is None or row[0] is None:
        return None
    raw = row[0]
    try:
        return loads(raw if isinstance(raw, (bytes, str)) else bytes(raw))
    except (ValueError, TypeError):
        raise StateReadError(f"state.vscdb value for {key} is not JSON") from None


class GlobalStateCache:
    """Reads extension global state from `state.vscdb` files, again only when a file changed.

    VS Code rewrites state.vscdb often (every UI state change), so the database and its `-wal` are
    stamped and a value is re-read only when either stamp moved. Errors are kept per database so the
    caller can report them once.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[Path, str], tuple[object, Any]] = {}
        self.errors: dict[Path, str] = {}

    def get(self, db: Path, key: str) -> Any | None:
        """The JSON value of `key` in `db`, or None when absent or unreadable (see `errors`)."""
        stamp = (file_stamp(db), file_stamp(db.with_name(db.name + "-wal")))
        if stamp[0] is None:
            self._cache.pop((db, key), None)
            return None
        cached = self._cache.get((db, key))
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            value = read_state_item(db, key)
        except StateReadError as exc:
            self.errors[db] = str(exc)
            return cached[1] if cached is not None else None  # keep the last good value while locked
        self.errors.pop(db, None)
        self._cache[(db, key)] = (stamp, value)
        return value
