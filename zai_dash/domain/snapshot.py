"""The snapshot: everything a view needs at one instant, immutable and JSON-serialisable.

It *is* the `zai-dash report --json` document (see README, "The report document").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from zai_dash.domain.cycle import CycleState, chain_windows, resolve_cycle
from zai_dash.domain.endpoints import EndpointKind, endpoint_warning
from zai_dash.domain.events import MONTHLY_MCP_SERVICES, McpService
from zai_dash.domain.forecast import RECENT, Forecast, forecast
from zai_dash.domain.history import History, build_history
from zai_dash.domain.ledger import Counts, Ledger
from zai_dash.domain.month import month_window
from zai_dash.domain.official import Calibration, billing_warning, detect_billing, reconcile, reconcile_window
from zai_dash.domain.plans import Plan, Thresholds
from zai_dash.domain.tariff import WindowPool
from zai_dash.domain.tools import ToolInfo
from zai_dash.domain.windows import (
    GATING,
    MIN_PROMPTS,
    PROMPT_SAMPLE,
    WEEK,
    WINDOW_ORDER,
    Headline,
    WindowRow,
    estimated_part,
    headline,
    make_row,
    official_pool,
    official_rows_by_window,
    prompt_equivalents_of,
    resolve_week,
    weekly_block,
    window_used,
)

SCHEMA = 2
"""Version of the snapshot document; bumped on incompatible changes (2: windows, headline, credits)."""

MONTHLY = tuple(sorted(s.value for s in MONTHLY_MCP_SERVICES))
"""The services of the legacy monthly MCP pool."""
PROMPT_BILLINGS = frozenset({"legacy-v1", "legacy-v2"})
"""Billing generations that count prompts; the others count credits."""

TIMELINE_BUCKET = timedelta(minutes=10)
LIVE_WITHIN = timedelta(minutes=5)
"""A tool with activity this recent is `live`."""


@dataclass(frozen=True, slots=True)
class ToolConfigInfo:
    """What a source read from its tool's own settings (never secrets).

    Attributes:
        model: the configured model, normalised.
        model_detail: where it came from (e.g. `settings.json env.ANTHROPIC_MODEL`).
        base_url: the configured base URL, if any.
        endpoint: its classification.
    """

    model: str | None = None
    model_detail: str | None = None
    base_url: str | None = None
    endpoint: EndpointKind | None = None


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """How one source is doing.

    Attributes:
        name: source name (a tool id, `zai-quota`, or a proxy name).
        tool: the tool id it feeds, if any.
        status: `ok`, `stale`, `error` or `absent`.
        detail: one line of explanation.
        roots: the locations looked at (found or not).
        files: how many files (or databases) are being read.
        skipped: reason → count of skipped records.
        refused: prompts in the logs read that the server refused (every attempt answered by an API
            error such as 429): not billed, so in no prompt count. None when the tool's files cannot
            tell a refusal from a prompt never sent.
    """

    name: str
    tool: str | None
    status: str
    detail: str = ""
    roots: tuple[tuple[str, bool], ...] = ()
    files: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)
    refused: int | None = None


@dataclass(frozen=True, slots=True)
class PlanView:
    name: str
    prompts_per_cycle: int
    searches_per_month: int
    calls_per_prompt: int
    cycle_hours: float


@dataclass(frozen=True, slots=True)
class CycleView:
    """The window: `state` is `open` or `not-started`."""

    state: str
    start: datetime | None
    end: datetime | None
    seconds_left: float | None
    anchor: str | None
    blocked_until: datetime | None
    previous_end: datetime | None


@dataclass(frozen=True, slots=True)
class PromptGauge:
    """Prompt-pool usage this cycle. `left = max(0, limit − equivalents)`."""

    used: int
    calls: int
    calls_main: int
    calls_subagent: int
    calls_auxiliary: int
    vision: int
    equivalents: int
    limit: int
    left: int
    percent: float
    calls_per_prompt: float | None
    level: str
    provenance: str = "local"


@dataclass(frozen=True, slots=True)
class SearchGauge:
    """Monthly MCP pool (search + reader + zread) and this cycle's counts."""

    cycle: int
    month: int
    month_limit: int
    month_left: int
    month_start: datetime
    month_end: datetime
    by_service: Mapping[str, int]
    cycle_by_service: Mapping[str, int]
    provenance: str = "local"


@dataclass(frozen=True, slots=True)
class ToolRow:
    """One tool's line in the tools table."""

    tool: str
    name: str
    found: bool
    model: str | None
    model_source: str | None
    configured_model: str | None
    endpoint: str | None
    warning: str | None
    prompts: int
    calls: int
    searches: int
    last_activity: datetime | None
    status: str
    refused: int | None = None
    """Prompts the server refused, in the logs read (`SourceHealth.refused`); None when no source can tell."""
    credits: float = 0.0
    """Credits this tool used in the 5-hour window (its calls and MCP calls)."""
    credits_by_model: Mapping[str, float] = field(default_factory=dict)
    """The same by the model each call asked for."""


@dataclass(frozen=True, slots=True)
class CreditsView:
    """Credits, whatever the billing generation (on prompt plans they show what the calls would cost).

    Attributes:
        window_5h: credits in the open 5-hour window (0 when none is open).
        week: credits in the weekly window (the last 7 days when its anchor is unknown).
        previous_week: credits in the week before it.
        mcp_5h, mcp_week: the MCP calls' part of those.
        by_model_week: week credits by the model each call asked for.
        by_tool_week: week credits by tool.
        estimated_week: the part of `week` that is an estimate (Vision MCP calls).
        estimated_services: MCP services priced by estimate.
        peak: whether the snapshot instant is in the peak period (None without a tariff).
        median_per_prompt: median credits of the recent prompts sampled (None before any).
        prompts_sampled: how many prompts that median is over.
    """

    window_5h: float = 0.0
    week: float = 0.0
    previous_week: float = 0.0
    mcp_5h: float = 0.0
    mcp_week: float = 0.0
    by_model_week: Mapping[str, float] = field(default_factory=dict)
    by_tool_week: Mapping[str, float] = field(default_factory=dict)
    estimated_week: float = 0.0
    estimated_services: tuple[str, ...] = ()
    peak: bool | None = None
    median_per_prompt: float | None = None
    prompts_sampled: int = 0


@dataclass(frozen=True, slots=True)
class BillingView:
    """The billing generation in effect and where it came from."""

    generation: str = "legacy-v1"
    configured: str | None = None
    detected: str | None = None
    warning: str | None = None
    peak: bool | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per-bucket prompt-equivalents across the window, up to now."""

    bucket_minutes: int
    start: datetime | None
    prompts: tuple[int, ...]
    calls: tuple[int, ...]
    equivalents: tuple[int, ...]
    credits: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a view needs at one instant."""

    schema: int
    at: datetime
    demo: bool
    plan: PlanView
    thresholds: Thresholds
    cycle: CycleView
    prompts: PromptGauge
    searches: SearchGauge
    forecast: Forecast | None
    timeline: Timeline
    tools: tuple[ToolRow, ...]
    sources: tuple[SourceHealth, ...]
    skipped: Mapping[str, Any]
    official: tuple[Mapping[str, Any], ...] = ()
    proxies: tuple[Mapping[str, Any], ...] = ()
    reconciliation: Mapping[str, Any] = field(default_factory=dict)
    """How official and local figures relate: `primary`, `official_percent`, `local_percent`, `drift`,
    `drift_warning`, `prompts_left_estimate`, `weekly_percent` (empty when the quota endpoint is off)."""
    billing: BillingView = field(default_factory=BillingView)
    windows: tuple[WindowRow, ...] = ()
    """Every metered window of the plan, in `WINDOW_ORDER`."""
    headline: Headline | None = None
    """The binding window and the worst level: what every view leads with."""
    credits: CreditsView = field(default_factory=CreditsView)
    tariff: Mapping[str, Any] = field(default_factory=dict)
    """The tariff in effect at `at` (rates, peak schedule, pools), for the document."""
    history: History = field(default_factory=History)
    """Past 5-hour cycles and the days of this week and the last, in the 5-hour pool's unit."""
    fleet: Mapping[str, Any] | None = None
    """Every machine's exporter read back from Prometheus, and the account totals (`[fleet]`; see
    `zai_dash.domain.fleet.fleet_view`). None when no fleet is configured."""

    def window(self, wid: str) -> WindowRow | None:
        """The row of one window, if the plan has it."""
        return next((w for w in self.windows if w.id == wid), None)

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """The `report --json` document: plain JSON types, times ISO 8601 with offset."""
        return _jsonable(self, tz)

    @property
    def has_data(self) -> bool:
        """Whether any tool was found."""
        return any(t.found for t in self.tools)

    @property
    def tool_names(self) -> dict[str, str]:
        """Tool id → human name, from the tool rows (what views use to name a tool id)."""
        return {t.tool: t.name for t in self.tools}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
"""Each dataclass's field names, looked up once (a snapshot has hundreds of rows of a few types)."""


def _jsonable(value: Any, tz: tzinfo | None) -> Any:
    """Plain JSON values of a snapshot, walked once (not `asdict`'s deep copy walked again: it is published
    to the state file on every change, so this is on the dashboard's steady cost)."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return round(value, 3) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return (value.astimezone(tz) if tz else value).isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    names = _FIELD_NAMES.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: _jsonable(getattr(value, name), tz) for name in names}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, tz) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, tz) for v in value]
    if isinstance(value, float):
        return round(value, 3) if math.isfinite(value) else None
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


def official_searches(local: SearchGauge, monthly: Mapping[str, Any]) -> SearchGauge:
    """The search gauge with Z.ai's monthly MCP row as the month figures (local counts stay per cycle).

    Args:
        local: the gauge counted from logs.
        monthly: a fresh `monthly-mcp` official row (`used`, `limit`, `next_reset`, `usage_details`).
    """
    used = monthly.get("used")
    limit = monthly.get("limit")
    if used is None or limit is None:
        return local
    details = {**local.by_service, **{k: int(v) for k, v in (monthly.get("usage_details") or {}).items()}}
    end = monthly.get("next_reset") or local.month_end
    return replace(
        local,
        month=int(used),
        month_limit=int(limit),
        month_left=max(0, int(limit) - int(used)),
        month_end=end,
        by_service=details,
        provenance="official",
    )


def gauge_level(equivalents: int, limit: int, thresholds: Thresholds) -> str:
    """`ok`, `warning`, `critical` or `exhausted` for a usage level."""
    return thresholds.level(equivalents / limit) if limit > 0 else "ok"


def tool_status(found: bool, last: datetime | None, now: datetime, error: bool, cycle: timedelta) -> str:
    """`live` (active in the last 5 min), `idle` (within a cycle), `stale`, `error` or `absent`."""
    if error:
        return "error"
    if not found:
        return "absent"
    if last is not None and now - last <= LIVE_WITHIN:
        return "live"
    if last is not None and now - last <= cycle:
        return "idle"
    return "stale"


@dataclass(frozen=True, slots=True)
class Metering:
    """How the plan meters: the billing generation, its pools and the weekly anchor (from config + tariff).

    Attributes:
        billing: `credits`, `legacy-v2` or `legacy-v1` (team seats bill in credits).
        pools: the plan's windows and their limits; empty means the plan's own prompt and MCP numbers
            (the 2025 plan: a 5-hour prompt pool and a monthly MCP pool).
        weekly_reset: any past weekly reset instant (the week repeats every 7 days from it).
        estimated_services: MCP services whose credits are an estimate (Vision).
        peak: whether `now` is in the peak period (None without a tariff).
        configured: the billing generation the config names, when explicit (checked against the one the
            official rows show).
        tariff: the tariff in effect, for the document (`tariff` key).
    """

    billing: str = "legacy-v1"
    pools: tuple[WindowPool, ...] = ()
    weekly_reset: datetime | None = None
    estimated_services: frozenset[str] = frozenset()
    peak: bool | None = None
    configured: str | None = None
    tariff: Mapping[str, Any] = field(default_factory=dict)

    def pools_for(self, plan: Plan) -> tuple[WindowPool, ...]:
        """The pools, defaulting to the plan's 5-hour prompts and monthly MCP calls."""
        if self.pools:
            return self.pools
        return (
            WindowPool("5h", "prompts", plan.prompts_per_cycle),
            WindowPool("monthly-mcp", "calls", plan.searches_per_month),
        )


def build_snapshot(
    *,
    now: datetime,
    plan: Plan,
    ledger: Ledger,
    tz: tzinfo,
    renewal_day: int = 1,
    thresholds: Thresholds | None = None,
    tool_configs: Mapping[str, ToolConfigInfo] | None = None,
    sources: Sequence[SourceHealth] = (),
    skipped: Mapping[str, Any] | None = None,
    official_reset: datetime | None = None,
    official: Sequence[Mapping[str, Any]] = (),
    proxies: Sequence[Mapping[str, Any]] = (),
    demo: bool = False,
    metering: Metering | None = None,
    drift_margin: float = 15.0,
    calibrations: Mapping[str, Calibration] | None = None,
    tools: Sequence[ToolInfo] = (),
) -> Snapshot:
    """Compute every number a view shows, as of `now`: the one place the windows and headline are decided.

    Args:
        now: the instant (aware).
        plan: the plan in effect.
        ledger: deduplicated events (priced by its meter).
        tz: the user's timezone (month window).
        renewal_day: the subscription's renewal day of month.
        thresholds: warning/critical levels.
        tool_configs: what each tool's settings say (model, endpoint).
        sources: health of each source.
        skipped: skipped-record summary (`lines`, `files`, `reasons`).
        official_reset: Z.ai's reset time for the 5-hour window, when fresh.
        official: official quota rows (opt-in endpoint).
        proxies: proxy metric rows.
        demo: whether this is the built-in demo.
        metering: billing generation, pools and weekly anchor (default: the plan's own prompt numbers).
        drift_margin: percentage points between official and local before drift warns.
        calibrations: the official poller's calibration of each window (given when the endpoint is on).
        tools: every registered tool, in display order (the engine passes the adapters' registry);
            a tool named only by a source or a config gets a row after them, named by its id.
    """
    thresholds = thresholds or Thresholds()
    tool_configs = tool_configs or {}
    metering = metering or Metering()
    pools = {p.id: p for p in metering.pools_for(plan)}
    after_now = now + timedelta(microseconds=1)
    requests = ledger.request_times(end=after_now)
    hits = ledger.limit_hits()
    state = resolve_cycle(requests, hits, now, plan.cycle, official_reset)
    cycle = _cycle_view(state, now)
    window = state.current
    start = window.start if window else now
    end = window.end if window else now
    counts = ledger.count(start, end)
    vision = counts.mcp_by_service[McpService.VISION.value]
    equivalents = prompt_equivalents_of(counts, plan.calls_per_prompt)
    limit = plan.prompts_per_cycle
    prompts = PromptGauge(
        used=counts.prompts,
        calls=counts.calls,
        calls_main=counts.calls_by_role["main"],
        calls_subagent=counts.calls_by_role["subagent"],
        calls_auxiliary=counts.calls_by_role["auxiliary"],
        vision=vision,
        equivalents=equivalents,
        limit=limit,
        left=max(0, limit - equivalents),
        percent=round(100.0 * equivalents / limit, 1) if limit else 0.0,
        calls_per_prompt=round(counts.calls / counts.prompts, 1) if counts.prompts else None,
        level=gauge_level(equivalents, limit, thresholds),
    )

    month_start, month_end = month_window(now, renewal_day, tz)
    month_counts = ledger.count(month_start, min(month_end, after_now))
    month_used = sum(month_counts.mcp_by_service[s] for s in MONTHLY)
    searches = SearchGauge(
        cycle=sum(counts.mcp_by_service[s] for s in MONTHLY),
        month=month_used,
        month_limit=plan.searches_per_month,
        month_left=max(0, plan.searches_per_month - month_used),
        month_start=month_start,
        month_end=month_end,
        by_service=dict(month_counts.mcp_by_service),
        cycle_by_service=dict(counts.mcp_by_service),
    )
    fresh = official_rows_by_window(official, now)
    for wid, row in fresh.items():
        # Z.ai meters a window the config does not know (e.g. a weekly pool on a plan set up as V1):
        # the official row is the truth, so the window is shown and counted (and can block).
        pools.setdefault(wid, official_pool(wid, row))
    if "monthly-mcp" in fresh:
        searches = official_searches(searches, fresh["monthly-mcp"])

    official_week = fresh.get("weekly") or {}
    week = resolve_week(
        now,
        weekly_reset=metering.weekly_reset,
        official_end=_as_time(official_week.get("next_reset")),
        official_start=_as_time(official_week.get("start")),
        limit_hits=hits,
    )
    week_counts = ledger.count(week.start, after_now)
    rows: list[WindowRow] = []
    for wid in WINDOW_ORDER:
        pool = pools.get(wid)
        if pool is None:
            continue
        common: dict[str, Any] = {"pool": pool, "now": now, "thresholds": thresholds, "official": fresh.get(wid)}
        if wid == "5h":
            c = counts if window else Counts()
            rows.append(
                make_row(
                    used=window_used(c, pool.unit, plan.calls_per_prompt, MONTHLY),
                    start=window.start if window else None,
                    end=window.end if window else None,
                    anchor=_FIVE_HOUR_ANCHORS[window.anchor.value] if window else "first-request",
                    state="open" if window else "not-started",
                    blocked=bool(window and window.blocked_until),
                    blocked_until=window.blocked_until if window else None,
                    estimated=estimated_part(c, pool.unit, metering.estimated_services),
                    **common,
                )
            )
        elif wid == "weekly":
            blocked, until = weekly_block(week, hits, requests, now)
            rows.append(
                make_row(
                    used=window_used(week_counts, pool.unit, plan.calls_per_prompt, MONTHLY),
                    start=week.start,
                    end=week.end,
                    anchor=week.anchor,
                    state="open" if week.end is not None else "rolling",
                    blocked=blocked,
                    blocked_until=until,
                    estimated=estimated_part(week_counts, pool.unit, metering.estimated_services),
                    **common,
                )
            )
        else:
            rows.append(
                make_row(
                    used=window_used(month_counts, pool.unit, plan.calls_per_prompt, MONTHLY),
                    start=month_start,
                    end=month_end,
                    anchor="subscription",
                    **common,
                )
            )

    median, sampled = ledger.prompt_cost_median(now, WEEK, PROMPT_SAMPLE)
    credit_plan = metering.billing not in PROMPT_BILLINGS
    gating = [r for r in rows if r.id in GATING]
    left_row = min(gating, key=lambda r: r.fraction_left, default=None)
    prompts_left: int | None = None
    prompts_left_source: str | None = None
    if left_row is not None and credit_plan:
        if sampled >= MIN_PROMPTS and median > 0:
            prompts_left, prompts_left_source = math.floor(left_row.left / median), "estimate"
    elif left_row is not None:
        prompts_left, prompts_left_source = int(left_row.left), left_row.source
    head = headline(rows, prompts_left=prompts_left, prompts_left_source=prompts_left_source)

    previous = ledger.count(week.start - WEEK, week.start)
    credits = CreditsView(
        window_5h=round(counts.credits, 3) if window else 0.0,
        week=round(week_counts.credits, 3),
        previous_week=round(previous.credits, 3),
        mcp_5h=round(counts.mcp_credits, 3) if window else 0.0,
        mcp_week=round(week_counts.mcp_credits, 3),
        by_model_week={k: round(v, 3) for k, v in sorted(week_counts.credits_by_model.items())},
        by_tool_week={k: round(v, 3) for k, v in sorted(week_counts.credits_by_tool.items())},
        estimated_week=round(estimated_part(week_counts, "credits", metering.estimated_services), 3),
        estimated_services=tuple(sorted(metering.estimated_services)),
        peak=metering.peak,
        median_per_prompt=round(median, 3) if sampled else None,
        prompts_sampled=sampled,
    )

    fc: Forecast | None = None
    five = next((r for r in rows if r.id == "5h"), None)
    if window is not None and five is not None:
        recent = ledger.count(max(start, now - RECENT), after_now)
        local_used = five.local_used if five.local_used is not None else five.used
        f = forecast(
            local_used,
            window_used(recent, five.unit, plan.calls_per_prompt, MONTHLY),
            five.limit,
            start,
            end,
            now,
        )
        fc = replace(f, unit=five.unit)

    calibrations = calibrations or {}
    reconciliation: dict[str, Any] = {}
    if official or calibrations:  # the quota endpoint is on
        reconciliation = reconcile(official, prompts.percent, margin=drift_margin, calibration=calibrations.get("5h"))
        reconciliation["windows"] = [
            reconcile_window(
                fresh[r.id],
                r.local_used,
                calibrations.get(r.id),
                local_limit=float(pools[r.id].limit),
                margin=drift_margin,
            ).to_json()
            for r in rows
            if r.id in fresh and r.local_used is not None
        ]
    detected = detect_billing(official) if official else None

    five_pool = pools.get("5h")
    five_unit = five_pool.unit if five_pool is not None else "prompts"
    history = build_history(
        ledger,
        chain_windows(requests, hits, now, plan.cycle),
        now,
        tz,
        unit=five_unit,
        limit=float(five_pool.limit) if five_pool is not None else float(plan.prompts_per_cycle),
        used_of=lambda c: window_used(c, five_unit, plan.calls_per_prompt, MONTHLY),
    )
    return Snapshot(
        history=history,
        schema=SCHEMA,
        at=now,
        demo=demo,
        plan=PlanView(
            plan.name,
            plan.prompts_per_cycle,
            plan.searches_per_month,
            plan.calls_per_prompt,
            plan.cycle.total_seconds() / 3600,
        ),
        thresholds=thresholds,
        cycle=cycle,
        prompts=prompts,
        searches=searches,
        forecast=fc,
        timeline=_timeline(ledger, window.start if window else None, now, plan.calls_per_prompt),
        tools=_tool_rows(ledger, start, end, window is not None, now, tool_configs, sources, plan, tools),
        sources=tuple(sources),
        skipped=dict(skipped or {"lines": 0, "files": 0, "reasons": {}}),
        official=tuple(official),
        proxies=tuple(proxies),
        reconciliation=reconciliation,
        billing=BillingView(
            metering.billing,
            metering.configured,
            detected,
            billing_warning(detected, metering.configured or metering.billing),
            metering.peak,
        ),
        windows=tuple(rows),
        headline=head,
        credits=credits,
        tariff=dict(metering.tariff),
    )


def _refused(sources: Sequence[SourceHealth], tool: str) -> int | None:
    """A tool's refused prompts over its sources that can tell (None when none can)."""
    known = [s.refused for s in sources if s.tool == tool and s.refused is not None]
    return sum(known) if known else None


def _as_time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


_FIVE_HOUR_ANCHORS = {"official": "official", "limit-hit": "limit-hit", "local": "first-request"}


def _tool_rows(
    ledger: Ledger,
    start: datetime,
    end: datetime,
    open_window: bool,
    now: datetime,
    tool_configs: Mapping[str, ToolConfigInfo],
    sources: Sequence[SourceHealth],
    plan: Plan,
    tools: Sequence[ToolInfo],
) -> tuple[ToolRow, ...]:
    errors = {s.tool for s in sources if s.tool and s.status == "error"}
    found_tools = {s.tool for s in sources if s.tool and s.status != "absent"}
    names = {t.id: t.name for t in tools}
    for extra in sorted({s.tool for s in sources if s.tool} | set(tool_configs)):
        names.setdefault(extra, extra)
    by_tool = ledger.count_by_tool(start, end) if open_window else {}
    rows = []
    for tool, name in names.items():
        c = by_tool.get(tool) or Counts()
        act = ledger.activity(tool, now)
        conf = tool_configs.get(tool, ToolConfigInfo())
        found = tool in found_tools or act.last_activity is not None
        model, source = (act.model, "log") if act.model else (conf.model, "config" if conf.model else None)
        rows.append(
            ToolRow(
                tool=tool,
                name=name,
                found=found,
                model=model,
                model_source=source,
                configured_model=conf.model,
                endpoint=conf.endpoint.value if conf.endpoint else None,
                warning=endpoint_warning(conf.endpoint),
                prompts=c.prompts,
                calls=c.calls,
                searches=sum(c.mcp_by_service[s] for s in MONTHLY),
                last_activity=act.last_activity,
                status=tool_status(found, act.last_activity, now, tool in errors, plan.cycle),
                refused=_refused(sources, tool),
                credits=round(c.credits, 3),
                credits_by_model={k: round(v, 3) for k, v in sorted(c.credits_by_model.items())},
            )
        )
    return tuple(rows)


def _cycle_view(state: CycleState, now: datetime) -> CycleView:
    w = state.current
    if w is None:
        return CycleView("not-started", None, None, None, None, None, state.previous_end)
    return CycleView("open", w.start, w.end, w.seconds_left(now), w.anchor.value, w.blocked_until, None)


def _timeline(ledger: Ledger, start: datetime | None, now: datetime, calls_per_prompt: int) -> Timeline:
    minutes = int(TIMELINE_BUCKET.total_seconds() // 60)
    if start is None:
        return Timeline(minutes, None, (), (), ())
    n = max(1, math.ceil((now - start) / TIMELINE_BUCKET))
    prompts = [0] * n
    calls = [0] * n
    credits = [0.0] * n
    equivalents = [0] * n
    # Equivalents per bucket are the increments of the cumulative count, so they sum to the gauge.
    running = Counts()
    prev = 0
    for i in range(n):
        # The last bucket runs to now (included); the events one by one, as the ledger's detail has them.
        lo = start + TIMELINE_BUCKET * i
        hi = now + timedelta(microseconds=1) if i == n - 1 else lo + TIMELINE_BUCKET
        c = ledger.count(lo, hi, detail_only=True)
        prompts[i], calls[i], credits[i] = c.prompts, c.calls, c.credits
        running.prompt_units += c.prompt_units
        running.call_units += c.call_units
        running.mcp_by_service["vision"] += c.mcp_by_service["vision"]
        total = prompt_equivalents_of(running, calls_per_prompt)
        equivalents[i], prev = total - prev, total
    return Timeline(
        minutes, start, tuple(prompts), tuple(calls), tuple(equivalents), tuple(round(c, 3) for c in credits)
    )
