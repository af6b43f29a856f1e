"""Measure the TUI's first paint with correct numbers, warm cache, in a real terminal.

For a data set home (e.g. `bench/data/claude-1GB-…`): one `zai-dash report --json` warms the cache and says
what the screen must show (`prompts.used`); then `zai-dash` starts in a tmux pane N times and the pane is
polled until the prompt gauge shows that number. Prints a markdown row with the median and range.

    python bench/first_paint.py DATA_HOME [--runs 5] [--size 120x36]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPTS_RE = re.compile(r"prompts (\d[\d,]*) ·")
TIMEOUT = 30.0


def _env(home: Path, cache: Path) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "TERM") if k in os.environ}
    return {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(cache),
        "XDG_STATE_HOME": str(cache / "state"),
        "TZ": "UTC",
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", default="120x36")
    parser.add_argument("--zai-dash", default=shutil.which("zai-dash") or "zai-dash")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is missing", file=sys.stderr)
        return 1
    cache = Path(tempfile.mkdtemp(prefix="zai-dash-first-paint-"))
    env = _env(args.home.resolve(), cache)
    report = subprocess.run([args.zai_dash, "report", "--json"], env=env, capture_output=True, text=True, check=True)
    expected = json.loads(report.stdout)["prompts"]["used"]
    width, height = args.size.split("x")
    socket = f"zai-dash-first-paint-{os.getpid()}"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null"]
    times: list[float] = []
    try:
        for _ in range(args.runs):
            cmd = " ".join(f"{k}='{v}'" for k, v in env.items()) + f" {args.zai_dash} --no-mouse"
            started = time.monotonic()
            subprocess.run([*tmux, "new-session", "-d", "-s", "fp", "-x", width, "-y", height, cmd], check=True)
            seen = None
            while time.monotonic() - started < TIMEOUT:
                pane = subprocess.run([*tmux, "capture-pane", "-p", "-t", "fp"], capture_output=True, text=True).stdout
                m = PROMPTS_RE.search(pane)
                if m and int(m.group(1).replace(",", "")) == expected:
                    seen = time.monotonic() - started
                    break
                time.sleep(0.01)
            subprocess.run([*tmux, "kill-session", "-t", "fp"], check=False, capture_output=True)
            if seen is None:
                print(f"the screen never showed prompts {expected} within {TIMEOUT:g} s", file=sys.stderr)
                return 1
            times.append(seen)
            time.sleep(0.5)
    finally:
        subprocess.run([*tmux, "kill-server"], check=False, capture_output=True)
        shutil.rmtree(cache, ignore_errors=True)
    print("| measurement | median | min – max | runs |")
    print("|---|---|---|---|")
    print(
        f"| TUI first paint with correct numbers (warm cache, {args.home.name}, {args.size}) "
        f"| {statistics.median(times):.2f} s | {min(times):.2f} s – {max(times):.2f} s | {len(times)} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
