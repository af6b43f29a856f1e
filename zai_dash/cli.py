"""Command line: `zai-dash` (the TUI), `report`, `status`, `doctor`, `--demo`.

`status` runs on every status-bar refresh, so nothing on its path imports textual.
"""

from __future__ import annotations

import argparse
import json
import locale
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash import __version__, paths
from zai_dash.clock import Clock, FixedClock, SystemClock
from zai_dash.config import Config, ConfigError, load_config
from zai_dash.domain.bounds import EARLIEST, LATEST, instant_in_range
from zai_dash.format import fmt_ago, fmt_amount, fmt_clock, fmt_duration

if TYPE_CHECKING:
    from zai_dash.domain.snapshot import Snapshot
    from zai_dash.domain.windows import WindowRow

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_WARNING = 10
EXIT_EXHAUSTED = 11
EXIT_NO_DATA = 20
EXIT_ERROR = 30

DEFAULT_STATUS = "GLM{glyph} {binding} ⟳{reset} 🔎{searches}/{search_limit}"
DEFAULT_STATUS_ASCII = "GLM{glyph} {binding} R{reset} S{searches}/{search_limit}"
WEEKLY_STATUS = "GLM{glyph} {binding} ⟳{reset} wk {week}"
WEEKLY_STATUS_ASCII = "GLM{glyph} {binding} R{reset} wk {week}"
"""With a weekly window the weekly figure stands beside the binding one (the monthly MCP pool is gone)."""

LEVEL_GLYPHS = {"ok": "✓", "warning": "!", "critical": "‼", "exhausted": "✗"}
"""The level at a glance in a status bar (tmux ignores exit codes)."""
LEVEL_GLYPHS_ASCII = {"ok": "+", "warning": "!", "critical": "!!", "exhausted": "X"}


GLOBAL_OPTIONS_NOTE = "Options --config, --plan, --at, --theme, --no-title and --no-mouse go before or after a command."

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
    (EXIT_ERROR, "an error reading the data (the line says which)"),
)


def _status_epilog() -> str:
    fields = "\n".join(f"  {{{name}}}{'':<{15 - len(name)}}{text}" for name, text in STATUS_FIELDS.items())
    exits = "\n".join(f"  {code:<4}{text}" for code, text in STATUS_EXITS)
    return (
        f"template fields (for --format):\n{fields}\n\nexit codes (tmux ignores them; the glyph shows the level):"
        f"\n{exits}\n\n{GLOBAL_OPTIONS_NOTE}"
    )


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every command takes, before or after the command's name.

    argparse gives a subcommand's namespace the last word: a sub-parser that declares `--plan` with a
    default of None would overwrite `zai-dash --plan max status`'s `max`. So the sub-parsers' copies
    default to SUPPRESS (set only when given there) and the main parser's hold the defaults.
    """

    options: tuple[tuple[str, dict[str, Any]], ...] = (
        ("--config", {"type": Path, "help": "config file (default: $XDG_CONFIG_HOME/zai-dash/config.toml)"}),
        ("--plan", {"help": "plan to evaluate against (lite, pro, max or a custom one)"}),
        ("--at", {"help": "evaluate as of this ISO 8601 instant (report, status, doctor)"}),
        ("--theme", {"help": "Textual theme for the dashboard (an unknown one lists them)"}),
        ("--no-title", {"action": "store_true", "help": "leave the terminal's window title alone"}),
        ("--no-mouse", {"action": "store_true", "help": "leave the mouse to tmux"}),
    )
    for flag, spec in options:
        plain = False if spec.get("action") == "store_true" else None
        parser.add_argument(flag, default=argparse.SUPPRESS if suppress else plain, **spec)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zai-dash",
        description="Live dashboard for the Z.ai GLM Coding Plan: prompts left this 5-hour cycle, MCP searches, "
        "models per tool.",
        epilog=GLOBAL_OPTIONS_NOTE,
    )
    _add_global_options(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"zai-dash {__version__}")
    parser.add_argument("--demo", action="store_true", help="run the dashboard over a simulated coding session")
    sub = parser.add_subparsers(dest="command")

    def command(name: str, text: str, **kwargs: Any) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=text, description=text, **kwargs)
        _add_global_options(child, suppress=True)
        return child

    report = command("report", "one scan, one snapshot")
    report.add_argument("--json", action="store_true", help="print the snapshot document")

    status = command(
        "status",
        "one short line for tmux or Claude Code's statusLine",
        epilog=_status_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    status.add_argument("--format", dest="template", help="template, e.g. '{glyph} {left} left, reset {reset}'")
    status.add_argument("--ascii", action="store_true", help="ASCII only (also under a non-UTF-8 locale)")

    command("doctor", "what was found where, what was skipped and why")

    export = command("export", "serve this machine's snapshot as Prometheus metrics")
    export.add_argument("--listen", default="127.0.0.1:9464", help="HOST:PORT to serve /metrics on")
    export.add_argument("--machine", help="the machine label (default: host name)")

    serve = command("serve", "serve the dashboard to a browser (loopback: reach it over an SSH port-forward)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, loopback only)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--public-url", help="the URL the browser uses, when it differs (e.g. http://localhost:9000 for ssh -L 9000:…)"
    )
    serve.add_argument("--demo", action="store_true", default=argparse.SUPPRESS, help="serve the demo session")
    return parser


def _registered_tool_ids() -> tuple[str, ...]:
    from zai_dash.sources.tools import registered_tool_ids

    return registered_tool_ids()


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a process ended by SIGPIPE (128 + 13): `report | head` stopped reading."""

AT_COMMANDS = ("report", "status", "doctor")
"""The commands that evaluate one instant, so take `--at`; the live ones run on the wall clock."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `zai-dash` console script."""
    try:
        code = _run(_parser().parse_args(argv))
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, at the last flush
    except BrokenPipeError:
        # The reader went away (`report | head -1`): nothing more to say, and no traceback at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


def _run(args: argparse.Namespace) -> int:
    command = args.command
    try:
        config = load_config(args.config, known_tools=_registered_tool_ids)
        if args.plan:
            name = args.plan.lower()
            if name not in config.plans:
                raise ConfigError(f"--plan: unknown plan {name!r} (known: {', '.join(sorted(config.plans))})")
            from dataclasses import replace

            config = replace(config, plan=config.plans[name], plan_explicit=True)
        if args.at and command not in AT_COMMANDS:
            raise ConfigError(f"--at applies to {', '.join(AT_COMMANDS)}; the {command or 'dashboard'} runs live")
        theme = _checked_theme(args.theme, config) if command in (None, "serve") else None
    except ConfigError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    title = not args.no_title and config.title
    try:
        if command == "report":
            return cmd_report(config, as_json=args.json, at=args.at)
        if command == "status":
            return cmd_status(config, template=args.template, ascii_only=args.ascii, at=args.at)
        if command == "doctor":
            return cmd_doctor(config, at=args.at)
        if command == "export":
            return cmd_export(config, listen=args.listen, machine=args.machine)
        if command == "serve":
            from zai_dash.serve import cmd_serve

            return cmd_serve(args, host=args.host, port=args.port, public_url=args.public_url)
        return cmd_dashboard(
            config, demo=args.demo, mouse=not args.no_mouse, theme=theme, title=title, config_path=args.config
        )
    except ValueError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


def _checked_theme(name: str | None, config: Config) -> str | None:
    """`--theme` (else the config's `theme`), refused with the list of themes when Textual has no such one."""
    wanted = name or config.theme
    if not wanted:
        return None
    from textual.theme import BUILTIN_THEMES

    if wanted not in BUILTIN_THEMES:
        where = "--theme" if name else f"{config.source_path}: theme"
        raise ConfigError(f"{where}: unknown theme {wanted!r} (themes: {', '.join(sorted(BUILTIN_THEMES))})")
    return wanted


def _clock_for(at: str | None) -> Clock:
    if not at:
        return SystemClock()
    text = at.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at: not an ISO 8601 time: {at!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.now().astimezone().tzinfo or timezone.utc)
    try:
        sane = instant_in_range(when.astimezone(timezone.utc))
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past the end of time in UTC
        sane = False
    if not sane:
        raise ValueError(f"--at: {at!r} is outside {EARLIEST:%Y}–{LATEST:%Y}")
    return FixedClock(when)


def _scan(config: Config, clock: Clock) -> tuple[Snapshot, object]:
    from zai_dash.engine import Engine

    # A replay (`--at`) evaluates another instant: the cache's horizon is for now, so scan cold.
    engine = Engine(config, clock=clock, use_cache=isinstance(clock, SystemClock))
    engine.scan()
    engine.save_cache()
    engine.refresh_pollers()
    return engine.snapshot(), engine


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


def cmd_report(config: Config, *, as_json: bool, at: str | None) -> int:
    """`zai-dash report`: one scan, one snapshot, printed."""
    snap, _ = _scan(config, _clock_for(at))
    tz = config.tz()
    if as_json:
        print(json.dumps(snap.to_json(tz), indent=2, ensure_ascii=False))
        return EXIT_OK
    header, _, rest = render_report(snap, tz).partition("\n")
    print(header)
    if config.assumption():
        print(f"! {first_run_note(config)}")
    print(rest)
    return EXIT_OK


def first_run_note(config: Config) -> str:
    """The one line every view shows while the plan or billing is assumed, with how to choose."""
    where = config.source_path or paths.config_file()
    return f"{config.assumption()} — press c in the dashboard to choose, or set plan and billing in {where}"


def render_report(snap: Snapshot, tz: object) -> str:
    """The human `report`: a compact table."""
    from datetime import tzinfo

    zone = tz if isinstance(tz, tzinfo) else None
    p, s, c = snap.prompts, snap.searches, snap.cycle
    at = snap.at.astimezone(zone)
    lines = [f"zai-dash — {snap.plan.name} plan, {snap.billing.generation} billing, {at:%Y-%m-%d %H:%M %Z}"]
    if snap.billing.warning:
        lines.append(f"! {snap.billing.warning}")
    if c.state == "open":
        lines.append(
            f"cycle     {fmt_clock(c.start, zone)}–{fmt_clock(c.end, zone)}  resets in {fmt_duration(c.seconds_left)}"
            f"  ({c.anchor})" + (f"  BLOCKED until {fmt_clock(c.blocked_until, zone)}" if c.blocked_until else "")
        )
    else:
        lines.append("cycle     not started — opens on your next prompt")
    binding = snap.headline.window if snap.headline else None
    for w in snap.windows:
        lines.append(window_line(w, snap.at, zone, binding=w.id == binding))
    head = snap.headline
    if head is not None and head.prompts_left is not None:
        if head.prompts_left_source == "estimate":
            median = fmt_amount(snap.credits.median_per_prompt, "credits")
            lines.append(
                f"prompts   ≈{head.prompts_left} left (estimate: {median} credits per prompt, "
                f"median of your last {snap.credits.prompts_sampled})"
            )
        else:
            lines.append(f"prompts   {head.prompts_left} left ({head.prompts_left_source})")
    lines.append(
        f"counted   {p.equivalents} prompt-equivalents this cycle"
        f"  [{p.used} prompts, {p.calls} calls, {p.vision} vision]"
    )
    if snap.forecast and snap.forecast.exhausted_at:
        lines.append(
            f"forecast  at this pace you run out at {fmt_clock(snap.forecast.exhausted_at, zone)}, "
            f"{fmt_duration((snap.forecast.minutes_before_reset or 0) * 60)} before the refresh"
        )
    elif snap.forecast and snap.forecast.left_at_reset is not None:
        left = fmt_amount(snap.forecast.left_at_reset, snap.forecast.unit)
        lines.append(f"forecast  on pace: ~{left} {snap.forecast.unit} left at refresh")
    by = ", ".join(f"{k} {v}" for k, v in s.by_service.items())
    lines.append(
        f"searches  {s.month}/{s.month_limit} this month (resets {s.month_end.astimezone(zone):%b %d}), "
        f"{s.cycle} this cycle  [{by}]"
    )
    lines.append("")
    lines.append(
        f"{'tool':<14} {'model':<16} {'src':<6} {'prompts':>7} {'calls':>6} {'search':>6} {'credits':>7}"
        f"  {'last':<9} status"
    )
    for t in snap.tools:
        if not t.found:
            continue
        lines.append(
            f"{t.name:<14} {(t.model or '—'):<16} {(t.model_source or ''):<6} {t.prompts:>7} {t.calls:>6} "
            f"{t.searches:>6} {fmt_amount(t.credits, 'credits'):>7}  {fmt_ago(t.last_activity, snap.at):<9} {t.status}"
            + (f"  ! {t.warning}" if t.warning else "")
        )
    if snap.fleet is not None:
        from zai_dash.domain.fleet import report_lines

        lines += ["", *report_lines(snap.fleet)]
    if not snap.has_data:
        lines.append("(no tool data found — run `zai-dash doctor` to see where zai-dash looked)")
    skipped = snap.skipped
    if skipped.get("lines") or skipped.get("files"):
        lines.append(
            f"\nskipped: {skipped.get('lines', 0)} record(s), {skipped.get('files', 0)} file(s) — see `zai-dash doctor`"
        )
    return "\n".join(lines)


UNIT_LABELS = {"credits": "credits", "prompts": "prompts", "calls": "calls", "percent": "%"}


def window_line(w: WindowRow, now: datetime, zone: tzinfo | None, *, binding: bool = False) -> str:
    """One window of the human `report`: used/limit in its unit, reset, anchor and source."""
    unit = UNIT_LABELS.get(w.unit, w.unit)
    amount = f"{fmt_amount(w.used, w.unit)}/{fmt_amount(w.limit, w.unit)} {unit}"
    if w.state == "not-started":
        when = "not started — opens on your next request"
    elif w.end is None:
        when = "last 7 days (reset time unknown: set weekly_reset)"
    else:
        shape = "%a %b %d %H:%M" if (w.seconds_left or 0) >= 86400 else "%H:%M"
        when = f"resets {w.end.astimezone(zone).strftime(shape)} in {fmt_duration(w.seconds_left)}"
    extra = f"  BLOCKED until {fmt_clock(w.blocked_until, zone)}" if w.blocked_until else ""
    if w.estimated:
        extra += f"  (≈{fmt_amount(w.estimated, w.unit)} estimated)"
    level = "" if w.level == "ok" else f"  {w.level.upper()}"
    mark = "▶" if binding else " "
    return (
        f"{mark}{w.id:<11} {amount:<22} {w.percent:>5.1f}%  {fmt_amount(w.left, w.unit)} left  {when}"
        f"  ({w.anchor}, {w.source}){extra}{level}"
    )


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
    clock = _clock_for(at)
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
    try:
        fields = status_fields(doc, now, config.tz(), ascii_mode=ascii_mode)
        line = fmt.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        print(f"zai-dash: --format: unknown field {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ascii_mode:
        line = line.encode("ascii", "replace").decode("ascii")
    print(line, flush=True)
    if refresh is not None:
        refresh()
    return status_exit(doc)


def status_exit(doc: dict[str, Any]) -> int:
    """The `status` exit code from every window: the headline's worst level, or a block in any window."""
    if not any(t.get("found") for t in doc["tools"]):
        return EXIT_NO_DATA
    level = doc["headline"]["level"]
    if level == "exhausted" or any(w.get("blocked_until") for w in doc.get("windows", ())):
        return EXIT_EXHAUSTED
    if level in ("warning", "critical"):
        return EXIT_WARNING
    return EXIT_OK


def cmd_doctor(config: Config, at: str | None = None) -> int:
    """`zai-dash doctor`: what was found where, what was skipped and why, config in effect."""
    from zai_dash.engine import Engine
    from zai_dash.redact import redact_url

    engine = Engine(config, clock=_clock_for(at))
    engine.scan()
    engine.refresh_pollers()
    snap = engine.snapshot()
    tz = config.tz()
    out = [f"zai-dash {__version__} doctor", ""]
    out.append("config")
    out.append(f"  file          {config.source_path or '(none: defaults)'}")
    out.extend(_doctor_plan_lines(config))
    out.append(f"  renewal day   {config.renewal_day}   timezone {config.timezone or tz}")
    out.append(f"  thresholds    warning {config.thresholds.warning:.0%}, critical {config.thresholds.critical:.0%}")
    api = config.api
    out.append(
        f"  quota API     {'on' if api.enabled else 'off'}"
        + (f" (key from ${api.key_env}, region {api.region})" if api.enabled else "")
    )
    for proxy in config.proxies:
        out.append(f"  proxy         {proxy.name}: {redact_url(proxy.url)} ({proxy.preset or 'custom map'})")
    disabled = ", ".join(sorted(config.disabled_tools))
    if disabled:
        out.append(f"  disabled      {disabled}")
    if engine.quota is not None:
        out.extend("  " + line for line in engine.quota.doctor_lines(billing=config.billing))
    out.append("")
    out.extend(_doctor_tariff_lines(config, snap.at))
    out.append("")
    out.append("sources")
    for h in snap.sources:
        out.append(f"  {h.name:<14} {h.status:<7} {h.detail}")
        for root, exists in h.roots:
            out.append(f"      {'found  ' if exists else 'missing'} {root}")
        for reason, n in sorted(h.skipped.items()):
            out.append(f"      skipped {n} × {reason}")
    out.append("")
    out.append("tools")
    for t in snap.tools:
        state = "found" if t.found else "not found"
        model = f"model {t.model} (from {t.model_source})" if t.model else "model unknown"
        line = f"  {t.name:<14} {state:<10} {model}"
        if t.endpoint:
            line += f", endpoint {t.endpoint}"
        out.append(line)
        if t.warning:
            out.append(f"      ! {t.warning}")
    out.append("")
    reasons = snap.skipped.get("reasons", {})
    first = {r: w for s in engine.sources for r, w in s.skips.first.items()}
    if reasons:
        out.append(f"skipped: {snap.skipped.get('lines', 0)} record(s), {snap.skipped.get('files', 0)} file(s)")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            out.append(f"  {n:>6} × {reason}" + (f"   first at {first[reason]}" if first.get(reason) else ""))
    else:
        out.append("skipped: nothing")
    print("\n".join(out))
    return EXIT_OK


def _doctor_plan_lines(config: Config) -> list[str]:
    """The plan, its billing generation and pools, and the weekly anchor, as `doctor` shows them."""
    p = config.plan
    assumed = "" if config.plan_explicit else " (assumed: no plan in config)"
    pools = " · ".join(f"{pool.id} {pool.limit:,g} {pool.unit}" for pool in p.pools) or "no pools"
    lines = [f"  plan          {p.name}, {p.billing} billing{assumed}: {pools}"]
    if config.assumption():
        lines.append(f"  ! {first_run_note(config)}")
    if p.billing != "credits":
        hours = p.cycle.total_seconds() / 3600
        lines.append(f"                {p.calls_per_prompt} calls per prompt, {hours:g} h cycle")
    reset = config.weekly_reset
    if reset is not None:
        lines.append(f"  weekly reset  {reset.astimezone(config.tz()):%a %Y-%m-%d %H:%M %z}, every 7 days")
    elif p.pool("weekly") is not None:
        lines.append("  weekly reset  unknown (set weekly_reset, or enable the quota API)")
    return lines


def _doctor_tariff_lines(config: Config, at: datetime) -> list[str]:
    """The tariff in effect at `at`: the user's own plan's pools, then every rate, route and schedule."""
    lines = [f"tariff in effect {at.astimezone(config.tz()):%Y-%m-%d %H:%M %Z} ({config.billing} billing)"]
    for e in config.tariff.entries(at, config.billing, config.plan.name):
        since = f"  from {e.valid_from}" if e.valid_from else ""
        section = "pools" if e.section.startswith("billing.") else e.section  # only the user's own plan's
        lines.append(f"  {section:<14} {e.key:<15} {e.value}{since}{'  [unverified]' if e.unverified else ''}")
        if e.note:
            lines.append(f"{'':<33}{e.note}")
    return lines


def cmd_export(config: Config, *, listen: str, machine: str | None) -> int:
    """`zai-dash export`: keep watching and serve the latest snapshot on `/metrics` until interrupted.

    Another zai-dash reads it with a `[[proxy]]` of `preset = "zai-dash"`, so one dashboard can show a
    laptop and a dev box together. Like the TUI, it publishes the state file, so it also serves as a
    headless daemon for a fast `zai-dash status`.
    """
    import asyncio
    import signal

    from zai_dash.engine import Engine
    from zai_dash.exporter import Exporter, parse_listen

    parse_listen(listen)  # a bad address is a usage error (ValueError → exit 2) before any scanning
    latest: list[Snapshot | None] = [None]
    engine = Engine(config, use_cache=True)  # reads the cache only; the scan comes after the bind
    try:  # bind before scanning: a port in use is a one-line error now, not a traceback after a scan
        exporter = Exporter(listen, provider=lambda: latest[0], machine=machine or engine.machine)
    except OSError as exc:
        raise ValueError(f"--listen {listen}: cannot listen there ({exc.strerror or exc})") from None
    engine.scan()
    engine.refresh_pollers()
    latest[0] = engine.snapshot()
    exporter.start()
    print(f"zai-dash: serving {exporter.url} (Ctrl+C to stop)", file=sys.stderr, flush=True)

    async def follow() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async for snap in engine.watch(stop):
            latest[0] = snap

    try:
        asyncio.run(follow())
    finally:
        exporter.close()
    return EXIT_OK


def cmd_dashboard(
    config: Config, *, demo: bool, mouse: bool, theme: str | None, title: bool = True, config_path: Path | None = None
) -> int:
    """Start the TUI (over the demo when asked).

    Args:
        config: the configuration in effect (with `--plan` applied).
        demo: run over the simulated session instead of the real logs.
        mouse: False leaves the mouse to tmux.
        theme: a checked theme name, else the remembered one.
        title: put the key figure in the terminal's window title.
        config_path: where the plan chooser (`c`) writes; the `--config` file or the default location.
    """
    from zai_dash.engine import Engine
    from zai_dash.ui.app import needs_terminal_message, run_dashboard

    problem = needs_terminal_message()
    if problem:
        print(f"zai-dash: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    clock = SystemClock()
    if demo:
        from zai_dash.demo import run_demo

        return run_demo(config, mouse=mouse, theme=theme, title=title)
    path = config_path or config.source_path or paths.config_file()

    def reload() -> Engine:
        # After the chooser wrote the file: the file's plan and billing, not a `--plan` given at start.
        return Engine(load_config(path, known_tools=_registered_tool_ids), clock=clock, use_cache=True)

    engine = Engine(config, clock=clock, use_cache=True)
    return run_dashboard(
        engine, clock, bell=config.bell, theme=theme, mouse=mouse, title=title, config_path=path, reload=reload
    )
