"""`make conformance`: install the pinned clients, drive each against the fake server, compare, report.

Usage: `python -m conformance.run [--clients claude-code,opencode] [--record] [--keep]`.

* `--record` also writes each run's files as a fixture under `tests/fixtures/real/<tool>/` (HOME paths
  rewritten) with its `truth.json`, for `tests/test_recorded_clients.py`.
* `--keep` leaves the temp HOMEs in place (their paths are printed) for a look by hand.

Writes `bench/CONFORMANCE.md`. Exit status: 0 when every runnable client ran its scenarios (mismatches
are findings, listed in the document, not failures of the suite); 1 when a driver itself broke.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import shutil
import sys
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from conformance import clients
from conformance.clients.base import Driver, RunLog, Skip, cache_dir
from conformance.sandbox import Sandbox, end_strays, export_fixture
from conformance.server import FakeGlmServer
from conformance.truth import (
    FIELD_NAMES,
    FieldResult,
    Truth,
    build_truth,
    compare,
    compare_fixture,
    hidden_ratio,
    ledger_view,
    refusal_logged,
    report_json,
)

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "real"
DOC = REPO / "bench" / "CONFORMANCE.md"
ORDER = ("claude-code", "opencode", "kilo", "cline", "droid", "codex", "pi")


@dataclass
class ClientResult:
    """One client's outcome: skipped (why), or its truth and the field comparison."""

    driver: Driver
    skipped: str | None = None
    truth: Truth | None = None
    fields: list[FieldResult] = field(default_factory=list)
    log: RunLog = field(default_factory=RunLog)
    home: Path | None = None
    error: str | None = None


def drivers() -> dict[str, Driver]:
    """Every driver module's `DRIVER`, keyed by module name (`claude-code`, `opencode`, …)."""
    found: dict[str, Driver] = {}
    for info in pkgutil.iter_modules(clients.__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{clients.__name__}.{info.name}")
        driver = getattr(module, "DRIVER", None)
        if isinstance(driver, Driver):
            found[driver.tool_dir] = driver
    return dict(sorted(found.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else 99))


def run_client(driver: Driver, *, record: bool, keep: bool) -> ClientResult:
    """Install, drive, compare one client (and record its fixture)."""
    result = ClientResult(driver)
    try:
        driver.install()
    except Skip as exc:
        result.skipped = str(exc)
        return result
    root = Path(tempfile.mkdtemp(prefix=f"zdconf-{driver.tool_dir}-"))
    box = Sandbox(root)
    result.home = box.home
    try:
        with FakeGlmServer(str(box.workdir), log_path=str(root / "requests.jsonl")) as srv:
            env = driver.configure(box, srv)
            try:
                driver.scenarios(box, srv, env, result.log)
            finally:
                strays = end_strays(root)
                if strays:
                    result.log.notes.append(f"left {len(strays)} process(es) running (ended)")
            exchanges = srv.recorder.snapshot()
        traced = box.files_containing([e.nonce for e in exchanges])
        truth = build_truth(
            tool=driver.tool,
            client=driver.client,
            version=driver.version,
            exchanges=exchanges,
            typed=result.log.typed,
            traced=traced,
            interactive_sessions=result.log.interactive_sessions,
            scenarios=result.log.scenarios,
            notes=result.log.notes,
        )
        if "mcp-search" in truth.scenarios and truth.searches == 0:
            result.log.notes.append("mcp-search: no call reached the MCP server (the model was offered no MCP tool)")
        result.truth = truth
        report = report_json(box.home, truth.report_at)
        ledger = ledger_view(box.home, env, truth.report_at)
        result.fields = compare(truth, report, ledger, logged=refusal_logged(box.home, driver.data_paths))
        (root / "report.json").write_text(json.dumps(report, indent=2))
        if record:
            dest = FIXTURES / driver.tool_dir
            files = export_fixture(box.home, list(driver.data_paths), dest / "home.tar.xz")
            doc = {**truth.to_json(), "files": files, "exchanges": [asdict(e) for e in exchanges]}
            (dest / "truth.json").write_text(json.dumps(doc, indent=1) + "\n")
    except Exception:
        result.error = traceback.format_exc(limit=4)
    finally:
        if not keep and result.error is None:
            shutil.rmtree(root, ignore_errors=True)
    return result


def _result_path(driver: Driver) -> Path:
    return cache_dir() / "results" / f"{driver.tool_dir}.json"


def save_result(r: ClientResult) -> None:
    """Keep a client's outcome in the cache, so the document covers clients not re-run this time."""
    doc = {
        "version": r.driver.version,
        "skipped": r.skipped,
        "error": r.error,
        "truth": r.truth.to_json() if r.truth else None,
        "fields": [asdict(f) for f in r.fields],
        "scenarios": r.log.scenarios,
        "failures": r.log.failures,
        "notes": r.log.notes,
    }
    path = _result_path(r.driver)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))


def load_result(driver: Driver) -> ClientResult | None:
    """The last saved outcome of this driver's pinned version, if any."""
    try:
        doc = json.loads(_result_path(driver).read_text())
    except (OSError, ValueError):
        return None
    if doc.get("version") != driver.version:
        return None
    log = RunLog(scenarios=doc["scenarios"], failures=doc["failures"], notes=doc["notes"])
    truth = Truth.from_json(doc["truth"]) if doc.get("truth") else None
    fields = [FieldResult(**f) for f in doc["fields"]]
    return ClientResult(driver, doc.get("skipped"), truth, fields, log, None, doc.get("error"))


def recompared(saved: ClientResult) -> ClientResult:
    """A saved outcome whose client has a recorded fixture, compared again with today's zai-dash."""
    folder = FIXTURES / saved.driver.tool_dir
    if not (folder / "home.tar.xz").is_file() or saved.truth is None:
        return saved
    with tempfile.TemporaryDirectory(prefix="zdconf-fixture-") as tmp:
        saved.truth, saved.fields = compare_fixture(folder, Path(tmp))
    saved.log.scenarios = list(saved.truth.scenarios)
    ran = {name.split("+")[0] for name in saved.log.scenarios}
    saved.log.failures = [f for f in saved.log.failures if f.split(":", 1)[0] in ran]
    saved.log.notes = list(dict.fromkeys([*saved.log.notes, *saved.truth.notes]))
    return saved


def litellm_section(report_dir: Path) -> dict[str, Any] | None:
    """The LiteLLM proxy check (`conformance/litellm_check.py`, written by another helper), if present."""
    try:
        module = importlib.import_module("conformance.litellm_check")
    except ModuleNotFoundError:
        return None
    try:
        return dict(module.run(report_dir))
    except Exception as exc:
        return {"status": "error", "detail": f"{type(exc).__name__}: {exc}"}


# --- the document -------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return "—" if value is None else str(value)


def render(results: list[ClientResult], litellm: dict[str, Any] | None, when: datetime) -> str:
    """`bench/CONFORMANCE.md`."""
    lines = [
        "# Conformance: real clients against a recording server",
        "",
        f"Run {when:%Y-%m-%d %H:%M} UTC by `make conformance` (`conformance/run.py`). Each client ran headless in a",
        "temp HOME against `conformance/server.py` on 127.0.0.1; the truth is what that server answered and what",
        "the driver typed; zai-dash's figures are `zai-dash report --json` over the same HOME (tokens and limit",
        "hits from the engine's ledger where the report has no per-tool field).",
        "",
        "Scenarios: `plain` one prompt; `resumed` the same session continued; `multi-call` a tool call then an",
        "answer; `sub-agent` the client's own sub-agent tool; `mcp-search` a `web-search-prime` MCP call;",
        "`mcp-denied` the same call denied by the client's permissions; `unknown-model` a prompt the client",
        "rejects locally; `refused` every attempt answered 429 with Z.ai's 1308 body; `interactive+compact` a",
        "TUI session on a pty with one prompt and `/compact`. A client that cannot do one says why below.",
        "Clients with a recorded fixture (`tests/fixtures/real/<tool>/`) are compared again with the current",
        "zai-dash on every `--render`, and by `make test` (`tests/test_recorded_clients.py`).",
        "",
        "## Clients",
        "",
        "| client | package | version | scenarios | result |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        d = r.driver
        if r.skipped:
            status = f"skipped: {r.skipped}"
        elif r.error:
            status = "driver error (see below)"
        elif all(f.ok is None for f in r.fields):
            status = "ran; this build of zai-dash has no adapter for it"
        else:
            bad = [f.field for f in r.fields if f.ok is False]
            status = "all fields match" if not bad else "mismatch: " + ", ".join(bad)
        scen = ", ".join(r.log.scenarios) or "—"
        lines.append(f"| {d.client} | `{d.package}` | {d.version} | {scen} | {status} |")
    lines += ["", "## Per-field matches", ""]
    ran = [r for r in results if r.truth and r.fields]
    if ran:
        lines.append("| field | " + " | ".join(r.driver.client for r in ran) + " | matches |")
        lines.append("|---|" + "---|" * (len(ran) + 1))
        for name in FIELD_NAMES:
            cells, good, known = [], 0, 0
            for r in ran:
                f = next((f for f in r.fields if f.field == name), FieldResult(name, None, None, None))
                mark = {True: "✓", False: "✗", None: "n/a"}[f.ok]
                cells.append(f"{mark} {_cell(f.reported)} / {_cell(f.truth)}")
                good += f.ok is True
                known += f.ok is not None
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {good}/{known} |")
        lines += ["", "Cells are *zai-dash / server*. n/a: zai-dash has no such figure yet.", ""]
        lines += [
            "## Hidden calls",
            "",
            "| client | answered calls | no trace in the client's files | ratio | by purpose |",
        ]
        lines.append("|---|---|---|---|---|")
        for r in ran:
            t = r.truth
            assert t is not None
            purposes = ", ".join(f"{k} {v}" for k, v in sorted(t.hidden_by_purpose.items())) or "—"
            lines.append(f"| {t.client} | {t.calls} | {t.hidden_calls} | {hidden_ratio(t):.0%} | {purposes} |")
        lines += [
            "",
            "A call is *hidden* when the nonce the server put in its response id, tool-call ids and answer text",
            "(never in a title, nor in Claude Code's compaction summary, which it stores as a user record) appears",
            "in none of the files the client wrote. zai-dash can only count those from indirect evidence.",
            "",
        ]
    lines += ["## Tolerances", ""]
    seen: set[str] = set()
    for r in ran:
        for f in r.fields:
            if f.tolerance and f.tolerance not in seen and f.tolerance not in ("exact", "no adapter"):
                seen.add(f.tolerance)
                label = "tokens" if f.field.endswith("_tokens") else f.field
                lines.append(f"- `{label}`: {f.tolerance}.")
    lines += [
        "- Everything else is exact: prompts, searches, refused, the model, and every count in `-p` runs.",
        "- The model is compared after zai-dash's normalisation (lower case, no `[1m]` suffix).",
        "",
    ]
    if litellm is not None:
        lines += render_litellm(litellm)
    troubles = [r for r in results if r.error or r.log.failures or r.log.notes]
    if troubles:
        lines += ["## Driver notes", ""]
        for r in troubles:
            for failure in [*r.log.notes, *r.log.failures]:
                lines.append(f"- {r.driver.client}: {failure}")
            if r.error:
                lines.append(f"- {r.driver.client}: driver error: `{r.error.strip().splitlines()[-1]}`")
        lines.append("")
    return "\n".join(lines)


def render_litellm(result: dict[str, Any]) -> list[str]:
    """The LiteLLM proxy section (`conformance/litellm_check.py`'s result)."""
    head = f"{result.get('client', 'litellm')} {result.get('version') or ''}".strip()
    lines = ["## LiteLLM proxy", "", f"{head}: **{result.get('status', '?')}** {result.get('reason') or ''}".rstrip()]
    checks = result.get("checks") or []
    if checks:
        lines += ["", "| check | expected | zai-dash | ok |", "|---|---|---|---|"]
        for c in checks:
            mark = "✓" if c.get("ok") else "✗"
            lines.append(f"| {c.get('name')} | {_cell(c.get('expected'))} | {_cell(c.get('actual'))} | {mark} |")
    findings = result.get("findings") or []
    if findings:
        lines += ["", "What the real proxy does:", ""]
        lines += [f"- {f if isinstance(f, str) else json.dumps(f, default=str)}" for f in findings]
    return [*lines, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="conformance", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", help="comma-separated driver names (default: all)")
    parser.add_argument(
        "--record",
        nargs="?",
        const="all",
        default="",
        help="write fixtures under tests/fixtures/real/ (all run clients, or a comma-separated subset)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp HOMEs")
    parser.add_argument("--doc", type=Path, default=DOC, help="where to write the report")
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the report from the last saved results of each client"
    )
    parser.add_argument("--no-litellm", action="store_true", help="skip the LiteLLM proxy check (use its last result)")
    args = parser.parse_args(argv)
    available = drivers()
    wanted = args.clients.split(",") if args.clients else list(available)
    unknown = [w for w in wanted if w not in available]
    if unknown:
        parser.error(f"unknown client(s): {', '.join(unknown)} (known: {', '.join(available)})")
    print(f"clients cached in {cache_dir()}", flush=True)
    results = []
    for name in [] if args.render else wanted:
        print(f"== {name}", flush=True)
        record = args.record == "all" or name in args.record.split(",")
        r = run_client(available[name], record=record, keep=args.keep)
        save_result(r)
        results.append(r)
        if r.skipped:
            print(f"   skipped: {r.skipped}")
        for f in r.fields:
            print(f"   {'ok ' if f.ok else 'n/a' if f.ok is None else 'BAD'} {f.field}: {f.reported} / {f.truth}")
        for failure in r.log.failures:
            print(f"   note: {failure}")
        if r.error:
            print(r.error)
        if args.keep and r.home:
            print(f"   home: {r.home}")
    ran = {r.driver.tool_dir for r in results}
    for name, driver in available.items():  # clients not run this time: their last saved outcome
        saved = None if name in ran else load_result(driver)
        if saved is not None:
            results.append(recompared(saved))
    results.sort(key=lambda r: list(available).index(r.driver.tool_dir))
    saved_litellm = cache_dir() / "results" / "litellm.json"
    if args.render or args.no_litellm:
        try:
            litellm = json.loads(saved_litellm.read_text())
        except (OSError, ValueError):
            litellm = None
    else:
        litellm = litellm_section(Path(tempfile.mkdtemp(prefix="zdconf-litellm-")))
        if litellm is not None:
            saved_litellm.parent.mkdir(parents=True, exist_ok=True)
            saved_litellm.write_text(json.dumps(litellm, indent=1, default=str))
    args.doc.write_text(render(results, litellm, datetime.now(timezone.utc)))
    print(f"wrote {args.doc}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
