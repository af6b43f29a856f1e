"""No blocking or unbounded opens (issue 15 §2): FIFOs, devices, huge files, symlink loops, unreadable dirs.

Each case puts the hostile file next to the known fixture (2 prompts, 5 calls at `AT`) and runs the real
CLI in a child process under a hard timeout: a hang fails the test, and the counts around the bad file
must be the fixture's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from tests.support.cli import AT, SESSION, run_cli, write_known_fixture
from tests.support.vscode import storage
from zai_dash.config import ConfigError, load_config
from zai_dash.safeio import UnsafeFile, list_dir, open_regular, read_capped
from zai_dash.sources.base import Skips, SourceContext
from zai_dash.sources.tail import JsonlTail, first_offset_since
from zai_dash.sources.tools.claude_code import ClaudeCodeSource

pytestmark = pytest.mark.timeout(120)

PROJECT = Path(".claude") / "projects" / "-home-u-proj"


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    return path


def report(home: Path, *args: str) -> dict[str, object]:
    try:
        out = run_cli(home, "report", "--json", *args)
    except subprocess.TimeoutExpired:  # pragma: no cover - the failure this test exists for
        pytest.fail("report hung")
    assert out.returncode == 0, out.stderr
    doc: dict[str, object] = json.loads(out.stdout)
    return doc


PLACEMENTS = {
    "claude settings.json": Path(".claude") / "settings.json",
    "claude .claude.json": Path(".claude.json"),
    "transcript .jsonl": PROJECT / "fifo.jsonl",
    "sub-agent .jsonl": PROJECT / SESSION / "subagents" / "agent-fifo.jsonl",
    "droid settings.json": Path(".factory") / "settings.json",
    "droid mcp.json": Path(".factory") / "mcp.json",
    "cline ui_messages.json": storage(Path(), "saoudrizwan.claude-dev") / "tasks" / "t1" / "ui_messages.json",
    "vscode user settings.json": Path(".config") / "Code" / "User" / "settings.json",
}


@pytest.mark.parametrize("where", sorted(PLACEMENTS))
def test_fifo_at_a_read_path_never_hangs(home: Path, where: str) -> None:
    write_known_fixture(home)
    fifo(home / PLACEMENTS[where])
    doc = report(home, "--at", AT)
    prompts = doc["prompts"]
    assert isinstance(prompts, dict)
    assert prompts["used"] == 2 and prompts["calls"] == 5


def test_fifo_project_mcp_json_never_hangs(home: Path) -> None:
    """A project's `.mcp.json` (found through the `cwd` of the records) as a FIFO."""
    write_known_fixture(home)
    project = home / "work" / "proj"
    fifo(project / ".mcp.json")
    log = home / PROJECT / f"{SESSION}.jsonl"
    log.write_text(log.read_text().replace('"/home/u/proj"', json.dumps(str(project))))
    doc = report(home, "--at", AT)
    assert doc["prompts"]["used"] == 2  # type: ignore[index]


@pytest.mark.wall_clock
@pytest.mark.parametrize("name", ["cache-v1.json", "state.json"])
def test_fifo_as_cache_or_state_file_never_hangs(home: Path, name: str) -> None:
    write_known_fixture(home)
    fifo(home / ".cache" / "zai-dash" / name)
    report(home)
    out = run_cli(home, "status")
    assert out.returncode in (0, 1, 2, 3), out.stderr
    assert out.stdout.strip()


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "too big"])
def test_bad_config_file_is_an_error_not_a_hang(home: Path, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "config.toml"
    if kind == "fifo":
        fifo(path)
    elif kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_bytes(b"# " + b"x" * (3 * 1024 * 1024) + b"\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(path, env={})
    out = run_cli(home, "report", config=path)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "cannot read config" in out.stderr


def test_dev_zero_as_tool_settings_is_skipped(home: Path) -> None:
    write_known_fixture(home)
    settings = home / ".claude" / "settings.json"
    settings.unlink(missing_ok=True)
    settings.symlink_to("/dev/zero")
    doc = report(home, "--at", AT)
    assert doc["prompts"]["used"] == 2  # type: ignore[index]


def test_safeio_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    pipe = fifo(tmp_path / "p")
    with pytest.raises(UnsafeFile, match="FIFO"):
        open_regular(pipe)
    with pytest.raises(UnsafeFile, match="device"):
        open_regular("/dev/null")
    with pytest.raises(UnsafeFile, match="directory"):
        open_regular(tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(OSError):
        open_regular(loop)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 100)
    with pytest.raises(UnsafeFile, match="larger"):
        read_capped(big, 99)
    assert read_capped(big, 100) == b"x" * 100


def test_a_long_file_without_newlines_costs_bounded_memory(tmp_path: Path) -> None:
    """A 1 GiB sparse `.jsonl` without a newline: the first-offset search and the read stay small."""
    path = tmp_path / "sparse.jsonl"
    with open(path, "wb") as fh:
        fh.truncate(1024**3)
        fh.seek(1024**3)
        fh.write(b'\n{"timestamp":"2026-11-26T09:00:00.000Z"}\n')
    tracemalloc.start()
    try:
        with open(path, "rb") as handle:
            first_offset_since(handle, os.path.getsize(path), since=1.0)
        skips = Skips()
        lines = list(JsonlTail(path, skips, since=1.0).read_new())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024
    assert [line.data for line in lines] == [b'{"timestamp":"2026-11-26T09:00:00.000Z"}']
    assert skips.counts == {"line longer than 8 MiB": 1}


def test_a_40_mib_line_costs_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    with open(path, "wb") as fh:
        fh.write(b'{"a":1}\n' + b"y" * (40 * 1024 * 1024) + b'\n{"b":2}\n')
    tracemalloc.start()
    try:
        skips = Skips()
        lines = [line.data for line in JsonlTail(path, skips).read_new(needle=b'"b"')]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [b'{"a":1}', b'{"b":2}']  # too big for the whole-file sweep: read in chunks
    assert skips.counts == {"line longer than 8 MiB": 1}
    assert peak < 24 * 1024 * 1024


def test_symlink_loop_under_projects_does_not_zero_claude_code(home: Path, ctx: SourceContext) -> None:
    write_known_fixture(home)
    projects = home / ".claude" / "projects"
    (projects / "loop").symlink_to(projects / "loop")
    (projects / "-home-u-proj" / "inner").symlink_to(projects / "-home-u-proj" / "inner")
    source = ClaudeCodeSource(ctx)
    events = source.poll().events
    assert source.error is None
    assert len({e.key for e in events}) >= 7
    assert any("symlink" in r for r in source.skips.counts)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory")
def test_unreadable_project_directory_is_reported(home: Path, ctx: SourceContext) -> None:
    write_known_fixture(home)
    locked = home / ".claude" / "projects" / "-home-u-locked"
    locked.mkdir()
    (locked / "x.jsonl").write_text("{}\n")
    locked.chmod(0)
    try:
        source = ClaudeCodeSource(ctx)
        source.poll()
        source.poll()
        assert source.skips.counts["unreadable directory (Permission denied)"] == 1
        assert list_dir(locked)[1] == "unreadable directory (Permission denied)"
    finally:
        locked.chmod(0o755)
