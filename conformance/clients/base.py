"""What every client driver shares: the pinned package, installing it, and one run's bookkeeping."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conformance.sandbox import PtySession, Sandbox
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

    def check(self, scenario: str, proc: subprocess.CompletedProcess[str], ok: bool = True) -> None:
        """Record a scenario and, when its command failed, why (the tail of its output)."""
        self.scenarios.append(scenario)
        if proc.returncode != 0 or not ok:
            tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
            self.failures.append(f"{scenario}: exit {proc.returncode}: {' | '.join(tail)[:300]}")


class Driver:
    """One real client. Subclasses set the class attributes and implement `configure` and `scenarios`.

    Attributes:
        tool: the zai-dash tool id its files feed.
        client: the client's name.
        package: the npm package installed (a platform package where the wrapper's binary is missing).
        version: the pinned version.
        binary: the executable, relative to `node_modules/.bin`.
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
        return self.prefix / "node_modules" / ".bin" / self.binary

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

    def scenarios(self, box: Sandbox, srv: FakeGlmServer, env: dict[str, str], log: RunLog) -> None:
        """Drive every scenario, recording what was typed in `log`."""
        raise NotImplementedError

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
    ) -> subprocess.CompletedProcess[str]:
        """Run one headless command that sends `text` and record it as typed."""
        proc = box.run(argv, env, timeout=timeout)
        log.typed.append(Typed(text, expect, scenario))
        log.check(scenario, proc, ok=expect != "billed" or proc.returncode == 0)
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


def screen_has(pty: PtySession, text: str) -> Callable[[], bool]:
    return lambda: text in pty.output
