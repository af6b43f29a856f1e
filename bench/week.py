"""Issue 10's benchmarks: `report --json` over a week of history next to ccusage's weekly and active-block views.

    python bench/week.py [--sizes 1GB,4GB] [--runs 3] [--days 8] [--seed 7]

For each size a data set of `--days` days of Claude Code history (ending at midnight UTC today) is made
with `gen_claude.py` under `bench/data/week-<size>` (kept between runs). On it, each with a from-scratch
environment (`measure.bench_env`):

- `zai-dash report --json`, cold (a new empty cache dir every run) and warm (the cache kept, and before
  each timed run one new session of a few hundred KB appended: `append_session`, removed again after);
- `ccusage weekly --json --offline` and `ccusage blocks --active --json --offline` (`peers.py` installs
  ccusage into the ignored `bench/.peers/`);

and, in this process, the ledger's memory after 8 days of heavy use (3 calls a minute around the clock,
a prompt every 5 minutes, a search an hour) measured with `tracemalloc`, with its size terms.

The results replace the "Weekly window (issue 10)" section of `bench/RESULTS.md` (appended if absent).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gen_claude
import measure
import peers

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "RESULTS.md"
HEADING = "## Weekly window (issue 10)"


def ensure(size: int, label: str, days: int, seed: int) -> Path:
    """The data set's HOME: `days` days of history ending at midnight UTC today."""
    home = BENCH / "data" / f"week-{label}"
    stamp = home / ".week-stamp"
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    want = f"{size} {days} {seed} {today.date()}"
    if stamp.exists() and stamp.read_text() == want:
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    gen_claude.generate(home, size=size, days=days, seed=seed, start=today - timedelta(days=days))
    stamp.write_text(want)
    return home


def zai_dash_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "zai-dash"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "zai_dash"]


def append_session(home: Path, scratch: Path, added: list[Path]) -> Callable[[int], None]:
    """A `measure` hook: before each timed run, one new generated session (on the data set's last day) joins
    the history, as a warm start meets it after a coding session; `added` lists its files for removal."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)

    def before(run: int) -> None:
        if run < 0:
            return  # the warm-up writes the cache
        src = scratch / f"new-{run}"
        gen_claude.generate(src, size=1, days=1, seed=10_000 + run, start=today - timedelta(days=1))
        for path in sorted((src / ".claude").rglob("*.jsonl")):
            dest = home / path.relative_to(src)
            dest.parent.mkdir(parents=True, exist_ok=True)
            stamp = path.stat().st_mtime
            shutil.move(path, dest)
            os.utime(dest, (stamp, stamp))
            added.append(dest)

    return before


def remove_added(home: Path, added: list[Path]) -> None:
    """Take the appended sessions out of the data set again (files, then the folders left empty)."""
    for path in added:
        path.unlink(missing_ok=True)
        parent = path.parent
        while parent != home and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent


def run_set(home: Path, runs: int) -> dict[str, measure.Measurement]:
    out: dict[str, measure.Measurement] = {}
    scratch = Path(tempfile.mkdtemp(prefix="zd-week-"))
    added: list[Path] = []
    try:
        cold_cache = scratch / "cold-cache"

        def fresh_cache(_: int) -> None:
            shutil.rmtree(cold_cache, ignore_errors=True)
            cold_cache.mkdir()

        env = measure.bench_env(home, scratch / "cold", cache=cold_cache)
        out["cold"] = measure.measure(
            "zai-dash report --json, cold", [*zai_dash_cmd(), "report", "--json"], env, cwd=home, runs=runs,
            before=fresh_cache,
        )  # fmt: skip
        warm_env = measure.bench_env(home, scratch / "warm", cache=scratch / "warm-cache")
        out["warm"] = measure.measure(
            "zai-dash report --json, warm", [*zai_dash_cmd(), "report", "--json"], warm_env, cwd=home, runs=runs,
            before=append_session(home, scratch, added),
        )  # fmt: skip
        remove_added(home, added)
        ccusage = peers.install_ccusage()
        if ccusage.ok:
            extra = {"CLAUDE_CONFIG_DIR": str(home / ".claude"), "LOG_LEVEL": "0"}
            for key, args in (
                ("weekly", ["weekly", "--json", "--offline"]),
                ("blocks", ["blocks", "--active", "--json", "--offline"]),
            ):
                penv = measure.bench_env(home, scratch / key, extra=extra)
                out[key] = measure.measure(
                    f"ccusage {' '.join(args)}", [*ccusage.command, *args], penv, cwd=home, runs=runs
                )
        else:
            out["weekly"] = measure.Measurement("ccusage weekly", error=ccusage.error or "not installed")
    finally:
        remove_added(home, added)
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def ledger_memory() -> tuple[float, object, int]:
    """(MiB the ledger holds, its size terms, events fed) after 8 days of heavy use, folded as the engine does."""
    from tests.support.ledger import NOW, engine_prune, heavy_week
    from zai_dash.config import packaged_tariff
    from zai_dash.domain.ledger import Ledger, TariffMeter

    events = heavy_week()
    meter = TariffMeter(packaged_tariff(), weighted=False)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    led = Ledger(meter)
    for e in events:
        led.add(e)
        if e.ts.minute == 0 and e.ts.second == 7:  # the engine prunes every scan; hourly is plenty here
            engine_prune(led, e.ts)
    engine_prune(led, NOW)
    del events
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return held / 2**20, led.size(), 8 * 1440 * 3 + 8 * 288 + 8 * 24


def fmt_m(m: measure.Measurement | None) -> str:
    if m is None:
        return "—"
    if not m.ok:
        return f"failed: {m.failure}"
    return f"{m.wall:.2f} s ({m.wall_min:.2f}–{m.wall_max:.2f}), CPU {m.cpu:.2f} s, peak RSS {m.rss_max_mb:.0f} MiB"


def render(
    results: dict[str, dict[str, measure.Measurement]],
    mem: tuple[float, object, int],
    runs: int,
    days: int,
    note: str = "",
    machine: str = "",
) -> str:
    lines = [
        HEADING,
        "",
        f"Made by `python bench/week.py` ({runs} timed runs after a warm-up, medians; min–max in brackets). Each "
        f"data set is {days} days of generated Claude Code history ending at midnight UTC, so the weekly "
        "window and the week before it are all on disk. zai-dash keeps 8 days of calls (one by one for "
        "24 h, then in minute buckets) and reads every file modified in them; ccusage reads every file whole. "
        "Warm: the cache of the warm-up kept, and before each timed run one new generated session (0.3–1.3 MB, "
        "on the last day) appended, as after a coding session.",
        "",
        "| data | zai-dash report --json, cold | warm | ccusage weekly --json --offline "
        "| ccusage blocks --active --json --offline | cold ÷ ccusage weekly |",
        "|---|---|---|---|---|---|",
    ]
    for label, res in results.items():
        cold, weekly = res.get("cold"), res.get("weekly")
        ratio = f"{cold.wall / weekly.wall:.2f}×" if cold and weekly and cold.ok and weekly.ok else "—"
        cells = [fmt_m(cold), fmt_m(res.get("warm")), fmt_m(weekly), fmt_m(res.get("blocks")), ratio]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    mib, size, fed = mem
    lines += [
        "",
        f"Ledger memory after 8 days of heavy use ({fed:,} events fed: 3 calls a minute around the clock, a prompt "
        f"every 5 min, a search an hour), pruned as the engine does: **{mib:.1f} MiB** held (tracemalloc), as "
        f"`{size}`. The bound: the last 24 h one event each, then one bucket per minute with one tally per "
        "(tool, model, kind, role, service) and an 8-byte digest per folded event (dedup), 8 days of calls "
        "and the month of MCP calls; `tests/domain/test_ledger.py` asserts it.",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *verdicts(results),
        "",
        "How: with 8 days kept, every line of a week-dense history is read and handled in Python, so a cold "
        "scan costs CPU by the lines in the window; Claude Code's lines are decoded (msgspec) into the few "
        "fields the rules read, their content and tool output left unbuilt. A poll hands its events to the "
        "ledger every "
        "4,096 (`ToolSource.spill`) and Claude Code forgets the message ids of sessions quiet for 6 h, so "
        "peak RSS follows recent use and the ledger's bound, not the history. Warm runs pay the interpreter, "
        "the cache load (the ledger as columns of base64 arrays, decoded in C; the day of events then indexed "
        "in one pass and the buckets' coarser sums added level by level), the new session, the cache write "
        "(streamed a column at a time) and the snapshot.",
        "",
    ]
    if machine:
        lines += [machine, ""]
    if note:
        lines += [note, ""]
    return "\n".join(lines)


def verdicts(results: dict[str, dict[str, measure.Measurement]]) -> list[str]:
    """One row per target of issue 10, for every size measured."""
    rows = []
    for label, res in results.items():
        cold, warm, weekly = res.get("cold"), res.get("warm"), res.get("weekly")
        if cold and weekly and cold.ok and weekly.ok:
            ratio = cold.wall / weekly.wall
            rows.append(
                f"| cold ≤ 0.5 × ccusage weekly ({label}) | {cold.wall:.2f} s vs {weekly.wall:.2f} s = {ratio:.2f}× "
                f"| {'met' if ratio <= 0.5 else '**missed**'} |"
            )
        if warm and warm.ok:
            rows.append(
                f"| warm ≤ 0.3 s ({label}) | {warm.wall:.2f} s | {'met' if warm.wall <= 0.3 else '**missed**'} |"
            )
        if cold and cold.ok:
            rss = max(cold.rss_max_mb, warm.rss_max_mb if warm and warm.ok else 0.0)
            # The target is set at 4 GB: a smaller set's figure is shown, not judged.
            mb = rss * 1.048576  # the target is in MB (10^6 bytes); time -v reports KiB, `rss_max_mb` MiB
            verdict = ("met" if mb <= 120 else "**missed**") if label == "4GB" else "— (the target is at 4 GB)"
            rows.append(f"| peak RSS ≤ 120 MB at 4 GB ({label}) | {rss:.0f} MiB = {mb:.0f} MB | {verdict} |")
    return rows


def write(section: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if HEADING in text:
        start = text.index(HEADING)
        nxt = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section.rstrip("\n") + "\n\n" + (text[nxt + 1 :] if nxt != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="1GB")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--days", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--note", default="", help="a paragraph on the machine and the run, appended to the section")
    args = ap.parse_args(argv)
    began, load_before = datetime.now(timezone.utc), os.getloadavg()[0]
    results = {}
    for label in args.sizes.split(","):
        home = ensure(gen_claude.parse_size(label), label, args.days, args.seed)
        results[label] = run_set(home, args.runs)
        print(label, {k: fmt_m(v) for k, v in results[label].items()}, flush=True)
    ended, load_after = datetime.now(timezone.utc), os.getloadavg()[0]
    machine = (
        f"Measured {began:%Y-%m-%d %H:%M}–{ended:%H:%M} UTC on {os.cpu_count()} cores, 1-minute load average "
        f"{load_before:.1f} before and {load_after:.1f} after (anything above 0 is other work sharing the cores)."
    )
    mem = ledger_memory()
    print("ledger", mem, flush=True)
    write(render(results, mem, args.runs, args.days, args.note, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
