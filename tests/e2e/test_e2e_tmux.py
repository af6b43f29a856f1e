"""End to end in a real terminal: tmux runs `python -m zai_dash` over a temp HOME with a Claude Code log.

The test appends a prompt to the log and reads the pane until the prompt count changes (its latency is
measured in bench/), checks the pane's title carries the key figure, then presses `q` and checks the process
exited 0.
Skipped only when tmux is missing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.support.env import home_env
from tests.support.paths import REPO
from tests.support.ui import claude_call_line, claude_prompt_line, write_claude_history
from zai_dash import statefile

REPO = REPO

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.wall_clock,  # the dashboard runs in its own process, on the real clock
]


class Pane:
    """One tmux server (own socket) with one pane running a command."""

    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args], capture_output=True, text=True, check=False
        )
        return out.stdout

    def start(self, command: str, width: int, height: int) -> None:
        self.tmux("new-session", "-d", "-s", "e2e", "-x", str(width), "-y", str(height), command)

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "e2e")

    def wait_for(self, needle: str, seconds: float) -> float:
        """Poll the pane until `needle` shows; returns the seconds it took. Liveness wait only."""
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            if needle in self.text():
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} not on screen within {seconds} s:\n{self.text()}")

    def title(self) -> str:
        return self.tmux("display-message", "-p", "-t", "e2e", "#{pane_title}").strip()

    def wait_for_title(self, pattern: str, seconds: float) -> str:
        """Poll the pane's title until it matches `pattern`. Liveness wait only."""
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            if re.fullmatch(pattern, self.title()):
                return self.title()
            time.sleep(0.05)
        raise AssertionError(f"title {self.title()!r} does not match {pattern!r} within {seconds} s")

    def kill(self) -> None:
        self.tmux("kill-server")


@pytest.fixture
def pane() -> Iterator[Pane]:
    p = Pane(f"zai-dash-e2e-{os.getpid()}-{time.monotonic_ns()}")
    try:
        yield p
    finally:
        p.kill()


def dashboard_command(
    home: Path,
    exit_file: Path | None = None,
    pid_file: Path | None = None,
    options: str = "",
    extra_env: dict[str, str] | None = None,
) -> str:
    env = {
        **(extra_env or {}),
        **home_env(home),
        "TERM": "xterm-256color",
        "PYTHONPATH": str(REPO),
    }
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    python = f"env -i PATH=/usr/bin:/bin {assigns} {shlex.quote(sys.executable)} -m zai_dash {options}".rstrip()
    if pid_file is not None:
        # `exec`: the recorded pid is the dashboard's own, so the test can watch it die on SIGHUP.
        run = f"cd {shlex.quote(str(REPO))} && echo $$ > {shlex.quote(str(pid_file))} && exec {python}"
    else:
        run = f"cd {shlex.quote(str(REPO))} && {python}; echo $? > {shlex.quote(str(exit_file))}"
    return f"sh -c {shlex.quote(run)}"


def wait_exit_code(pane: Pane, exit_file: Path) -> str:
    deadline = time.monotonic() + 10
    while not exit_file.exists() or not exit_file.read_text().strip():
        assert time.monotonic() < deadline, f"dashboard did not exit:\n{pane.text()}"
        time.sleep(0.05)
    return exit_file.read_text().strip()


def test_append_shows_and_q_exits_zero(pane: Pane, home: Path, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    log = write_claude_history(home, now, prompts=3)
    exit_file = tmp_path / "exit-code"
    pane.start(dashboard_command(home, exit_file), 100, 30)

    pane.wait_for("prompts 3 ·", seconds=20)  # start-up and first scan
    with log.open("a", encoding="utf-8") as fh:
        # A prompt counts once its answer is written (a refused one never is): both, as Claude Code appends them.
        fh.write(claude_prompt_line(datetime.now(timezone.utc), 4) + "\n")
        fh.write(claude_call_line(datetime.now(timezone.utc), 4) + "\n")
    # A hang guard, not a latency check: append-to-screen time is measured in bench/ (RESULTS.md).
    pane.wait_for("prompts 4 ·", seconds=20)
    # The window title: the binding window's credits left and its countdown (Pro on credits: 12k a window).
    pane.wait_for_title(r"GLM \d+(\.\d)?k? cr left · \d+h\d\dm", seconds=5)

    pane.tmux("send-keys", "-t", "e2e", "q")
    assert wait_exit_code(pane, exit_file) == "0"


def test_ctrl_c_exits_zero(pane: Pane, home: Path, tmp_path: Path) -> None:
    write_claude_history(home, datetime.now(timezone.utc).replace(microsecond=0), prompts=2)
    exit_file = tmp_path / "exit-code"
    pane.start(dashboard_command(home, exit_file, options="--no-title"), 80, 24)
    before = pane.title()
    pane.wait_for("prompts 2 ·", seconds=20)
    assert pane.title() == before  # --no-title leaves the title alone
    pane.tmux("send-keys", "-t", "e2e", "C-c")
    assert wait_exit_code(pane, exit_file) == "0"


def test_lost_terminal_ends_the_process(pane: Pane, home: Path, tmp_path: Path) -> None:
    write_claude_history(home, datetime.now(timezone.utc).replace(microsecond=0), prompts=2)
    pid_file = tmp_path / "pid"
    pane.start(dashboard_command(home, pid_file=pid_file), 80, 24)
    pane.wait_for("prompts 2 ·", seconds=20)
    pid = int(pid_file.read_text())
    pane.kill()  # the pty closes: SIGHUP, as when an SSH session drops
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "dashboard still running after its terminal went away"
        time.sleep(0.05)


def _child_of(pid: int) -> int:
    """The one child process of `pid` (Linux: /proc)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the dashboard's pid")
@pytest.mark.parametrize(("shell", "options"), [("sh -c", ""), ("bash -i", ""), ("bash -i", "--demo")], ids=str)
def test_killed_session_ends_the_dashboard_and_its_state_file(
    pane: Pane, home: Path, tmp_path: Path, shell: str, options: str
) -> None:
    """`tmux kill-session` with the dashboard run from a shell: it once lived on under pid 1, publishing.

    Textual's exit wrote to the hung-up terminal; with its writer thread dead of a failed write (at once
    with unbuffered streams), enough writes queued that the exit waited for that thread for ever. Now the
    process ends, so `status` no longer takes the state file for a live dashboard's. `sh -c` runs it in
    the shell's process group, an interactive bash as a job of its own.
    """
    if shell.startswith("bash") and shutil.which("bash") is None:
        pytest.skip("bash is not installed")
    write_claude_history(home, datetime.now(timezone.utc).replace(microsecond=0), prompts=2)
    # Unbuffered streams (as many users' shells set): each write to the hung-up terminal fails at once.
    command = dashboard_command(home, tmp_path / "exit-code", options=options, extra_env={"PYTHONUNBUFFERED": "1"})
    if shell.startswith("bash"):
        pane.start("bash --norc --noprofile -i", 80, 24)
        pane.tmux("send-keys", "-t", "e2e", "-l", command)
        pane.tmux("send-keys", "-t", "e2e", "Enter")
    else:
        pane.start(command, 80, 24)
    pane.wait_for("DEMO" if options else "prompts 2 ·", seconds=20)
    state = home / ".cache" / "zai-dash" / "state.json"
    deadline = time.monotonic() + 10
    while not options and not state.exists():  # the first snapshot is published just after it is shown
        assert time.monotonic() < deadline, "no state file published"
        time.sleep(0.05)
    shell_pid = int(pane.tmux("display-message", "-p", "-t", "e2e", "#{pane_pid}"))
    pid = _child_of(shell_pid)  # `sh -c` (the command's own) or bash, then `sh -c` under it
    if shell.startswith("bash"):
        pid = _child_of(pid)
    if not options:  # the demo publishes none
        assert json.loads(state.read_text())["pid"] == pid
    pane.tmux("kill-session", "-t", "e2e")
    deadline = time.monotonic() + 15
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "dashboard still running after its tmux session was killed"
        time.sleep(0.05)
    assert not statefile._alive(pid)
