"""What the Claude Code adapter keeps per record: tracemalloc over a steady stream, in-process.

The records are `bench/soak.py`'s (a prompt, then the call that answers it; `tests.support.claude_code.
steady_lines`), appended to transcripts in a temp HOME and read by `ClaudeCodeSource.poll` in batches of
one second's worth, the events folded into a `Ledger` as the engine does. After a warm-up, tracemalloc
counts what is still allocated after `--records` more records, grouped by the zai_dash line that
allocated it, and splits it into what the adapter keeps itself (its dedup and pending state) and the
events it handed over (held by the ledger; their key, session and time are allocated by the adapter).

    python bench/claude_code_memory.py                          # 12,000 records, one session
    python bench/claude_code_memory.py --sessions 600           # across 600 sessions
    python bench/claude_code_memory.py --streamed 3             # three lines per call, as Claude Code streams
    python bench/claude_code_memory.py --forget                 # then 7 quiet hours: what is freed
    python bench/claude_code_memory.py --drop-events            # no ledger: the adapter's own state alone

Counts allocations, not time: the figures do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import tracemalloc
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.support.claude_code import steady_lines  # noqa: E402
from tests.support.env import home_env  # noqa: E402
from zai_dash.domain.ledger import Ledger  # noqa: E402
from zai_dash.sources.base import SourceContext  # noqa: E402
from zai_dash.sources.tools.claude_code import ClaudeCodeSource  # noqa: E402

START = datetime(2026, 12, 2, 9, 0, tzinfo=timezone.utc)
PKG = str(REPO / "zai_dash")
ADAPTER = ("claude_code.py", "claude_code_hidden.py", "claude_code_config.py")


class Feed:
    """A Claude Code home, its adapter and a ledger, fed `steady_lines` one second at a time."""

    def __init__(self, home: Path, sessions: int, streamed: int, rate: float, keep: bool = True) -> None:
        self.project = home / ".claude" / "projects" / "-soak"
        self.project.mkdir(parents=True)
        self.now = START
        self.source = ClaudeCodeSource(SourceContext(home=home, env=home_env(home), clock=lambda: self.now))
        self.ledger = Ledger()
        self.sessions, self.streamed, self.rate = sessions, streamed, rate
        self.written = 0
        self.keep = keep

    def feed(self, count: int) -> None:
        lines = steady_lines(
            count, self.now, sessions=self.sessions, rate=self.rate, streamed=self.streamed, first=self.written
        )
        self.written += count
        per_poll = max(1, int(self.rate * self.streamed))
        for i in range(0, len(lines), per_poll):
            chunk = lines[i : i + per_poll]
            by_file: dict[str, list[bytes]] = defaultdict(list)
            for session, _at, line in chunk:
                by_file[session].append(line)
            for session, data in by_file.items():
                with open(self.project / f"{session}.jsonl", "ab") as fh:
                    fh.write(b"\n".join(data) + b"\n")
            self.now = chunk[-1][1] + timedelta(seconds=1 / self.rate)
            self.poll()

    def poll(self) -> None:
        batch = self.source.poll()
        if self.keep:
            self.ledger.add_all(batch.events)


def site(trace: tracemalloc.Traceback) -> tuple[str, bool]:
    """The innermost zai_dash line of an allocation (and the frame under it when that is not ours), and
    whether that line is the adapter's."""
    frames = list(trace)
    if frames and len(frames) > 1 and frames[0].filename == __file__:
        frames.reverse()  # oldest first (Python 3.7+): innermost first here
    inner = frames[0]
    for frame in frames:
        if frame.filename.startswith(PKG):
            name = f"{frame.filename[len(PKG) + 1 :]}:{frame.lineno}"
            if frame is not inner:
                name += f" ({Path(inner.filename).name}:{inner.lineno})"
            return name, frame.filename.endswith(ADAPTER)
    return f"{Path(inner.filename).name}:{inner.lineno}", False


def measure(args: argparse.Namespace) -> None:
    home = Path(tempfile.mkdtemp(prefix="zai-dash-ccmem-"))
    try:
        # Traced from the start: what the records free of the warm-up's allocations is counted too.
        tracemalloc.start(30)
        feed = Feed(home, args.sessions, args.streamed, args.rate, keep=not args.drop_events)
        feed.feed(args.warmup)
        gc.collect()
        before = tracemalloc.take_snapshot()
        feed.feed(args.records)
        gc.collect()
        after = tracemalloc.take_snapshot()
        report(before, after, args.records, "after the records", args.top)
        if args.forget:
            # Seven quiet hours by the wall clock, then a record in another session: reading it leaves the
            # quiet sessions' files behind, which is when they are forgotten.
            feed.now += timedelta(hours=7)
            later = steady_lines(1, feed.now, sessions=1, first=10**7)[0][2]
            (feed.project / "later.jsonl").write_bytes(later + b"\n")
            feed.poll()
            gc.collect()
            quiet = tracemalloc.take_snapshot()
            report(before, quiet, args.records, "after 7 quiet hours", args.top)
        tracemalloc.stop()
        print(f"\nledger: {feed.ledger.size()}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def report(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, records: int, when: str, top: int) -> None:
    diffs = after.compare_to(before, "traceback")
    by_site: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    adapter = other = 0
    for d in diffs:
        name, ours = site(d.traceback)
        by_site[name] += d.size_diff
        counts[name] += d.count_diff
        if ours:
            adapter += d.size_diff
        else:
            other += d.size_diff
    print(f"\n## {when}: {records:,} records")
    print(
        f"allocated at the adapter's lines: {adapter / records:.0f} B/record; elsewhere: {other / records:.0f} B/record"
    )
    print("| site | B/record | blocks/record |\n|---|---:|---:|")
    for name, size in sorted(by_site.items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f"| {name} | {size / records:.1f} | {counts[name] / records:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=12_000)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--sessions", type=int, default=1)
    parser.add_argument("--streamed", type=int, default=1, help="lines per call")
    parser.add_argument("--rate", type=float, default=20.0, help="records per second (of record time)")
    parser.add_argument("--forget", action="store_true", help="then 7 quiet hours")
    parser.add_argument(
        "--drop-events", action="store_true", help="no ledger: only what the adapter keeps by itself stays allocated"
    )
    parser.add_argument("--top", type=int, default=25)
    measure(parser.parse_args())


if __name__ == "__main__":
    main()
