"""The engine owns source state: failures that end, wake-ups that cost one file, the cache's protocol.

Real files in a temp home, the real engine and adapters; counts (directory listings, file opens) are
taken by wrapping the `os` calls every read goes through, never by timing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support.env import FIXED_NOW
from tests.support.ui import claude_call_line, claude_prompt_line
from zai_dash.clock import FixedClock
from zai_dash.config import Config
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.claude_code import ClaudeCodeSource


def write_projects(home: Path, projects: int = 4, sessions: int = 3) -> list[Path]:
    """`projects` Claude Code projects of `sessions` transcripts each: one answered prompt per transcript."""
    paths = []
    for p in range(projects):
        for s in range(sessions):
            n = p * 100 + s
            session = f"3f1c2a9e-8d7b-4c1e-9a55-{n:012d}"
            path = home / ".claude" / "projects" / f"-home-u-proj{p}" / f"{session}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            ts = FIXED_NOW - timedelta(minutes=30 - s)
            lines = [claude_prompt_line(ts, n, session), claude_call_line(ts + timedelta(seconds=3), n, session)]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            paths.append(path)
    return paths


def append_turn(path: Path, n: int) -> None:
    """One more answered prompt at the end of a transcript."""
    session = path.stem
    ts = FIXED_NOW - timedelta(minutes=1)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(
            claude_prompt_line(ts, n, session) + "\n" + claude_call_line(ts + timedelta(seconds=2), n, session) + "\n"
        )


class Io:
    """Directory listings and file opens made while `counting` is on."""

    def __init__(self) -> None:
        self.listed: list[str] = []
        self.opened: list[str] = []


@contextmanager
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Io]:
    """Count `os.scandir`/`os.listdir` (listings) and `os.open` (every checked read opens through it)."""
    io = Io()
    scandir, listdir, open_ = os.scandir, os.listdir, os.open

    def counted_scandir(path: object = ".") -> object:
        io.listed.append(str(path))
        return scandir(path)  # type: ignore[arg-type]

    def counted_listdir(path: object = ".") -> list[str]:
        io.listed.append(str(path))
        return listdir(path)  # type: ignore[arg-type]

    def counted_open(path: object, *args: object, **kwargs: object) -> int:
        io.opened.append(str(path))
        return open_(path, *args, **kwargs)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(os, "scandir", counted_scandir)
        m.setattr(os, "listdir", counted_listdir)
        m.setattr(os, "open", counted_open)
        yield io


def engine_over(ctx: SourceContext, sources: list | None = None) -> Engine:
    engine = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW), sources=sources)
    engine.publish_state = False
    return engine


# -- a failure ends when the source reads again -------------------------------------------------------


class FlakyClaudeCode(ClaudeCodeSource):
    """The real Claude Code adapter whose discovery (or settings read) fails as a whole a set number of times."""

    def __init__(self, ctx: SourceContext, poll_failures: int = 0, config_failures: int = 0) -> None:
        super().__init__(ctx)
        self.poll_failures, self.config_failures = poll_failures, config_failures

    def _discover(self) -> list[Path]:
        if self.poll_failures:
            self.poll_failures -= 1
            raise PermissionError("projects folder went away mid-walk")
        return super()._discover()

    def configs(self):  # type: ignore[no-untyped-def]
        if self.config_failures:
            self.config_failures -= 1
            raise ValueError("settings half written")
        return super().configs()


def test_a_source_that_failed_one_poll_is_healthy_again_once_it_reads(home: Path, ctx: SourceContext) -> None:
    write_projects(home, projects=1, sessions=2)
    flaky = FlakyClaudeCode(ctx, poll_failures=1)
    engine = engine_over(ctx, [flaky])
    engine.scan()
    failed = {h.name: h for h in engine.snapshot().sources}["claude-code"]
    assert failed.status == "error" and "went away mid-walk" in failed.detail
    assert engine.snapshot().prompts.used == 0  # nothing was taken from the failed poll
    engine.scan()
    snap = engine.snapshot()
    healthy = {h.name: h for h in snap.sources}["claude-code"]
    assert (healthy.status, healthy.detail) == ("ok", "2 file(s)")
    assert snap.prompts.used == 2  # and nothing was lost to it
    assert {t.tool: t.status for t in snap.tools}["claude-code"] != "error"


def test_a_settings_read_that_failed_once_clears_on_the_next_snapshot(home: Path, ctx: SourceContext) -> None:
    write_projects(home, projects=1, sessions=1)
    engine = engine_over(ctx, [FlakyClaudeCode(ctx, config_failures=1)])
    engine.scan()
    # The snapshot reads the settings: the first build meets the failure, shown on the next health …
    engine.snapshot()
    assert {h.name: h.status for h in engine.health()}["claude-code"] == "error"
    # … and the next build reads them fine, so the error is gone.
    assert {h.name: h.status for h in engine.snapshot().sources}["claude-code"] == "ok"


def test_an_adapter_that_keeps_failing_stays_in_error(home: Path, ctx: SourceContext) -> None:
    write_projects(home, projects=1, sessions=1)
    engine = engine_over(ctx, [FlakyClaudeCode(ctx, poll_failures=3)])
    for _ in range(3):
        engine.scan()
        assert {h.name: h.status for h in engine.snapshot().sources}["claude-code"] == "error"
    engine.scan()
    assert {h.name: h.status for h in engine.snapshot().sources}["claude-code"] == "ok"


# -- a wake-up for one file costs that file -----------------------------------------------------------


def other_tools_installed(home: Path) -> None:
    """Other tools' files whose locations are found by reading or listing (settings, project lists)."""
    vscode = home / ".config" / "Code" / "User"
    (vscode / "globalStorage" / "saoudrizwan.claude-dev" / "tasks").mkdir(parents=True)
    (vscode / "settings.json").write_text('{"roo-cline.customStoragePath": ""}', encoding="utf-8")
    crush = home / ".local" / "share" / "crush"
    crush.mkdir(parents=True)
    project = home / "work" / "app"
    (project / ".crush").mkdir(parents=True)
    (crush / "projects.json").write_text(f'{{"projects": [{{"path": "{project}"}}]}}', encoding="utf-8")
    (home / ".local" / "share" / "opencode" / "storage").mkdir(parents=True)


def test_a_wake_up_for_one_appended_file_opens_only_that_file(
    home: Path, ctx: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_projects(home)
    other_tools_installed(home)
    engine = engine_over(ctx)  # every registered adapter, over the temp home
    engine.scan()
    assert engine.snapshot().prompts.used == len(paths)
    target = paths[5]
    append_turn(target, 9001)
    with counting(monkeypatch) as io:
        changed = engine.scan({target})
    assert changed
    projects = str(home / ".claude" / "projects")
    assert [p for p in io.listed if p.startswith(projects)] == []  # no walk of the projects tree
    assert io.listed == []  # nor of anything else
    assert io.opened == [str(target)]
    assert engine.snapshot().prompts.used == len(paths) + 1


def every_tool_configured(home: Path) -> None:
    """Config files of every tool that has one, and the folders that make each tool "found"."""
    other_tools_installed(home)
    codex = home / ".codex"
    (codex / "sessions").mkdir(parents=True)
    (codex / "config.toml").write_text('model = "glm-4.6"\n', encoding="utf-8")
    goose = home / ".config" / "goose"
    goose.mkdir(parents=True)
    (goose / "config.yaml").write_text("GOOSE_PROVIDER: zai\nGOOSE_MODEL: glm-4.6\n", encoding="utf-8")
    (home / ".local" / "share" / "goose" / "sessions").mkdir(parents=True)
    opencode = home / ".config" / "opencode"
    opencode.mkdir(parents=True)
    (opencode / "opencode.json").write_text('{"model": "zai/glm-4.6"}', encoding="utf-8")
    pi = home / ".pi" / "agent"
    (pi / "sessions").mkdir(parents=True)
    (pi / "settings.json").write_text('{"defaultProvider": "zai", "defaultModel": "glm-4.6"}', encoding="utf-8")
    (home / ".claude" / "settings.json").write_text('{"model": "glm-4.6"}', encoding="utf-8")
    (home / ".factory" / "sessions").mkdir(parents=True)


def test_the_snapshot_after_a_wake_up_reads_no_config_file_again(
    home: Path, ctx: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_projects(home, projects=2, sessions=2)
    every_tool_configured(home)
    engine = engine_over(ctx)
    engine.scan()
    first = engine.snapshot()
    append_turn(paths[1], 9005)
    with counting(monkeypatch) as io:
        engine.scan({paths[1]})
        snap = engine.snapshot()
    assert io.listed == [] and io.opened == [str(paths[1])]
    assert snap.prompts.used == first.prompts.used + 1
    models = {t.tool: t.configured_model for t in snap.tools}
    assert {models[t] for t in ("claude-code", "codex", "goose", "opencode", "pi")} == {"glm-4.6"}


def test_a_full_rescan_still_walks_and_opens_what_changed(
    home: Path, ctx: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The counter above counts what it claims: without a named path the walk happens.
    paths = write_projects(home)
    engine = engine_over(ctx)
    engine.scan()
    append_turn(paths[5], 9001)
    with counting(monkeypatch) as io:
        engine.scan()
    projects = str(home / ".claude" / "projects")
    assert len([p for p in io.listed if p.startswith(projects)]) > len(paths) // 3
    assert str(paths[5]) in io.opened


def test_a_wake_up_for_a_new_transcript_discovers_it(home: Path, ctx: SourceContext) -> None:
    paths = write_projects(home, projects=2, sessions=1)
    engine = engine_over(ctx)
    engine.scan()
    new = paths[0].parent / "3f1c2a9e-8d7b-4c1e-9a55-999999999999.jsonl"
    new.touch()
    append_turn(new, 9002)
    assert engine.scan({new})
    assert engine.snapshot().prompts.used == len(paths) + 1


def test_a_wake_up_under_another_tools_root_does_not_poll_claude_code(
    home: Path, ctx: SourceContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = write_projects(home, projects=1, sessions=1)
    droid = home / ".factory" / "sessions"
    droid.mkdir(parents=True)
    engine = engine_over(ctx)
    engine.scan()
    append_turn(paths[0], 9003)  # written, but the wake-up names only Droid's folder
    with counting(monkeypatch) as io:
        engine.scan({droid / "x.jsonl"})
    assert str(paths[0]) not in io.opened
    assert engine.snapshot().prompts.used == 1
    engine.scan({paths[0]})
    assert engine.snapshot().prompts.used == 2


# -- the cache's protocol -----------------------------------------------------------------------------


def test_source_state_round_trips_through_the_protocol(home: Path, ctx: SourceContext) -> None:
    paths = write_projects(home, projects=1, sessions=2)
    with paths[0].open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    first = ClaudeCodeSource(ctx)
    read_before = first.poll()
    assert first.skips.counts == {"malformed JSON": 1}
    state = first.export_state()
    assert state is not None

    resumed = ClaudeCodeSource(ctx)
    assert resumed.can_restore(state.tails)
    resumed.restore_state(state)
    assert resumed.skips.counts == {"malformed JSON": 1}  # the skip behind the offsets is kept, not read again
    assert resumed.skips.first["malformed JSON"] == f"{paths[0]}:3"
    assert resumed.poll().events == []  # nothing read twice
    append_turn(paths[1], 9004)
    kinds = sorted(e.kind.value for e in resumed.poll().events)
    assert kinds == ["call", "prompt"]  # only what was appended after the save
    assert read_before.events  # (the first source did read the history)


def test_whole_file_skips_are_not_saved_and_a_changed_file_is_not_restored(home: Path, ctx: SourceContext) -> None:
    paths = write_projects(home, projects=1, sessions=2)
    (paths[0].parent / "broken.jsonl").mkdir()  # a directory where a transcript belongs: a whole-file skip
    source = ClaudeCodeSource(ctx)
    source.poll()
    assert source.skips.files == 1
    state = source.export_state()
    assert state is not None and state.skips["counts"] == {}
    paths[1].write_text("", encoding="utf-8")  # truncated since the save
    assert not ClaudeCodeSource(ctx).can_restore(state.tails)
    assert not ClaudeCodeSource(ctx).can_restore([])  # another number of tail sets
    assert not ClaudeCodeSource(ctx).can_restore("not a list")


def test_the_engine_resumes_skip_counts_through_the_cache(home: Path, ctx: SourceContext) -> None:
    paths = write_projects(home, projects=1, sessions=1)
    with paths[0].open("a", encoding="utf-8") as fh:
        fh.write("{not json\n")
    cold = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW), use_cache=True)
    cold.scan()
    cold.save_cache()
    warm = Engine(Config(), ctx=ctx, clock=FixedClock(FIXED_NOW), use_cache=True)
    assert warm.cache_used
    warm.scan()
    assert warm.skipped()["reasons"] == {"malformed JSON": 1}
    assert warm.skipped()["first"] == {"malformed JSON": f"{paths[0]}:3"}
    assert warm.snapshot().prompts.used == 1


# -- the plan preview is built off the UI loop --------------------------------------------------------


async def test_the_plan_preview_waits_for_a_scan_in_a_worker_and_the_ui_stays_live(
    home: Path, ctx: SourceContext
) -> None:
    from zai_dash.ui.app import DashApp

    write_projects(home, projects=1, sessions=2)
    engine = engine_over(ctx)
    app = DashApp(engine, FixedClock(FIXED_NOW), theme="textual-dark")
    built_on: list[str] = []
    snapshot = engine.snapshot

    def recorded_snapshot(*args, **kwargs):  # type: ignore[no-untyped-def]
        built_on.append(threading.current_thread().name)
        return snapshot(*args, **kwargs)

    engine.snapshot = recorded_snapshot  # type: ignore[method-assign]
    async with app.run_test(size=(120, 36)) as pilot:
        await _wait(pilot, lambda: app.snap is not None and not app.query("#scanning"))
        header = app.query_one("#hdr-plan")
        before = str(header.render())
        built_on.clear()
        engine._lock.acquire()  # a scan holds the lock …
        try:
            await pilot.press("p")  # … while the preview is asked for
            await pilot.press("t")  # the loop still answers keys
            await _wait(pilot, lambda: app.query_one("#body").has_class("-hide-tools"))
            assert str(header.render()) == before  # the preview has not landed yet: it is waiting
        finally:
            engine._lock.release()
        await _wait(pilot, lambda: str(header.render()).startswith("Lite plan"))
    assert built_on and threading.main_thread().name not in built_on


async def _wait(pilot, predicate, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Liveness wait: poll `predicate` until true, failing after `seconds` (a hang guard, not a timing)."""
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"not true within {seconds} s")
