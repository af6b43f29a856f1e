"""What the tests of recorded real-client fixtures share: where they are, their truth, their day."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from tests.support.paths import FIXTURE_DIR

FIXTURES = FIXTURE_DIR / "real"
RECORDED_AT = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
"""A clock just after the Codex and Pi recordings (the fixtures' timestamps are real, from that day)."""


def truth(tool: str) -> dict[str, Any]:
    """The server's truth recorded beside a tool's fixtures."""
    return dict(json.loads((FIXTURES / tool / "truth.json").read_text()))


def iso(at: datetime) -> str:
    """An aware instant as the clients write it: ISO 8601, milliseconds, `Z`."""
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
