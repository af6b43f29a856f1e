"""Add the other tools' history to a Claude Code data set: the benchmark's "mixed" set.

    python bench/mixed.py HOME --days 60 --start ISO [--seed N]

Uses the demo writers (`zai_dash.demo`, one module per tool), which write each tool's real layout:
OpenCode's and Crush's SQLite databases, Cline task folders, Factory Droid session files. Sessions fall on
working hours, mostly on weekdays, over the same days as the Claude Code history, so every reader has a
month of data to go through. Prints what it wrote as JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zai_dash.demo.cline import write_cline_task  # noqa: E402
from zai_dash.demo.crush import write_crush_session  # noqa: E402
from zai_dash.demo.droid import write_droid_session  # noqa: E402
from zai_dash.demo.opencode import write_opencode_session  # noqa: E402

PROMPTS_PER_SESSION = (3, 12)


def _working_times(rng: random.Random, day: datetime, sessions: int) -> list[datetime]:
    """Session start times on `day` (midnight UTC) during working hours."""
    return sorted(
        day + timedelta(hours=rng.choice((9, 10, 11, 13, 14, 15, 16)), minutes=rng.uniform(0, 59))
        for _ in range(sessions)
    )


def add_other_tools(home: Path, start: datetime, days: int, seed: int = 0) -> dict[str, int]:
    """Write OpenCode, Crush, Cline and Droid sessions into `home` over `days` days from `start`.

    Returns:
        Sessions and prompts written per tool.
    """
    rng = random.Random(seed)
    counts = {"opencode_sessions": 0, "crush_sessions": 0, "cline_tasks": 0, "droid_sessions": 0, "prompts": 0}
    project = home / "src" / "api-server"
    for d in range(days):
        day = (start + timedelta(days=d)).astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        weekday = day.weekday() < 5
        if not weekday and rng.random() < 0.7:
            continue
        for at in _working_times(rng, day, rng.choice((1, 2, 3))):
            n = rng.randint(*PROMPTS_PER_SESSION)
            write_opencode_session(home, at, n, steps_per_prompt=rng.randint(2, 6), searches=rng.randint(0, 2))
            counts["opencode_sessions"] += 1
            counts["prompts"] += n
        if rng.random() < 0.5:
            at = _working_times(rng, day, 1)[0]
            n = rng.randint(*PROMPTS_PER_SESSION)
            write_crush_session(home, at, n, steps_per_prompt=rng.randint(2, 5), searches=rng.randint(0, 1),
                                project=project)  # fmt: skip
            counts["crush_sessions"] += 1
            counts["prompts"] += n
        if rng.random() < 0.6:
            at = _working_times(rng, day, 1)[0]
            times = [at + timedelta(minutes=4 * i) for i in range(rng.randint(*PROMPTS_PER_SESSION))]
            write_cline_task(home, times, task_id=str(int(at.timestamp() * 1000)))
            counts["cline_tasks"] += 1
            counts["prompts"] += len(times)
        if rng.random() < 0.4:
            at = _working_times(rng, day, 1)[0]
            times = [at + timedelta(minutes=3 * i) for i in range(rng.randint(*PROMPTS_PER_SESSION))]
            write_droid_session(home, times)
            counts["droid_sessions"] += 1
            counts["prompts"] += len(times)
    return counts


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("home", type=Path)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--start", required=True, help="first day, ISO 8601")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    json.dump(add_other_tools(args.home, start, args.days, args.seed), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
