"""`zai-dash report [--json]`: one scan, one snapshot, printed as a compact table or the JSON document."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING

from zai_dash.clock import Clock, SystemClock
from zai_dash.commands.base import EXIT_OK, clock_for, first_run_note
from zai_dash.config import Config
from zai_dash.text import ago, fmt_amount, fmt_clock, fmt_duration

if TYPE_CHECKING:
    from zai_dash.domain.snapshot import Snapshot
    from zai_dash.domain.windows import WindowRow


class ReportCommand:
    """`report [--json]`."""

    name = "report"
    help = "one scan, one snapshot"
    takes_at = True
    uses_theme = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """`--json` prints the snapshot document instead of the table."""
        parser.add_argument("--json", action="store_true", help="print the snapshot document")

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """One scan at `--at` (else now), printed."""
        return cmd_report(config, as_json=args.json, at=args.at)


def scan(config: Config, clock: Clock) -> tuple[Snapshot, object]:
    """One scan of the logs and the cache, the pollers once (not on a replay); the snapshot and its engine."""
    from zai_dash.engine import Engine

    # A replay (`--at`) evaluates another instant: the cache's horizon is for now, so scan cold, and the
    # endpoints (quota, proxies, fleet) only know now, so they are not asked: `status --at` does the same.
    live = isinstance(clock, SystemClock)
    engine = Engine(config, clock=clock, use_cache=live)
    engine.scan()
    engine.save_cache()
    if live:
        engine.refresh_pollers()
    return engine.snapshot(), engine


def cmd_report(config: Config, *, as_json: bool, at: str | None) -> int:
    """`zai-dash report`: one scan, one snapshot, printed."""
    snap, _ = scan(config, clock_for(at))
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


def render_report(snap: Snapshot, tz: object) -> str:
    """The human `report`: a compact table."""
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
            f"{t.searches:>6} {fmt_amount(t.credits, 'credits'):>7}  {ago(t.last_activity, snap.at):<9} {t.status}"
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
