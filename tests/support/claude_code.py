"""Claude Code records and a session writer for source tests (user/assistant lines, API errors)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from tests.support.env import FIXED_NOW
from zai_dash.demo.claude_code import assistant_record, usage, user_record
from zai_dash.domain.events import EventKind, UsageEvent
from zai_dash.domain.ledger import Counts, Ledger
from zai_dash.sources.base import SourceBatch
from zai_dash.sources.tools.claude_code import ClaudeCodeSource

SESSION = "3f1c2a9e-8d7b-4c1e-9a55-0e6f2b7d4c11"


CWD = "/home/u/proj"


T0 = datetime(2026, 11, 26, 8, 0, 0, tzinfo=timezone.utc)


def iso(offset_s: float = 0.0) -> str:
    """A Claude Code timestamp (`toISOString()`), `offset_s` seconds after T0."""
    t = T0 + timedelta(seconds=offset_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def user(content: Any, uuid: str, at: float = 0.0, **extra: Any) -> dict[str, Any]:
    rec = user_record(iso(at), content, session=SESSION, cwd=CWD, uuid=uuid)
    rec.update(extra)
    return rec


def assistant(
    mid: str,
    req: str | None,
    at: float = 1.0,
    content: list[dict[str, Any]] | None = None,
    out: int = 10,
    model: str = "glm-4.6",
    **extra: Any,
) -> dict[str, Any]:
    rec = assistant_record(
        iso(at),
        message_id=mid,
        model=model,
        content=content if content is not None else [{"type": "text", "text": "ok"}],
        tokens=usage(100, out, cache_read=1000),
        request_id=req,
        session=SESSION,
        cwd=CWD,
        uuid=f"u-{mid}-{out}",
        parent="p",
        git_branch=None,
    )
    rec.update(extra)
    return rec


def tool_use(use_id: str, name: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": use_id, "name": name, "input": {"search_query": "backoff jitter"}}


def api_error(text: str, at: float = 5.0) -> dict[str, Any]:
    """An API-error entry as Claude Code writes it when a request fails for good."""
    return {
        "parentUuid": "p", "isSidechain": False, "type": "assistant", "uuid": f"err-{at}", "timestamp": iso(at),
        "error": "rate_limit", "isApiErrorMessage": True, "apiErrorStatus": 429, "cwd": CWD,
        "sessionId": SESSION,
        "message": {"id": f"msg-err-{at}", "model": "<synthetic>", "role": "assistant",
                    "stop_reason": "stop_sequence", "type": "message",
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                    "content": [{"type": "text", "text": text}]},
    }  # fmt: skip


class Claude:
    """A Claude Code config dir in the temp home, written to like Claude Code does."""

    def __init__(self, root: Path, slug: str = "-home-u-proj") -> None:
        self.root = root
        self.project = root / "projects" / slug
        self.project.mkdir(parents=True, exist_ok=True)

    def session_file(self, session: str = SESSION) -> Path:
        return self.project / f"{session}.jsonl"

    def subagent_file(self, agent: str = "a72e8af", session: str = SESSION) -> Path:
        path = self.project / session / "subagents" / f"agent-{agent}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def append(path: Path, *records: dict[str, Any] | bytes, spaced: bool = False) -> None:
        with open(path, "ab") as fh:
            for rec in records:
                if isinstance(rec, bytes):
                    fh.write(rec + b"\n")
                elif spaced:
                    fh.write(json.dumps(rec).encode() + b"\n")
                else:
                    fh.write(orjson.dumps(rec) + b"\n")


class Fed:
    """A source plus a ledger fed with every poll, like the engine does."""

    def __init__(self, source: ClaudeCodeSource) -> None:
        self.source = source
        self.ledger = Ledger()
        self.batches: list[SourceBatch] = []

    def poll(self) -> SourceBatch:
        batch = self.source.poll()
        self.ledger.add_all(batch.events)
        for hit in batch.limit_hits:
            self.ledger.add_limit_hit(hit)
        self.batches.append(batch)
        return batch

    def counts(self) -> Counts:
        return self.ledger.count(T0 - timedelta(days=30), FIXED_NOW + timedelta(days=1), "claude-code")

    def events(self, kind: EventKind | None = None) -> list[UsageEvent]:
        return [e for e in self.ledger.events() if kind is None or e.kind is kind]


def steady_lines(
    count: int,
    start: datetime,
    *,
    sessions: int = 1,
    rate: float = 20.0,
    streamed: int = 1,
    first: int = 0,
) -> list[tuple[str, datetime, bytes]]:
    """`count` records as `bench/soak.py` writes them (a prompt, then the call that answers it), in time order.

    Ids have the length Claude Code's have (`msg_` + 24 characters, `req_` + 24, uuids), so what a
    record costs to remember is what a real one costs.

    Args:
        count: how many prompt and call records (streamed repeats not counted).
        start: the first record's instant; one every `1 / rate` seconds after it.
        sessions: prompt `i` goes to session `i % sessions`.
        streamed: lines per call (one per content block, output growing), as Claude Code streams them.
        first: the first record's number (to continue an earlier stream).

    Returns:
        (session id, instant, line) per line.
    """
    out: list[tuple[str, datetime, bytes]] = []
    for i in range(first, first + count):
        n = i // 2
        session = f"5oak{n % sessions:04d}-0000-4000-8000-000000000001"
        at = start + timedelta(seconds=(i - first) / rate)
        envelope = {"session": session, "cwd": "/soak", "git_branch": None}
        if i % 2 == 0:
            recs = [user_record(at, f"prompt {n}", uuid=f"{n:08x}-1111-4000-8000-000000000000", **envelope)]
        else:
            recs = [
                assistant_record(
                    at,
                    message_id=f"msg_{n:024d}",
                    model="glm-4.6",
                    content=[{"type": "text", "text": "ok"}],
                    tokens=usage(1000, 50 + 10 * block, cache_read=500),
                    request_id=f"req_{n:024d}",
                    uuid=f"{n:08x}-2222-4000-8000-{block:012d}",
                    **envelope,
                )
                for block in range(streamed)
            ]
        out += [(session, at, orjson.dumps(rec)) for rec in recs]
    return out
