"""Every adapter against files real clients wrote, with the recording server's truth beside them.

`make conformance --record` (`python -m conformance.run --record`) ran each client headless against the
fake GLM server and packed what it wrote under `tests/fixtures/real/<tool>/home.tar.xz` (HOME paths
rewritten to /home/user) with `truth.json`: what the server answered and what the driver typed. Here each
archive is unpacked into the test's HOME and the real `zai-dash report --json --at <after the run>` (plus
the engine's ledger for tokens and limit hits) must agree with the truth, field by field, with the same
comparison and tolerances as `bench/CONFORMANCE.md`. No download, no network.

A field today's adapter gets wrong goes into `KNOWN_WRONG` below with the conformance finding, which marks
it `xfail(strict=True)`: the fix flips it, and the entry then has to go.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.truth import FieldResult, compare_fixture, refusal_logged
from tests.support.paths import FIXTURE_DIR

FIXTURES = FIXTURE_DIR / "real"


def _recorded() -> list[Path]:
    """Fixture folders in this suite's format (a truth with `report_at` and a home archive)."""
    found = []
    for folder in sorted(FIXTURES.iterdir()) if FIXTURES.is_dir() else []:
        truth = folder / "truth.json"
        if truth.is_file() and (folder / "home.tar.xz").is_file() and "report_at" in json.loads(truth.read_text()):
            found.append(folder)
    return found


FIELDS = (
    "prompts",
    "calls",
    "searches",
    "model",
    "refused",
    "limit_seen",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
)

KNOWN_WRONG: dict[tuple[str, str], str] = {}
"""(fixture folder, field) → the finding, for fields today's adapters get wrong."""


def _cases() -> list[Any]:
    cases = []
    for folder in _recorded():
        for name in FIELDS:
            reason = KNOWN_WRONG.get((folder.name, name))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(folder, name, id=f"{folder.name}-{name}", marks=marks))
    return cases


SECRET_VALUE = re.compile(
    rb'"(?:ANTHROPIC_AUTH_TOKEN|ANTHROPIC_API_KEY|apiKey|api_key|OPENAI_API_KEY)"\s*:\s*"([^"]*)"'
)

_RESULTS: dict[Path, dict[str, FieldResult]] = {}


def _compared(folder: Path, home: Path) -> dict[str, FieldResult]:
    _, fields = compare_fixture(folder, home, in_process=True)
    return {f.field: f for f in fields}


@pytest.mark.parametrize(("folder", "name"), _cases())
def test_recorded_client_field(folder: Path, name: str, home: Path) -> None:
    """zai-dash reads what the real client wrote and reports what the server saw."""
    if folder not in _RESULTS:  # one scan per fixture, shared by its field tests
        _RESULTS[folder] = _compared(folder, home)
    result = _RESULTS[folder][name]
    if result.ok is None:
        pytest.skip(f"zai-dash has no `{name}` figure for this tool yet")
    assert result.ok, (
        f"{folder.name} {name}: zai-dash {result.reported!r}, server {result.truth!r} ({result.tolerance})"
    )


def test_fixtures_exist_for_the_main_clients() -> None:
    """The recorded set covers the clients the suite can run here (codex/pi come from their own helper)."""
    names = {f.name for f in _recorded()}
    assert {"claude-code", "opencode", "kilo", "cline", "droid"} <= names


def test_fixture_archives_hold_no_sandbox_paths_or_keys() -> None:
    """Recorded data only: HOME rewritten, no credential but the fake one."""
    import tarfile

    for folder in _recorded():
        with tarfile.open(folder / "home.tar.xz", "r:xz") as tar:
            for member in tar.getmembers():
                source = tar.extractfile(member)
                data = source.read() if source else b""
                assert b"zdconf-" not in data, f"{folder.name}/{member.name} keeps a sandbox path"
                assert b"/tmp/zdconf" not in member.name.encode()
                for value in SECRET_VALUE.findall(data):
                    assert value.startswith(b"zd-fake-token") or not value, f"{folder.name}/{member.name}: {value!r}"


def test_a_refusal_still_in_the_databases_wal_counts_as_logged(tmp_path: Path) -> None:
    """Kilo CLI 7.7.9 left its refused message in `kilo.db-wal` (no checkpoint before it exited): a driver
    naming only the `.db` must still see it, or `limit_seen` goes uncompared."""
    db = tmp_path / ".local" / "share" / "kilo" / "kilo.db"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"SQLite format 3\x00")
    assert not refusal_logged(tmp_path, (".local/share/kilo/kilo.db",))
    db.with_name("kilo.db-wal").write_bytes(b"...Usage limit reached for 5 hour...")
    assert refusal_logged(tmp_path, (".local/share/kilo/kilo.db",))
