"""Ground truth from the fake server and the driver, zai-dash's view of the same HOME, and the comparison.

Truth, per client run:
* prompts: what the driver typed and the server answered (a refused or never-sent prompt is not billed);
* refused: prompts every attempt of which the server refused (429 with a 1308/1310 body);
* calls: model requests the server answered (200), by purpose (main, sub-agent, title, compaction, …);
* searches: `tools/call` requests to the `web-search-prime` MCP server;
* model: the model the last main-chain call asked for;
* tokens: what the server's answers reported (input with cached, cached, output);
* hidden: answered calls whose nonce the client wrote into none of its files.

zai-dash's view is `zai-dash report --json --at <after the run>` over that HOME, plus the engine's
ledger for what the report does not carry per tool (tokens, limit hits).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from conformance.server import Exchange

FIELD_NAMES = (
    "prompts", "calls", "searches", "model", "refused", "limit_seen", "input_tokens", "cached_tokens", "output_tokens",
)  # fmt: skip
"""Every compared field, in report order."""
TOKEN_FIELDS = ("input_tokens", "cached_tokens", "output_tokens")
REPORT_DELAY = timedelta(minutes=1)
"""The report is evaluated this long after the last exchange (inside the same 5-hour window)."""


@dataclass
class Typed:
    """One thing the driver typed: a prompt and what should have happened to it.

    Attributes:
        text: the prompt.
        expect: `billed` (sent and answered), `refused` (sent, every attempt answered 429), `local`
            (the client should not send it) or `unsent` (meant to be billed, but the client sent nothing).
        scenario: the scenario it belongs to.
        interactive: typed into an interactive session.
    """

    text: str
    expect: str = "billed"
    scenario: str = ""
    interactive: bool = False


@dataclass
class Truth:
    """The ground truth of one client run (see the module docstring)."""

    tool: str
    client: str
    version: str
    prompts: int
    refused: int
    calls: int
    calls_by_purpose: dict[str, int]
    refused_requests: int
    searches: int
    model: str | None
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    hidden_calls: int
    hidden_by_purpose: dict[str, int]
    hidden_tokens: dict[str, int]
    """Token sums of the hidden calls (`input_tokens`, `cached_tokens`, `output_tokens`)."""
    interactive_sessions: int
    report_at: str
    scenarios: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Truth:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def clean_model(model: str | None) -> str | None:
    """A model id as zai-dash normalises it: lower case, no `[1m]`-style suffix, no provider prefix."""
    if not model:
        return None
    m = re.sub(r"\[[^\]]*\]$", "", model.strip()).lower()
    return m.rsplit("/", 1)[-1]


def build_truth(
    *,
    tool: str,
    client: str,
    version: str,
    exchanges: list[Exchange],
    typed: list[Typed],
    traced: set[str],
    interactive_sessions: int,
    scenarios: Iterable[str] = (),
    notes: Iterable[str] = (),
) -> Truth:
    """The truth of one run from the server's exchanges and what the driver typed.

    Args:
        traced: nonces found in the client's files (see `Sandbox.files_containing`).
    """
    answered = [e for e in exchanges if e.api != "mcp" and e.status == 200]
    refused = [e for e in exchanges if e.api != "mcp" and e.status == 429]
    mcp_calls = [e for e in exchanges if e.api == "mcp" and e.action.endswith("webSearchPrime")]
    main = [e for e in answered if e.purpose == "main"]
    hidden = [e for e in answered if e.nonce not in traced]
    last = max((e.ts for e in exchanges), default=datetime.now().astimezone().isoformat())
    at = datetime.fromisoformat(last) + REPORT_DELAY
    return Truth(
        tool=tool,
        client=client,
        version=version,
        prompts=sum(1 for t in typed if t.expect == "billed"),
        refused=sum(1 for t in typed if t.expect == "refused"),
        calls=len(answered),
        calls_by_purpose=dict(Counter(e.purpose for e in answered)),
        refused_requests=len(refused),
        searches=len(mcp_calls),
        model=clean_model(main[-1].model if main else None),
        input_tokens=sum(e.input_tokens for e in answered),
        cached_tokens=sum(e.cached_tokens for e in answered),
        output_tokens=sum(e.output_tokens for e in answered),
        hidden_calls=len(hidden),
        hidden_by_purpose=dict(Counter(e.purpose for e in hidden)),
        hidden_tokens={name: sum(getattr(e, name) for e in hidden) for name in TOKEN_FIELDS},
        interactive_sessions=interactive_sessions,
        report_at=at.isoformat(timespec="seconds"),
        scenarios=list(scenarios),
        notes=list(notes),
    )


# --- zai-dash's view -----------------------------------------------------------------------------


TOOL_ENV = ("CLAUDE_", "ANTHROPIC_", "OPENCODE", "KILO", "CLINE_", "FACTORY_", "CODEX_", "PI_", "ZAI_")
"""Environment prefixes that would point zai-dash at the real user's tool data: dropped."""


def sandbox_env(home: Path) -> dict[str, str]:
    """This process's environment with HOME and XDG in `home` and no tool's own variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(TOOL_ENV)}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_STATE_HOME=str(home / ".local/state"),
    )
    return env


def report_json(home: Path, at: str, *, in_process: bool = False) -> dict[str, Any]:
    """`zai-dash report --json --at AT` over `home` (a subprocess with HOME and XDG there).

    Args:
        in_process: call the CLI's `main` in this process instead (tests: HOME is already isolated).
    """
    argv = ["report", "--json", "--at", at]
    if in_process:
        import contextlib
        import io

        from zai_dash.cli import main

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            main(argv)
        return json.loads(buf.getvalue())
    out = subprocess.run(
        [sys.executable, "-m", "zai_dash", *argv],
        env=sandbox_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(out.stdout)


def ledger_view(home: Path, env: Mapping[str, str], at: str) -> dict[str, dict[str, int]]:
    """Per tool, what the engine's ledger holds that the report does not show per tool.

    Returns:
        tool id → `input_tokens`, `cached_tokens`, `output_tokens`, `limit_hits`, `calls_auxiliary`.
    """
    from zai_dash.clock import FixedClock
    from zai_dash.config import load_config
    from zai_dash.domain.events import CallRole, EventKind
    from zai_dash.engine import Engine
    from zai_dash.sources.base import SourceContext

    config = load_config(None, env)
    clock = FixedClock(datetime.fromisoformat(at))
    engine = Engine(config, ctx=SourceContext(home=home, env=dict(env)), clock=clock)
    engine.scan()
    view: dict[str, dict[str, int]] = {}
    for event in engine.ledger.events():
        row = view.setdefault(event.tool, Counter())
        if event.kind is EventKind.CALL:
            row["input_tokens"] += event.input_tokens
            row["cached_tokens"] += event.cached_tokens
            row["output_tokens"] += event.output_tokens
            if event.role is CallRole.AUXILIARY:
                row["calls_auxiliary"] += 1
    for hit in engine.ledger.limit_hits():
        view.setdefault(hit.tool, Counter())["limit_hits"] += 1
    return {tool: dict(row) for tool, row in view.items()}


# --- the comparison -------------------------------------------------------------------------------


@dataclass
class FieldResult:
    """One field compared: what the server saw, what zai-dash reports, and whether they agree."""

    field: str
    truth: Any
    reported: Any
    ok: bool | None
    """None: zai-dash does not report this field."""
    tolerance: str = ""


LIMIT_TOLERANCE = (
    "whether a 1308/1310 refusal was seen at all: clients log fewer error records than attempts (Claude Code "
    "writes one `api_error` per retry, not per attempt), and a limit hit is about the reset time, not a count"
)
CALL_TOLERANCE = (
    "±1 per interactive session: the session-title and `/compact` calls leave no assistant record and are "
    "estimated from other evidence (metering.md §4)"
)
TOKEN_TOLERANCE = (
    "either every answered call's tokens, or exactly those of the calls the client recorded: a hidden call "
    "(session title, compaction) has no per-call record to read its tokens from"
)


def tool_row(report: Mapping[str, Any], tool: str) -> dict[str, Any]:
    return next((dict(t) for t in report.get("tools", []) if t.get("tool") == tool), {})


REFUSAL_TEXTS = ("Usage limit reached", "Limit Exhausted")
"""What Z.ai's 1308/1310 messages say (`server.refusal_message`): a client file with one logged a refusal."""


def refusal_logged(home: Path, data_paths: Iterable[str] = ("",)) -> bool:
    """Whether the client's data files (`data_paths` under `home`; debug logs are not data) keep a
    refusal's message at all: some clients keep none."""
    needles = [t.encode() for t in REFUSAL_TEXTS]
    roots = [home / rel for rel in data_paths]
    # A database named alone still has rows in its `-wal` until a checkpoint (Kilo CLI's kilo.db).
    wal = [root.with_name(root.name + "-wal") for root in roots if root.suffix == ".db"]
    paths = [p for root in [*roots, *wal] for p in ([root] if root.is_file() else root.rglob("*"))]
    for path in paths:
        if path.is_file() and "proj" not in path.relative_to(home).parts[:1]:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in needles):
                return True
    return False


def compare(
    truth: Truth, report: Mapping[str, Any], ledger: Mapping[str, Mapping[str, int]], logged: bool = True
) -> list[FieldResult]:
    """Every field of one client run: truth against zai-dash.

    Args:
        logged: whether the client's files keep the refusal at all (`refusal_logged`); when not, no
            reader could see the limit hit and `limit_seen` is not compared.
    """
    row = tool_row(report, truth.tool)
    if not row:  # this build has no adapter for the tool: nothing to compare
        facts = {**truth.to_json(), "limit_seen": truth.refused_requests > 0}
        return [FieldResult(name, facts.get(name), None, None, "no adapter") for name in FIELD_NAMES]
    extra = ledger.get(truth.tool, {})
    results = [
        FieldResult("prompts", truth.prompts, row.get("prompts"), row.get("prompts") == truth.prompts),
    ]
    slack = truth.interactive_sessions
    calls = row.get("calls")
    results.append(
        FieldResult(
            "calls",
            truth.calls,
            calls,
            calls is not None and abs(calls - truth.calls) <= slack,
            CALL_TOLERANCE if slack else "exact",
        )
    )
    results.append(FieldResult("searches", truth.searches, row.get("searches"), row.get("searches") == truth.searches))
    got_model = clean_model(row.get("model"))
    results.append(FieldResult("model", truth.model, got_model, got_model == truth.model))
    refused = row.get("refused")
    results.append(
        FieldResult("refused", truth.refused, refused, None if refused is None else refused == truth.refused)
    )
    seen = extra.get("limit_hits", 0) > 0
    refusals = truth.refused_requests > 0
    if refusals and not logged:
        results.append(
            FieldResult(
                "limit_seen",
                refusals,
                seen,
                None,
                "not compared where the client's files keep no trace of the refusal (nothing to read it from)",
            )
        )
    else:
        results.append(FieldResult("limit_seen", refusals, seen, seen == refusals, LIMIT_TOLERANCE))
    for name in TOKEN_FIELDS:
        want = getattr(truth, name)
        visible = want - truth.hidden_tokens.get(name, 0)
        got = row.get(name, extra.get(name, 0))
        ok = got in (want, visible)
        results.append(FieldResult(name, want, got, ok, TOKEN_TOLERANCE if visible != want else "exact"))
    return results


def hidden_ratio(truth: Truth) -> float:
    """Share of answered calls the client's files show no trace of."""
    return truth.hidden_calls / truth.calls if truth.calls else 0.0


def compare_fixture(folder: Path, home: Path, *, in_process: bool = False) -> tuple[Truth, list[FieldResult]]:
    """Unpack a recorded fixture (`home.tar.xz`, `truth.json`) into an empty `home` and compare it.

    Args:
        in_process: run the report in this process (tests, where HOME is already `home`).
    """
    from conformance.sandbox import install_fixture

    truth = Truth.from_json(json.loads((folder / "truth.json").read_text()))
    at = datetime.fromisoformat(truth.report_at)
    install_fixture(folder / "home.tar.xz", home, mtime=at.timestamp() - 30)
    env = dict(os.environ) if in_process else sandbox_env(home)
    report = report_json(home, truth.report_at, in_process=in_process)
    ledger = ledger_view(home, env, truth.report_at)
    return truth, compare(truth, report, ledger, logged=refusal_logged(home))
