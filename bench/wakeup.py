"""What one wake-up costs: a transcript appended to among a generated history, `engine.scan({path})`.

    python bench/wakeup.py [--size 50MB] [--days 30] [--wakeups 50] [--code DIR]

Generates a history with `gen_claude.generate` in a temp home, scans it once, then appends a copy of the
newest transcript's last line `--wakeups` times, each followed by the scan a watcher wake-up for that one
path makes. Counts directory listings (`os.scandir`) and file opens (`os.open`) per wake-up, and its CPU and
wall time. `--code DIR` measures another checkout's `zai_dash` (e.g. an unpacked older commit).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="50MB")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--wakeups", type=int, default=50)
    parser.add_argument("--code", type=Path, help="a checkout whose zai_dash to measure")
    args = parser.parse_args(argv)
    if args.code is not None:
        sys.path.insert(0, str(args.code.resolve()))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from gen_claude import generate, parse_size

    with tempfile.TemporaryDirectory(prefix="zai-wakeup-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = _isolated(home)
        os.environ.clear()
        os.environ.update(env)
        generate(home, parse_size(args.size), args.days, seed=7)
        print(_measure(home, args.wakeups))
    return 0


def _isolated(home: Path) -> dict[str, str]:
    keep = {k: os.environ[k] for k in ("PATH", "LANG", "TZ") if k in os.environ}
    return {
        **keep,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
    }


def _measure(home: Path, wakeups: int) -> str:
    from zai_dash.config import Config
    from zai_dash.engine import Engine
    from zai_dash.sources.base import SourceContext

    engine = Engine(Config(), ctx=SourceContext(home=home, env=dict(os.environ)))
    engine.publish_state = False
    engine.scan()
    transcripts = sorted((home / ".claude" / "projects").rglob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    target = transcripts[-1]
    last = target.read_bytes().rstrip(b"\n").rsplit(b"\n", 1)[-1] + b"\n"
    counts = {"listings": 0, "opens": 0}
    real_scandir, real_open = os.scandir, os.open

    def scandir(path: Any = ".") -> Any:
        counts["listings"] += 1
        return real_scandir(path)

    def open_(path: Any, *rest: Any, **kw: Any) -> int:
        counts["opens"] += 1
        return real_open(path, *rest, **kw)

    os.scandir, os.open = scandir, open_  # type: ignore[assignment]
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(wakeups):
            with target.open("ab") as fh:
                fh.write(last)
            engine.scan({target})
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        os.scandir, os.open = real_scandir, real_open  # type: ignore[assignment]
    return (
        f"{len(transcripts)} transcripts: per wake-up {counts['listings'] / wakeups:.0f} listings, "
        f"{counts['opens'] / wakeups:.0f} opens, CPU {cpu / wakeups * 1000:.2f} ms, wall {wall / wakeups * 1000:.2f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
