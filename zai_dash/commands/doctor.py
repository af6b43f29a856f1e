"""`zai-dash doctor`: every tool and location looked at, files read, records skipped and why, the config in effect."""

from __future__ import annotations

import argparse
from datetime import datetime

from zai_dash import __version__
from zai_dash.commands.base import EXIT_OK, clock_for, first_run_note
from zai_dash.config import Config


class DoctorCommand:
    """`doctor`."""

    name = "doctor"
    help = "what was found where, what was skipped and why"
    takes_at = True
    uses_theme = False

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """No options of its own."""

    def run(self, args: argparse.Namespace, config: Config, theme: str | None) -> int:
        """Scan (cold, without the cache) and print what was found."""
        return cmd_doctor(config, at=args.at)


def cmd_doctor(config: Config, at: str | None = None) -> int:
    """`zai-dash doctor`: what was found where, what was skipped and why, config in effect."""
    from zai_dash.engine import Engine
    from zai_dash.redact import redact_url

    engine = Engine(config, clock=clock_for(at))
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
    out.append(f"  publisher     {_publisher_line(config)}")
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
    first = snap.skipped.get("first", {})
    if reasons:
        out.append(f"skipped: {snap.skipped.get('lines', 0)} record(s), {snap.skipped.get('files', 0)} file(s)")
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
            out.append(f"  {n:>6} × {reason}" + (f"   first at {first[reason]}" if first.get(reason) else ""))
    else:
        out.append("skipped: nothing")
    print("\n".join(out))
    return EXIT_OK


def _publisher_line(config: Config) -> str:
    """Whether `status`'s lingering publisher runs (pid, age, last read), or why it would not start."""
    from zai_dash import publisher
    from zai_dash.clock import SYSTEM_CLOCK
    from zai_dash.text import fmt_duration

    running = publisher.info()
    if running is None:
        if not config.status.publisher:
            return "off ([status] publisher = false)"
        if publisher.switched_off():
            return f"off (${publisher.SWITCH_ENV}=0)"
        return "not running (the next status with no dashboard starts one)"
    now = SYSTEM_CLOCK.now().timestamp()
    started, read = running.get("started"), running.get("last_read")
    age = fmt_duration(now - started) if isinstance(started, (int, float)) else "?"
    last = fmt_duration(now - read) if isinstance(read, (int, float)) else "?"
    return f"running (pid {running.get('pid')}, up {age}, last read {last} ago)"


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
