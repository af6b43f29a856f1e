"""Soak: the real headless engine (`zai-dash export`) fed 20 records/s for 10 minutes.

A writer appends Claude Code transcript lines (a prompt and its answered model call, alternately) to a
session file in a temp HOME at a steady rate; the engine runs as a child process exactly as a user runs
it. Every minute the child's CPU time (/proc/<pid>/stat) and RSS (/proc/<pid>/status) are sampled; at
the end the counts the engine published (its state file, the same document `status` reads) are compared
with what was written.

    python bench/soak.py                      # 10 minutes at 20 records/s
    python bench/soak.py --minutes 1 --rate 50 --json out.json
    python bench/soak.py --status             # `zai-dash status` with dead, slow and trickling endpoints
    python bench/soak.py --status --runs 15   # more runs a case (default 9)

Prints a Markdown table for bench/RESULTS.md ("Soak", "status with a bad endpoint").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.support.env import home_env  # noqa: E402
from zai_dash.demo.claude_code import assistant_record, usage, user_record  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
SESSION = "5oak0000-0000-4000-8000-000000000001"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid: int) -> float:
    """Resident set size in MiB."""
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else float("nan")


def user_line(i: int, now: datetime) -> dict[str, Any]:
    """Prompt `i`, as Claude Code writes it (`zai_dash.demo.claude_code`, the one Claude Code writer)."""
    return user_record(now, f"prompt {i}", session=SESSION, cwd="/soak", uuid=str(uuid.uuid4()), git_branch=None)


def call_line(i: int, now: datetime) -> dict[str, Any]:
    """The model call that answers prompt `i`."""
    return assistant_record(
        now,
        message_id=f"msg_{i}",
        model="glm-4.6",
        content=[{"type": "text", "text": "ok"}],
        tokens=usage(1000, 50, cache_read=500),
        request_id=f"req_{i}",
        session=SESSION,
        cwd="/soak",
        uuid=str(uuid.uuid4()),
        git_branch=None,
    )


def published(home: Path) -> tuple[int, int] | None:
    """(prompts, calls) in the engine's latest published snapshot."""
    try:
        doc = json.loads((home / ".cache" / "zai-dash" / "state.json").read_text())["doc"]
        return int(doc["prompts"]["used"]), int(doc["prompts"]["calls"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


PROFILED = """
import cProfile, pstats, runpy, sys, threading

# `python -m cProfile` sees the main thread only, and the engine scans and builds snapshots in worker
# threads (asyncio.to_thread): every thread gets its own profiler, merged into one file at the end.
out, profiles, run = sys.argv.pop(1), [], threading.Thread.run

def profiled(self):
    prof = cProfile.Profile()
    profiles.append(prof)
    prof.enable()
    try:
        run(self)
    finally:
        prof.disable()

threading.Thread.run = profiled
main = cProfile.Profile()
profiles.append(main)
sys.argv[0] = "zai_dash"
main.enable()
try:
    runpy.run_module("zai_dash", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    main.disable()
    for prof in profiles:
        prof.disable()
    stats = pstats.Stats(profiles[0])
    for prof in profiles[1:]:
        try:
            stats.add(prof)
        except TypeError:  # a thread that never ran anything
            pass
    stats.dump_stats(out)
"""
"""The engine under cProfile in every thread (`--profile`)."""


def soak(minutes: float, rate: float, profile: Path | None = None) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="zai-dash-soak-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE_", "ANTHROPIC_", "ZAI_"))},
        **home_env(home),
    }
    log = home / ".claude" / "projects" / "-soak" / f"{SESSION}.jsonl"
    log.parent.mkdir(parents=True)
    log.touch()
    launch = ["-c", PROFILED, str(profile)] if profile else ["-m", "zai_dash"]
    child = subprocess.Popen(
        [sys.executable, *launch, "export", "--listen", "127.0.0.1:0"],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stderr is not None
    child.stderr.readline()  # "serving …": scanned and watching
    samples: list[dict[str, float]] = []
    written = {"prompts": 0, "calls": 0}
    start = time.monotonic()
    last_cpu, last_t = cpu_seconds(child.pid), start
    next_sample = start + 60
    i = 0
    with open(log, "a") as fh:
        while (now := time.monotonic()) - start < minutes * 60 + 1:
            due = int((now - start) * rate)
            while i < due:
                at = datetime.now(timezone.utc)
                rec = user_line(i // 2, at) if i % 2 == 0 else call_line(i // 2, at)
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
                written["prompts" if i % 2 == 0 else "calls"] += 1
                i += 1
            fh.flush()
            if now >= next_sample:
                cpu = cpu_seconds(child.pid)
                samples.append(
                    {"minute": len(samples) + 1, "cpu_percent": 100 * (cpu - last_cpu) / (now - last_t),
                     "rss_mib": rss_mib(child.pid), "written": i}
                )  # fmt: skip
                print(f"minute {len(samples)}: {samples[-1]}", file=sys.stderr, flush=True)
                last_cpu, last_t, next_sample = cpu, now, next_sample + 60
            time.sleep(0.05)
        if i % 2:  # the last prompt's answer: a prompt counts once answered, so the counts can match
            fh.write(json.dumps(call_line(i // 2, datetime.now(timezone.utc)), separators=(",", ":")) + "\n")
            written["calls"] += 1
            i += 1
    # Let the engine catch up (a wake-up is debounced), then compare what it published.
    counted = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        counted = published(home)
        if counted == (written["prompts"], written["calls"]):
            break
        time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    shutil.rmtree(home, ignore_errors=True)  # 12,000 records of transcript, the cache and the state file
    return {"minutes": minutes, "rate": rate, "samples": samples, "written": written, "counted": counted}


def table(result: dict[str, Any]) -> str:
    rows = ["| minute | CPU (% of one core) | RSS (MiB) | records written so far |", "|---:|---:|---:|---:|"]
    for s in result["samples"]:
        rows.append(f"| {s['minute']} | {s['cpu_percent']:.1f} | {s['rss_mib']:.1f} | {s['written']:,} |")
    w, c = result["written"], result["counted"]
    rows.append("")
    rows.append(f"Written: {w['prompts']:,} prompts, {w['calls']:,} calls. Counted by the engine: "
                + (f"{c[0]:,} prompts, {c[1]:,} calls." if c else "nothing published."))  # fmt: skip
    return "\n".join(rows)


STATUS_CONFIG = """[api]
enabled = true
base_url = "{base}"
timeout = 10

[[proxy]]
name = "litellm"
url = "{base}/metrics"
timeout = 10

[fleet]
prometheus = "{base}"
timeout = 10
"""
"""Every endpoint `status` could know of, all at the same (bad) server."""


def _timed_status(home: Path, config: Path | None, before: Any = None) -> tuple[float, float, str]:
    """(wall ms, CPU ms of the process: user + sys, stdout) of one `zai-dash status`."""
    import resource

    from tests.support.cli import cli_env
    from tests.support.http import FAKE_KEY

    if before is not None:
        before()
    cmd = [sys.executable, "-m", "zai_dash", "status", *(["--config", str(config)] if config else [])]
    env = cli_env(home, {"ZAI_API_KEY": FAKE_KEY})
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime) * 1000
    return wall, cpu, out.stdout.strip()


def status_timings(runs: int = 9) -> str:
    """`zai-dash status` (a whole process) with every endpoint dead, slow or trickling.

    Each case has `[api]`, a `[[proxy]]` and `[fleet]` at the same server and an official reading saved
    2 minutes earlier (as a dashboard, `report` or a background refresh leaves it), except the
    baseline (no config file at all). The package is byte-compiled first, as an installed one is.
    """
    import compileall
    import contextlib
    import statistics

    from tests.support.cli import cli_env, write_known_fixture
    from tests.support.http import FAKE_KEY, LoopbackServer, Reply, TricklingServer, fixed, refused_port
    from tests.support.official import _five_hour
    from zai_dash import official_memory

    compileall.compile_dir(str(REPO / "zai_dash"), quiet=1)
    rows = [
        "| case | wall median (ms) | wall max (ms) | CPU median (ms) | runs | line |",
        "|---|---:|---:|---:|---:|---|",
    ]

    def saved(home: Path, base: str, age: timedelta) -> Any:
        path = official_memory.memory_path({"XDG_CACHE_HOME": str(home / ".cache")})
        who = official_memory.identity(FAKE_KEY, base)
        return lambda: official_memory.save(path, who, _five_hour(42)["data"], datetime.now(timezone.utc) - age)

    cases: list[tuple[str, str, Any, timedelta | None]] = [
        ("no config file (baseline: start-up, cache, scan)", "off", None, None),
        ("dead (connection refused), reading 2 min old", "on", None, timedelta(minutes=2)),
        ("slow (answers after 10 s), reading 2 min old", "on", "slow", timedelta(minutes=2)),
        ("trickling (1 byte / 0.2 s), reading 2 min old", "on", "trickle", timedelta(minutes=2)),
        ("dead, reading 1 h old (starts a background refresh)", "on", None, timedelta(hours=1)),
        ("dead, a dashboard running (its fresh state file)", "dashboard", None, timedelta(minutes=2)),
    ]
    for label, mode, kind, age in cases:
        home = Path(tempfile.mkdtemp(prefix="zai-dash-status-"))
        write_known_fixture(home)
        server: Any = contextlib.nullcontext()
        if kind == "slow":
            server = LoopbackServer(fixed(Reply(200, _five_hour(42), delay=10)))
        elif kind == "trickle":
            server = TricklingServer()
        with server as live:
            base = live.base if live is not None else f"http://127.0.0.1:{refused_port()}"
            config: Path | None = None
            if mode != "off":
                config = home / "config.toml"
                config.write_text(STATUS_CONFIG.format(base=base))
            seed = saved(home, base, age) if age is not None else None
            if seed is not None:
                seed()
            dashboard = None
            if mode == "dashboard":  # `export` is the headless dashboard: it publishes the state file
                dashboard = subprocess.Popen(
                    [sys.executable, "-m", "zai_dash", "export", "--listen", "127.0.0.1:0", "--config", str(config)],
                    env=cli_env(home, {"ZAI_API_KEY": FAKE_KEY}), stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
                assert dashboard.stderr is not None
                dashboard.stderr.readline()  # "serving …": scanned, published
            # Every run of the stale case starts from the 1-hour-old reading, so each starts a refresh.
            each = seed if age is not None and age > timedelta(minutes=10) else None
            _timed_status(home, config, each)  # untimed: the cache is written by the first run
            results = [_timed_status(home, config, each) for _ in range(runs)]
            if dashboard is not None:
                dashboard.send_signal(signal.SIGINT)
                dashboard.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)  # a background refresh may still write there: best effort
        walls, cpus = [r[0] for r in results], [r[1] for r in results]
        line = results[-1][2].replace("|", "\\|")
        rows.append(
            f"| {label} | {statistics.median(walls):.0f} | {max(walls):.0f} | {statistics.median(cpus):.0f} "
            f"| {runs} | `{line}` |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="records per second")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--status", action="store_true", help="time `status` against bad endpoints instead")
    parser.add_argument("--runs", type=int, default=9, help="with --status: timed runs per case")
    parser.add_argument("--profile", type=Path, help="run the engine under cProfile, its stats written here")
    args = parser.parse_args()
    if args.status:
        print(status_timings(args.runs))
        return
    result = soak(args.minutes, args.rate, args.profile)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
