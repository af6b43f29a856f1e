"""The benchmark harness (bench/run.py, bench/measure.py): measuring, isolating, judging, cleaning up.

These run real processes and write real files in tmp dirs; nothing is timed except liveness bounds.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.paths import REPO

BENCH = REPO / "bench"
sys.path.insert(0, str(BENCH))

import measure  # noqa: E402
import run  # noqa: E402

PY = sys.executable


def _env(tmp_path: Path) -> dict[str, str]:
    return measure.bench_env(tmp_path / "home", tmp_path / "scratch")


def test_run_once_reports_exit_code_output_and_peak_rss(tmp_path: Path) -> None:
    r = measure.run_once(
        [PY, "-c", "import sys; x = bytearray(80 * 1024 * 1024); print('hi'); sys.exit(3)"],
        _env(tmp_path),
        cwd=tmp_path,
    )
    assert r.exit_code == 3
    assert r.stdout == b"hi\n"
    assert r.rss_kb >= 80 * 1024
    assert r.wall > 0 and not r.timed_out


def test_run_once_reports_a_signal_as_a_negative_code(tmp_path: Path) -> None:
    r = measure.run_once(["sh", "-c", "kill -9 $$"], _env(tmp_path), cwd=tmp_path)
    assert r.exit_code == -9


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    r = measure.run_once(
        ["sh", "-c", f"sleep 60 & echo $! > {pid_file}; wait"], _env(tmp_path), cwd=tmp_path, timeout=1
    )
    assert r.timed_out and r.exit_code is None
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the grandchild outlived the timeout")


def test_memory_cap_makes_a_greedy_command_fail_instead_of_eating_the_machine(tmp_path: Path) -> None:
    r = measure.run_once(
        [PY, "-c", "x = bytearray(600 * 1024 * 1024)"], _env(tmp_path), cwd=tmp_path, mem_limit=300 * 1024**2
    )
    assert r.exit_code == 1
    assert "MemoryError" in r.stderr_tail


def test_bench_env_inherits_nothing_but_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "secret")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", "/real/home/.claude")
    env = measure.bench_env(tmp_path / "home", tmp_path / "scratch", cache=tmp_path / "c", extra={"X": "1"})
    assert "ANTHROPIC_AUTH_TOKEN" not in env and "CLAUDE_CONFIG_DIR" not in env
    assert env["HOME"] == str(tmp_path / "home")
    assert env["XDG_CACHE_HOME"] == str(tmp_path / "c")
    assert env["X"] == "1"
    for key in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "TMPDIR"):
        assert env[key].startswith(str(tmp_path)), key


def test_measure_keeps_timed_runs_only_and_calls_before_for_each(tmp_path: Path) -> None:
    seen: list[int] = []
    m = measure.measure(
        "echo", [PY, "-c", "print(1)"], _env(tmp_path), cwd=tmp_path, runs=3, warmup=1, before=seen.append
    )
    assert seen == [-1, 0, 1, 2]
    assert len(m.runs) == 3 and m.ok
    assert m.last_stdout == b"1\n"
    assert m.wall_min <= m.wall <= m.wall_max


def test_measure_stops_at_the_first_failure_and_says_why(tmp_path: Path) -> None:
    m = measure.measure(
        "fails", [PY, "-c", "import sys; sys.stderr.write('boom'); sys.exit(30)"], _env(tmp_path), cwd=tmp_path, runs=5
    )
    assert not m.ok
    assert len(m.runs) == 1
    assert m.failure is not None and "exit 30" in m.failure and "boom" in m.failure


def test_status_style_exit_codes_can_count_as_success(tmp_path: Path) -> None:
    m = measure.measure(
        "status", [PY, "-c", "import sys; sys.exit(11)"], _env(tmp_path), cwd=tmp_path, runs=2, ok_codes=(0, 11)
    )
    assert m.ok


def test_ratio_verdict_says_met_or_by_how_much_it_missed() -> None:
    assert run._ratio_verdict(0.2, 0.3, run._s).startswith("met")
    missed = run._ratio_verdict(0.6, 0.3, run._s)
    assert "missed" in missed and "300 ms" in missed and "2.0×" in missed


def test_tui_rows_are_judged_against_the_targets() -> None:
    table = (
        "| Measure | Result |\n|---|---|\n| Idle CPU over 300 s (share of one core) | 0.40 % |\n"
        "| Append → on screen, p95 of 20 | 450 ms |\n| First paint, warm, 1 GB | 0.8 s |\n"
    )
    got = {v.measurement: v for v in run.tui_verdicts(table, "ran")}
    assert got["idle CPU with the TUI open"].verdict.startswith("met")
    assert "missed" in got["append-to-screen latency"].verdict
    assert got["TUI first paint with correct numbers, warm, 1 GB"].verdict.startswith("met")
    absent = run.tui_verdicts(None, "tui_bench.py missing")
    assert all("not measured (tui_bench.py missing)" in v.verdict for v in absent)


def test_live_window_starts_on_the_hour_before_a_quiet_day() -> None:
    for minute in (0, 1, 59):
        now = datetime(2026, 11, 26, 20, minute, 30, tzinfo=timezone.utc)
        start, end = run.live_window(now)
        assert start.minute == start.second == start.microsecond == 0
        assert end - start >= timedelta(minutes=45)
        assert end < now
        # The history ends at midnight yesterday: more than five hours before the active session.
        history_end = run.data_start(now) + timedelta(days=run.DAYS)
        assert start - history_end > timedelta(hours=5)


def _measurement(label: str, doc: object) -> measure.Measurement:
    return measure.Measurement(label, runs=[measure.Run(1.0, 1024, 1.0, 0, stdout=json.dumps(doc).encode())])


def test_counts_compare_the_active_window(tmp_path: Path) -> None:
    ds = run.DataSet("1GB", tmp_path, {}, datetime(2026, 9, 25, tzinfo=timezone.utc))
    res = run.SetResult(
        ds, 5, live_truth={"calls_main": 40, "calls_subagent": 10, "start": "2026-11-26T19:00:00+00:00"}
    )
    res.cold = _measurement(
        "zd", {"prompts": {"calls": 50, "used": 9}, "cycle": {"start": "2026-11-26T19:00:03+00:00"}}
    )
    res.ccusage = _measurement(
        "cc",
        {"blocks": [{"isActive": True, "entries": 52, "startTime": "2026-11-26T19:00:00.000Z"}]},
    )
    counts = run.compare_counts(res)
    assert counts["truth"] == 50 and counts["zai_dash"] == 50 and counts["ccusage"] == 52
    assert run._same(counts["zai_dash"], counts["ccusage"]) == "**no** (+2)"
    assert run._same(counts["zai_dash"], counts["truth"]) == "yes"


def test_live_sessions_are_written_at_the_given_instant_and_removed_again(tmp_path: Path) -> None:
    home = tmp_path / "set"
    existing = home / ".claude" / "projects" / "-home-dev-src-api-server" / "old.jsonl"
    existing.parent.mkdir(parents=True)
    existing.write_text("{}\n")
    ds = run.DataSet("1GB", home, {}, datetime(2026, 9, 25, tzinfo=timezone.utc))
    start = datetime(2026, 11, 26, 19, 0, tzinfo=timezone.utc)
    with run.LiveSessions(ds) as live:
        stats = live.add(start, start + timedelta(minutes=45), seed=1)
        added = [home / rel for rel in live.added]
        assert added and all(p.exists() for p in added)
        assert stats.calls_main + stats.calls_subagent > 0
        stamps = [
            json.loads(line).get("timestamp")
            for p in home.rglob("*.jsonl")
            if p != existing
            for line in p.read_text().splitlines()
        ]
        first = min(t for t in stamps if isinstance(t, str))
        assert first.startswith("2026-11-26T19:00:00")
        assert json.loads((home / run.LIVE_MANIFEST).read_text()) == live.added
    assert not any(p.exists() for p in added)
    assert existing.exists()
    assert not (home / run.LIVE_MANIFEST).exists()


def test_a_crashed_runs_sessions_are_removed_by_the_next_run(tmp_path: Path) -> None:
    home = tmp_path / "set"
    home.mkdir()
    ds = run.DataSet("1GB", home, {}, datetime(2026, 9, 25, tzinfo=timezone.utc))
    live = run.LiveSessions(ds)
    live.add(datetime(2026, 11, 26, 19, 0, tzinfo=timezone.utc), datetime(2026, 11, 26, 19, 30, tzinfo=timezone.utc), 2)
    leftovers = [home / rel for rel in live.added]
    # No cleanup: the process "crashed". The next run's LiveSessions removes them from the manifest.
    run.LiveSessions(ds)
    assert leftovers and not any(p.exists() for p in leftovers)


def test_without_gnu_time_wait4_gives_the_same_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(measure, "GNU_TIME", tmp_path / "no-such-time")
    r = measure.run_once(
        [PY, "-c", "import sys; x = bytearray(60 * 1024 * 1024); sys.exit(4)"], _env(tmp_path), cwd=tmp_path
    )
    assert r.exit_code == 4
    assert r.rss_kb >= 60 * 1024
    assert r.cpu > 0
    slow = measure.run_once(["sleep", "30"], _env(tmp_path), cwd=tmp_path, timeout=1)
    assert slow.timed_out and slow.exit_code is None


def _set(tmp_path: Path, label: str, files: int, status_wall: float, code: str) -> run.SetResult:
    ds = run.DataSet(label, tmp_path, {"files": files}, datetime(2026, 9, 25, tzinfo=timezone.utc))
    res = run.SetResult(ds, 5, code=code)
    res.status = measure.Measurement("status", runs=[measure.Run(status_wall, 1024, status_wall, 0)])
    return res


def test_notes_flag_code_that_changed_mid_run_and_per_file_cost(tmp_path: Path) -> None:
    same = run.why_notes([_set(tmp_path, "100MB", 1000, 0.2, "a"), _set(tmp_path, "1GB", 9000, 0.6, "a")])
    assert not any("changed during this run" in n for n in same)
    assert any("≈ 50 ms per 1,000 files" in n for n in same)
    changed = run.why_notes([_set(tmp_path, "100MB", 1000, 0.2, "a"), _set(tmp_path, "1GB", 9000, 0.6, "b")])
    assert any("changed during this run" in n for n in changed)


def test_code_fingerprint_is_stable_between_calls() -> None:
    assert run.code_fingerprint() == run.code_fingerprint()


def test_first_paint_row_with_range_and_runs_columns_is_read() -> None:
    table = (
        "| measurement | median | min – max | runs |\n|---|---|---|---|\n"
        "| TUI first paint with correct numbers (warm cache, claude-1GB, 120x36) | 1.40 s | 1.20 s – 1.90 s | 5 |\n"
    )
    (paint,) = [v for v in run.tui_verdicts(table, "ran") if "first paint" in v.measurement]
    assert paint.value == "1.40 s"
    assert "missed" in paint.verdict and "400 ms" in paint.verdict
