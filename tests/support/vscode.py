"""VS Code-like host storage for Cline / Roo Code / Kilo Code task folders."""

from __future__ import annotations

from pathlib import Path


def storage(home: Path, ext: str, host: str = "Code") -> Path:
    return home / ".config" / host / "User" / "globalStorage" / ext
