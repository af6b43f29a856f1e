"""The "Proxies" panel: each configured metrics endpoint's status, counts since the cycle began and rates.

A LiteLLM-style proxy shows requests and tokens per model; another zai-dash's exporter (`preset =
"zai-dash"`) is a remote machine, whose counts are also split out per tool for the tools table
(`machine_rows`, via `zai_dash.domain.proxy.merge_machines`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zai_dash import text as fmt
from zai_dash.domain.proxy import ALL, merge_machines
from zai_dash.ui.live import ClockedPanel
from zai_dash.ui.official_panel import STALE_CUE, age_text, row_age, safe

EXPORTER_PRESET = "zai-dash"
SERIES_LABELS: dict[str, str] = {
    "requests_total": "requests",
    "requests_failed_total": "failed",
    "rate_limited_total": "429s",
    "tokens_input_total": "tokens in",
    "tokens_output_total": "tokens out",
    "tokens_total": "tokens",
    "tokens_cached_total": "cached",
    "prompts": "prompts",
    "calls": "calls",
    "searches": "searches",
    "prompt_equivalents": "prompt-eq",
    "mcp_calls": "MCP",
}
"""Display names of the preset series; custom series show under their own names."""
HIDDEN_SERIES = frozenset(
    {
        "calls_by_model",
        "cycle_end",
        "official_percent",
        "month_mcp_calls",
        "mcp_calls",
        "prompt_equivalents",
        "tokens_input_total",
        "tokens_output_total",
        "tokens_cached_total",
        "machines",
    }
)
"""Series left out of the counts line: not counts this cycle, or a split of another series shown."""
ALWAYS_SHOWN = frozenset({"requests_total", "tokens_total", "prompts", "calls", "searches"})
"""Series shown even at zero (the rest only when non-zero, so a quiet proxy stays one short line)."""
RATE_SERIES = ("requests_total", "calls", "prompts")
"""Which series' per-group rates lead the rates line, first present wins."""
MAX_RATE_GROUPS = 4
STATUS_CUES = {"ok": "✔ ok", "pending": "… waiting for the first scrape"}


def _total(groups: Mapping[str, float]) -> float:
    return sum(groups.values())


def _age(row: Mapping[str, Any], snap_at: datetime, now: datetime) -> str:
    age = row_age(row, snap_at, now) if row.get("fetched_at") is not None else None
    text = age_text(age) if age is not None else "no values yet"
    return f"[b]{STALE_CUE}[/b], {text}" if row.get("stale") and age is not None else text


def counts_text(row: Mapping[str, Any]) -> str:
    """`requests 12 · tokens 45,300`: each series' total since the cycle began (non-zero or preset ones)."""
    if row.get("fetched_at") is None:
        return ""  # never scraped: there are no counts, not zero counts
    since = row.get("since_cycle") or {}
    parts = []
    for series, groups in since.items():
        if series in HIDDEN_SERIES or not isinstance(groups, Mapping):
            continue
        total = _total(groups)
        if total or series in ALWAYS_SHOWN:
            parts.append(f"{safe(SERIES_LABELS.get(series, series))} {fmt.count(total)}")
    return " · ".join(parts)


def rates_text(row: Mapping[str, Any]) -> str:
    """`glm-4.6 1.2 req/min, 4,500 tok/min · …`: per-group rates over the last few minutes, busiest first."""
    rates = row.get("rates_per_minute") or {}
    lead = next((s for s in RATE_SERIES if rates.get(s)), None)
    if lead is None:
        lead = next((s for s, g in rates.items() if g), None)
    if lead is None:
        return ""
    unit = "req" if lead == "requests_total" else safe(SERIES_LABELS.get(lead, lead))
    tokens = rates.get("tokens_total") or {}
    groups = sorted(rates[lead].items(), key=lambda kv: -kv[1])[:MAX_RATE_GROUPS]
    parts = []
    for group, value in groups:
        name = safe(group) if group != ALL else "all"
        text = f"{name} {value:.1f} {unit}/min"
        if group in tokens:
            text += f", {fmt.count(tokens[group])} tok/min"
        parts.append(text)
    return " · ".join(parts)


def proxy_lines(row: Mapping[str, Any], snap_at: datetime, now: datetime) -> list[str]:
    """One endpoint: name and status, the last attempt's message when it failed, counts, rates."""
    name = safe(row.get("name", "?"))
    preset = safe(row["preset"]) if row.get("preset") else None
    status = str(row.get("status", "pending"))
    cue = STATUS_CUES.get(status, f"✖ {safe(status)}")
    head = f"[b]{name}[/b]" + (f" ({preset})" if preset else "") + f" {cue} · {_age(row, snap_at, now)}"
    lines = [head]
    if status != "ok" and row.get("message"):
        lines.append(f"  {safe(row['message'])}")
    counts = counts_text(row)
    if counts:
        # Counter deltas only cover the time zai-dash has watched; an exporter's gauges are whole.
        partial = (
            row.get("preset") != EXPORTER_PRESET
            and row.get("since_cycle_partial")
            and _when_text(row.get("watching_since"))
        )
        lines.append(f"  this cycle: {counts}" + (f" (since {partial})" if partial else ""))
    rates = rates_text(row)
    if rates:
        lines.append(f"  per minute: {rates}")
    return lines


def _when_text(value: Any) -> str:
    return fmt.hhmm(value, None) if isinstance(value, datetime) else ""


def remote_exporters(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The zai-dash exporter rows of other machines (this machine's own is in the local rows already)."""
    return [r for r in rows if r.get("preset") == EXPORTER_PRESET and r.get("counted") != "local"]


def merged_lines(rows: Sequence[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> list[str]:
    """For several zai-dash exporters: each tool's prompts, with the machine each count came from."""
    exporters = remote_exporters(rows)
    if not exporters:
        return []
    merged = merge_machines(exporters, "prompts")
    if not merged:
        return []
    parts = []
    for tool, entry in sorted(merged.items(), key=lambda kv: -kv[1]["total"]):
        by = ", ".join(f"{safe(m)} {fmt.count(n)}" for m, n in sorted(entry["by_machine"].items()))
        stale = f" {STALE_CUE}" if entry["stale"] else ""
        parts.append(f"{safe((names or {}).get(tool, tool or 'all'))} {fmt.count(entry['total'])} ({by}){stale}")
    return ["prompts by machine: " + " · ".join(parts)]


def compact_line(row: Mapping[str, Any]) -> str:
    """One short line per endpoint for short and narrow screens."""
    status = str(row.get("status", "pending"))
    cue = "✔" if status == "ok" else "…" if status == "pending" else f"✖ {safe(status)}"
    text = f"{safe(row.get('name', '?'))} {cue}"
    counts = counts_text(row)
    if counts:
        text += f" {counts}"
    if row.get("stale"):
        text += f" {STALE_CUE}"
    return text


def proxies_text(
    rows: Sequence[Mapping[str, Any]],
    snap_at: datetime,
    now: datetime,
    *,
    compact: bool = False,
    names: Mapping[str, str] | None = None,
) -> str:
    """The panel's text (`names`: tool id → human name, the snapshot's `tool_names`)."""
    if compact:
        return "\n".join(compact_line(r) for r in rows)
    lines = [line for r in rows for line in proxy_lines(r, snap_at, now)]
    return "\n".join(lines + merged_lines(rows, names))


@dataclass(frozen=True, slots=True)
class MachineRow:
    """One tool's counts this cycle on another machine (read from its zai-dash exporter)."""

    machine: str
    tool: str
    name: str
    prompts: float
    calls: float
    searches: float
    stale: bool

    @property
    def key(self) -> str:
        """Row key in the tools table (never a tool id, so it cannot collide with a local row)."""
        return f"@{self.machine}/{self.tool}"


def machine_rows(rows: Sequence[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> list[MachineRow]:
    """Per machine and tool, the prompts, calls and searches of every zai-dash exporter row.

    Args:
        rows: the snapshot's proxy rows.
        names: tool id → human name (the snapshot's `tool_names`).
    """
    exporters = remote_exporters(rows)
    cells: dict[tuple[str, str], dict[str, float]] = {}
    stale: dict[str, bool] = {str(r.get("name")): bool(r.get("stale")) for r in exporters}
    for series in ("prompts", "calls", "searches"):
        for tool, entry in merge_machines(exporters, series).items():
            for machine, value in entry["by_machine"].items():
                cells.setdefault((machine, tool), {})[series] = value
    out = []
    for (machine, tool), counts in sorted(cells.items()):
        if not any(counts.values()):
            continue
        out.append(
            MachineRow(
                machine=machine,
                tool=tool,
                name=(names or {}).get(tool, tool or "all tools"),
                prompts=counts.get("prompts", 0.0),
                calls=counts.get("calls", 0.0),
                searches=counts.get("searches", 0.0),
                stale=stale.get(machine, False),
            )
        )
    return out


class ProxyPanel(ClockedPanel):
    """Every configured metrics endpoint; hidden (by class) when none is configured."""

    DEFAULT_CSS = """
    ProxyPanel { height: auto; width: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows: tuple[Mapping[str, Any], ...] = ()
        self.snap_at: datetime | None = None
        self.names: Mapping[str, str] = {}

    def set_rows(
        self,
        rows: Sequence[Mapping[str, Any]],
        snap_at: datetime,
        now: datetime,
        names: Mapping[str, str] | None = None,
    ) -> None:
        """Take a snapshot's proxy rows (and its tool names)."""
        self.rows = tuple(rows)
        self.names = names or {}
        self.snap_at = snap_at
        self.set_class(bool(self.rows), "-shown")
        self.set_class(any(r.get("status") not in ("ok", "pending") for r in self.rows), "-error")
        self.tick(now)

    def text_at(self, now: datetime) -> str | None:
        """Ages at `now` (compact: one line per endpoint)."""
        if self.snap_at is None or not self.rows:
            return None
        return proxies_text(self.rows, self.snap_at, now, compact=self.compact, names=self.names)
