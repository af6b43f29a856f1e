"""The shared read-only SQLite reader: live WAL reads, closed databases, locks, corruption, watermarks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.sqlite import dir_listing, hold_write_lock
from zai_dash.sources.configfiles import kept_entries, mcp_targets, read_json, read_yaml_lite, strip_jsonc
from zai_dash.sources.sqlite_reader import (
    DbError,
    DbState,
    RowMemo,
    SqliteDb,
    TableCursor,
    db_files,
    poll_databases,
    require_columns,
)


def make_db(path: Path, rows: int = 3) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, at INTEGER NOT NULL, body TEXT)")
    for i in range(rows):
        conn.execute("INSERT INTO t VALUES (?, ?, ?)", (f"r{i:03d}", 100 + i, f"b{i}"))
    return conn


def count(db: SqliteDb) -> int:
    with db.read() as conn:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])


def test_live_database_rows_in_the_wal_are_seen(tmp_path: Path) -> None:
    writer = make_db(tmp_path / "a.db")
    # The tool keeps the database open: recent rows are only in the -wal file, not the main file.
    assert (tmp_path / "a.db-wal").stat().st_size > 0
    db = SqliteDb(tmp_path / "a.db")
    assert count(db) == 3
    writer.execute("INSERT INTO t VALUES ('r100', 200, 'x')")
    assert db.changed()
    assert count(db) == 4
    writer.close()


def test_unchanged_database_is_not_reread(tmp_path: Path) -> None:
    writer = make_db(tmp_path / "a.db")
    db = SqliteDb(tmp_path / "a.db")
    assert db.changed()
    count(db)
    assert not db.changed()
    writer.execute("INSERT INTO t VALUES ('r100', 200, 'x')")
    assert db.changed()
    writer.close()


def test_closed_database_is_read_from_a_copy_and_nothing_is_created_beside_it(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db").close()
    before = dir_listing(tmp_path)
    assert not {"a.db-wal", "a.db-shm"} & before  # the tool closed it cleanly
    db = SqliteDb(tmp_path / "a.db")
    assert count(db) == 3
    assert dir_listing(tmp_path) == before
    # Plain sqlite3 with mode=ro would have created a.db-wal and a.db-shm here.


def test_read_only_directory_is_fine(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db").close()
    db = SqliteDb(tmp_path / "a.db")
    tmp_path.chmod(0o555)
    try:
        assert count(db) == 3
    finally:
        tmp_path.chmod(0o755)


def test_locked_database_reports_and_recovers(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db").close()
    db = SqliteDb(tmp_path / "a.db", busy_timeout_ms=50)
    with hold_write_lock(tmp_path / "a.db"), pytest.raises(DbError, match="locked"):
        count(db)
    assert db.changed()  # a failed read is retried on the next poll
    assert count(db) == 3


def test_corrupt_database_gives_a_one_line_reason(tmp_path: Path) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(DbError) as err:
        count(SqliteDb(path))
    assert "corrupt" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "junk.db").write_text("not a database at all " * 100)
    with pytest.raises(DbError, match="corrupt"):
        count(SqliteDb(tmp_path / "junk.db"))


def test_missing_table_or_column_is_an_unknown_schema(tmp_path: Path) -> None:
    make_db(tmp_path / "a.db").close()
    db = SqliteDb(tmp_path / "a.db")
    with pytest.raises(DbError, match="unknown schema"), db.read() as conn:
        require_columns(conn, "t", ("id", "data"), db.path)
    with pytest.raises(DbError, match="no table message"), db.read() as conn:
        require_columns(conn, "message", ("id",), db.path)


def test_cursor_pages_on_time_and_id_and_rereads_only_the_overlap(tmp_path: Path) -> None:
    writer = make_db(tmp_path / "a.db", rows=0)
    for i in range(7):  # equal times across page boundaries
        writer.execute("INSERT INTO t VALUES (?, ?, 'x')", (f"r{i}", 100 + i // 3))
    db = SqliteDb(tmp_path / "a.db")
    cursor = TableCursor("t", "at", "id", overlap=1)
    with db.read() as conn:
        ids = [r["_id"] for r in cursor.rows(conn, ("body",), page=2)]
    assert ids == [f"r{i}" for i in range(7)]
    assert cursor.high == 102
    writer.execute("INSERT INTO t VALUES ('r9', 105, 'x')")
    with db.read() as conn:
        again = [r["_id"] for r in cursor.rows(conn, ("body",), page=2)]
    assert again == ["r3", "r4", "r5", "r6", "r9"]  # time >= 102 - 1
    writer.close()


def test_cursor_floor_and_where(tmp_path: Path) -> None:
    writer = make_db(tmp_path / "a.db", rows=5)
    db = SqliteDb(tmp_path / "a.db")
    with db.read() as conn:
        rows = list(TableCursor("t", "at", "id", 0).rows(conn, ("body",), floor=102, where="body != 'b3'"))
    assert [r["body"] for r in rows] == ["b2", "b4"]
    writer.close()


def test_row_memo_filters_unchanged_rows_and_prunes() -> None:
    memo = RowMemo()
    assert memo.fresh("a", 1, 10)
    assert not memo.fresh("a", 1, 10)
    assert memo.fresh("a", 2, 11)  # updated in place
    memo.prune(12)
    assert len(memo) == 0


def test_poll_databases_isolates_failures(tmp_path: Path) -> None:
    make_db(tmp_path / "good.db").close()
    (tmp_path / "bad.db").write_text("garbage " * 600)
    states: dict[Path, DbState] = {}
    seen: list[str] = []

    def read(state: DbState) -> None:
        seen.append(state.db.path.name)
        count(state.db)

    error = poll_databases(
        states, [tmp_path / "good.db", tmp_path / "bad.db", tmp_path / "none.db"], lambda p: DbState(SqliteDb(p)), read
    )
    assert error is not None and error.startswith("bad.db:")
    assert seen == ["good.db", "bad.db"]
    seen.clear()
    poll_databases(states, [tmp_path / "good.db", tmp_path / "bad.db"], lambda p: DbState(SqliteDb(p)), read)
    assert seen == ["bad.db"]  # good.db is unchanged; bad.db is retried


def test_jsonc_and_mcp_targets_keep_no_secrets(tmp_path: Path) -> None:
    text = """{
      // comment
      "model": "zai-coding-plan/glm-4.6", /* block */
      "url": "https://x//y",
      "mcp": {
        "web-search-prime": {"type": "remote", "url": "https://api.z.ai/api/mcp/web_search_prime/mcp",
                             "headers": {"Authorization": "Bearer SECRET"}},
        "vision": {"type": "local", "command": ["npx", "-y", "@z_ai/mcp-server"],
                   "environment": {"Z_AI_API_KEY": "SECRET"}},
        "zai": {"command": "npx", "args": ["-y", "@z_ai/mcp-server"], "env": {"Z_AI_API_KEY": "SECRET"}},
      },
    }"""
    assert "https://x//y" in strip_jsonc(text)
    (tmp_path / "c.jsonc").write_text(text)
    data = read_json(tmp_path / "c.jsonc")
    assert data is not None and data["model"] == "zai-coding-plan/glm-4.6"
    targets = mcp_targets(data["mcp"])
    assert targets["web-search-prime"] == "https://api.z.ai/api/mcp/web_search_prime/mcp"
    assert "@z_ai/mcp-server" in targets["vision"] and "@z_ai/mcp-server" in targets["zai"]
    assert "SECRET" not in repr(targets)
    assert read_json(tmp_path / "missing.json") is None
    (tmp_path / "list.json").write_text("[1]")
    assert read_json(tmp_path / "list.json") is None


def test_yaml_lite_reads_goose_config(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "GOOSE_PROVIDER: custom_zai\n"
        'GOOSE_MODEL: "GLM-4.6"  # the model\n'
        "extensions:\n"
        "  web-search-prime:\n"
        "    enabled: true\n"
        "    type: streamable_http\n"
        "    uri: https://api.z.ai/api/mcp/web_search_prime/mcp\n"
        "    headers:\n"
        "      Authorization: Bearer SECRET\n"
        "  vision:\n"
        "    cmd: npx\n"
        "    args:\n"
        "      - -y\n"
        "      - '@z_ai/mcp-server'\n"
        "  dev: {enabled: true}\n"
    )
    data = read_yaml_lite(tmp_path / "config.yaml")
    assert data is not None
    assert data["GOOSE_PROVIDER"] == "custom_zai" and data["GOOSE_MODEL"] == "GLM-4.6"
    ext = data["extensions"]
    assert ext["web-search-prime"]["uri"].endswith("/web_search_prime/mcp")
    assert ext["vision"]["args"] == ["-y", "@z_ai/mcp-server"]
    assert mcp_targets(ext)["vision"] == "npx -y @z_ai/mcp-server"


def test_db_files_takes_a_db_root_as_is_and_a_folder_root_as_holding_the_tool_db(tmp_path: Path) -> None:
    own = tmp_path / "data" / "sessions.db"
    files = db_files([own], [tmp_path / "copy.db", tmp_path / "backup", own], "sessions.db")
    assert files == [own, tmp_path / "copy.db", tmp_path / "backup" / "sessions.db"]


def test_kept_entries_keeps_only_the_named_keys_of_map_entries() -> None:
    servers = {"zai": {"url": "https://api.z.ai/mcp", "headers": {"Authorization": "k"}}, "odd": "x"}
    assert kept_entries(servers, ("url",)) == {"zai": {"url": "https://api.z.ai/mcp"}}
    assert kept_entries(["not", "a", "map"], ("url",)) is None
