"""Where the repository, the tests and their recorded fixtures are (one place, whatever a test's folder)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
FIXTURE_DIR = TESTS / "fixtures"
"""Recorded files (`real/<tool>/home.tar.xz` with `truth.json`, layouts): the one fixtures folder."""
