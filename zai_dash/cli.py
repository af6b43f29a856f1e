"""Command line: `zai-dash` (the TUI), `report`, `status`, `doctor`, `--demo`.

`status` runs on every status-bar refresh, so nothing on its path imports textual.
"""

from __future__ import annotations

import argparse
import json
import locale
import os
import sys
from collections.abc import Sequence
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash import __version__
from zai_dash.clock import Clock, FixedClock, SystemClock
from zai_dash.config import Config, ConfigError, load_config
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

DEFAULT_STATUS = "GLM {binding} ⟳{reset} 🔎{searches}/{search_limit}"
DEFAULT_STATUS_ASCII = "GLM {binding} R{reset} S{searches}/{search_limit}"
WEEKLY_STATUS = "GLM {binding} ⟳{reset} wk {week}"
WEEKLY_STATUS_ASCII = "GLM {binding} R{reset} wk {week}"
"""With a weekly window the weekly figure stands beside the binding one (the monthly MCP pool is gone)."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="config file (default: $XDG_CONFIG_HOME/zai-dash/config.toml)")
    common.add_argument("--plan", help="plan to evaluate against (lite, pro, max or a custom plan)")

    parser = argparse.ArgumentParser(
        prog="zai-dash",
        description="Live dashboard for the Z.ai GLM Coding Plan: prompts left this 5-hour cycle, MCP searches, "
        "models per tool.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"zai-dash {__version__}")
    parser.add_argument("--demo", action="store_true", help="run the dashboard over a simulated coding session")
    parser.add_argument("--no-mouse", action="store_true", help="leave the mouse to tmux")
    parser.add_argument("--theme", help="Textual theme name")
    sub = parser.add_subparsers(dest="command")

    report = sub.add_parser("report", parents=[common], help="one scan, one snapshot")
    report.add_argument("--json", action="store_true", help="print the snapshot document")
    report.add_argument("--at", help="evaluate as of this ISO 8601 instant (replay a day)")

    status = sub.add_parser("status", parents=[common], help="one short line for tmux or Claude Code's statusLine")
    status.add_argument("--format", dest="template", help="template, e.g. '{left} left, reset {reset}'")
    status.add_argument("--ascii", action="store_true", help="no symbols")
    status.add_argument("--at", help=argparse.SUPPRESS)

    sub.add_parser("doctor", parents=[common], help="what was found where, what was skipped and why")

    export = sub.add_parser("export", parents=[common], help="serve this machine's snapshot as Prometheus metrics")
    export.add_argument("--listen", default="127.0.0.1:9464", help="HOST:PORT to serve /metrics on")
    export.add_argument("--machine", help="the machine label (default: host name)")
    return parser


def _registered_tool_ids() -> tuple[str, ...]:
    from zai_dash.sources.tools import registered_tool_ids

    return registered_tool_ids()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `zai-dash` console script."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(args.config, known_tools=_registered_tool_ids)
        if args.plan:
            name = args.plan.lower()
            if name not in config.plans:
                raise ConfigError(f"--plan: unknown plan {name!r} (known: {', '.join(sorted(config.plans))})")
            from dataclasses import replace

            config = replace(config, plan=config.plans[name], plan_explicit=True)
    except ConfigError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    command = args.command
    try:
        if command == "report":
            return cmd_report(config, as_json=args.json, at=args.at)
        if command == "status":
            return cmd_status(config, template=args.template, ascii_only=args.ascii, at=args.at)
        if command == "doctor":
            return cmd_doctor(config)
        if command == "export":
            return cmd_export(config, listen=args.listen, machine=args.machine)
        return cmd_dashboard(config, demo=args.demo, mouse=not args.no_mouse, theme=args.theme)
    except ValueError as exc:
        print(f"zai-dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return EXIT_OK


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
    return FixedClock(when)


def _scan(config: Config, clock: Clock) -> tuple[Snapshot, object]:
    from zai_dash.engine import Engine

    # A replay (`--at`) evaluates another instant: the cache's horizon is for now, so scan cold.
    engine = Engine(config, clock=clock, use_cache=isinstance(clock, SystemClock))
    engine.scan()
    engine.save_cache()
    engine.refresh_pollers()
    return engine.snapshot(), engine


def cmd_report(config: Config, *, as_json: bool, at: str | None) -> int:
    """`zai-dash report`: one scan, one snapshot, printed."""
    snap, _ = _scan(config, _clock_for(at))
    tz = config.tz()
    if as_json:
        print(json.dumps(snap.to_json(tz), indent=2, ensure_ascii=False))
    else:
        print(render_report(snap, tz))
    return EXIT_OK


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


def status_fields(doc: dict[str, Any], now: datetime, tz: tzinfo) -> dict[str, object]:
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
    return {
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
        "binding": _binding_text(head),
        "credits": fmt_amount(credits or 0, "credits"),
        "week": f"{weekly['percent']:.0f}%" if weekly else "—",
        "prompts_left": "—" if prompts_left is None else f"{estimate}{prompts_left}",
    }


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


def _status_doc(config: Config, at: str | None) -> tuple[dict[str, Any], datetime]:
    """The snapshot document for `status`: a running dashboard's fresh state file, else one scan."""
    clock = _clock_for(at)
    now = clock.now()
    if at is None:
        from zai_dash import statefile

        doc = statefile.read_fresh(config.fingerprint(), now)
        if doc is not None and isinstance(doc.get("headline"), dict):
            end = doc["headline"].get("end")
            if end is None or datetime.fromisoformat(end) > now:
                return doc, now
    snap, _ = _scan(config, clock)
    return snap.to_json(config.tz()), now


def cmd_status(config: Config, *, template: str | None, ascii_only: bool, at: str | None) -> int:
    """`zai-dash status`: one line; the exit code says ok / warning / exhausted / no data / error."""
    try:
        doc, now = _status_doc(config, at)
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
        fields = status_fields(doc, now, config.tz())
        line = fmt.format(**fields)
    except (KeyError, IndexError, ValueError) as exc:
        print(f"zai-dash: --format: unknown field {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if ascii_mode:
        line = line.encode("ascii", "replace").decode("ascii")
    print(line)
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


def cmd_doctor(config: Config) -> int:
    """`zai-dash doctor`: what was found where, what was skipped and why, config in effect."""
    from zai_dash.engine import Engine

    engine = Engine(config)
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
        out.append(f"  proxy         {proxy.name}: {proxy.url} ({proxy.preset or 'custom map'})")
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
    engine = Engine(config, use_cache=True)
    engine.scan()
    engine.refresh_pollers()
    latest = [engine.snapshot()]
    exporter = Exporter(listen, provider=lambda: latest[0], machine=machine or engine.machine).start()
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


def cmd_dashboard(config: Config, *, demo: bool, mouse: bool, theme: str | None) -> int:
    """Start the TUI (over the demo when asked)."""
    from zai_dash.engine import Engine

    clock = SystemClock()
    if demo:
        from zai_dash.demo import run_demo

        return run_demo(config, mouse=mouse, theme=theme)
    engine = Engine(config, clock=clock, use_cache=True)
    from zai_dash.ui.app import run_dashboard

    return run_dashboard(engine, clock, bell=config.bell, theme=theme or config.theme, mouse=mouse)
