"""A temp HOME for one client run, its processes (plain and on a pty), and turning it into a fixture."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import tarfile
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

FIXTURE_HOME = "/home/user"
"""What the sandbox's HOME path is rewritten to in a committed fixture."""
FAKE_TOKEN = "zd-fake-token-not-a-key"
"""The only credential any client ever sees: fake, and the fake server accepts anything."""


def slug(path: str) -> str:
    """A path the way Claude Code and Droid turn it into a folder name (`/` and `.` → `-`)."""
    return re.sub(r"[^A-Za-z0-9]", "-", path)


@dataclass
class Sandbox:
    """HOME, XDG dirs and a project folder under one temp dir; the environment a client runs with.

    Args:
        root: an empty directory to build it in.
    """

    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.workdir = self.home / "proj"
        for sub in (".config", ".local/share", ".cache", ".local/state", "proj"):
            (self.home / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / "notes.txt").write_text("zai-dash conformance: a file for tools to read.\n")

    def env(self, **extra: str) -> dict[str, str]:
        """A clean environment: only PATH, locale, terminal, HOME and XDG in the sandbox, plus `extra`."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TERM": "xterm-256color",
            "HOME": str(self.home),
            "USER": "user",
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local/share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_STATE_HOME": str(self.home / ".local/state"),
            "NO_UPDATE_NOTIFIER": "1",
            "CI": "",
        }
        env.update(self.extra_env)
        env.update(extra)
        return {k: v for k, v in env.items() if v != ""}

    def write(self, rel: str, text: str) -> Path:
        """Write a config file under HOME (parents created)."""
        path = self.home / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def run(
        self, argv: list[str], env: Mapping[str, str], timeout: float = 180, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a client command in the project folder; never raises on a non-zero exit or a timeout."""
        try:
            return subprocess.run(
                argv,
                cwd=self.workdir,
                env=dict(env),
                input=stdin if stdin is not None else "",
                capture_output=True,
                text=True,
                timeout=timeout,
                start_new_session=True,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            return subprocess.CompletedProcess(argv, 124, out, err + f"\n[timed out after {timeout}s]")

    def files_containing(self, needles: list[str]) -> set[str]:
        """Which needles occur in any file under HOME (the client's files; the project folder excluded)."""
        found: set[str] = set()
        pending = set(needles)
        for path in self.home.rglob("*"):
            if not pending:
                break
            if not path.is_file() or self.workdir in path.parents:
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            for needle in list(pending):
                if needle.encode() in data:
                    found.add(needle)
                    pending.discard(needle)
        return found


def end_strays(root: Path) -> list[int]:
    """End processes a client left running (daemons it spawned), found by the sandbox path in their
    command line or working directory, so only this run's processes. Returns their ids."""
    ended = []
    marker = str(root).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            cwd = os.readlink(proc / "cwd").encode()
        except OSError:
            continue
        if marker in cmdline or cwd.startswith(marker):
            try:
                os.kill(int(proc.name), signal.SIGTERM)
                ended.append(int(proc.name))
            except OSError:
                pass
    return ended


class PtySession:
    """A client on a pseudo-terminal (120×40), with its screen output collected by a reader thread."""

    def __init__(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=dict(env), stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self._fd = master
        self._buf = bytearray()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            with self._lock:
                self._buf += chunk

    @property
    def output(self) -> str:
        with self._lock:
            return self._buf.decode(errors="replace")

    def send(self, text: str, pause: float = 0.05) -> None:
        """Type text one character at a time (TUIs drop pasted bursts), then pause."""
        for ch in text:
            os.write(self._fd, ch.encode())
            time.sleep(0.01)
        time.sleep(pause)

    def wait(self, condition: Callable[[], bool], timeout: float) -> bool:
        """Wait until `condition()` holds (a hang guard, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return True
            if self.proc.poll() is not None:
                return condition()
            time.sleep(0.2)
        return False

    def wait_quiet(self, quiet: float, timeout: float) -> bool:
        """Wait until the screen has drawn something and then not changed for `quiet` seconds."""
        last = [len(self.output), time.monotonic()]

        def settled() -> bool:
            n = len(self.output)
            if n != last[0]:
                last[0], last[1] = n, time.monotonic()
            return n > 0 and time.monotonic() - last[1] >= quiet

        return self.wait(settled, timeout)

    def close(self, grace: float = 5) -> int | None:
        """Wait for the client to exit by itself, else end its process group."""
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        try:
            os.close(self._fd)
        except OSError:
            pass
        return self.proc.returncode


# --- fixtures -------------------------------------------------------------------------------------


def _spellings(old: str, new: str) -> list[tuple[str, str]]:
    """The ways a client writes the HOME path: as is, slugged (`-tmp-…`), and relative (`tmp/…`, OpenCode)."""
    return [(old, new), (slug(old), slug(new)), (old.lstrip("/"), new.lstrip("/"))]


def _rewrite_bytes(data: bytes, old: str, new: str) -> bytes:
    for a, b in _spellings(old, new):
        data = data.replace(a.encode(), b.encode())
    return data


def _rewrite_sqlite(path: Path, old: str, new: str) -> None:
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")') if r[2].upper() in ("TEXT", "")]
            for col in cols:
                for a, b in _spellings(old, new):
                    con.execute(
                        f'UPDATE "{table}" SET "{col}" = replace("{col}", ?, ?) WHERE typeof("{col}")=\'text\'', (a, b)
                    )
        con.commit()
        con.execute("VACUUM")
    finally:
        con.close()


def export_fixture(home: Path, rel_paths: list[str], dest: Path) -> list[str]:
    """Pack the client's data files from a sandbox HOME into `dest` (a `.tar.xz`), HOME paths rewritten.

    SQLite databases are checkpointed, rewritten and vacuumed (no `-wal`/`-shm`); text files have the
    sandbox path (and its slug) replaced by `FIXTURE_HOME`; folder names too. One xz archive per tool:
    the clients repeat their system prompts in every session, which only a solid archive shrinks.
    Members are sorted, with mtime 0 and no owner, so re-recording the same files gives the same bytes.
    Returns the member names.
    """
    old = str(home)
    members: list[tuple[str, bytes]] = []
    with tempfile.TemporaryDirectory() as scratch:
        for rel in rel_paths:
            src = home / rel
            if src.is_file():
                paths = [src]
            elif src.exists():
                paths = sorted(p for p in src.rglob("*") if p.is_file())
            else:
                paths = []
            for path in paths:
                if path.name.endswith(("-wal", "-shm", "-journal")):
                    continue
                name = _rewrite_bytes(str(path.relative_to(home)).encode(), old, FIXTURE_HOME).decode()
                if path.read_bytes()[:16] == b"SQLite format 3\x00":
                    copy = Path(scratch) / f"{len(members)}.db"
                    shutil.copy2(path, copy)
                    for suffix in ("-wal", "-shm"):
                        side = path.with_name(path.name + suffix)
                        if side.exists():
                            shutil.copy2(side, copy.with_name(copy.name + suffix))
                    _rewrite_sqlite(copy, old, FIXTURE_HOME)
                    data = copy.read_bytes()
                else:
                    data = _rewrite_bytes(path.read_bytes(), old, FIXTURE_HOME)
                members.append((name, data))
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:xz", preset=9) as tar:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return [name for name, _ in sorted(members)]


def install_fixture(archive: Path, home: Path, mtime: float | None = None) -> list[Path]:
    """Unpack a committed fixture archive into a HOME, every file's mtime set to `mtime` when given."""
    written: list[Path] = []
    with tarfile.open(archive, "r:xz") as tar:
        for member in tar.getmembers():
            if not member.isfile() or member.name.startswith("/") or ".." in Path(member.name).parts:
                continue
            out = home / member.name
            out.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            out.write_bytes(source.read())
            if mtime is not None:
                os.utime(out, (mtime, mtime))
            written.append(out)
    return written
