"""Pi session files, written the way Pi writes them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.recorded import iso

SID = "01a23417-d942-72f6-afbb-2108e57af32a"


def entry(n: int, at: datetime, kind: str = "message", **fields: Any) -> dict[str, Any]:
    return {"type": kind, "id": f"e{n:07x}", "parentId": f"e{n - 1:07x}", "timestamp": iso(at), **fields}


def user(n: int, at: datetime, text: str = "fix the bug") -> dict[str, Any]:
    return entry(n, at, message={"role": "user", "content": [{"type": "text", "text": text}]})


def assistant(n: int, at: datetime, inp: int = 800, cache: int = 200, out: int = 20, **extra: Any) -> dict[str, Any]:
    usage = {"input": inp, "output": out, "cacheRead": cache, "cacheWrite": 0, "totalTokens": inp + cache + out}
    return entry(
        n,
        at,
        message={
            "role": "assistant",
            "content": [{"type": "text", "text": "ok"}],
            "provider": "zai",
            "model": "GLM-4.6",
            "usage": usage,
            "stopReason": "stop",
            **extra,
        },
    )


def write_session(home: Path, at: datetime, entries: list[dict[str, Any]], sid: str = SID, **header: Any) -> Path:
    folder = home / ".pi" / "agent" / "sessions" / "--home-user-work--"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{at:%Y-%m-%dT%H-%M-%S-000Z}_{sid}.jsonl"
    head = [{"type": "session", "version": 3, "id": sid, "timestamp": iso(at), "cwd": "/home/user/work", **header}]
    with path.open("a") as fh:
        for line in (head if not path.exists() or path.stat().st_size == 0 else []) + entries:
            fh.write(json.dumps(line) + "\n")
    return path


def write_pi_session(home: Path, at: datetime, tag: str) -> None:
    """A sample Pi session (two prompts, three calls) for the adapter contract test."""
    s = timedelta(seconds=1)
    write_session(
        home,
        at,
        [user(1, at), assistant(2, at + s), user(3, at + 3 * s), assistant(4, at + 4 * s), assistant(5, at + 5 * s)],
        sid=f"01a23417-d942-72f6-afbb-2108e57af3{tag}",
    )
