"""`zai-dash status`: one short line for a status bar, and an exit code that says how things stand.

It runs on every status-bar refresh, so it is built to start fast: a running dashboard's fresh state file
is the answer when there is one, and nothing on its path imports textual or an HTTP client.
"""

from __future__ import annotations

import argparse
import locale
import os
import sys
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from zai_dash.clock import Clock, SystemClock
from zai_dash.commands.base import (
    EXIT_CONFIG,
    EXIT_ERROR,
    EXIT_EXHAUSTED,
    EXIT_NO_DATA,
    EXIT_OK,
    EXIT_WARNING,
    GLOBAL_OPTIONS_NOTE,
    clock_for,
)
from zai_dash.config import Config
from zai_dash.text import fmt_amount, fmt_clock, fmt_duration

if TYPE_CHECKING:
    from zai_dash.domain.snapshot import Snapshot

DEFAULT_STATUS = "GLM{glyph} {binding} ⟳{reset} 🔎{searches}/{search_limit}"
DEFAULT_STATUS_ASCII = "GLM{glyph} {binding} R{reset} S{searches}/{search_limit}"
WEEKLY_STATUS = "GLM{glyph} {binding} ⟳{reset} wk {week}"
WEEKLY_STATUS_ASCII = "GLM{glyph} {binding} R{reset} wk {week}"
"""With a weekly window the weekly figure stands beside the binding one (the monthly MCP pool is gone)."""

LEVEL_GLYPHS = {"ok": "✓", "warning": "!", "critical": "‼", "exhausted": "✗"}
"""The level at a glance in a status bar (tmux ignores exit codes)."""
LEVEL_GLYPHS_ASCII = {"ok": "+", "warning": "!", "critical": "!!", "exhausted": "X"}


STATUS_FIELDS: dict[str, str] = {
    "glyph": "the level as one glyph: "
    + ", ".join(f"{g} {level}" for level, g in LEVEL_GLYPHS.items())
    + f" (ASCII: {' '.join(LEVEL_GLYPHS_ASCII.values())})",
    "binding": "the binding window: `8.2k/12k cr`, `123/600`, `42%` (`wk` when the week binds)",
    "used": "used in the binding window, in its unit",
    "limit": "the binding window's limit",
    "left": "left in the binding window",
    "percent": "percent used of the binding window",
    "local_percent": "percent of the 5-hour prompts counted locally",
    "source": "where the binding figure comes from: official, local or estimate",
    "level": "ok, warning, critical or exhausted (the worst over every window)",
    "reset": "time to the binding window's reset, or the end of a block (`idle` before the first prompt)",
    "reset_at": "the clock time of that reset",
    "week": "the weekly window's percent used (— without one)",
    "credits": "credits used in the 5-hour window",
    "prompts": "prompts this 5-hour cycle",
    "calls": "model calls this 5-hour cycle",
    "prompts_left": "prompts left (≈ an estimate on credit plans)",
    "searches": "MCP searches this month",
    "search_limit": "the month's MCP search limit",
    "searches_left": "MCP searches left this month",
    "model": "the model of the most recently active tool",
    "plan": "the plan's name",
}
"""`status --format` fields, as `status --help` lists them; `status_fields` fills exactly these."""

STATUS_EXITS = (
    (EXIT_OK, "ok"),
    (EXIT_CONFIG, "a config or usage error"),
    (EXIT_WARNING, "warning or critical: a window is past its threshold"),
    (EXIT_EXHAUSTED, "exhausted, or a limit hit blocks a window"),
    (EXIT_NO_DATA, "no tool data found"),
    (EXIT_ERROR, "an error: a source could not be read (`zai-dash doctor` says which), or no line could be made"),
)


def _status_epilog() -> str:
    fields = "\n".join(f"  {{{name}}}{'':<{15 - len(name)}}{text}" for name, text in STATUS_FIELDS.items())
    exits = "\n".join(f"  {code:<4}{text}" for code, text in STATUS_EXITS)
    return (
        f"template fields (for --format):\n{fields}\n\nexit codes (tmux ignores them; the glyph shows the level):"
        f"\n{exits}\n\n{GLOBAL_OPTIONS_NOTE}"
    )


class StatusCommand:
    """`status [--format TEMPLATE] [--ascii]`."""

    name = "status"
    help = "one short line for tmux or Claude Code's statusLine"
    takes_at = True
    uses_theme = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The template and ASCII options; the help ends with every template field and exit code."""
        parser.epilog = _status_epilog()
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.add_argument("--format", dest="template", help="template, e.g. '{glyph} {left} left, reset {reset}'")
        parser.add_argument("--ascii", action="store_true", help="ASCII only (also under a non-UTF-8 locale)")

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Print the line; the exit code is the level."""
        return cmd_status(config, template=args.template, ascii_only=args.ascii, at=args.at)


StatusRefresh = Callable[[], object] | None
"""What `status` starts once its line is out: the detached refresh of a stale official reading, or nothing."""


def _status_scan(config: Config, clock: Clock) -> tuple[Snapshot, StatusRefresh]:
    """`status`'s scan: the cache and the logs, with the saved official reading; never the network.

    A status bar must not wait on an endpoint, nor pay for an HTTP client (httpx is not even imported):
    the last reading any zai-dash process saved is shown with its age, and when it is stale a detached
    child refreshes it for the next call (`official_memory.refresh_in_background`), started after the
    line is printed so it does not compete with it. Proxy and fleet rows are not on the line, so they
    are not polled. A replay (`--at`) shows no reading of today's.
    """
    from zai_dash.engine import Engine

    engine = Engine(config, clock=clock, use_cache=isinstance(clock, SystemClock))
    if engine.use_cache:
        engine.restore_official()
    engine.scan()
    engine.save_cache()
    refresh: StatusRefresh = None
    if engine.use_cache and engine.quota is not None:
        from functools import partial

        from zai_dash import official_memory

        now, env = clock.now(), engine.ctx.env
        if official_memory.refresh_due(engine.quota, env, now):
            refresh = partial(official_memory.refresh_in_background, engine.quota, env, now, config.source_path)
    return engine.snapshot(), refresh


def _wants_ascii() -> bool:
    enc = (getattr(sys.stdout, "encoding", None) or locale.getpreferredencoding(False) or "").lower()
    lang = os.environ.get("LC_ALL") or os.environ.get("LC_CTYPE") or os.environ.get("LANG") or ""
    if lang and "utf" not in lang.lower().replace("-", ""):
        return True
    return "utf" not in enc.replace("-", "")


def status_fields(doc: dict[str, Any], now: datetime, tz: tzinfo, *, ascii_mode: bool = False) -> dict[str, object]:
    """Template fields for `status --format`, from a snapshot document (fresh state file or scan).

    Every figure comes from the document's `headline` and `windows`: `status` decides nothing itself.
    """
    head, s = doc["headline"], doc["searches"]
    windows = {w["id"]: w for w in doc.get("windows", ())}
    five, weekly = windows.get("5h"), windows.get("weekly")
    end = _time(head.get("blocked_until")) or _time(head.get("end"))
    tools = [t for t in doc["tools"] if t.get("found") and t.get("model")]
    live = [t for t in tools if t.get("status") == "live"]
    prompts_left = head.get("prompts_left")
    estimate = "≈" if head.get("prompts_left_source") == "estimate" else ""
    credits = (five or {}).get("used") if (five or {}).get("unit") == "credits" else doc["credits"]["window_5h"]
    level = "exhausted" if status_exit(doc) == EXIT_EXHAUSTED else head["level"]
    return {
        "glyph": (LEVEL_GLYPHS_ASCII if ascii_mode else LEVEL_GLYPHS).get(level, "?"),
        "plan": doc["plan"]["name"],
        "used": fmt_amount(head["used"], head.get("unit")),
        "limit": fmt_amount(head["limit"], head.get("unit")),
        "left": fmt_amount(head["left"], head.get("unit")),
        "percent": f"{head['percent']:.0f}",
        "local_percent": f"{doc['prompts']['percent']:.0f}",
        "source": head.get("source", "local"),
        "prompts": doc["prompts"]["used"],
        "calls": doc["prompts"]["calls"],
        "level": head["level"],
        "reset": _countdown(head, five, end, now),
        "reset_at": fmt_clock(end, tz) if end is not None and end > now else "—",
        "searches": s["month"],
        "search_limit": s["month_limit"],
        "searches_left": s["month_left"],
        "model": (live or tools or [{"model": "—"}])[0]["model"],
        "binding": _binding_text(head) + _official_age(doc, head),
        "credits": fmt_amount(credits or 0, "credits"),
        "week": f"{weekly['percent']:.0f}%" if weekly else "—",
        "prompts_left": "—" if prompts_left is None else f"{estimate}{prompts_left}",
    }


OFFICIAL_AGE_SHOWN_AFTER = 60.0
"""An official figure older than this says how old it is on the status line."""


def _official_age(doc: dict[str, Any], head: dict[str, Any]) -> str:
    """` (3m old)` when the headline is Z.ai's own figure and older than a minute, else empty."""
    if head.get("source") != "official":
        return ""
    rows = [r for r in doc.get("official") or () if isinstance(r, dict)]
    ages = [r.get("age_seconds") for r in rows if r.get("kind") == "five-hour" or r.get("window") == "5h"]
    age = next((a for a in ages if isinstance(a, (int, float))), None)
    return f" ({fmt_duration(age)} old)" if age is not None and age >= OFFICIAL_AGE_SHOWN_AFTER else ""


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _countdown(head: dict[str, Any], five: dict[str, Any] | None, end: datetime | None, now: datetime) -> str:
    """Time to the binding window's reset (or the end of a block); `idle` when the 5-hour one leads unopened."""
    if end is not None and end > now:
        return fmt_duration((end - now).total_seconds())
    if head.get("window") == "5h" or five is None:
        return "idle"
    return "—"


def _binding_text(head: dict[str, Any]) -> str:
    """`8.2k/12k cr`, `123/600`, `42%` (an official percentage only), `… wk` when the week binds."""
    unit = head.get("unit")
    if unit == "percent" or head.get("percent_only"):
        text = f"{head['percent']:.0f}%"
    else:
        text = f"{fmt_amount(head['used'], unit)}/{fmt_amount(head['limit'], unit)}" + (
            " cr" if unit == "credits" else ""
        )
    return text + (" wk" if head.get("window") == "weekly" else "")


def _status_doc(config: Config, at: str | None) -> tuple[dict[str, Any], datetime, StatusRefresh]:
    """The snapshot document for `status`: a running dashboard's fresh state file, else one scan."""
    clock = clock_for(at)
    now = clock.now()
    if at is None:
        from zai_dash import statefile

        doc = statefile.read_fresh(config.fingerprint(), now)
        if doc is not None and isinstance(doc.get("headline"), dict):
            try:
                status_fields(doc, now, config.tz())  # a state file of the wrong shape: scan instead
                end = doc["headline"].get("end")
                if end is None or datetime.fromisoformat(end) > now:
                    return doc, now, None
            except Exception:  # a wrongly shaped state file: the scan below is the answer
                pass
    snap, refresh = _status_scan(config, clock)
    return snap.to_json(config.tz()), now, refresh


def cmd_status(config: Config, *, template: str | None, ascii_only: bool, at: str | None) -> int:
    """`zai-dash status`: one line; the exit code says ok / warning / exhausted / no data / error.

    It never waits on the network (see `_status_scan`).
    """
    try:
        doc, now, refresh = _status_doc(config, at)
    except ValueError:
        raise
    except Exception as exc:  # a status bar must get a line, not a traceback
        print(f"GLM error: {type(exc).__name__}")
        return EXIT_ERROR
    ascii_mode = ascii_only or _wants_ascii()
    if any(w.get("id") == "weekly" for w in doc.get("windows", ())):
        default = WEEKLY_STATUS_ASCII if ascii_mode else WEEKLY_STATUS
    else:
        default = DEFAULT_STATUS_ASCII if ascii_mode else DEFAULT_STATUS
    fmt = template or default
    fields = status_fields(doc, now, config.tz(), ascii_mode=ascii_mode)
    try:
        line = fill_template(fmt, fields)
    except ValueError as exc:
        print(f"zai-dash: --format: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ascii_mode:
        line = line.encode("ascii", "replace").decode("ascii")
    print(line, flush=True)
    if refresh is not None:
        refresh()
    return status_exit(doc)


def fill_template(template: str, fields: dict[str, object]) -> str:
    """`template` with its `{field}`s filled in.

    Raises:
        ValueError: what is wrong with the template, in words a status-bar config can be fixed from (a
            lone brace, a field that does not exist, a positional `{}`), not Python's `str.format` errors.
    """
    try:
        return template.format(**fields)
    except KeyError as exc:
        known = " ".join(f"{{{name}}}" for name in sorted(fields))
        raise ValueError(f"unknown field {{{exc.args[0]}}} (fields: {known})") from None
    except IndexError:
        raise ValueError("fields have names, e.g. {binding} or {reset}: `{}` and `{0}` are not fields") from None
    except AttributeError as exc:
        raise ValueError(f"fields have no attributes to pick ({exc})") from None
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith("Single") or "expected '}'" in reason or "unmatched" in reason:
            reason = "a brace without its pair; a brace meant as text is written twice ({{ or }})"
        raise ValueError(f"{template!r} is not a template: {reason}") from None


def status_exit(doc: dict[str, Any]) -> int:
    """The `status` exit code from every window: the headline's worst level, or a block in any window.

    A source in error (a corrupt database, an unreadable log) exits `EXIT_ERROR` unless a window is
    exhausted or blocked, which is certain whatever the missing source held: the counts are then short
    by what it held, so "ok" or "warning" would claim more than is known.
    """
    if not any(t.get("found") for t in doc["tools"]):
        return EXIT_NO_DATA
    level = doc["headline"]["level"]
    if level == "exhausted" or any(w.get("blocked_until") for w in doc.get("windows", ())):
        return EXIT_EXHAUSTED
    if any(s.get("status") == "error" for s in doc.get("sources", ())):
        return EXIT_ERROR
    if level in ("warning", "critical"):
        return EXIT_WARNING
    return EXIT_OK
