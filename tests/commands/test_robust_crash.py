"""Crashes (issue 15 §3, §4): one numeric and time rule; the cache and state file rebuilt on any shape error."""

from __future__ import annotations

import copy
import json
import math
import os
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import AT, run_cli, write_known_fixture
from tests.support.dataloss import NOW, counts, engine_at, log_path, turn, write_turns
from tests.support.env import FIXED_NOW
from tests.support.http import V2_IDLE
from zai_dash import cache, statefile
from zai_dash.clock import FixedClock
from zai_dash.domain.bounds import MAX_TOKENS, token_count
from zai_dash.domain.official import parse_limits
from zai_dash.sources.base import SourceContext
from zai_dash.sources.jsonutil import BadTimestamp, from_epoch, int_field, parse_iso

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize(
    "value", [1e20, 2**70, MAX_TOKENS, -1, float("nan"), float("inf"), float("-inf"), True, "12", None]
)
def test_token_counts_outside_the_rule_are_zero(value: object) -> None:
    assert int_field(value) == 0
    assert token_count(value) is None


def test_token_counts_inside_the_rule() -> None:
    assert int_field(12) == 12 and int_field(12.0) == 12 and token_count(MAX_TOKENS - 1) == MAX_TOKENS - 1


@pytest.mark.parametrize(
    "text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59Z", "2300-01-01T00:00:00Z"]
)
def test_iso_timestamps_outside_the_sane_range(text: str) -> None:
    with pytest.raises(BadTimestamp, match="out of range"):
        parse_iso(text)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), -1, 10**400, 1e300, 253402300800])
def test_epoch_timestamps_outside_the_sane_range(value: float) -> None:
    with pytest.raises(BadTimestamp, match="out of range"):
        from_epoch(value)


def test_huge_token_count_never_breaks_the_cache(home: Path, ctx: SourceContext) -> None:
    """`1e20` output tokens in one record: 3 turns counted, the cache written and read back."""
    path = log_path(home)
    write_turns(path, 0, 2)
    rec = turn(5, NOW - timedelta(minutes=30))[1]
    rec["message"]["usage"]["output_tokens"] = 1e20
    rec["message"]["usage"]["input_tokens"] = 2**70
    with open(path, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    engine = engine_at(ctx, FixedClock(NOW))
    assert counts(engine) == (2, 3)
    assert max(e.tokens for e in engine.ledger.events()) < MAX_TOKENS
    engine.snapshot().to_json()
    engine.save_cache()
    again = engine_at(ctx, FixedClock(NOW))
    assert again.cache_used and counts(again) == (2, 3)


def _shapes(doc: dict[str, Any]) -> list[Any]:
    """20 documents that pass as JSON but are not the cache's shape."""
    tails = doc["tails"]
    name = next(iter(tails))
    out: list[Any] = [[], "cache", 7, None]
    for key, value in [
        ("ledger", []),
        ("ledger", {"events": "x"}),
        ("ledger", {"events": [[1, 2]]}),
        ("ledger", {**doc["ledger"], "events": {**doc["ledger"]["events"], "ts": "soon"}}),  # a bad instants column
        ("ledger", {**doc["ledger"], "last_activity": []}),
        ("ledger", {**doc["ledger"], "last_model": {"claude-code": 5}}),
        ("tails", []),
        ("tails", {name: "x"}),
        ("tails", {name: [{"/nope": [1, 2, 3]}]}),
        ("tails", {name: [{k: ["a", *v[1:]] for k, v in tails[name][0].items()}]}),
        ("tails", {name: [{k: [*v[:5], 42] for k, v in tails[name][0].items()}]}),
        ("skips", []),
        ("skips", {name: {"counts": {"x": -1}, "first": {}}}),
        ("skips", {name: {"counts": "x", "first": {}}}),
        ("skips", {"no-such-source": {"counts": {}, "first": {}}}),
        ("saved_at", "yesterday"),
    ]:
        bad = copy.deepcopy(doc)
        bad[key] = value
        out.append(bad)
    return out


def test_every_wrongly_shaped_cache_is_a_cold_scan(home: Path, ctx: SourceContext) -> None:
    write_turns(log_path(home), 0, 3)
    engine_at(ctx, FixedClock(NOW)).save_cache()
    path = cache.cache_path(dict(ctx.env))
    good = json.loads(path.read_bytes())
    shapes = _shapes(good)
    assert len(shapes) == 20
    for shape in shapes:
        path.write_text(json.dumps(shape))
        engine = engine_at(ctx, FixedClock(NOW))
        assert not engine.cache_used, shape
        assert counts(engine) == (3, 3)
    path.write_text(json.dumps(good))
    assert engine_at(ctx, FixedClock(NOW)).cache_used


STATE_SHAPES: list[Any] = [
    [],
    {"pid": os.getpid()},
    {"pid": "me", "fingerprint": "x", "doc": {}},
    {"pid": os.getpid(), "fingerprint": None, "doc": []},
    {"pid": os.getpid(), "fingerprint": None, "doc": {"at": 5}},
    {"pid": os.getpid(), "fingerprint": None, "doc": {"at": "2026-11-26T10:00:00"}},
    {"pid": -1, "fingerprint": None, "doc": {"at": AT}},
    {"pid": 10**30, "fingerprint": None, "doc": {"at": AT}},
]


@pytest.mark.parametrize("shape", STATE_SHAPES)
def test_wrongly_shaped_state_file_is_ignored(tmp_path: Path, shape: Any) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(shape))
    assert statefile.read_fresh("x", datetime.fromisoformat(AT), path) is None


@pytest.mark.wall_clock
@pytest.mark.parametrize("inner", ["cycle-list", "prompts-missing", "tools-string"])
def test_status_survives_a_state_doc_of_the_wrong_shape(home: Path, inner: str) -> None:
    """A live dashboard's state file whose document is mangled: `status` scans instead of a traceback."""
    from zai_dash.config import Config

    now = datetime.now(timezone.utc)
    doc: dict[str, Any] = {"at": now.isoformat(), "cycle": {"end": None}, "prompts": {"level": "ok"}, "tools": []}
    if inner == "cycle-list":
        doc["cycle"] = []
    elif inner == "prompts-missing":
        del doc["prompts"]
    else:
        doc["tools"] = "claude"
    path = home / ".cache" / "zai-dash" / "state.json"
    path.parent.mkdir(parents=True)
    fingerprint = Config().fingerprint()
    path.write_text(json.dumps({"pid": os.getpid(), "fingerprint": fingerprint, "doc": doc}))
    out = run_cli(home, "status")
    assert "Traceback" not in out.stderr and out.stdout.strip()
    assert not out.stdout.startswith("GLM error")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59Z"])
def test_at_outside_the_sane_range_is_a_usage_error(home: Path, at: str) -> None:
    for command in ("report", "status"):
        out = run_cli(home, command, "--at", at)
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert "--at" in out.stderr


def test_export_on_a_port_in_use_fails_before_scanning(home: Path) -> None:
    write_known_fixture(home)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_cli(home, "export", "--listen", f"127.0.0.1:{port}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "cannot listen" in out.stderr


def test_absurd_official_values_never_reach_a_view() -> None:
    data = copy.deepcopy(V2_IDLE["data"])
    for item in data["limits"]:
        item.update(currentValue=1e300, usage=1e300, percentage=1e300, nextResetTime=1e300)
    reading = parse_limits(data, FIXED_NOW)
    for row in reading.rows:
        assert row.used is None and row.limit is None
        assert row.percent is None or 0 <= row.percent <= 100
        assert row.next_reset is None
        assert all(math.isfinite(v) for v in (row.percent or 0, row.remaining or 0))
