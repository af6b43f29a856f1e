"""The one read-only SQLite reader every database-backed tool adapter uses (OpenCode, Kilo, Crush, Goose).

The tools write their databases while we read them, in WAL mode, so:

- A database whose `-wal` and `-shm` files exist (the tool has it open) is opened with
  `file:…?mode=ro` — never `immutable=1`, because the newest rows live in the `-wal` until a checkpoint.
- A database without them (the tool closed it cleanly, everything is checkpointed into the main file) is
  **not** opened in place: SQLite would create `-wal`/`-shm` beside it even read-only (it needs the
  shared-memory index for WAL mode), and fails outright when the directory is not writable. Instead the
  file (plus a `-wal` if one is left over) is copied into a private temp dir, the copy is read, and the
  copy is deleted. Nothing is ever written or created next to another tool's database.
- Each read is one short transaction (`BEGIN` … close), so the tool's checkpoints are never held up, with
  a small `busy_timeout`: a locked database is reported, not waited on, and retried on the next poll.
- `changed()` compares a stat signature of the `.db`, `-wal` and `-shm` files, so an idle poll costs three
  `stat` calls and opens nothing.
- `TableCursor` reads only rows at or after a per-table watermark (time column plus id, keyset-paged), re-
  reading a small overlap to catch rows updated in place; `RowMemo` drops rows already seen unchanged, so
  the overlap does not re-emit events. Adapters key events on stable ids, never on rowids.

Failures are raised as `DbError` with a one-line reason meant for `doctor` and the tools table.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar
from urllib.parse import quote

from zai_dash.domain.bounds import LATEST_S
from zai_dash.sources.base import Root, Skips, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.stamp import FileStamp, file_stamp

if TYPE_CHECKING:
    import sqlite3

BUSY_TIMEOUT_MS = 250
"""How long one read waits on a lock before giving up until the next poll (the tools use 5–30 s)."""

PAGE = 2000
"""Rows fetched per keyset page."""

FileStat = FileStamp | None
"""The stamp of one file, or None when it does not exist."""


class DbError(Exception):
    """A database that cannot be read right now; `str(exc)` is the one-line reason."""


def classify_error(exc: BaseException, path: Path) -> str:
    """Turn a sqlite3/OS error into the one-line reason shown in `doctor`."""
    text = str(exc).strip() or type(exc).__name__
    low = text.lower()
    name = path.name
    if "locked" in low or "busy" in low:
        return f"{name}: database locked by its tool (gave up after {BUSY_TIMEOUT_MS} ms); will retry"
    if "malformed" in low or "not a database" in low or "file is encrypted" in low:
        return f"{name}: corrupt or not a SQLite database ({text})"
    if "no such table" in low or "no such column" in low:
        return f"{name}: unknown schema ({text}); mid-migration or an unsupported version"
    if "unable to open" in low or "readonly" in low or "read-only" in low or isinstance(exc, PermissionError):
        return f"{name}: cannot open read-only ({text}); the file or its -wal/-shm may not be readable by this user"
    if "disk i/o" in low:
        return f"{name}: I/O error while reading ({text}); will retry"
    return f"{name}: {text}"


@dataclass
class SqliteDb:
    """One tool database, read read-only.

    Attributes:
        path: the `.db` file.
        busy_timeout_ms: lock wait per read.
    """

    path: Path
    busy_timeout_ms: int = BUSY_TIMEOUT_MS
    _seen: tuple[FileStat, FileStat, FileStat] | None = field(default=None, init=False, repr=False)

    @property
    def wal(self) -> Path:
        return self.path.with_name(self.path.name + "-wal")

    @property
    def shm(self) -> Path:
        return self.path.with_name(self.path.name + "-shm")

    def exists(self) -> bool:
        """Whether the database file exists."""
        return self.path.is_file()

    def signature(self) -> tuple[FileStat, FileStat, FileStat]:
        """Stat signature of the `.db`, `-wal` and `-shm` files."""
        return (file_stamp(self.path), file_stamp(self.wal), file_stamp(self.shm))

    def changed(self) -> bool:
        """Whether anything may have changed since the last successful read."""
        return self.signature() != self._seen

    def mark_unread(self) -> None:
        """Forget the last read, so the next `changed()` is True (used after a failed read)."""
        self._seen = None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """One short read transaction over the live database (or a private copy of a closed one).

        Raises:
            DbError: missing, locked, corrupt, unreadable or of an unknown schema (one-line reason).
        """
        # Here, not at the top: `status` imports every adapter, and most people have none of these databases.
        import sqlite3
        import tempfile

        sig = self.signature()
        if sig[0] is None:
            raise DbError(f"{self.path.name}: not found")
        tmpdir: str | None = None
        conn: sqlite3.Connection | None = None
        try:
            if sig[1] is not None and sig[2] is not None:
                uri = f"file:{quote(str(self.path))}?mode=ro"
                conn = sqlite3.connect(
                    uri,
                    uri=True,
                    timeout=self.busy_timeout_ms / 1000,
                    isolation_level=None,
                    check_same_thread=False,
                )
            else:
                tmpdir = tempfile.mkdtemp(prefix="zai-dash-db-")
                conn = self._open_copy(Path(tmpdir), sig)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            conn.execute("BEGIN")
            yield conn
            self._seen = sig
        except sqlite3.Error as exc:
            raise DbError(classify_error(exc, self.path)) from None
        except OSError as exc:
            raise DbError(classify_error(exc, self.path)) from None
        finally:
            if conn is not None:
                conn.close()
            if tmpdir is not None:
                shutil.rmtree(tmpdir, ignore_errors=True)

    def _open_copy(self, tmp: Path, sig: tuple[FileStat, FileStat, FileStat]) -> sqlite3.Connection:
        # The tool is not running (no -shm): copy, then check nothing moved while copying.
        import sqlite3

        copy = tmp / "copy.db"
        shutil.copyfile(self.path, copy)
        if sig[1] is not None:
            shutil.copyfile(self.wal, tmp / "copy.db-wal")
        if self.signature() != sig:
            raise DbError(f"{self.path.name}: changed while being copied (its tool just started); will retry")
        return sqlite3.connect(str(copy), isolation_level=None, check_same_thread=False)


def json_field(column: str, path: str) -> str:
    """SQL for `json_extract(column, path)` that is NULL, not an error, when the column is not JSON.

    A bare `json_extract` over one row of malformed JSON fails the whole query (and so the whole
    database); `CASE` evaluates `json_extract` only where `json_valid` holds.
    """
    return f"CASE WHEN json_valid({column}) THEN json_extract({column}, '{path}') END"


TIME_MAX = LATEST_S * 1000
"""A time column above this (in s or ms) is not a time: infinities, 1e300 (see `domain.bounds`)."""


def usable_time(value: object) -> bool:
    """Whether a time column's value is a finite number a row can be ordered and paged by."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= TIME_MAX


def table_columns(conn: sqlite3.Connection, table: str) -> set[str]:
    """The column names of `table` (empty when the table does not exist)."""
    return {str(row[1]) for row in conn.execute(f'PRAGMA table_info("{table}")')}


def require_columns(conn: sqlite3.Connection, table: str, needed: Sequence[str], db: Path) -> set[str]:
    """The columns of `table`, or `DbError` naming what is missing (unknown schema / mid-migration)."""
    have = table_columns(conn, table)
    if not have:
        raise DbError(f"{db.name}: unknown schema (no table {table}); mid-migration or an unsupported version")
    missing = [c for c in needed if c not in have]
    if missing:
        raise DbError(
            f"{db.name}: unknown schema (table {table} lacks {', '.join(missing)}); "
            "mid-migration or an unsupported version"
        )
    return have


@dataclass
class TableCursor:
    """A per-table watermark: each poll reads rows whose time column is at or after `high - overlap`.

    Rows are keyset-paged on (time, id), so a page boundary never skips or repeats rows with equal
    times. The overlap re-reads recent rows on purpose: rows updated in place (a bumped time column) or
    committed late with an older time are caught; `RowMemo` filters the unchanged ones.

    Attributes:
        table: table name.
        time_col: an integer time column (its unit is the table's: s or ms).
        id_col: a unique, sortable column (the primary key).
        overlap: how far before the high-water mark to re-read, in the time column's unit.
        high: the highest time seen so far (None before the first read).
    """

    table: str
    time_col: str
    id_col: str
    overlap: int
    high: int | None = None
    bad: dict[object, bool] = field(default_factory=dict)
    """Ids of rows whose time column is not a usable number (text, infinity): passed over; the value is
    whether the row was already reported (see `take_bad`)."""

    def rows(
        self,
        conn: sqlite3.Connection,
        columns: Sequence[str],
        floor: int | None = None,
        where: str = "",
        page: int = PAGE,
    ) -> Iterator[sqlite3.Row]:
        """Yield rows at or after the watermark (or `floor` on the first read), oldest first.

        Args:
            conn: a connection inside `SqliteDb.read()`.
            columns: columns to select (the time and id columns are added first as `_t`, `_id`); an
                entry containing a space (`json_extract(data, '$.type') AS kind`) is used verbatim.
            floor: on the first read, the oldest time that can matter (None: everything).
            where: an extra SQL condition (constant text from the adapter, never user input).
            page: rows per query.
        """
        start = self.high - self.overlap if self.high is not None else floor
        cols = ", ".join(c if " " in c else f'"{c}"' for c in columns)
        t, i = f'"{self.time_col}"', f'"{self.id_col}"'
        base = f'SELECT {t} AS _t, {i} AS _id, {cols} FROM "{self.table}" WHERE {t} IS NOT NULL'
        if where:
            base += f" AND ({where})"
        order = f" ORDER BY {t}, {i} LIMIT ?"
        if start is None:
            cur = conn.execute(base + order, (page,))
        else:
            cur = conn.execute(base + f" AND {t} >= ?" + order, (start, page))
        while True:
            batch = cur.fetchall()
            for row in batch:
                value = row["_t"]
                if not usable_time(value):
                    # Decoded here, per row: one text or infinite time is one skipped row, not a dead
                    # database (adapters do `int(row["_t"])`).
                    self.bad.setdefault(row["_id"], False)
                    continue
                if self.high is None or value > self.high:
                    self.high = int(value)
                yield row
            if len(batch) < page:
                return
            last = batch[-1]
            cur = conn.execute(
                base + f" AND ({t} > ? OR ({t} = ? AND {i} > ?))" + order,
                (last["_t"], last["_t"], last["_id"], page),
            )

    def take_bad(self) -> list[object]:
        """Ids of unusable rows not reported yet (each is reported once)."""
        fresh = [key for key, told in self.bad.items() if not told]
        for key in fresh:
            self.bad[key] = True
        return fresh


class RowMemo:
    """Remembers which rows were already turned into events, by stable key and content version.

    `fresh()` is True for a key never seen or seen with a different version (a row updated in place, or
    deleted and re-inserted with new content). Memory is bounded by `prune()`, called with the oldest
    time the cursors can still re-read.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[object, int]] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def fresh(self, key: str, version: object, time: int) -> bool:
        """Record `key` at `version`; True when that is new."""
        old = self._seen.get(key)
        if old is not None and old[0] == version:
            return False
        self._seen[key] = (version, time)
        return True

    def forget(self, key: str) -> None:
        """Drop one key, so it is considered again next time."""
        self._seen.pop(key, None)

    def prune(self, before: int) -> None:
        """Forget rows older than `before` (they are behind every watermark)."""
        self._seen = {k: v for k, v in self._seen.items() if v[1] >= before}


@dataclass
class DbState:
    """Per-database reading state an adapter keeps between polls (subclass it to add cursors).

    Attributes:
        db: the database.
        memo: rows already turned into events.
        error: the last read's failure, or None.
    """

    db: SqliteDb
    memo: RowMemo = field(default_factory=RowMemo)
    error: str | None = None


S = TypeVar("S", bound=DbState)


def poll_databases(
    states: dict[Path, S],
    paths: Iterable[Path],
    make: Callable[[Path], S],
    read: Callable[[S], None],
    skips: Skips | None = None,
) -> str | None:
    """Poll every database in `paths` that changed (or failed last time); one failing does not stop others.

    Args:
        states: per-path state, kept by the adapter across polls (new paths are added with `make`).
        paths: the databases that should be read now (missing files are passed over).
        make: builds the state for a newly found database.
        read: reads one database; raises `DbError` on failure.
        skips: where rows passed over by the cursors (unusable time column) are counted.

    Returns:
        The failing databases' reasons joined into one line, or None when all are fine.
    """
    errors: list[str] = []
    for path in paths:
        state = states.get(path)
        if state is None:
            if not path.is_file():
                continue
            state = states[path] = make(path)
        if not state.db.exists():
            state.error = None
            continue
        if state.db.changed() or state.error:
            try:
                read(state)
            except DbError as exc:
                state.error = str(exc)
                state.db.mark_unread()
            except Exception as exc:  # an adapter bug: start this database over, say so, never lose it
                bad = [c.bad for c in _cursors(state)]
                state = states[path] = make(path)
                for cursor, known in zip(_cursors(state), bad, strict=True):
                    cursor.bad.update(known)
                state.error = f"{path.name}: internal error ({type(exc).__name__}: {exc}); read again next poll"
            else:
                state.error = None
            if skips is not None:
                _report_bad(state, skips)
        if state.error:
            errors.append(state.error)
    return "; ".join(errors) if errors else None


class SqliteSource(ToolSource, Generic[S]):
    """A tool source that reads SQLite databases, each found one keeping its state `S` across polls.

    Subclasses name the databases (`db_paths`) and read one (`_read_db`); `poll_dbs` reads those that
    changed, and a failing database is reported in `error`, never raised.
    """

    def __init__(self, ctx: SourceContext, new_state: Callable[[SqliteDb], S]) -> None:
        super().__init__(ctx)
        self._dbs: dict[Path, S] = {}
        self._new_state = new_state

    @abstractmethod
    def db_paths(self) -> list[Path]:
        """Every database this source may read, found or not."""

    @abstractmethod
    def _read_db(self, state: S, batch: SourceBatch) -> None:
        """Read one database's new rows into `batch`; raises `DbError` when it cannot."""

    def poll_dbs(self, batch: SourceBatch) -> None:
        """Read every database that changed (or failed last time); set `error` to the failures, or None."""
        self.error = poll_databases(
            self._dbs,
            self.db_paths(),
            lambda p: self._new_state(SqliteDb(p)),
            lambda s: self._read_db(s, batch),
            self.skips,
        )

    def roots(self) -> list[Root]:
        """Each database (found or not) and, for found ones, its directory (see `db_roots`)."""
        return db_roots(self.db_paths())

    def file_count(self) -> int:
        """How many of the databases exist."""
        return sum(1 for p in self.db_paths() if p.is_file())


def _cursors(state: DbState) -> list[TableCursor]:
    return [c for c in vars(state).values() if isinstance(c, TableCursor)]


def _report_bad(state: DbState, skips: Skips) -> None:
    for cursor in _cursors(state):
        for key in cursor.take_bad():
            skips.add(f"{cursor.table} row: time column not a number in range", f"{state.db.path.name}:{key}")


def db_files(own: Iterable[Path], extra_roots: Iterable[Path], name: str) -> list[Path]:
    """The databases a tool reads: its own, then each configured extra root, once each.

    An extra root ending in `.db` is the database itself; any other is a folder holding `name`.
    """
    found = [*own, *(root if root.suffix == ".db" else root / name for root in extra_roots)]
    return list(dict.fromkeys(found))


def db_roots(paths: Iterable[Path]) -> list[Root]:
    """Roots for databases: each `.db` file (found or not) and, for found ones, its directory.

    The directory is what must be watched: the tools append to the `-wal` beside the `.db`, which
    itself changes only at checkpoints.
    """
    roots: list[Root] = []
    for path in paths:
        found = path.is_file()
        roots.append(Root(path, found))
        if found:
            roots.append(Root(path.parent, True))
    return list(dict.fromkeys(roots))
