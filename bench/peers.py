"""Install the peer tools the benchmark compares against, into the git-ignored `bench/.peers/`.

- ccusage 20.0.24 from the npm registry with the machine's node/npm. `ccusage@latest` (20.0.26) ships no
  native binary because the platform package stops at 20.0.24, so both packages are pinned together.
- claude-monitor 4.0.0 from PyPI into its own venv (its pydantic/rich pins must not meet ours).

Idempotent: a stamp file per peer records the installed version, and a peer whose stamp matches and whose
command answers `--version` is left alone. Package caches go under `bench/.peers/` so the real home directory
is never written to. Usage: `python bench/peers.py [--force]`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS_DIR = BENCH / ".peers"

CCUSAGE_VERSION = "20.0.24"
CLAUDE_MONITOR_VERSION = "4.0.0"
INSTALL_TIMEOUT = 900.0
"""Seconds one install command may take (a cold pip install of claude-monitor's deps is the slowest)."""


@dataclass
class Peer:
    """One installed (or not installable) peer.

    Attributes:
        name: "ccusage" or "claude-monitor".
        version: the pinned version.
        command: argv prefix that runs it, or empty when it could not be installed.
        error: why it could not be installed.
        notes: how it is run (e.g. the npm shim vs the native binary).
    """

    name: str
    version: str
    command: list[str] = field(default_factory=list)
    error: str | None = None
    notes: str = ""

    @property
    def ok(self) -> bool:
        """Whether the peer can be run."""
        return bool(self.command) and self.error is None


def _install_env() -> dict[str, str]:
    """The environment for npm and pip: caches redirected into bench/.peers, no update checks."""
    env = dict(os.environ)
    env["npm_config_cache"] = str(PEERS_DIR / "npm-cache")
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    env["PIP_CACHE_DIR"] = str(PEERS_DIR / "pip-cache")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def _run(argv: list[str], *, timeout: float = INSTALL_TIMEOUT, env: dict[str, str] | None = None) -> str:
    """Run an install step; raises RuntimeError with the tail of its output when it fails."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env or _install_env(), check=False
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{argv[0]} timed out after {timeout:.0f} s") from None
    except OSError as exc:
        raise RuntimeError(f"cannot run {argv[0]}: {exc}") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv[:3])}… exited {proc.returncode}: {' | '.join(tail)}")
    return proc.stdout


def _stamp_ok(stamp: Path, version: str) -> bool:
    try:
        return json.loads(stamp.read_text()).get("version") == version
    except (OSError, ValueError, AttributeError):
        return False


def _answers(argv: list[str]) -> str | None:
    """The first line `argv --version` prints, or None when it does not run."""
    try:
        proc = subprocess.run(
            [*argv, "--version"], capture_output=True, text=True, timeout=60, env=_install_env(), check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (proc.stdout or proc.stderr).strip()
    return out.splitlines()[0] if proc.returncode == 0 and out else None


def _ccusage_platform_package() -> str | None:
    """The npm package holding ccusage's native binary for this machine, if there is one."""
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform)
    if arch is None or system is None:
        return None
    return f"@ccusage/ccusage-{system}-{arch}"


def install_ccusage(force: bool = False) -> Peer:
    """Install ccusage (npm shim + native binary) under bench/.peers/ccusage."""
    peer = Peer("ccusage", CCUSAGE_VERSION)
    prefix = PEERS_DIR / "ccusage"
    shim = prefix / "node_modules" / ".bin" / "ccusage"
    stamp = prefix / "installed.json"
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        peer.error = "node/npm not found on PATH"
        return peer
    if force or not (_stamp_ok(stamp, CCUSAGE_VERSION) and _answers([str(shim)])):
        platform_pkg = _ccusage_platform_package()
        if platform_pkg is None:
            peer.error = f"no ccusage native package for {sys.platform}/{platform.machine()}"
            return peer
        prefix.mkdir(parents=True, exist_ok=True)
        try:
            _run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(prefix),
                    "--no-save",
                    "--no-package-lock",
                    f"ccusage@{CCUSAGE_VERSION}",
                    f"{platform_pkg}@{CCUSAGE_VERSION}",
                ]
            )
        except RuntimeError as exc:
            peer.error = str(exc)
            return peer
        stamp.write_text(json.dumps({"version": CCUSAGE_VERSION, "platform_package": platform_pkg}))
    version = _answers([str(shim)])
    if version is None:
        peer.error = "installed, but `ccusage --version` does not run"
        return peer
    peer.command = [str(shim)]
    peer.notes = f"npm shim `node_modules/.bin/ccusage` (reports {version})"
    return peer


def install_claude_monitor(force: bool = False) -> Peer:
    """Install claude-monitor into its own venv under bench/.peers/claude-monitor."""
    peer = Peer("claude-monitor", CLAUDE_MONITOR_VERSION)
    venv = PEERS_DIR / "claude-monitor"
    exe = venv / "bin" / "claude-monitor"
    stamp = venv / "installed.json"
    if force or not (_stamp_ok(stamp, CLAUDE_MONITOR_VERSION) and _answers([str(exe)])):
        if force and venv.exists():
            shutil.rmtree(venv)
        # The base interpreter, not ours: a venv made from a venv's python still points at the base one.
        base = getattr(sys, "_base_executable", sys.executable)
        try:
            _run([base, "-m", "venv", str(venv)])
            _run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    f"claude-monitor=={CLAUDE_MONITOR_VERSION}",
                ]
            )
        except RuntimeError as exc:
            peer.error = str(exc)
            return peer
        stamp.write_text(json.dumps({"version": CLAUDE_MONITOR_VERSION}))
    version = _answers([str(exe)])
    if version is None:
        peer.error = "installed, but `claude-monitor --version` does not run"
        return peer
    peer.command = [str(exe)]
    peer.notes = f"own venv (reports {version})"
    return peer


def install_all(force: bool = False) -> dict[str, Peer]:
    """Install (or find already installed) every peer; never raises for a peer that cannot be installed."""
    PEERS_DIR.mkdir(parents=True, exist_ok=True)
    return {p.name: p for p in (install_ccusage(force), install_claude_monitor(force))}


def main(argv: list[str] | None = None) -> int:
    """Install the peers and print what is there."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="reinstall even when the stamp matches")
    args = parser.parse_args(argv)
    peers = install_all(force=args.force)
    for peer in peers.values():
        state = " ".join(peer.command) if peer.ok else f"NOT AVAILABLE: {peer.error}"
        print(f"{peer.name} {peer.version}: {state}")
    return 0 if all(p.ok for p in peers.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
