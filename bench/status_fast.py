"""`zai-dash status` on its fast path (issue 15 §6): a dashboard running, and the lingering publisher.

A whole `python -m zai_dash status` process per run, over the known fixture in a temp HOME (warm cache,
package byte-compiled first, as an installed one is). CPU is user + sys of the `status` process itself
(a publisher it starts is detached and not counted; it competes for the cores, which the wall time shows).

Cases, each with no config file and with `[api]`, a `[[proxy]]` and `[fleet]` all at a dead, slow (10 s)
or trickling server (as `bench/soak.py --status`):

- *full path, no publisher*: `ZAI_DASH_PUBLISHER=0`, no dashboard: every call scans (before this change);
- *a dashboard running*: `zai-dash export` publishes the state file: the fast path;
- *no dashboard, first call*: no publisher yet: the scan, then the publisher's start (each run starts
  from none: the previous run's publisher is stopped and its state file removed);
- *no dashboard, following call*: the publisher the first call started answers: the fast path.

    python bench/status_fast.py              # 15 timed runs a case
    python bench/status_fast.py --runs 25 --only none,dead

Prints a Markdown table (medians) and the load average before and after, for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from soak import STATUS_CONFIG  # noqa: E402

from tests.support.cli import cli_env, write_known_fixture  # noqa: E402
from tests.support.http import FAKE_KEY, LoopbackServer, Reply, TricklingServer, fixed, refused_port  # noqa: E402
from tests.support.official import _five_hour  # noqa: E402
from zai_dash import official_memory, publisher  # noqa: E402

ENDPOINTS = ("none", "dead", "slow", "trickle")
ENDPOINT_LABELS = {
    "none": "no config file",
    "dead": "dead endpoint",
    "slow": "slow (10 s) endpoint",
    "trickle": "trickling endpoint",
}
MODES = ("full", "dashboard", "first", "following")
MODE_LABELS = {
    "full": "full path, no publisher (before)",
    "dashboard": "a dashboard running",
    "first": "no dashboard, first call",
    "following": "no dashboard, following call",
}


def _env(home: Path, publisher_on: bool) -> dict[str, str]:
    return cli_env(home, {"ZAI_API_KEY": FAKE_KEY, "ZAI_DASH_PUBLISHER": "1" if publisher_on else "0"})


def _timed(home: Path, config: Path | None, env: dict[str, str]) -> tuple[float, float, str, int]:
    """(wall ms, CPU ms: user + sys of the process, stdout, exit code) of one `zai-dash status`."""
    cmd = [sys.executable, "-m", "zai_dash", "status", *(["--config", str(config)] if config else [])]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime) * 1000
    return wall, cpu, out.stdout.strip(), out.returncode


def _wait(predicate: Callable[[], object], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _state(home: Path) -> Path:
    return home / ".cache" / "zai-dash" / "state.json"


def _published_with_inputs(home: Path) -> bool:
    with contextlib.suppress(OSError, ValueError):
        return "inputs" in json.loads(_state(home).read_text())
    return False


def _stop_publisher(home: Path) -> None:
    """Stop the publisher of this home (if any), wait for it, and remove its state file."""
    running = publisher.info(_state(home))
    if running is not None and isinstance(running.get("pid"), int):
        with contextlib.suppress(OSError):
            os.kill(running["pid"], signal.SIGTERM)
        _wait(lambda: publisher.info(_state(home)) is None)
    with contextlib.suppress(OSError):
        _state(home).unlink()


def measure(endpoint: str, mode: str, runs: int) -> dict[str, Any]:
    """Median wall and CPU of `runs` timed `status` calls of one case (after one untimed call)."""
    home = Path(tempfile.mkdtemp(prefix="zai-dash-status-fast-"))
    write_known_fixture(home)
    server: Any = contextlib.nullcontext()
    if endpoint == "slow":
        server = LoopbackServer(fixed(Reply(200, _five_hour(42), delay=10)))
    elif endpoint == "trickle":
        server = TricklingServer()
    dashboard: subprocess.Popen[str] | None = None
    results: list[tuple[float, float, str, int]] = []
    try:
        with server as live:
            base = live.base if live is not None else f"http://127.0.0.1:{refused_port()}"
            config: Path | None = None
            if endpoint != "none":
                config = home / "config.toml"
                config.write_text(STATUS_CONFIG.format(base=base))
                # A reading 2 minutes old, as a dashboard, `report` or a background refresh leaves it.
                path = official_memory.memory_path({"XDG_CACHE_HOME": str(home / ".cache")})
                who = official_memory.identity(FAKE_KEY, base)
                fetched = datetime.now(timezone.utc) - timedelta(minutes=2)
                official_memory.save(path, who, _five_hour(42)["data"], fetched)
            env = _env(home, publisher_on=mode in ("first", "following"))
            if mode == "dashboard":  # `export` is the headless dashboard: it publishes the state file
                command = [sys.executable, "-m", "zai_dash", "export", "--listen", "127.0.0.1:0"]
                command += ["--config", str(config)] if config else []
                dashboard = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
                assert dashboard.stderr is not None
                dashboard.stderr.readline()  # "serving …": scanned, published
                _wait(lambda: _published_with_inputs(home))
            _timed(home, config, env)  # untimed: writes the cache (and, publisher on, starts one)
            if mode == "following":
                _wait(lambda: _published_with_inputs(home))
            for _ in range(runs):
                if mode == "first":
                    _stop_publisher(home)
                results.append(_timed(home, config, env))
            if mode in ("first", "following"):
                _stop_publisher(home)
    finally:
        if dashboard is not None:
            dashboard.send_signal(signal.SIGINT)
            dashboard.wait(timeout=30)
        shutil.rmtree(home, ignore_errors=True)  # a background refresh may still write there: best effort
    walls, cpus = [r[0] for r in results], [r[1] for r in results]
    return {
        "endpoint": endpoint,
        "mode": mode,
        "wall": statistics.median(walls),
        "wall_max": max(walls),
        "cpu": statistics.median(cpus),
        "runs": runs,
        "line": results[-1][2],
        "codes": sorted({r[3] for r in results}),
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| case | endpoints | wall median (ms) | wall max (ms) | CPU median (ms) | runs | line |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        line = r["line"].replace("|", "\\|")
        out.append(
            f"| {MODE_LABELS[r['mode']]} | {ENDPOINT_LABELS[r['endpoint']]} | {r['wall']:.0f} | {r['wall_max']:.0f} "
            f"| {r['cpu']:.0f} | {r['runs']} | `{line}` |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs a case")
    parser.add_argument("--only", default=",".join(ENDPOINTS), help=f"endpoint cases, of {', '.join(ENDPOINTS)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"modes, of {', '.join(MODES)}")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    compileall.compile_dir(str(REPO / "zai_dash"), quiet=1)
    load_before = os.getloadavg()
    started = datetime.now(timezone.utc)
    rows = [measure(endpoint, mode, args.runs) for mode in args.modes.split(",") for endpoint in args.only.split(",")]
    load_after = os.getloadavg()
    print(table(rows))
    print()
    print(
        f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, load average (1/5/15 min) before "
        f"{'/'.join(f'{x:.2f}' for x in load_before)}, after {'/'.join(f'{x:.2f}' for x in load_after)}"
    )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": [load_before, load_after]}, indent=2))


if __name__ == "__main__":
    main()
