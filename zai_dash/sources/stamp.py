"""Has this file changed? The one stamp every reader compares: inode, size and mtime in nanoseconds.

A stat, never a read. The inode catches an atomic replace (temp file + rename) that kept size and mtime;
the nanosecond mtime a same-size rewrite; the size an append within one mtime tick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies one version of a file without reading it."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        """The stamp of a `stat` result."""
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


def file_stamp(path: Path | str) -> FileStamp | None:
    """The stamp of `path` now (symlinks followed), or None when it cannot be stat'ed (missing, no access)."""
    try:
        return FileStamp.of(os.stat(path))
    except OSError:
        return None


__all__ = ["FileStamp", "file_stamp"]
