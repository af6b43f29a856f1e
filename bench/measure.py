"""Wall time and peak RSS of a command, as medians over several runs.

Each run goes through `/usr/bin/time -v` (GNU time): it reports the peak resident set size of the largest
process in the command's tree that it waited for (for the ccusage npm shim that is the native binary, which
the shim waits on). Wall time is taken around the whole run with a monotonic clock, at microsecond
resolution, because GNU time's own elapsed field only has 10 ms steps and `status` is judged at 80 ms.
Where GNU time is missing, `os.wait4` gives the same rusage numbers.

Every run gets a minimal, explicit environment (`bench_env`): HOME and every XDG directory point into the
data set or a scratch dir, so no tool ever sees the real home directory or a real API key.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GNU_TIME = Path("/usr/bin/time")
DEFAULT_TIMEOUT = 900.0

_RSS = re.compile(rb"Maximum resident set size \(kbytes\):\s*(\d+)")
_USER = re.compile(rb"User time \(seconds\):\s*([\d.]+)")
_SYS = re.compile(rb"System time \(seconds\):\s*([\d.]+)")
_EXIT = re.compile(rb"Exit status:\s*(\d+)")
_SIGNAL = re.compile(rb"Command terminated by signal (\d+)")


@dataclass
class Run:
    """One run of a command.

    Attributes:
        wall: seconds from start to exit.
        rss_kb: peak resident set size in KiB (0 when unknown).
        cpu: user + system CPU seconds.
        exit_code: the command's exit status (-N for a signal, None when it timed out).
        timed_out: whether it was killed for running past the timeout.
        stdout: what it printed (kept for the last run only, to compare answers).
        stderr_tail: the last lines of its stderr, for reporting a failure.
    """

    wall: float
    rss_kb: int
    cpu: float
    exit_code: int | None
    timed_out: bool = False
    stdout: bytes = b""
    stderr_tail: str = ""


@dataclass
class Measurement:
    """Several runs of one command on one data set.

    Attributes:
        label: what was measured (e.g. "zai-dash report --json, cold").
        runs: the timed runs (warm-up runs are not included).
        error: why it could not be measured at all.
        ok_codes: exit codes counted as success.
    """

    label: str
    runs: list[Run] = field(default_factory=list)
    error: str | None = None
    ok_codes: tuple[int, ...] = (0,)

    @property
    def ok(self) -> bool:
        """Whether every run finished in time with an accepted exit code."""
        return self.error is None and bool(self.runs) and all(self._run_ok(r) for r in self.runs)

    def _run_ok(self, run: Run) -> bool:
        return not run.timed_out and run.exit_code in self.ok_codes

    @property
    def failure(self) -> str | None:
        """A one-line reason when some run failed, else None."""
        if self.error:
            return self.error
        for run in self.runs:
            if run.timed_out:
                return f"timed out after {run.wall:.0f} s"
            if run.exit_code not in self.ok_codes:
                return f"exit {run.exit_code}: {run.stderr_tail or '(no stderr)'}"
        return None

    @property
    def wall(self) -> float:
        """Median wall seconds."""
        return statistics.median(r.wall for r in self.runs)

    @property
    def wall_min(self) -> float:
        """Fastest run's wall seconds."""
        return min(r.wall for r in self.runs)

    @property
    def wall_max(self) -> float:
        """Slowest run's wall seconds."""
        return max(r.wall for r in self.runs)

    @property
    def rss_mb(self) -> float:
        """Median peak RSS in MiB."""
        return statistics.median(r.rss_kb for r in self.runs) / 1024

    @property
    def rss_max_mb(self) -> float:
        """Largest peak RSS of any run in MiB."""
        return max(r.rss_kb for r in self.runs) / 1024

    @property
    def cpu(self) -> float:
        """Median user+system CPU seconds."""
        return statistics.median(r.cpu for r in self.runs)

    @property
    def last_stdout(self) -> bytes:
        """What the last run printed."""
        return self.runs[-1].stdout if self.runs else b""


def bench_env(
    home: Path,
    scratch: Path,
    *,
    cache: Path | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """A from-scratch environment for one tool run.

    Args:
        home: the data set's directory (holds `.claude/projects/...`); becomes HOME.
        scratch: a per-scenario directory for temp files, state and runtime dirs.
        cache: XDG_CACHE_HOME (an empty dir for a cold run, a kept one for a warm run); default scratch/cache.
        extra: more variables (e.g. CLAUDE_CONFIG_DIR for the peers).

    Returns:
        The environment: PATH from ours (node must be found), UTF-8 locale, UTC, and nothing else inherited,
        so no API key, base URL or tool directory variable of the real user leaks in.
    """
    for sub in ("tmp", "state", "runtime"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    (scratch / "runtime").chmod(0o700)
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(scratch / "state"),
        "XDG_CACHE_HOME": str(cache or scratch / "cache"),
        "XDG_RUNTIME_DIR": str(scratch / "runtime"),
        "TMPDIR": str(scratch / "tmp"),
        "NO_COLOR": "1",
        "COLUMNS": "120",
        # A scanning `status` leaves a lingering publisher behind; a benchmark that means "no dashboard
        # running" must not have its later runs answered by one (bench/status_fast.py measures that path).
        "ZAI_DASH_PUBLISHER": "0",
    }
    env.update(extra or {})
    return env


def _parse_time_v(text: bytes) -> tuple[int, float, int | None]:
    rss = _RSS.search(text)
    user = _USER.search(text)
    sys_ = _SYS.search(text)
    code = _EXIT.search(text)
    cpu = (float(user.group(1)) if user else 0.0) + (float(sys_.group(1)) if sys_ else 0.0)
    return (int(rss.group(1)) if rss else 0, cpu, int(code.group(1)) if code else None)


def _address_space_cap(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the process group this run started (and only it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_once(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path,
    timeout: float = DEFAULT_TIMEOUT,
    stdin: bytes | None = None,
    mem_limit: int | None = None,
) -> Run:
    """Run a command once under GNU time (or wait4) and return what it cost.

    The command runs in its own process group so a timeout kills its whole tree, never anything else.
    `mem_limit` caps its address space (RLIMIT_AS, bytes): a tool that would eat the machine fails instead.
    """
    with tempfile.TemporaryDirectory(prefix="zd-measure-") as tmp:
        out_path, err_path, time_path = (Path(tmp) / n for n in ("out", "err", "time"))
        use_gnu = GNU_TIME.exists()
        full = [str(GNU_TIME), "-v", "-o", str(time_path), *argv] if use_gnu else list(argv)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(
                full,
                env=env,
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_address_space_cap(mem_limit) if mem_limit else None,
            )
            # A timer kills the group on timeout while we block in waitpid: Popen.wait(timeout=…) polls with
            # sleeps of up to 50 ms, which would round every wall time up to a 50 ms step.
            expired = threading.Event()

            def on_timeout() -> None:
                expired.set()
                _kill_group(proc)

            timer = threading.Timer(timeout, on_timeout)
            timer.start()
            rusage_rss, rusage_cpu = 0, 0.0
            try:
                if stdin is not None:
                    proc.communicate(stdin)
                elif use_gnu:
                    proc.wait()
                else:
                    # wait4 returns the rusage of exactly this child (and the descendants it waited for).
                    _, status, usage = os.wait4(proc.pid, 0)
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    rusage_rss, rusage_cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
            finally:
                timer.cancel()
            timed_out = expired.is_set()
            wall = time.perf_counter() - start
        stdout = out_path.read_bytes()
        stderr = err_path.read_bytes().decode("utf-8", "replace").strip().splitlines()
        code: int | None = None if timed_out else proc.returncode
        rss, cpu = rusage_rss, rusage_cpu
        if use_gnu and time_path.exists():
            report = time_path.read_bytes()
            rss, cpu, time_code = _parse_time_v(report)
            killed = _SIGNAL.search(report)
            if timed_out:
                pass
            elif killed:
                # GNU time then says "Exit status: 0"; the signal is the truth.
                code = -int(killed.group(1))
            elif time_code is not None:
                code = time_code
    tail = " | ".join(line for line in stderr[-3:] if not line.startswith("\tCommand being timed"))
    return Run(wall, rss, cpu, code, timed_out, stdout, tail[:300])


def measure(
    label: str,
    argv: Sequence[str],
    env: dict[str, str],
    *,
    cwd: Path,
    runs: int = 5,
    warmup: int = 1,
    timeout: float = DEFAULT_TIMEOUT,
    before: Callable[[int], None] | None = None,
    ok_codes: tuple[int, ...] = (0,),
    progress: Callable[[str], None] | None = None,
    mem_limit: int | None = None,
) -> Measurement:
    """Run a command `warmup` + `runs` times and keep the timed runs.

    Args:
        label: what is measured, for the report.
        argv: the command.
        env: its environment (see `bench_env`).
        cwd: its working directory.
        runs: timed runs (medians are taken over these).
        warmup: untimed runs first, so every tool meets the same warm OS page cache.
        timeout: seconds per run; a run past it is killed and the measurement stops there.
        before: called with the run index (negative for warm-ups) before each run, untimed: resets a cache,
            appends a session, and so on.
        ok_codes: exit codes that mean success (`status` exits 10/11/20 on purpose).
        progress: called with a line per run.
        mem_limit: address-space cap in bytes (see `run_once`).

    Returns:
        The measurement; a timeout or failing exit code stops further runs (it would only repeat).
    """
    result = Measurement(label, ok_codes=ok_codes)
    for i in range(-warmup, runs):
        if before is not None:
            before(i)
        run = run_once(argv, env, cwd=cwd, timeout=timeout, mem_limit=mem_limit)
        if progress:
            tag = "warm-up" if i < 0 else f"run {i + 1}/{runs}"
            progress(f"  {label}: {tag} {run.wall:.3f} s, {run.rss_kb / 1024:.0f} MiB, exit {run.exit_code}")
        if i >= 0 or run.timed_out or run.exit_code not in ok_codes:
            if i < 0:
                # A failing warm-up is the answer: report it instead of timing failures.
                result.runs.append(run)
                break
            if i < runs - 1:
                run.stdout = b""  # keep only the last run's output; a 1 GB peer's JSON adds up
            result.runs.append(run)
            if run.timed_out or run.exit_code not in ok_codes:
                break
    return result
