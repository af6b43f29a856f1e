"""What every client driver shares: the pinned package, installing it, and one run's bookkeeping."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.sandbox import FAKE_TOKEN, PtySession, Sandbox
from conformance.server import FakeGlmServer
from conformance.truth import Typed

DEFAULT_CACHE = "/var/tmp/zai-dash-conformance"


def cache_dir() -> Path:
    """Where the clients are installed: `$ZAI_DASH_CONFORMANCE_CACHE`, outside the repository."""
    return Path(os.environ.get("ZAI_DASH_CONFORMANCE_CACHE") or DEFAULT_CACHE)


class Skip(Exception):
    """The client cannot run here (its install or login needs the internet): reported, not failed."""


@dataclass
class RunLog:
    """What a driver did in one run: what it typed, which scenarios ran, what went wrong."""

    typed: list[Typed] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    interactive_sessions: int = 0
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, scenario: str, proc: subprocess.CompletedProcess[str], ok: bool | None = None) -> None:
        """Record a scenario and, when it failed (by default: a non-zero exit), why (its output's tail)."""
        self.scenarios.append(scenario)
        if not (proc.returncode == 0 if ok is None else ok):
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            self.failures.append(f"{scenario}: exit {proc.returncode}: {' | '.join(tail)[:300]}")


class Driver:
    """One real client. Subclasses set the class attributes and implement `configure` and `scenarios`.

    Attributes:
        tool: the zai-dash tool id its files feed.
        client: the client's name.
        package: the npm package installed (a platform package where the wrapper's binary is missing).
        version: the pinned version.
        binary: the executable, relative to `node_modules/.bin` (or to `node_modules` when it has a `/`:
            platform packages link no `.bin`).
        data_paths: what the client writes (and the user configures) under HOME, for the fixture.
    """

    tool = ""
    client = ""
    package = ""
    version = ""
    binary = ""
    data_paths: tuple[str, ...] = ()

    # -- install ------------------------------------------------------------------------------
    @property
    def prefix(self) -> Path:
        return cache_dir() / "clients" / self.tool_dir / self.version

    @property
    def tool_dir(self) -> str:
        return self.__class__.__module__.rsplit(".", 1)[-1].replace("_", "-")

    @property
    def exe(self) -> Path:
        modules = self.prefix / "node_modules"
        return modules / self.binary if "/" in self.binary else modules / ".bin" / self.binary

    def install(self) -> None:
        """`npm install <package>@<version>` into the cache (once); `Skip` when it cannot be done here."""
        if self.exe.exists():
            return
        if shutil.which("npm") is None:
            raise Skip("npm is not installed")
        self.prefix.mkdir(parents=True, exist_ok=True)
        (self.prefix / "package.json").write_text('{"private": true}\n')
        proc = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", f"{self.package}@{self.version}"],
            cwd=self.prefix,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if proc.returncode != 0 or not self.exe.exists():
            tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
            raise Skip(f"npm install {self.package}@{self.version} failed: {tail[:300]}")

    # -- a run --------------------------------------------------------------------------------
    def configure(self, box: Sandbox, srv: FakeGlmServer) -> dict[str, str]:
        """Write the client's settings into the sandbox; return the environment to run it with."""
        raise NotImplementedError

    def command(self, text: str, *extra: str) -> list[str]:
        """The headless command that sends `text` (with `extra` options) in a new session."""
        raise NotImplementedError

    def resume(self, session: str, text: str) -> tuple[list[str], str | None]:
        """(command, stdin) that sends `text` in an existing session."""
        return self.command(text, *self.resume_options(session)), None

    def resume_options(self, session: str) -> tuple[str, ...]:
        raise NotImplementedError

    server: FakeGlmServer | None = None
    """The fake server of the run in progress (set by `scenarios`)."""
    session_keys: tuple[str, ...] = ()
    """Keys of the session id in the headless command's JSON-lines output (none: no resume scenario)."""
    no_resume = ""
    """Why the client cannot resume a session headless, when it cannot."""
    headless: tuple[tuple[str, str], ...] = ()
    """The tool scenarios after plain and resumed (see `HEADLESS`)."""
    refused_timeout: float = 90
    """How long the refused prompt may run: a client stopped while still retrying writes no refusal."""

    def scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        """Drive every scenario, recording what was typed in `log`: a plain prompt, the same session
        resumed, the `headless` ones, `more_scenarios`, and a refused prompt."""
        self.server = srv
        text = "zd:plain say hello"
        proc = self.prompt(box, env, log, "plain", self.command(text), text)
        session = self.session_of(proc.stdout)
        if session:
            text = "zd:plain and once more"
            command, stdin = self.resume(session, text)
            self.prompt(box, env, log, "resumed", command, text, stdin=stdin)
        else:
            log.notes.append(self.no_resume or "no session id in the client's output: resume not run")
        for scenario, text in self.headless:
            self.prompt(box, env, log, scenario, self.command(text), text)
        self.more_scenarios(box, srv, env, log)
        refused = self.command(REFUSED)
        self.prompt(box, env, log, "refused", refused, REFUSED, expect="refused", timeout=self.refused_timeout)
        self.interactive(box, srv, env, log)

    def session_of(self, stdout: str) -> str | None:
        """The session id in a headless command's output (None: the resume scenario is not run)."""
        return json_value(stdout, self.session_keys, last=True) if self.session_keys else None

    def more_scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        """Client-specific headless scenarios (a denied tool, an unknown model)."""

    def interactive(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        """The interactive session with `/compact`, where the client has one (see `interactive_compact`)."""

    # -- helpers ------------------------------------------------------------------------------
    def prompt(
        self,
        box: Sandbox,
        env: dict[str, str],
        log: RunLog,
        scenario: str,
        argv: list[str],
        text: str,
        expect: str = "billed",
        timeout: float = 180,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one headless command that sends `text` (in `argv`, or as `stdin`) and record it as typed.

        A prompt meant to be billed that failed before reaching the server is recorded as `unsent`:
        the truth counts what the server saw, not what the driver hoped for."""
        seen = len(self.server.recorder.snapshot()) if self.server else 0
        meant = expect
        proc = box.run(argv, env, timeout=timeout, stdin=stdin)
        if expect == "billed" and self.server and len(self.server.recorder.snapshot()) == seen:
            expect = "unsent"
            log.notes.append(f"{scenario}: the client sent nothing to the server")
        log.typed.append(Typed(text, expect, scenario))
        if meant == "refused" and proc.returncode == 124:
            log.notes.append(f"{scenario}: the client was still retrying at {timeout:.0f} s and was stopped")
        log.check(scenario, proc, ok=proc.returncode == 0 if meant == "billed" else True)
        return proc


def wait_idle(srv: FakeGlmServer, pty: PtySession, grew_from: int, timeout: float, quiet: float = 4.0) -> bool:
    """Wait until the server has answered something new and then nothing for `quiet` seconds."""
    last = [len(srv.recorder.snapshot()), time.monotonic()]

    def settled() -> bool:
        n = len(srv.recorder.snapshot())
        if n != last[0]:
            last[0], last[1] = n, time.monotonic()
        return n > grew_from and time.monotonic() - last[1] >= quiet

    return pty.wait(settled, timeout)


HEADLESS = (
    ("multi-call", "zd:multi run a command, then answer"),
    ("sub-agent", "zd:agent delegate this to a sub-agent"),
    ("mcp-search", "zd:search look this up on the web"),
)
"""The headless tool scenarios (markers: see `conformance/server.py`)."""
REFUSED = "zd:refuse this one hits the 5-hour limit"


def json_value(stdout: str, keys: tuple[str, ...], last: bool = False) -> str | None:
    """The first (or last) value of any of `keys` in a client's JSON-lines output."""
    lines = stdout.splitlines()
    for line in reversed(lines) if last else lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            for key in keys:
                if record.get(key):
                    return str(record[key])
    return None


def interactive_compact(
    box: Sandbox,
    srv: FakeGlmServer,
    env: dict[str, str],
    log: RunLog,
    argv: list[str],
    ready: Callable[[PtySession], bool],
    exit_keys: tuple[str, ...],
) -> None:
    """An interactive session on a pty: one prompt, `/compact`, then `exit_keys` (title and compaction
    calls are the hidden ones). The screen is kept in `<sandbox>/interactive.screen.txt`."""
    pty = PtySession(argv, box.workdir, env)
    try:
        # Keys typed before the input box is drawn are lost.
        pty.wait(lambda: ready(pty), 60)
        pty.wait_quiet(2, 20)
        before = len(srv.recorder.snapshot())
        text = "zd:plain hello from the terminal"
        pty.send(text)
        pty.send("\r", pause=0.5)
        answered = wait_idle(srv, pty, before, 90)
        log.typed.append(Typed(text, "billed" if answered else "unsent", "interactive", interactive=True))
        before = len(srv.recorder.snapshot())
        pty.send("/compact")
        pty.wait_quiet(1, 5)
        pty.send("\r", pause=0.5)
        compacted = wait_idle(srv, pty, before, 120)
        for key in exit_keys:
            pty.send(key, pause=0.5)
        log.scenarios.append("interactive+compact")
        log.interactive_sessions += 1
        if not (answered and compacted):
            log.failures.append(f"interactive: answered={answered} compacted={compacted}")
    finally:
        pty.close()
        (box.root / "interactive.screen.txt").write_text(pty.output)


def mcp_server(srv: FakeGlmServer, kind: str, **extra: object) -> dict[str, object]:
    """The `web-search-prime` entry of a client's MCP config: the fake's URL, a fake bearer token."""
    return {"type": kind, "url": srv.mcp_url, "headers": {"Authorization": f"Bearer {FAKE_TOKEN}"}, **extra}
