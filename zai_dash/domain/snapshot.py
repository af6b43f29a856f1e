"""The snapshot: everything a view needs at one instant, immutable and JSON-serialisable.

It *is* the `zai-dash report --json` document (see README, "The report document").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from zai_dash.domain.cycle import CycleState, resolve_cycle
from zai_dash.domain.endpoints import EndpointKind, endpoint_warning
from zai_dash.domain.events import EventKind, McpService
from zai_dash.domain.forecast import RECENT, forecast, prompt_equivalents
from zai_dash.domain.ledger import Ledger
from zai_dash.domain.month import month_window
from zai_dash.domain.plans import Plan, Thresholds
from zai_dash.domain.tools import ToolInfo

SCHEMA = 1
"""Version of the snapshot document; bumped on incompatible changes."""

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
    """

    name: str
    tool: str | None
    status: str
    detail: str = ""
    roots: tuple[tuple[str, bool], ...] = ()
    files: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)


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


@dataclass(frozen=True, slots=True)
class Timeline:
    """Per-bucket prompt-equivalents across the window, up to now."""

    bucket_minutes: int
    start: datetime | None
    prompts: tuple[int, ...]
    calls: tuple[int, ...]
    equivalents: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ForecastView:
    rate_recent: float
    rate_cycle: float
    exhausted_at: datetime | None
    minutes_before_reset: float | None
    left_at_reset: float | None
    safe_pace: float | None


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
    forecast: ForecastView | None
    timeline: Timeline
    tools: tuple[ToolRow, ...]
    sources: tuple[SourceHealth, ...]
    skipped: Mapping[str, Any]
    official: tuple[Mapping[str, Any], ...] = ()
    proxies: tuple[Mapping[str, Any], ...] = ()
    reconciliation: Mapping[str, Any] = field(default_factory=dict)
    """How official and local figures relate: `primary`, `official_percent`, `local_percent`, `drift`,
    `drift_warning`, `prompts_left_estimate`, `weekly_percent` (empty when the quota endpoint is off)."""

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """The `report --json` document: plain JSON types, times ISO 8601 with offset."""
        return _jsonable(asdict(self), tz)

    @property
    def has_data(self) -> bool:
        """Whether any tool was found."""
        return any(t.found for t in self.tools)

    @property
    def tool_names(self) -> dict[str, str]:
        """Tool id → human name, from the tool rows (what views use to name a tool id)."""
        return {t.tool: t.name for t in self.tools}


def _jsonable(value: Any, tz: tzinfo | None) -> Any:
    if isinstance(value, datetime):
        return (value.astimezone(tz) if tz else value).isoformat(timespec="seconds")
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
    tools: Sequence[ToolInfo] = (),
) -> Snapshot:
    """Compute every number a view shows, as of `now`.

    Args:
        now: the instant (aware).
        plan: the plan in effect.
        ledger: deduplicated events.
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
        tools: every registered tool, in display order (the engine passes the adapters' registry);
            a tool named only by a source or a config gets a row after them, named by its id.
    """
    thresholds = thresholds or Thresholds()
    tool_configs = tool_configs or {}
    state = resolve_cycle(
        ledger.request_times(end=now + timedelta(microseconds=1)),
        ledger.limit_hits(),
        now,
        plan.cycle,
        official_reset,
    )
    cycle = _cycle_view(state, now)
    window = state.current
    start = window.start if window else now
    end = window.end if window else now
    counts = ledger.count(start, end)
    vision = counts.mcp_by_service[McpService.VISION.value]
    equivalents = prompt_equivalents(counts.prompts, counts.calls, vision, plan.calls_per_prompt)
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
    month_counts = ledger.count(month_start, min(month_end, now + timedelta(microseconds=1)))
    monthly = [s.value for s in (McpService.SEARCH, McpService.READER, McpService.ZREAD)]
    month_used = sum(month_counts.mcp_by_service[s] for s in monthly)
    searches = SearchGauge(
        cycle=sum(counts.mcp_by_service[s] for s in monthly),
        month=month_used,
        month_limit=plan.searches_per_month,
        month_left=max(0, plan.searches_per_month - month_used),
        month_start=month_start,
        month_end=month_end,
        by_service=dict(month_counts.mcp_by_service),
        cycle_by_service=dict(counts.mcp_by_service),
    )

    fc: ForecastView | None = None
    if window is not None:
        recent_from = max(start, now - RECENT)
        recent = ledger.count(recent_from, now + timedelta(microseconds=1))
        recent_eq = prompt_equivalents(
            recent.prompts, recent.calls, recent.mcp_by_service["vision"], plan.calls_per_prompt
        )
        f = forecast(equivalents, recent_eq, limit, start, end, now)
        fc = ForecastView(
            f.rate_recent, f.rate_cycle, f.exhausted_at, f.minutes_before_reset, f.left_at_reset, f.safe_pace
        )

    errors = {s.tool for s in sources if s.tool and s.status == "error"}
    found_tools = {s.tool for s in sources if s.tool and s.status != "absent"}
    rows = []
    names = {t.id: t.name for t in tools}
    for extra in sorted({s.tool for s in sources if s.tool} | set(tool_configs)):
        names.setdefault(extra, extra)
    for tool, name in names.items():
        c = ledger.count(start, end, tool) if window else ledger.count(now, now, tool)
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
                searches=sum(c.mcp_by_service[s] for s in monthly),
                last_activity=act.last_activity,
                status=tool_status(found, act.last_activity, now, tool in errors, plan.cycle),
            )
        )

    return Snapshot(
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
        tools=tuple(rows),
        sources=tuple(sources),
        skipped=dict(skipped or {"lines": 0, "files": 0, "reasons": {}}),
        official=tuple(official),
        proxies=tuple(proxies),
    )


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
    vision = [0] * n
    for e in ledger.events(start, now + timedelta(microseconds=1)):
        i = min(n - 1, int((e.ts - start) / TIMELINE_BUCKET))
        if e.kind is EventKind.PROMPT:
            prompts[i] += 1
        elif e.kind is EventKind.CALL:
            calls[i] += 1
        elif e.service is McpService.VISION:
            vision[i] += 1
    # Equivalents per bucket are the increments of the cumulative count, so they sum to the gauge.
    equivalents = []
    cp = cc = cv = prev = 0
    for p, c, v in zip(prompts, calls, vision, strict=True):
        cp, cc, cv = cp + p, cc + c, cv + v
        total = prompt_equivalents(cp, cc, cv, calls_per_prompt)
        equivalents.append(total - prev)
        prev = total
    return Timeline(minutes, start, tuple(prompts), tuple(calls), tuple(equivalents))
