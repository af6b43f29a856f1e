"""Checked opens: the one way zai-dash opens another tool's file, its own cache or its config.

A FIFO at a settings path blocks `open()` forever; a symlink to `/dev/zero` reads until memory runs out;
a socket or a device is never a log. Every read here:

- opens with `O_NONBLOCK` (so a FIFO with no writer cannot block the open), `O_NOCTTY` and `O_CLOEXEC`;
- checks the open descriptor (not the path, so a swap between check and open cannot fool it) is a
  regular file, then clears `O_NONBLOCK` for ordinary reads;
- refuses files over a size cap where the caller reads whole (config and JSON), and reads at most the
  cap even when the file grows meanwhile.

Symlinks are followed by the kernel, whose loop limit (`ELOOP`) is the loop guard: a loop is an
`OSError` like any other unreadable path. Directory listings go through `list_dir`, which reports an
unreadable directory instead of treating it as empty.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path
from typing import BinaryIO

CONFIG_MAX_BYTES = 2 * 1024 * 1024
"""Config files (zai-dash's own and other tools' settings) larger than this are refused."""
STATE_MAX_BYTES = 64 * 1024 * 1024
"""zai-dash's own cache and state file: larger is a corrupt or hostile file, rebuilt instead."""

_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class UnsafeFile(OSError):
    """A path that is not a regular file, or is too large to read whole; `reason` says which."""

    def __init__(self, reason: str, path: Path | str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.strerror = reason
        self.filename = str(path)


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words for `doctor`."""
    if stat.S_ISDIR(mode):
        return "a directory where a file was expected"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe) where a file was expected"
    if stat.S_ISSOCK(mode):
        return "a socket where a file was expected"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device where a file was expected"
    return "not a regular file"


def open_regular(path: Path | str, max_bytes: int | None = None) -> BinaryIO:
    """Open `path` for binary reading if it is a regular file (and no larger than `max_bytes`).

    Raises:
        UnsafeFile: not a regular file, or larger than `max_bytes`.
        OSError: missing, unreadable, a symlink loop (`ELOOP`), …
    """
    fd = os.open(path, _FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(kind_of(st.st_mode), path)
        if max_bytes is not None and st.st_size > max_bytes:
            raise UnsafeFile(f"file larger than {_size(max_bytes)}", path)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: Path | str, max_bytes: int) -> bytes:
    """The whole content of a regular file of at most `max_bytes` (checked before and while reading).

    Raises:
        UnsafeFile: not a regular file, or larger than `max_bytes` (also when it grew while being read).
        OSError: missing or unreadable.
    """
    with open_regular(path, max_bytes) as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeFile(f"file larger than {_size(max_bytes)}", path)
    return data


def read_text_capped(path: Path | str, max_bytes: int = CONFIG_MAX_BYTES) -> str:
    """`read_capped` decoded as UTF-8 (raises `UnicodeDecodeError` on bad bytes)."""
    return read_capped(path, max_bytes).decode("utf-8")


def is_regular(path: Path | str) -> bool:
    """Whether `path` is (or links to) a regular file; False for loops, FIFOs, devices, missing."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def entry_is_dir(entry: os.DirEntry[str]) -> bool:
    """`DirEntry.is_dir()` that answers False for a symlink loop or an entry gone meanwhile."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def list_dir(path: Path | str) -> tuple[list[os.DirEntry[str]], str | None]:
    """The entries of a directory, and why it could not be listed (None when it could, or is absent).

    A missing directory is not an error (tools create them lazily); an unreadable one is, because
    treating it as empty would make its data vanish without a word.
    """
    try:
        with os.scandir(path) as it:
            return list(it), None
    except OSError as exc:
        return [], listing_problem(exc)


def listing_problem(exc: OSError) -> str | None:
    """Why a directory could not be listed, for `doctor`: None when it is only missing (not an error)."""
    if isinstance(exc, FileNotFoundError):
        return None
    if isinstance(exc, NotADirectoryError):
        return "not a directory"
    return f"unreadable directory ({exc.strerror or type(exc).__name__})"


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n >= 1024 * 1024 else f"{n} bytes"
