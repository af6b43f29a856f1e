"""`status`'s fast path (a live publisher's state file made from the same raw inputs) and the lingering publisher.

The fast path must print the same bytes and exit with the same code as the full path for the same document,
and fall back to the full path on any doubt. The publisher tests start real detached processes: each turns
the publisher on (the suite's default is off, `tests/conftest.py`) with a short linger and waits, under a
generous guard, until the publisher has gone again, so none is left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import cli_env, publish_running_dashboard, run_cli, write_known_fixture
from zai_dash import publisher, statefile
from zai_dash.cli import _status_words
from zai_dash.statusline import STATUS_FIELDS

EVERY_FIELD = " ".join(f"{name}={{{name}}}" for name in STATUS_FIELDS)
"""One template naming every `status --format` field."""

STATUS_IN_PROCESS = """
import sys
from zai_dash.cli import main
code = main(sys.argv[1:])
sys.stdout.flush()
print("MODULES", " ".join(sorted(sys.modules)))
raise SystemExit(code)
"""

ON = {"ZAI_DASH_PUBLISHER": "1", "ZAI_DASH_PUBLISHER_LINGER": "3"}
"""The publisher on, lingering 3 s after the last read (the tests wait for it to go)."""


def _status(home: Path, *args: str, extra_env: dict[str, str] | None = None) -> tuple[str, int, set[str], str]:
    """`status` in a child: (stdout without the module list, exit code, the modules it loaded, stderr)."""
    out = subprocess.run(
        [sys.executable, "-c", STATUS_IN_PROCESS, "status", *args],
        capture_output=True,
        text=True,
        env=cli_env(home, extra_env),
        timeout=60,
    )
    line, _, modules = out.stdout.partition("MODULES ")
    return line, out.returncode, set(modules.split()), out.stderr


def _fast(modules: set[str]) -> bool:
    return "zai_dash.config" not in modules and "zai_dash.engine" not in modules


def _wait(predicate: Callable[[], object], what: str, timeout: float = 45.0) -> None:
    """Wait until `predicate()` holds (a guard against a hang, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.05)


def _state(home: Path) -> Path:
    return home / ".cache" / "zai-dash" / "state.json"


def _published_with_inputs(home: Path) -> bool:
    try:
        return "inputs" in json.loads(_state(home).read_text())
    except (OSError, ValueError):
        return False


# -- the command line the fast path accepts ------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["status"], {}),
        (["--plan", "max", "status"], {"--plan": "max"}),
        (
            ["status", "--plan=max", "--format", "{left}", "--ascii"],
            {"--plan": "max", "--format": "{left}", "ascii": True},
        ),
        (["--no-title", "status", "--config", "/x.toml", "--no-mouse"], {"--config": "/x.toml"}),
        (["status", "--format", "status"], {"--format": "status"}),
    ],
)
def test_a_plain_status_line_is_read_without_argparse(argv: list[str], words: dict[str, Any]) -> None:
    assert _status_words(argv) == words


@pytest.mark.parametrize(
    "argv",
    [
        ["report"],
        ["status", "--at", "2026-11-26T10:00:00Z"],
        ["status", "--theme", "nord"],
        ["status", "--help"],
        ["--format", "{left}", "status"],  # the main parser has no --format: argparse's error
        ["--ascii", "status"],
        ["status", "--form", "{left}"],  # an abbreviation argparse would accept: argparse judges it
        ["status", "--plan", "max", "--plan", "lite"],
        ["status", "--plan"],
        ["status", "--plan", "--ascii"],
        ["status", "status"],
        ["status", "extra"],
        ["--config", "status"],
    ],
)
def test_anything_else_goes_to_the_full_parser(argv: list[str]) -> None:
    assert _status_words(argv) is None


# -- the raw-inputs digest --------------------------------------------------------------------------------


def test_the_digest_covers_every_variable_the_config_reads() -> None:
    from zai_dash import config

    wanted = {f"ZAI_DASH_{name.upper()}" for name in config._ENV_SETTINGS} | {"ZAI_DASH_CONFIG", "TZ", "HOME"}
    assert wanted <= set(statefile.INPUT_VARIABLES)
    assert "XDG_CONFIG_HOME" in statefile.INPUT_VARIABLES


def test_the_digest_changes_with_the_config_file_the_environment_and_plan(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    env = {"HOME": str(tmp_path)}
    missing = statefile.inputs_digest(str(config), None, env)
    config.write_text('plan = "max"\n')
    written = statefile.inputs_digest(str(config), None, env)
    assert missing is not None and written is not None and written != missing
    assert statefile.inputs_digest(str(config), None, env) == written  # nothing changed: the same digest
    config.write_text('plan = "lite"\n')
    assert statefile.inputs_digest(str(config), None, env) != written
    base = statefile.inputs_digest(str(config), None, env)
    assert statefile.inputs_digest(str(config), "max", env) != base
    assert statefile.inputs_digest(str(config), "MAX", env) == statefile.inputs_digest(str(config), "max", env)
    assert statefile.inputs_digest(str(config), None, {**env, "ZAI_DASH_TIMEZONE": "Asia/Tokyo"}) != base
    assert statefile.inputs_digest(str(config), None, {**env, "ZAI_DASH_PUBLISHER": "0"}) == base  # not an input
    assert statefile.inputs_digest(str(tmp_path), None, env) is None  # a directory is no config: no digest


def test_the_digest_is_published_only_beside_a_document_of_the_noted_config(tmp_path: Path) -> None:
    from zai_dash.config import load_config

    config = load_config(env={"HOME": str(tmp_path), "ZAI_DASH_TIMEZONE": "Asia/Tokyo"})
    other = load_config(env={"HOME": str(tmp_path), "ZAI_DASH_PLAN": "max"})
    path = tmp_path / "state.json"
    statefile.note_inputs("d1", config)
    try:
        statefile.publish({"at": "x"}, config.fingerprint(), path)
        payload = json.loads(path.read_text())
        assert (payload["inputs"], payload["zone"]) == ("d1", "Asia/Tokyo")
        statefile.publish({"at": "x"}, other.fingerprint(), path)  # another engine's config in this process
        assert "inputs" not in json.loads(path.read_text())
    finally:
        statefile.note_inputs(None, None)
    statefile.publish({"at": "x"}, config.fingerprint(), path)
    assert "inputs" not in json.loads(path.read_text())


# -- the same document through both paths ---------------------------------------------------------------


@pytest.mark.wall_clock  # the state file is fresh by the child's real clock
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "args", [(), ("--ascii",), ("--format", EVERY_FIELD), ("--format", "{nope}"), ("--format", "{")]
)
def test_the_fast_path_prints_what_the_full_path_prints(home: Path, args: tuple[str, ...]) -> None:
    publish_running_dashboard(home, inputs=True)
    fast_line, fast_code, fast_modules, fast_err = _status(home, *args)
    full_line, full_code, full_modules, full_err = _status(home, *args, extra_env={"ZAI_DASH_STATUS_FAST": "0"})
    assert _fast(fast_modules), fast_err
    assert "zai_dash.config" in full_modules  # the full path loaded the config and read the same state file
    assert "zai_dash.engine" not in full_modules
    assert (fast_line, fast_code, fast_err) == (full_line, full_code, full_err)
    if not args or args[0] == "--ascii":
        assert fast_line.startswith(("GLM✓ 123/12k cr", "GLM+ 123/12k cr")), fast_line


@pytest.mark.wall_clock
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"level": "warning"}, 10),
        ({"level": "exhausted"}, 11),
        ({"blocked_until": "+30"}, 11),
    ],
)
def test_levels_exit_alike_through_both_paths(home: Path, change: dict[str, str], code: int) -> None:
    write_known_fixture(home)
    doc = json.loads(run_cli(home, "report", "--json", "--at", "2026-11-26T10:00:00+00:00").stdout)
    now = datetime.now(timezone.utc)
    doc["headline"]["end"] = (now + timedelta(hours=2)).isoformat()
    for key, value in change.items():
        if value == "+30":  # a limit hit blocks the first window half an hour
            doc["windows"][0][key] = doc["headline"][key] = (now + timedelta(minutes=30)).isoformat()
        else:
            doc["headline"][key] = value
    publish_running_dashboard(home, inputs=True, doc=doc)
    fast = _status(home, "--format", EVERY_FIELD)
    full = _status(home, "--format", EVERY_FIELD, extra_env={"ZAI_DASH_STATUS_FAST": "0"})
    assert _fast(fast[2]) and not _fast(full[2])
    assert fast[1] == full[1] == code
    assert (fast[0], fast[3]) == (full[0], full[3])


# -- what makes the fast path step aside ------------------------------------------------------------------


@pytest.mark.wall_clock
@pytest.mark.timeout(60)
def test_an_edited_config_file_is_not_trusted_to_the_old_document(home: Path) -> None:
    publish_running_dashboard(home, inputs=True)
    config = home / ".config" / "zai-dash" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('plan = "max"\n')
    line, _, modules, err = _status(home)
    assert "zai_dash.config" in modules, err  # the digest differs: the config was loaded (and the scan ran)
    assert line.startswith("GLM"), err


@pytest.mark.wall_clock
@pytest.mark.timeout(60)
@pytest.mark.parametrize("why", ["stale", "dead", "plan", "at", "over"])
def test_doubt_takes_the_full_path(home: Path, why: str) -> None:
    path = publish_running_dashboard(home, inputs=True)
    payload = json.loads(path.read_text())
    args: tuple[str, ...] = ()
    if why == "stale":
        payload["doc"]["at"] = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat()
    elif why == "dead":
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        payload["pid"] = int(gone.stdout)
    elif why == "plan":
        args = ("--plan", "max")
    elif why == "at":
        args = ("--at", "2026-11-26T10:00:00Z")
    else:
        payload["doc"]["headline"]["end"] = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    path.write_text(json.dumps(payload))
    line, _, modules, err = _status(home, *args)
    assert "zai_dash.config" in modules, err
    assert line.startswith("GLM"), err


# -- the lingering publisher ------------------------------------------------------------------------------


@pytest.mark.wall_clock  # real child processes, the lock file's mtime against the real clock
@pytest.mark.timeout(120)
def test_a_scanning_status_starts_a_publisher_the_next_status_reads_and_it_goes_when_idle(home: Path) -> None:
    write_known_fixture(home)
    first, code, modules, err = _status(home, extra_env=ON)
    assert "zai_dash.engine" in modules, err  # no dashboard: it scanned
    _wait(lambda: _published_with_inputs(home), "the publisher's first state file")
    running = publisher.info(_state(home))
    assert running is not None and isinstance(running["pid"], int)
    line, code2, modules, err = _status(home, extra_env=ON)
    assert _fast(modules), err
    assert not {m for m in modules if m.startswith(("zai_dash.domain", "zai_dash.sources"))}
    assert (line, code2) == (first, code)  # the same figures as the scan
    doctor = run_cli(home, "doctor", extra_env=ON)
    assert f"running (pid {running['pid']}" in doctor.stdout
    _wait(lambda: publisher.info(_state(home)) is None, "the idle publisher to exit")
    assert "not running" in run_cli(home, "doctor", extra_env=ON).stdout


@pytest.mark.wall_clock
@pytest.mark.timeout(120)
def test_the_publisher_goes_with_its_state_directory(home: Path) -> None:
    write_known_fixture(home)
    _status(home, extra_env={**ON, "ZAI_DASH_PUBLISHER_LINGER": "600"})
    _wait(lambda: _published_with_inputs(home), "the publisher's first state file")
    pid = json.loads(_state(home).read_text())["pid"]
    shutil.rmtree(home / ".cache")
    _wait(lambda: not statefile._alive(pid) or _zombie(pid), "the publisher to notice its directory is gone")


@pytest.mark.wall_clock
@pytest.mark.timeout(120)
def test_the_publisher_goes_when_its_config_is_edited(home: Path) -> None:
    write_known_fixture(home)
    config = home / ".config" / "zai-dash" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text('plan = "pro"\n')
    _status(home, extra_env={**ON, "ZAI_DASH_PUBLISHER_LINGER": "600"})
    _wait(lambda: _published_with_inputs(home), "the publisher's first state file")
    config.write_text('plan = "max"\n')
    _wait(lambda: publisher.info(_state(home)) is None, "the publisher to notice the edit")


@pytest.mark.wall_clock
@pytest.mark.timeout(120)
def test_at_most_one_publisher_per_state_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_known_fixture(home)
    for var, value in {**cli_env(home), **ON}.items():
        monkeypatch.setenv(var, value)  # the children inherit this process's environment
    assert publisher.start_in_background(_state(home), None, None)
    assert not publisher.start_in_background(_state(home), None, None)  # the first holds the lock
    _wait(lambda: _published_with_inputs(home), "the publisher's first state file")
    assert publisher.main(["--plan", "max"]) == 0  # one started by hand leaves at once too
    _wait(lambda: publisher.info(_state(home)) is None, "the idle publisher to exit")


@pytest.mark.timeout(60)
def test_the_config_turns_the_publisher_off(home: Path) -> None:
    write_known_fixture(home)
    config = home / ".config" / "zai-dash" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("[status]\npublisher = false\n")
    line, _, modules, err = _status(home, extra_env=ON)
    assert line.startswith("GLM") and "zai_dash.engine" in modules, err
    assert not (home / ".cache" / "zai-dash" / statefile.PUBLISHER_LOCK).exists()
    assert "off ([status] publisher = false)" in run_cli(home, "doctor", extra_env=ON).stdout


def test_the_suite_starts_no_publisher() -> None:
    assert publisher.switched_off()
    assert cli_env(Path("/nonexistent"))["ZAI_DASH_PUBLISHER"] == "0"


def _zombie(pid: int) -> bool:
    """A child of ours that exited but was not reaped still answers `kill 0` (not the case here: detached)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return not os.path.exists(f"/proc/{pid}")
