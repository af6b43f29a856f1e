"""Property: random bytes and random JSON between valid lines never crash the tail and never change what the
valid lines count, whether the file is read in one poll or in arbitrary pieces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.claude_code import SESSION, Claude, assistant, tool_use, user
from tests.support.env import FIXED_NOW
from zai_dash.domain.events import EventKind
from zai_dash.domain.ledger import Ledger
from zai_dash.sources.base import SourceContext
from zai_dash.sources.tools.claude_code import ClaudeCodeSource

VALID: list[dict[str, Any]] = [
    user("add exponential backoff to getJson()", "p-1", 1.0),
    assistant("msg_v1", "req_v1", 2.0, [tool_use("toolu_v1", "mcp__web-search-prime__webSearchPrime")], out=20),
    assistant("msg_v1", "req_v1", 2.5, [{"type": "text", "text": "done"}], out=40),
    user("now write the tests", "p-2", 10.0),
    assistant("msg_v2", None, 11.0, out=7),
]
EXPECTED = {
    "prompt:p-1": EventKind.PROMPT,
    "prompt:p-2": EventKind.PROMPT,
    "msg_v1:req_v1": EventKind.CALL,
    "msg_v2": EventKind.CALL,
    "mcp:toolu_v1": EventKind.MCP,
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
# Random JSON, including records that look like Claude Code's (right types, random insides).
record_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["user", "assistant", "queue-operation", "summary", "bogus"])},
    optional={
        "message": json_values,
        "timestamp": st.sampled_from(["2026-11-26T08:00:00.000Z", "2026-11-26T08:00:00", "x", "2099-01-01T00:00Z"]),
        "isSidechain": json_values,
        "uuid": json_values,
        "requestId": json_values,
        "operation": st.sampled_from(["remove", "enqueue"]),
        "content": json_values,
    },
)
noise = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    record_like.map(lambda r: orjson.dumps(r, default=str)),
)


def _keys_of_valid_lines(events: list[Any]) -> dict[str, EventKind]:
    # Noise may form records of its own (random JSON can be a real prompt); only the keys of the valid
    # lines are compared, and those must come out exactly as without the noise.
    return {e.key: e.kind for e in events if e.key in EXPECTED}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    noises=st.lists(noise, min_size=len(VALID) + 1, max_size=len(VALID) + 1),
    cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=6),
)
def test_noise_never_crashes_or_changes_valid_counts(
    tmp_path_factory: Any, noises: list[bytes], cuts: list[int]
) -> None:
    home: Path = tmp_path_factory.mktemp("home")
    claude = Claude(home / ".claude")
    # Each piece of noise sits on its own line(s): a newline before and after, so it can never join a
    # valid line; a valid line therefore stays a complete line whatever the noise holds.
    blob = bytearray(b"\n" + noises[0] + b"\n")
    for rec, junk in zip(VALID, noises[1:], strict=True):
        blob += orjson.dumps(rec) + b"\n" + junk + b"\n"
    path = claude.session_file()
    source = ClaudeCodeSource(SourceContext(home=home, env={}, clock=lambda: FIXED_NOW))
    ledger = Ledger()
    # Append in arbitrary pieces, polling between them, like a live writer.
    pos = 0
    for cut in [*sorted({min(c, len(blob)) for c in cuts}), len(blob)]:
        with open(path, "ab") as fh:
            fh.write(bytes(blob[pos:cut]))
        pos = max(pos, cut)
        batch = source.poll()
        ledger.add_all(batch.events)
    events = ledger.events()
    assert _keys_of_valid_lines(events) == EXPECTED
    calls = {e.key: e for e in events if e.kind is EventKind.CALL}
    assert calls["msg_v1:req_v1"].output_tokens == 40
    assert all(e.session == SESSION for e in events if e.key in EXPECTED)
