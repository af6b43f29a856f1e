"""The rewritten-JSON reader: parse on change only, survive torn writes, follow atomic replaces."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from zai_dash.sources.base import Skips
from zai_dash.sources.rewritten import RewrittenJson


def _reader() -> RewrittenJson:
    return RewrittenJson(Skips(), delay=0.01)


def test_parses_once_until_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "ui_messages.json"
    path.write_text(json.dumps([{"ts": 1}]))
    reader = _reader()
    first = reader.changed(path)
    assert first is not None and first.value == [{"ts": 1}]
    for _ in range(10):
        assert reader.changed(path) is None
    assert reader.parses == 1
    path.write_text(json.dumps([{"ts": 1}, {"ts": 2}]))
    second = reader.changed(path)
    assert second is not None and second.value == [{"ts": 1}, {"ts": 2}]
    assert reader.parses == 2


def test_same_size_rewrite_is_seen_by_mtime(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text('{"n": 1}')
    reader = _reader()
    assert reader.changed(path) is not None
    path.write_text('{"n": 2}')
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    version = reader.changed(path)
    assert version is not None and version.value == {"n": 2}


def test_torn_write_is_retried_then_counted_once_and_picked_up_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "ui_messages.json"
    whole = json.dumps([{"ts": 1, "say": "text"}, {"ts": 2, "say": "api_req_started"}])
    path.write_text(whole[: len(whole) // 2])  # the writer is mid-writeFile
    skips = Skips()
    reader = RewrittenJson(skips, delay=0.001)
    assert reader.changed(path) is None
    assert skips.counts["malformed or torn JSON file"] == 1
    for _ in range(5):  # the same torn bytes are not re-counted on every poll
        assert reader.changed(path) is None
    assert skips.counts["malformed or torn JSON file"] == 1
    path.write_text(whole)
    version = reader.changed(path)
    assert version is not None and len(version.value) == 2


def test_torn_read_recovers_within_the_retries_when_the_writer_finishes(tmp_path: Path) -> None:
    path = tmp_path / "ui_messages.json"
    whole = json.dumps([{"ts": n} for n in range(2000)])
    path.write_text(whole[:100])
    reader = RewrittenJson(Skips(), retries=50, delay=0.01)

    def finish() -> None:
        time.sleep(0.05)
        path.write_text(whole)

    writer = threading.Thread(target=finish)
    writer.start()
    version = reader.changed(path)
    writer.join()
    assert version is not None and len(version.value) == 2000


def test_atomic_replace_is_followed(tmp_path: Path) -> None:
    path = tmp_path / "ui_messages.json"
    path.write_text(json.dumps([1]))
    reader = _reader()
    assert reader.changed(path) is not None
    old_inode = path.stat().st_ino
    tmp = tmp_path / ".ui_messages.json.tmp"
    tmp.write_text(json.dumps([2]))
    os.replace(tmp, path)
    assert path.stat().st_ino != old_inode
    version = reader.changed(path)
    assert version is not None and version.value == [2]


def test_current_keeps_last_good_value_while_torn_and_forgets_deleted(tmp_path: Path) -> None:
    path = tmp_path / "globalState.json"
    path.write_text('{"a": 1}')
    reader = _reader()
    good = reader.current(path)
    assert good is not None and good.value == {"a": 1}
    path.write_text('{"a": ')
    still = reader.current(path)
    assert still is not None and still.value == {"a": 1}
    path.unlink()
    assert reader.current(path) is None


def test_missing_empty_and_directory_never_raise(tmp_path: Path) -> None:
    skips = Skips()
    reader = RewrittenJson(skips, retries=1, delay=0.001)
    assert reader.changed(tmp_path / "nope.json") is None
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert reader.changed(empty) is None
    assert skips.counts["empty JSON file"] == 1
    folder = tmp_path / "dir.json"
    folder.mkdir()
    assert reader.changed(folder) is None
    assert skips.files >= 2


def test_retain_forgets_other_paths(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text("[]")
    b.write_text("[]")
    reader = _reader()
    reader.changed(a)
    reader.changed(b)
    reader.retain({a})
    assert reader.changed(a) is None
    assert reader.changed(b) is not None  # forgotten, so parsed again
