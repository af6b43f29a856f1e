"""ZCode (Z.ai's own agent, billed at 1.5× by the plan): its SQLite usage ledger → model calls and prompts.

**Not verified against a running client**: ZCode has no build that runs here. The layout below is the
one public readers of it use, cross-checked against each other: ccusage's ZCode adapter
(`rust/adapters/zcode/src/{paths,loader,parser}.rs`: path, `model_usage` columns, `status = 'completed'`,
token semantics) and two other public ZCode usage readers (columns `turn_id`, `query_source`,
`attempt_index`, `reasoning_tokens`; `query_source = 'main_turn'` for the conversation, other values for
side calls such as title generation). `tests/fixtures/real/zcode/layout.sql` holds that layout.

- Where: `$ZCODE_HOME` (comma-separated list, as ccusage reads it; default `~/.zcode`) + `cli/db/db.sqlite`.
- Model call: a `model_usage` row (one per model request, `id` a stable text key, `started_at` epoch ms)
  that completed, or that recorded tokens anyway (an errored or cancelled stream the provider already
  processed). Rows are written when a request starts and updated when it ends, so they are re-read over
  an overlap and re-emitted when status or tokens change.
- Tokens: `input_tokens` **includes** `cache_read_input_tokens` and `cache_creation_input_tokens` (ccusage:
  `computed_total_tokens` = input + output, cache slices fit within input), so input is taken as is and
  the cached part is `cache_read_input_tokens`. Reasoning is inside `output_tokens` unless the row's own
  `computed_total_tokens` shows it outside (= input + output + reasoning), when it is added to output.
- Role: `query_source = 'main_turn'` (or no such column) is the conversation; anything else is auxiliary.
- Prompt: one per `(session_id, turn_id)` with a billed main-turn call, stamped with its first such call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from zai_dash.domain.events import CallRole, EventKind, UsageEvent
from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import SourceBatch, SourceContext, ToolSource
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, normalise_model
from zai_dash.sources.sqlite_reader import DbState, SqliteSource, TableCursor, require_columns

if TYPE_CHECKING:
    import sqlite3  # annotations only: the reader opens the databases, and `status` may have none

TOOL = "zcode"
TOOLS = (ToolInfo(TOOL, "ZCode", ("ZCODE_HOME",), order=110),)

DB_PATH = Path("cli") / "db" / "db.sqlite"
OVERLAP_MS = 30 * 60 * 1000
"""Rows are stamped when a request starts and finished in place; a request may run this long."""
REQUIRED = ("id", "session_id", "started_at", "model_id", "status", "input_tokens", "output_tokens")
OPTIONAL = ("cache_read_input_tokens", "reasoning_tokens", "computed_total_tokens", "query_source", "turn_id")


@dataclass
class _ZcodeDb(DbState):
    cursor: TableCursor = field(default_factory=lambda: TableCursor("model_usage", "started_at", "id", OVERLAP_MS))
    turns: set[tuple[str, str]] = field(default_factory=set)
    """Turns whose prompt was already emitted."""


def zcode_homes(ctx: SourceContext) -> list[Path]:
    """Every `$ZCODE_HOME` entry (comma-separated), else `~/.zcode`; then configured extra roots."""
    raw = ctx.env.get("ZCODE_HOME", "")
    homes = [Path(p.strip()).expanduser() for p in raw.split(",") if p.strip()] or [ctx.home / ".zcode"]
    return ctx.with_extra_roots(TOOL, homes)


class ZcodeSource(SqliteSource[_ZcodeDb]):
    """ZCode's `db.sqlite` under every ZCode home."""

    name = TOOL
    tools = (TOOL,)

    def __init__(self, ctx: SourceContext) -> None:
        super().__init__(ctx, _ZcodeDb)

    def db_paths(self) -> list[Path]:
        """The database of every ZCode home (an extra root may name the file itself)."""
        return [h if h.suffix == ".sqlite" else h / DB_PATH for h in zcode_homes(self.ctx)]

    def poll(self) -> SourceBatch:
        """Read rows new or changed since the last poll; a failing database is reported, not raised."""
        batch = SourceBatch()
        self.poll_dbs(batch)
        return batch

    def _read_db(self, state: _ZcodeDb, batch: SourceBatch) -> None:
        found: list[UsageEvent] = []
        floor = int(self.ctx.since.timestamp() * 1000) if self.ctx.since else None
        wall = self.ctx.clock()
        with state.db.read() as conn:
            have = require_columns(conn, "model_usage", REQUIRED, state.db.path)
            cols = [*REQUIRED[1:], *(c if c in have else f"NULL AS {c}" for c in OPTIONAL)]
            for row in state.cursor.rows(conn, cols, floor=floor):
                key = str(row["_id"])
                version = (row["status"], row["input_tokens"], row["output_tokens"], row["cache_read_input_tokens"])
                if not state.memo.fresh(key, version, int(row["_t"])):
                    continue
                try:
                    found += self._events(state, row, key, from_epoch(row["_t"], wall, unit=1000))
                except BadTimestamp as exc:
                    self.skips.add(f"model_usage: {exc}", f"{state.db.path.name}:{key}")
        batch.events += found
        if state.cursor.high is not None:
            state.memo.prune(state.cursor.high - 2 * OVERLAP_MS)

    def _events(self, state: _ZcodeDb, row: sqlite3.Row, key: str, ts: datetime) -> list[UsageEvent]:
        inp, out = int_field(row["input_tokens"]), int_field(row["output_tokens"])
        reasoning = int_field(row["reasoning_tokens"])
        if reasoning and int_field(row["computed_total_tokens"]) == inp + out + reasoning:
            out += reasoning  # this row counts reasoning outside output
        if row["status"] != "completed" and inp + out == 0:
            return []  # started, failed or cancelled before anything was processed
        session = str(row["session_id"])
        main = row["query_source"] in (None, "main_turn")
        events = [
            UsageEvent(
                kind=EventKind.CALL, ts=ts, tool=TOOL, key=f"call:{key}", session=session,
                model=normalise_model(row["model_id"]), role=CallRole.MAIN if main else CallRole.AUXILIARY,
                tokens=inp + out, input_tokens=inp, output_tokens=out,
                cached_tokens=min(int_field(row["cache_read_input_tokens"]), inp),
            )
        ]  # fmt: skip
        turn = (session, str(row["turn_id"]))
        if main and row["turn_id"] is not None and turn not in state.turns:
            state.turns.add(turn)
            events.append(UsageEvent(kind=EventKind.PROMPT, ts=ts, tool=TOOL, key=f"prompt:{turn[0]}:{turn[1]}",
                                     session=session))  # fmt: skip
        return events


def create_sources(ctx: SourceContext) -> list[ToolSource]:
    """The ZCode source (one, covering every ZCode home)."""
    return [ZcodeSource(ctx)]


__all__ = ["TOOLS", "ZcodeSource", "create_sources", "zcode_homes"]
