"""UI state remembered between runs (the chosen theme), in `paths.ui_memory_file()`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def load_state(path: Path) -> dict[str, Any]:
    """The remembered state; an absent, unreadable or malformed file is an empty state, never an error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_state(path: Path, **changes: Any) -> bool:
    """Merge `changes` into the state file atomically (temp file + rename). Returns False on I/O errors.

    A failure to remember a theme must never take the dashboard down, so errors are swallowed.
    """
    state = load_state(path)
    state.update(changes)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return False
    return True
