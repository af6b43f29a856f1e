"""The status line itself: its templates, fields and exit code from a snapshot document, and its fast path.

Both ways `zai-dash status` answers go through here, so they print the same bytes for the same document:
the full path (`commands/status.py`: the config loaded, then a running dashboard's state file or one scan)
and the fast path (`fast_status`, which `zai_dash.cli` tries first): a fresh state file whose publisher is
alive and was started with the same raw inputs (`statefile.inputs_digest`: the config file's bytes, the
environment the config reads, `--plan`, the package) is formatted without importing `zai_dash.config`, the
domain, tomllib or msgspec. Anything doubtful returns None and the full path answers.

This module imports only the standard library and `zai_dash.text` at its top: it is on every status-bar
refresh.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from datetime import datetime, tzinfo
from typing import Any

from zai_dash.exits import EXIT_CONFIG, EXIT_ERROR, EXIT_EXHAUSTED, EXIT_NO_DATA, EXIT_OK, EXIT_WARNING
from zai_dash.text import fmt_amount, fmt_clock, fmt_duration

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


def wants_ascii() -> bool:
    """Whether the terminal (stdout's encoding, else the locale) cannot show the glyphs."""
    enc = getattr(sys.stdout, "encoding", None)
    if not enc:
        import locale  # only without a stream encoding: locale costs `status` a few ms

        enc = locale.getpreferredencoding(False)
    enc = (enc or "").lower()
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


def usable(doc: Mapping[str, Any], now: datetime, tz: tzinfo) -> bool:
    """Whether a published document can answer at `now`: the right shape, and its block not already over."""
    if not isinstance(doc.get("headline"), dict):
        return False
    try:
        status_fields(dict(doc), now, tz)  # a state file of the wrong shape: scan instead
        end = doc["headline"].get("end")
        return end is None or datetime.fromisoformat(end) > now
    except Exception:  # a wrongly shaped state file: the caller scans
        return False


def print_status(doc: dict[str, Any], now: datetime, tz: tzinfo, *, template: str | None, ascii_only: bool) -> int:
    """Print the line for `doc` (or the template's problem on stderr); the exit code.

    Returns:
        The level's exit code, or `EXIT_CONFIG` (nothing on stdout) when the template is not one.
    """
    ascii_mode = ascii_only or wants_ascii()
    if any(w.get("id") == "weekly" for w in doc.get("windows", ())):
        default = WEEKLY_STATUS_ASCII if ascii_mode else WEEKLY_STATUS
    else:
        default = DEFAULT_STATUS_ASCII if ascii_mode else DEFAULT_STATUS
    fields = status_fields(doc, now, tz, ascii_mode=ascii_mode)
    try:
        line = fill_template(template or default, fields)
    except ValueError as exc:
        print(f"zai-dash: --format: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ascii_mode:
        line = line.encode("ascii", "replace").decode("ascii")
    print(line, flush=True)
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


def fast_status(config_arg: str | None, plan: str | None, *, template: str | None, ascii_only: bool) -> int | None:
    """`status` from a live publisher's state file made from the same raw inputs, before any config is loaded.

    Args:
        config_arg: `--config` as given.
        plan: `--plan` as given.
        template: `--format`.
        ascii_only: `--ascii`.

    Returns:
        The exit code once the line is printed, or None (nothing printed) when the full path must answer:
        no state file, another config's, stale, a dead publisher, the wrong shape, a block already over.
    """
    from zai_dash import statefile
    from zai_dash.clock import SystemClock
    from zai_dash.paths import dashboard_state_file

    digest = statefile.inputs_digest(config_arg, plan)
    if digest is None:
        return None
    path = dashboard_state_file()
    now = SystemClock().now()  # what `clock_for(None)` gives the full path
    found = statefile.read_for_inputs(digest, now, path)
    if found is None:
        return None
    doc, zone = found
    try:
        tz = _zone(zone)
    except Exception:  # a key this machine's tz database lacks: the full path says what is wrong
        return None
    if not usable(doc, now, tz):
        return None
    code = print_status(doc, now, tz, template=template, ascii_only=ascii_only)
    statefile.note_read(path)
    return code


def _zone(key: str | None) -> tzinfo:
    """The publisher's time zone: its IANA key, else the machine's current offset (what the config resolved)."""
    if key is None:
        from zai_dash.clock import local_zone

        return local_zone()
    from zoneinfo import ZoneInfo

    return ZoneInfo(key)
