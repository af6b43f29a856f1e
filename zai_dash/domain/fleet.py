"""The fleet: every machine's `zai-dash export` series, read back from a Prometheus server, as pure rules.

`zai_dash.sources.fleet` asks Prometheus one PromQL query (`FLEET_QUERY`) whose `max by (…, machine)`
already folds duplicate scrapes of one exporter (two jobs, two Prometheus targets) into one series. Here:
per-machine figures, remembered so a machine that stops answering keeps its last values marked stale,
and the account totals with each number's source.

No double counting: a machine whose usage is already in the local ledger (this machine, or a host whose
Claude Code sends OTLP here) is shown but counted from the local figures, never from its fleet row. So a
dashboard whose Prometheus also scrapes its own exporter counts that machine once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from zai_dash.domain.proxy import MetricSample

PROVENANCE = "fleet"
SERIES = (
    "snapshot_timestamp_seconds",
    "cycle_prompt_equivalents",
    "cycle_prompts",
    "cycle_calls",
    "month_mcp_calls",
    "cycle_end_timestamp_seconds",
    "official_percent",
    "credits",
    "cycle_credits",
)
"""The exporter's series the fleet reads (`zai_dash_<name>`): `credits` is per window (`5h`, `weekly`, …),
`cycle_credits` per tool and model in the 5-hour window."""
GROUP_LABELS = ("machine", "tool", "model", "service", "kind", "window")
FLEET_QUERY = f'max by (__name__, {", ".join(GROUP_LABELS)}) ({{__name__=~"zai_dash_({"|".join(SERIES)})"}})'
"""One instant query for every machine: `max` folds one exporter scraped twice into one series."""
FIVE_HOUR = "five-hour"
"""The official row kind of the 5-hour window (`zai_dash.domain.official`)."""
STALE_SNAPSHOT = timedelta(minutes=5)
"""A machine whose exporter's snapshot is older than this is stale (its engine stopped, or its scrapes)."""


FleetSample = MetricSample
"""One series of the query's result: the name without the `zai_dash_` prefix, labels, value."""


@dataclass(frozen=True, slots=True)
class MachineFigures:
    """What one machine's exporter said at its last scrape."""

    machine: str
    prompt_equivalents: float = 0.0
    prompts: float = 0.0
    calls: float = 0.0
    month_searches: float = 0.0
    calls_by_model: Mapping[str, float] = field(default_factory=dict)
    credits: Mapping[str, float] = field(default_factory=dict)
    """Credits per window (`5h`, `weekly`, `previous-week`)."""
    credits_by_model: Mapping[str, float] = field(default_factory=dict)
    """Credits in the 5-hour window by the model each call asked for."""
    snapshot_at: datetime | None = None
    cycle_end: datetime | None = None
    official_percent: Mapping[str, float] = field(default_factory=dict)


def _when(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=timezone.utc) if value else None


def machines_from(samples: Iterable[FleetSample]) -> dict[str, MachineFigures]:
    """Per-machine figures from the query's series (a series without a `machine` label is ignored)."""
    acc: dict[str, dict[str, Any]] = {}
    for s in samples:
        machine = s.labels.get("machine")
        if not machine:
            continue
        m = acc.setdefault(
            machine, {"calls_by_model": {}, "credits": {}, "credits_by_model": {}, "official_percent": {}}
        )
        if s.name == "cycle_prompt_equivalents":
            m["prompt_equivalents"] = s.value
        elif s.name == "cycle_prompts":
            m["prompts"] = m.get("prompts", 0.0) + s.value
        elif s.name == "cycle_calls":
            m["calls"] = m.get("calls", 0.0) + s.value
            model = s.labels.get("model") or "unknown"
            m["calls_by_model"][model] = m["calls_by_model"].get(model, 0.0) + s.value
        elif s.name == "month_mcp_calls" and s.labels.get("service") != "vision":
            m["month_searches"] = m.get("month_searches", 0.0) + s.value
        elif s.name == "credits":
            window = s.labels.get("window") or "5h"
            m["credits"][window] = m["credits"].get(window, 0.0) + s.value
        elif s.name == "cycle_credits":
            model = s.labels.get("model") or "unknown"
            m["credits_by_model"][model] = m["credits_by_model"].get(model, 0.0) + s.value
        elif s.name == "official_percent":
            m["official_percent"][s.labels.get("kind") or ""] = s.value
        elif s.name == "snapshot_timestamp_seconds":
            m["snapshot_at"] = _when(s.value)
        elif s.name == "cycle_end_timestamp_seconds":
            m["cycle_end"] = _when(s.value)
    return {name: MachineFigures(machine=name, **fields) for name, fields in acc.items()}


class FleetState:
    """The last figures of every machine ever seen, and when each was last in a query's result."""

    def __init__(self) -> None:
        self.machines: dict[str, MachineFigures] = {}
        self.seen_at: dict[str, datetime] = {}
        self.fetched_at: datetime | None = None

    def update(self, samples: Iterable[FleetSample], at: datetime) -> int:
        """Fold one query result in; returns how many machines it named."""
        fresh = machines_from(samples)
        self.machines.update(fresh)
        for name in fresh:
            self.seen_at[name] = at
        self.fetched_at = at
        return len(fresh)


@dataclass(frozen=True, slots=True)
class LocalFigures:
    """This dashboard's own numbers (from its ledger), which the fleet's totals start from."""

    prompt_equivalents: float
    prompts: float
    calls: float
    month_searches: float
    prompt_limit: float
    credits: Mapping[str, float] = field(default_factory=dict)
    credits_by_model: Mapping[str, float] = field(default_factory=dict)


def _row(m: MachineFigures, *, counted: str, stale: bool, now: datetime, seen_at: datetime | None) -> dict[str, Any]:
    age = (now - m.snapshot_at).total_seconds() if m.snapshot_at else None
    return {
        "machine": m.machine,
        "counted": counted,
        "provenance": PROVENANCE,
        "prompt_equivalents": round(m.prompt_equivalents, 3),
        "prompts": m.prompts,
        "calls": m.calls,
        "month_searches": m.month_searches,
        "calls_by_model": dict(sorted(m.calls_by_model.items())),
        "credits": dict(m.credits),
        "credits_by_model": dict(sorted(m.credits_by_model.items())),
        "official_percent": dict(m.official_percent),
        "snapshot_at": m.snapshot_at,
        "age_seconds": round(age, 1) if age is not None else None,
        "seen_at": seen_at,
        "cycle_end": m.cycle_end,
        "stale": stale,
    }


def fleet_view(
    state: FleetState,
    *,
    local: LocalFigures,
    local_machines: Sequence[str],
    now: datetime,
    status: str,
    message: str,
    url: str,
    stale_after: timedelta,
    official_percent: float | None = None,
) -> dict[str, Any]:
    """`Snapshot.fleet`: per-machine rows and account totals, each figure with its source.

    Args:
        state: what the fleet source has read.
        local: this dashboard's figures.
        local_machines: machines whose usage is already in `local` (this one first, then OTLP senders).
        now: the instant.
        status: the last query's outcome class (`ok`, `network`, …; `pending` before the first).
        message: its one-line message.
        url: the Prometheus server, redacted.
        stale_after: query results older than this are stale.
        official_percent: Z.ai's own 5-hour percentage from this dashboard's `[api]`, if on.
    """
    here = local_machines[0] if local_machines else None
    in_ledger = set(local_machines)
    query_stale = status != "ok" or state.fetched_at is None or now - state.fetched_at > stale_after
    rows: list[dict[str, Any]] = []
    remote = LocalFigures(0, 0, 0, 0, local.prompt_limit)
    credits: dict[str, float] = dict(local.credits)
    by_model: dict[str, float] = dict(local.credits_by_model)
    stale_counted = False
    for name in sorted(state.machines, key=lambda n: (n != here, n)):
        m = state.machines[name]
        seen = state.seen_at.get(name)
        stale = (
            query_stale
            or seen != state.fetched_at
            or m.snapshot_at is None
            or now - m.snapshot_at > max(stale_after, STALE_SNAPSHOT)
        )
        counted = "local" if name in in_ledger else "fleet"
        rows.append({**_row(m, counted=counted, stale=stale, now=now, seen_at=seen), "here": name == here})
        if counted == "fleet":
            stale_counted = stale_counted or stale
            remote = LocalFigures(
                remote.prompt_equivalents + m.prompt_equivalents,
                remote.prompts + m.prompts,
                remote.calls + m.calls,
                remote.month_searches + m.month_searches,
                local.prompt_limit,
            )
            for window, value in m.credits.items():
                credits[window] = credits.get(window, 0.0) + value
            for model, value in m.credits_by_model.items():
                by_model[model] = by_model.get(model, 0.0) + value
    if here is not None and here not in state.machines:
        rows.insert(0, _local_row(here, local, now))
    equivalents = local.prompt_equivalents + remote.prompt_equivalents
    percent = 100 * equivalents / local.prompt_limit if local.prompt_limit else 0.0
    fleet_official = [
        (r["official_percent"][FIVE_HOUR], r["machine"])
        for r in rows
        if FIVE_HOUR in r["official_percent"] and not r["stale"]
    ]
    return {
        "url": url,
        "status": status,
        "message": message,
        "provenance": PROVENANCE,
        "fetched_at": state.fetched_at,
        "age_seconds": round((now - state.fetched_at).total_seconds(), 1) if state.fetched_at else None,
        "stale": query_stale,
        "machines": rows,
        "totals": {
            "provenance": "local+fleet",
            "stale": stale_counted,
            "machines": len(rows),
            "prompt_equivalents": round(equivalents, 3),
            "percent": round(percent, 1),
            "prompts": local.prompts + remote.prompts,
            "calls": local.calls + remote.calls,
            "month_searches": local.month_searches + remote.month_searches,
            "credits": {w: round(v, 3) for w, v in credits.items()},
            "credits_by_model": {k: round(v, 3) for k, v in sorted(by_model.items())},
            "local": {"prompt_equivalents": local.prompt_equivalents, "provenance": "local"},
            "fleet": {"prompt_equivalents": round(remote.prompt_equivalents, 3), "provenance": PROVENANCE},
        },
        "official": _official(official_percent, fleet_official),
    }


def _local_row(name: str, local: LocalFigures, now: datetime) -> dict[str, Any]:
    """This machine's row when Prometheus does not scrape it: its figures come from the ledger anyway."""
    m = MachineFigures(
        machine=name, prompt_equivalents=local.prompt_equivalents, prompts=local.prompts, calls=local.calls,
        month_searches=local.month_searches, credits=local.credits, credits_by_model=local.credits_by_model,
        snapshot_at=now,
    )  # fmt: skip
    row = _row(m, counted="local", stale=False, now=now, seen_at=None)
    row["provenance"] = "local"
    row["here"] = True
    return row


def _official(mine: float | None, fleet: Sequence[tuple[float, str]]) -> dict[str, Any] | None:
    """Z.ai's meter: this dashboard's own reading, else the highest fresh one another machine exported.

    It is one account's meter wherever it is read; within a window it only grows, so the highest is the latest.
    """
    if mine is not None:
        return {"percent": mine, "provenance": "official", "via": "local"}
    if fleet:
        percent, machine = max(fleet)
        return {"percent": percent, "provenance": "official", "via": machine}
    return None


def mark_self_scrapes(rows: Sequence[Mapping[str, Any]], local_machines: Iterable[str]) -> tuple[dict[str, Any], ...]:
    """Proxy rows (`Snapshot.proxies`) with `counted = "local"` on a zai-dash exporter of a local machine.

    A `[[proxy]] preset = "zai-dash"` pointed at this dashboard's own `zai-dash export` would otherwise add
    this machine's counts a second time; the views leave such rows out of machine rows and merges.
    """
    local = set(local_machines)
    out = []
    for row in rows:
        machines = set((row.get("since_cycle") or {}).get("machines") or {})
        if machines and machines <= local:
            row = {**row, "counted": "local"}
        out.append(dict(row))
    return tuple(out)


def _age_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f}m" if seconds < 5400 else f"{seconds / 3600:.0f}h"


def _num(value: float) -> str:
    return f"{value:,.1f}" if value != int(value) else f"{int(value):,}"


def _cells(name: str, figures: Mapping[str, Any]) -> str:
    """One row of the fleet table: prompt-equivalents, 5-hour credits, prompts, calls, searches."""
    credits = round((figures.get("credits") or {}).get("5h", 0), 1)
    return (
        f"  {name[:18]:<18} {_num(figures.get('prompt_equivalents', 0)):>9} {_num(credits):>8} "
        f"{_num(figures.get('prompts', 0)):>7} {_num(figures.get('calls', 0)):>6} "
        f"{_num(figures.get('month_searches', 0)):>6}"
    )


def report_lines(fleet: Mapping[str, Any]) -> list[str]:
    """`Snapshot.fleet` as text: one row per machine, then the account's totals, each with its source.

    `report` prints these; the dashboard's fleet panel shows them.
    """
    stale = " STALE" if fleet.get("stale") else ""
    header = f"{'machine':<18} {'prompt-eq':>9} {'cr 5h':>8} {'prompts':>7} {'calls':>6} {'search':>6}"
    lines = [
        f"fleet     Prometheus {fleet.get('url')}: {fleet.get('message')} "
        f"({_age_text(fleet.get('age_seconds'))} ago){stale}",
        f"  {header}  {'age':>4}  counted",
    ]
    for row in fleet.get("machines", ()):
        here = " (here)" if row.get("here") else ""
        lines.append(
            _cells(str(row.get("machine")) + here, row)
            + f"  {_age_text(row.get('age_seconds')):>4}  {row.get('counted')}"
            + (" STALE" if row.get("stale") else "")
        )
    t = fleet.get("totals", {})
    local, remote = t.get("local", {}), t.get("fleet", {})
    official = fleet.get("official")
    meter = f"  official {official['percent']:.0f}% (via {official['via']})" if official else ""
    lines.append(
        _cells("account", t)
        + f"  = local {_num(local.get('prompt_equivalents', 0))} + fleet {_num(remote.get('prompt_equivalents', 0))}"
        + f" ({t.get('percent', 0):.0f}% of the pool){meter}"
        + (" STALE" if t.get("stale") else "")
    )
    credits = t.get("credits") or {}
    if credits:
        by_window = " · ".join(f"{w} {_num(round(v, 1))}" for w, v in sorted(credits.items()))
        models = " · ".join(f"{m} {_num(round(v, 1))}" for m, v in (t.get("credits_by_model") or {}).items())
        lines.append(f"  credits   {by_window}" + (f"  (5h by model: {models})" if models else ""))
    return lines
