"""Generate realistic Claude Code history for benchmarks and demos.

    python bench/gen_claude.py OUT_DIR --size 500MB --days 60 [--seed N] [--start ISO]

Writes `OUT_DIR/.claude/projects/<slug>/<session>.jsonl` (and `<session>/subagents/agent-<id>.jsonl`)
the way Claude Code does: compact JSON, one line per streamed content block (repeating `message.id`,
`requestId` and a growing `usage`), tool_use / tool_result pairs, some Z.ai MCP calls, Task sub-agents and
Warmup pings, plus the non-event records real transcripts carry (file-history snapshots, summaries,
queue operations, API-error placeholders). Sessions cluster in working hours on weekdays.

Deterministic for a given seed, size, days and start (the default start is midnight UTC `days` days ago,
so pass `--start` for byte-identical output). Importable: `generate(...)` returns `GenStats`, the exact
counts a correct reader must find.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO

import orjson

VERSION = "2.0.14"
MAIN_MODELS = ("glm-4.6", "glm-4.6", "glm-4.6", "glm-4.5")
SUB_MODELS = ("glm-4.5-air", "glm-4.6")
PROJECTS = ("api-server", "web-ui", "infra", "data-pipeline", "cli-tool", "docs-site", "mobile-app", "ml-eval")
MCP_TOOLS = (
    ("mcp__web-search-prime__webSearchPrime", "search", {"search_query": "exponential backoff jitter"}),
    ("mcp__web-search-prime__webSearchPrime", "search", {"search_query": "python asyncio cancel scope"}),
    ("mcp__web-reader__webReader", "reader", {"url": "https://docs.python.org/3/library/asyncio.html"}),
    ("mcp__zread__search_doc", "zread", {"repo_name": "encode/httpx", "query": "timeouts"}),
    ("mcp__zai-mcp-server__analyze_image", "vision", {"image_source": "screenshot.png", "prompt": "what broke?"}),
)
LOCAL_TOOLS = ("Read", "Read", "Read", "Bash", "Bash", "Edit", "Grep", "Glob", "Write", "TodoWrite")
_WORD_TEXT = (
    "the a to of and in is for that this with on it be as we can by not are from at use will function error "
    "value return test file data config request response cache retry timeout async await import class def "
    "self None True False list dict string parse handle update check result index query model token user "
    "server client path line should would need fix add remove refactor keep call loop case type field"
)
WORDS = _WORD_TEXT.split()
UNITS = {"": 1, "B": 1, "K": 1024, "KB": 1024, "KIB": 1024, "M": 1024**2, "MB": 1024**2, "MIB": 1024**2,
         "G": 1024**3, "GB": 1024**3, "GIB": 1024**3}  # fmt: skip


@dataclass
class GenStats:
    """What was written, and what a correct reader must count from it."""

    files: int = 0
    bytes: int = 0
    lines: int = 0
    sessions: int = 0
    prompts: int = 0
    calls_main: int = 0
    calls_subagent: int = 0
    mcp: dict[str, int] = field(default_factory=lambda: {"search": 0, "reader": 0, "zread": 0, "vision": 0})
    first: str | None = None
    last: str | None = None
    seconds: float = 0.0


def parse_size(text: str) -> int:
    """`500MB`, `1.5G`, `64k` or a byte count → bytes (binary units)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]*)\s*", text)
    if not m or m.group(2).upper() not in UNITS:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(m.group(1)) * UNITS[m.group(2).upper()])


def iso(t: datetime) -> str:
    """`Date.toISOString()`: UTC with milliseconds and `Z`."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


class _Writer:
    """One transcript file: buffered appends, byte and line counts, mtime set to the last record."""

    def __init__(self, path: Path, stats: GenStats) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fh: BinaryIO = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self.stats = stats
        self.last: datetime | None = None
        stats.files += 1

    def write(self, rec: dict[str, Any], at: datetime) -> None:
        data = orjson.dumps(rec)
        self.fh.write(data)
        self.fh.write(b"\n")
        self.stats.bytes += len(data) + 1
        self.stats.lines += 1
        self.last = at

    def close(self) -> None:
        self.fh.close()
        if self.last is not None:
            stamp = self.last.timestamp()
            os.utime(self.path, (stamp, stamp))


class _Gen:
    def __init__(self, out: Path, seed: int, stats: GenStats) -> None:
        self.rng = random.Random(seed)
        self.out = out
        self.stats = stats
        rng = self.rng
        # One corpus of prose-and-code-like text; every text field is a slice of it (cheap, realistic size).
        lines = []
        for _ in range(6_000):
            words = rng.choices(WORDS, k=self.randint(4, 16))
            lines.append(("    " * self.randint(0, 3)) + " ".join(words) + rng.choice(("", ".", ":", "()", ",")))
        self.corpus = "\n".join(lines)
        self.cwds = {p: f"/home/dev/src/{p}" for p in PROJECTS}

    def randint(self, lo: int, hi: int) -> int:
        """`random.randint` without its argument checks (the generator's hot path)."""
        return lo + int(self.rng.random() * (hi - lo + 1))

    def text(self, lo: int, hi: int) -> str:
        n = self.randint(lo, hi)
        start = self.randint(0, len(self.corpus) - n - 2)
        return self.corpus[start : start + n]

    def hexid(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def uuid(self) -> str:
        h = self.hexid(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def msg_id(self, at: datetime) -> str:
        return "msg_" + at.strftime("%Y%m%d%H%M%S") + self.hexid(16)

    # -- records, in Claude Code's key order (timestamp last on message lines) -----------------------

    def base(self, ctx: dict[str, Any], parent: str | None) -> dict[str, Any]:
        rec: dict[str, Any] = {"parentUuid": parent, "isSidechain": ctx["sidechain"], "userType": "external",
                               "cwd": ctx["cwd"], "sessionId": ctx["session"], "version": VERSION,
                               "gitBranch": ctx["branch"]}  # fmt: skip
        if ctx.get("agent"):
            rec["agentId"] = ctx["agent"]
        return rec

    def user_line(self, w: _Writer, ctx: dict[str, Any], parent: str | None, at: datetime, content: Any,
                  tool_result: Any = None, **extra: Any) -> str:  # fmt: skip
        rec = self.base(ctx, parent)
        rec.update(extra)
        uid = self.uuid()
        rec.update({"type": "user", "message": {"role": "user", "content": content}, "uuid": uid,
                    "timestamp": iso(at)})  # fmt: skip
        if tool_result is not None:
            rec["toolUseResult"] = tool_result
        w.write(rec, at)
        return uid

    def assistant_call(self, w: _Writer, ctx: dict[str, Any], parent: str, at: datetime,
                       blocks: list[dict[str, Any]], model: str) -> tuple[str, datetime]:  # fmt: skip
        """One model call, streamed as one line per content block sharing id, request id and usage."""
        mid, req = self.msg_id(at), "req_" + self.hexid(24)
        inp, cache_read = self.randint(50, 3000), self.randint(8_000, 120_000)
        out = 0
        uid = parent
        for i, block in enumerate(blocks):
            out += self.randint(15, 400)
            stop = "tool_use" if block["type"] == "tool_use" else ("end_turn" if i == len(blocks) - 1 else None)
            message = {"id": mid, "type": "message", "role": "assistant", "model": model, "content": [block],
                       "stop_reason": stop, "stop_sequence": None,
                       "usage": {"input_tokens": inp, "cache_creation_input_tokens": 0,
                                 "cache_read_input_tokens": cache_read, "output_tokens": out,
                                 "service_tier": "standard"}}  # fmt: skip
            rec = self.base(ctx, uid)
            uid = self.uuid()
            rec.update({"message": message, "requestId": req, "type": "assistant", "uuid": uid,
                        "timestamp": iso(at)})  # fmt: skip
            w.write(rec, at)
            at += timedelta(milliseconds=self.randint(200, 4000))
        if ctx["sidechain"]:
            self.stats.calls_subagent += 1
        else:
            self.stats.calls_main += 1
        return uid, at

    def tool_blocks(self, allow_task: bool) -> list[dict[str, Any]]:
        rng = self.rng
        blocks: list[dict[str, Any]] = []
        if rng.random() < 0.35:
            blocks.append({"type": "thinking", "thinking": self.text(80, 900), "signature": ""})
        if rng.random() < 0.6:
            blocks.append({"type": "text", "text": self.text(40, 500)})
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            roll = rng.random()
            if roll < 0.06:
                name, service, args = rng.choice(MCP_TOOLS)
                blocks.append({"type": "tool_use", "id": "toolu_" + self.hexid(24), "name": name, "input": args,
                               "_service": service})  # fmt: skip
            elif allow_task and roll < 0.09:
                blocks.append({"type": "tool_use", "id": "toolu_" + self.hexid(24), "name": "Task",
                               "input": {"description": "Explore the codebase", "prompt": self.text(100, 600),
                                         "subagent_type": "Explore"}})  # fmt: skip
            else:
                name = rng.choice(LOCAL_TOOLS)
                blocks.append({"type": "tool_use", "id": "toolu_" + self.hexid(24), "name": name,
                               "input": {"file_path": f"/home/dev/src/app/{self.hexid(6)}.py"}})  # fmt: skip
        return blocks

    def run_turn(self, w: _Writer, ctx: dict[str, Any], parent: str, at: datetime, model: str,
                 steps: int, allow_task: bool) -> tuple[str, datetime]:  # fmt: skip
        """An agentic loop: calls with tool uses and their results, ending in a text-only answer."""
        for step in range(steps):
            last = step == steps - 1
            blocks = [{"type": "text", "text": self.text(100, 1500)}] if last else self.tool_blocks(allow_task)
            services = []
            for b in blocks:
                service = b.pop("_service", None)
                if service:
                    services.append(service)
            parent, at = self.assistant_call(w, ctx, parent, at, blocks, model)
            for service in services:
                self.stats.mcp[service] += 1
            for b in blocks:
                if b["type"] != "tool_use":
                    continue
                if b["name"] == "Task":
                    at = self.subagent(ctx, b["id"], at)
                body = self.text(100, 6_000 if b["name"] in ("Read", "Bash") else 2_000)
                at += timedelta(milliseconds=self.randint(100, 8000))
                parent = self.user_line(
                    w, ctx, parent, at,
                    [{"tool_use_id": b["id"], "type": "tool_result", "content": body}],
                    tool_result={"stdout": body[:2000], "stderr": "", "interrupted": False},
                )  # fmt: skip
        return parent, at

    def subagent(self, ctx: dict[str, Any], tool_id: str, at: datetime, warmup: bool = False) -> datetime:
        rng = self.rng
        agent = self.hexid(7)
        sub = {**ctx, "sidechain": True, "agent": agent}
        w = _Writer(ctx["dir"] / ctx["session"] / "subagents" / f"agent-{agent}.jsonl", self.stats)
        try:
            model = "glm-4.5-air" if warmup else rng.choice(SUB_MODELS)
            text = "Warmup" if warmup else self.text(100, 600)
            parent = self.user_line(w, sub, None, at, [{"type": "text", "text": text}])
            at += timedelta(seconds=rng.uniform(1, 4))
            if warmup:
                _, at = self.assistant_call(w, sub, parent, at, [{"type": "text", "text": "Ready."}], model)
            else:
                _, at = self.run_turn(w, sub, parent, at, model, self.randint(2, 8), allow_task=False)
        finally:
            w.close()
        return at

    def session(self, project: str, start: datetime, end: datetime) -> datetime:
        rng = self.rng
        session = self.uuid()
        slug = re.sub(r"[^a-zA-Z0-9]", "-", self.cwds[project])
        pdir = self.out / ".claude" / "projects" / slug
        ctx = {"sidechain": False, "cwd": self.cwds[project], "session": session, "dir": pdir,
               "branch": rng.choice(("main", "main", "feature/retry", "fix/flaky-test"))}  # fmt: skip
        model = rng.choice(MAIN_MODELS)
        self.stats.sessions += 1
        at = start
        w = _Writer(pdir / f"{session}.jsonl", self.stats)
        try:
            if rng.random() < 0.3:
                at = self.subagent(ctx, "", at, warmup=True)
            parent: str | None = None
            for _ in range(self.randint(3, 25)):
                if at >= end:
                    break
                w.write({"type": "file-history-snapshot", "messageId": self.uuid(),
                         "snapshot": {"messageId": self.uuid(), "trackedFileBackups": {}, "timestamp": iso(at)},
                         "isSnapshotUpdate": False}, at)  # fmt: skip
                roll = rng.random()
                if roll < 0.05:
                    # A slash command: wrapper + meta expansion, not prompts; then the model runs.
                    wrapper = "<command-name>/review</command-name>\n<command-message>review</command-message>"
                    parent = self.user_line(w, ctx, parent, at, wrapper + "\n<command-args></command-args>")
                    parent = self.user_line(w, ctx, parent, at, [{"type": "text", "text": self.text(300, 1500)}],
                                            isMeta=True)  # fmt: skip
                else:
                    parent = self.user_line(w, ctx, parent, at, self.text(20, 600))
                    self.stats.prompts += 1
                at += timedelta(seconds=rng.uniform(1, 5))
                parent, at = self.run_turn(w, ctx, parent, at, model, self.randint(1, 12), allow_task=True)
                if rng.random() < 0.02:
                    w.write({**self.base(ctx, parent), "type": "assistant", "uuid": self.uuid(),
                             "timestamp": iso(at), "error": "server_error", "isApiErrorMessage": True,
                             "message": {"id": self.msg_id(at), "model": "<synthetic>", "role": "assistant",
                                         "type": "message", "stop_reason": "stop_sequence",
                                         "usage": {"input_tokens": 0, "output_tokens": 0},
                                         "content": [{"type": "text", "text": "API Error: 529 Overloaded"}]}},
                            at)  # fmt: skip
                if rng.random() < 0.04:
                    w.write({"type": "queue-operation", "operation": "enqueue", "timestamp": iso(at),
                             "sessionId": session, "content": "also update the changelog"}, at)  # fmt: skip
                    w.write({"type": "queue-operation", "operation": "dequeue", "timestamp": iso(at),
                             "sessionId": session}, at)  # fmt: skip
                at += timedelta(seconds=rng.expovariate(1 / 150))
            if rng.random() < 0.5:
                w.write({"type": "summary", "summary": self.text(20, 60), "leafUuid": parent}, at)
        finally:
            w.close()
        return at


def generate(
    out_dir: Path | str,
    size: int,
    days: int,
    seed: int = 0,
    start: datetime | None = None,
    utc_offset_hours: float = 0.0,
) -> GenStats:
    """Write about `size` bytes of Claude Code history over `days` days into `out_dir/.claude`.

    Args:
        out_dir: where `.claude/projects/…` goes (a fake HOME).
        size: target total bytes (met to within one session).
        days: how many days of history.
        seed: the random seed; same seed, size, days and start give identical files.
        start: the first day (aware); default: midnight UTC `days` days ago.
        utc_offset_hours: the user's zone, for working hours.

    Returns:
        What was written and what a reader must count.
    """
    began = time.perf_counter()
    out = Path(out_dir)
    if start is None:
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
    start = start.astimezone(timezone.utc)
    stats = GenStats()
    gen = _Gen(out, seed, stats)
    rng = gen.rng
    local = timezone(timedelta(hours=utc_offset_hours))
    weights = [1.0 if (start + timedelta(days=d)).astimezone(local).weekday() < 5 else 0.25 for d in range(days)]
    total_w = sum(weights)
    for day, weight in enumerate(weights):
        budget = size * weight / total_w
        target = stats.bytes + budget
        day_start = (start + timedelta(days=day)).astimezone(local).replace(hour=0, minute=0, second=0)
        day_end = min(day_start + timedelta(days=1), start + timedelta(days=days))
        while stats.bytes < target:
            hour = rng.choice((9, 9, 10, 10, 11, 11, 13, 14, 14, 15, 15, 16, 16, 17, 18, 20, 21, 22))
            begin = day_start + timedelta(hours=hour, seconds=rng.uniform(0, 3600))
            if begin >= day_end:
                continue
            gen.session(rng.choice(PROJECTS), begin.astimezone(timezone.utc), day_end.astimezone(timezone.utc))
    stats.first = iso(start)
    stats.last = iso(start + timedelta(days=days))
    stats.seconds = round(time.perf_counter() - began, 3)
    return stats


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--size", type=parse_size, default=parse_size("50MB"), help="total size, e.g. 500MB")
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=_parse_start, default=None, help="first day, ISO 8601 (default: days ago)")
    ap.add_argument("--utc-offset", type=float, default=0.0, help="the user's zone for working hours")
    args = ap.parse_args(argv)
    stats = generate(args.out_dir, args.size, args.days, args.seed, args.start, args.utc_offset)
    mb = stats.bytes / 1024**2
    json.dump(asdict(stats), sys.stdout, indent=2)
    print(f"\n{mb:.1f} MiB in {stats.seconds:.1f}s ({mb / max(stats.seconds, 1e-9):.0f} MiB/s)", file=sys.stderr)
    return 0


def _parse_start(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


if __name__ == "__main__":
    raise SystemExit(main())
