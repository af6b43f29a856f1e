"""Shared fixtures. Nothing here, or in any test, touches the real home directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.claude_code import Claude, Fed
from tests.support.env import FIXED_NOW, tool_env_prefixes
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.claude_code import ClaudeCodeSource

TRAVEL_DAYS = int(os.environ.get("ZAI_DASH_TEST_TRAVEL_DAYS") or 0)
"""`make test` runs the date-sensitive tests a second time with the wall clock this many days ahead.

Two engine tests once wrote records with fixed dates and ran on the real clock: they passed for a week
and broke when the month turned. The second run makes any such test fail on the day it is written.
"""


@pytest.fixture(autouse=True)
def travelled_wall_clock() -> Iterator[None]:
    """Move the wall clock (not the monotonic one) `ZAI_DASH_TEST_TRAVEL_DAYS` ahead, when set."""
    if not TRAVEL_DAYS:
        yield
        return
    import time_machine

    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=TRAVEL_DAYS), tick=True):
        yield


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point HOME, XDG_* and every tool's env var at a temp dir for every test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var, sub in (
        ("XDG_CONFIG_HOME", ".config"),
        ("XDG_DATA_HOME", ".local/share"),
        ("XDG_CACHE_HOME", ".cache"),
        ("XDG_STATE_HOME", ".local/state"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    prefixes = tool_env_prefixes()
    for var in list(os.environ):
        if var.startswith(prefixes) or var in {"ZAI_DASH_CONFIG", "NO_COLOR"}:
            monkeypatch.delenv(var, raising=False)
        if var.startswith("OTEL_"):  # the OpenTelemetry SDK (tests/sources/test_otlp.py) reads its settings from these
            monkeypatch.delenv(var, raising=False)
    # No test leaves a lingering status publisher behind (zai_dash/publisher.py): the ones about it turn it on.
    monkeypatch.setenv("ZAI_DASH_PUBLISHER", "0")
    yield home


@pytest.fixture
def home(isolated_home: Path) -> Path:
    """The temp home directory."""
    return isolated_home


@pytest.fixture
def ctx(home: Path) -> SourceContext:
    """A source context over the temp home, wall clock fixed at `FIXED_NOW`."""
    return SourceContext(home=home, env=dict(os.environ), clock=lambda: FIXED_NOW)


@pytest.fixture
def claude(home: Path) -> Claude:
    """A Claude Code transcript writer under the temp home's `.claude`."""
    return Claude(home / ".claude")


@pytest.fixture
def fed(ctx: SourceContext) -> Fed:
    """A Claude Code source over the temp home, polled through `Fed`'s shorthands."""
    return Fed(ClaudeCodeSource(ctx))
