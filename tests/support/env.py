"""The fixed instant tests evaluate at and the env vars every test clears."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from zai_dash.sources.tools import registered_tools

FIXED_NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
"""The instant most tests evaluate at."""


def tool_env_prefixes() -> tuple[str, ...]:
    """Env var prefixes to clear: each registered tool env var's first word (`CLAUDE_CONFIG_DIR` → `CLAUDE_`).

    A whole prefix, not the one name, so a tool's sibling variables (`ANTHROPIC_AUTH_TOKEN`) go too.
    """
    words = {var.split("_", 1)[0] + "_" for tool in registered_tools() for var in tool.env_vars}
    return tuple(sorted(words | {"ZAI_", "Z_AI_"}))


def home_env(home: Path) -> dict[str, str]:
    """HOME and every XDG base directory inside `home`, so a child process (or a tool) never sees the real home."""
    return {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }
