"""Measure the live dashboard in a real terminal: idle CPU and append-to-screen latency.

Runs `python -m zai_dash` in a tmux pane over a temp HOME holding the demo history (Claude Code format),
then
  1. idle CPU: the dashboard's own CPU time over N seconds (default 60) with nothing being written,
     as a share of one core (/proc/<pid>/stat, or `ps` where there is no /proc);
  2. latency: appends a prompt to a Claude Code transcript 20 times and polls the pane with
     `tmux capture-pane` until the prompt count on screen changes; reports median and p95.
Prints a markdown table to paste into bench/RESULTS.md.

    python bench/tui_bench.py [--idle-seconds 60] [--appends 20] [--size 100x30] [--pause 0.4]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.env import home_env  # noqa: E402
from zai_dash.demo.claude_code import ClaudeCodeWriter  # noqa: E402
from zai_dash.demo.history import write_demo_history  # noqa: E402

PROMPTS_RE = re.compile(r"prompts (\d[\d,]*) ·")
BENCH_SESSION = "9e0b5c3a-1d2f-4a6b-8c7d-5e4f3a2b1c0d"
"""A session of its own, so appended lines never collide with the demo history's dedup keys."""


class Pane:
    """A private tmux server with one pane."""

    def __init__(self) -> None:
        self.socket = f"zai-dash-bench-{os.getpid()}"

    def tmux(self, *args: str) -> str:
        cmd = ["tmux", "-L", self.socket, "-f", "/dev/null", *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout

    def text(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "bench")

    def prompts(self) -> int | None:
        m = PROMPTS_RE.search(self.text())
        return int(m.group(1).replace(",", "")) if m else None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        fields = stat.read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the full line)
        return ticks / os.sysconf("SC_CLK_TCK")
    out = subprocess.run(["ps", "-o", "time=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
    parts = [float(p) for p in re.split(r"[:-]", out)]
    seconds = 0.0
    for p in parts:
        seconds = seconds * 60 + p
    return seconds


def thread_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of `pid` (Linux only; empty elsewhere)."""
    out: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--appends", type=int, default=20)
    parser.add_argument("--size", default="100x30")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.4,
        help="seconds between one append showing and the next; under the engine's 0.5 s snapshot gap some"
        " appends wait out that rate cap, above it each append is measured alone",
    )
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is required", file=sys.stderr)
        return 2
    width, height = (int(x) for x in args.size.split("x"))

    home = Path(tempfile.mkdtemp(prefix="zai-dash-bench-"))
    pane = Pane()
    try:
        write_demo_history(home, datetime.now(timezone.utc))
        env = {
            **home_env(home),
            "TERM": "xterm-256color",
            "PYTHONPATH": str(REPO),
        }
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        pid_file = home / "pid"
        run = (
            f"echo $$ > {shlex.quote(str(pid_file))} && exec env -i PATH=/usr/bin:/bin {assigns} "
            f"{shlex.quote(sys.executable)} -m zai_dash"
        )
        size = ("-x", str(width), "-y", str(height))
        pane.tmux("new-session", "-d", "-s", "bench", *size, f"sh -c {shlex.quote(run)}")
        deadline = time.monotonic() + 30
        while pane.prompts() is None:
            if time.monotonic() > deadline:
                print(f"dashboard did not start:\n{pane.text()}", file=sys.stderr)
                return 1
            time.sleep(0.1)
        pid = int(pid_file.read_text())

        time.sleep(3)  # let start-up work (first scan, first plot) finish
        c0, t0, th0 = cpu_seconds(pid), time.monotonic(), thread_cpu(pid)
        time.sleep(args.idle_seconds)
        c1, t1, th1 = cpu_seconds(pid), time.monotonic(), thread_cpu(pid)
        idle_pct = 100 * (c1 - c0) / (t1 - t0)
        # The event loop (UI, tick, compositor) is the main thread; the engine's scans run in worker threads.
        main_s = th1.get(pid, 0.0) - th0.get(pid, 0.0)
        others_s = sum(v - th0.get(k, 0.0) for k, v in th1.items() if k != pid)

        writer = ClaudeCodeWriter(home, BENCH_SESSION)
        latencies: list[float] = []
        for i in range(args.appends):
            before = pane.prompts()
            assert before is not None
            # A prompt counts once it is answered (a refused one is counted apart), as real clients write it:
            # the answer follows the prompt, and the latency is measured from that write.
            now = datetime.now(timezone.utc)
            writer.prompt(now, f"bench prompt {i}")
            writer.call(now, "glm-5.3")
            start = time.perf_counter()
            while pane.prompts() == before:
                if time.perf_counter() - start > 10:
                    print(f"append {i} never showed:\n{pane.text()}", file=sys.stderr)
                    return 1
                time.sleep(0.005)
            latencies.append((time.perf_counter() - start) * 1000)
            time.sleep(args.pause)
        pane.tmux("send-keys", "-t", "bench", "q")

        median, p95 = statistics.median(latencies), percentile(latencies, 0.95)
        print(
            f"| Measure ({platform.system()} {platform.machine()}, Python {platform.python_version()}, "
            f"{width}×{height} tmux pane) | Result |"
        )
        print("|---|---|")
        print(f"| Idle CPU over {args.idle_seconds:.0f} s (share of one core) | {idle_pct:.2f} % |")
        print(f"| Idle CPU seconds (user+sys), whole process | {c1 - c0:.2f} s |")
        if th1:
            print(
                f"| … of which the event loop (UI) / other threads (engine scans) | {main_s:.2f} s / {others_s:.2f} s |"
            )
        print(f"| Append → on screen, median of {len(latencies)} ({args.pause:g} s apart) | {median:.0f} ms |")
        print(f"| Append → on screen, p95 of {len(latencies)} | {p95:.0f} ms |")
        print(f"| Append → on screen, max | {max(latencies):.0f} ms |")
        return 0
    finally:
        pane.tmux("kill-server")
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
