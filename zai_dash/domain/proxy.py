"""Proxy metrics (LiteLLM, another zai-dash), as pure rules.

Samples arrive already parsed (`zai_dash.sources.prometheus` does the HTTP and the parsing). Here:
metric maps and presets, matching samples to logical series, per-series deltas that survive counter
resets, "since this cycle started" sums, per-group rates, and merging several machines.
See `reference/proxy-metrics.md` §2, §4–§6.

Checked against a real LiteLLM 1.110.2 proxy (`conformance/litellm_check.py`): it still emits the
deprecated `litellm_requests_metric_total` beside its replacement with the same counts, so a series'
sample names are alternatives (the first one present wins), never summed; and it counts requests to
`/metrics` itself (a refused scrape shows up as a 401 request), so the scrape's own route is dropped.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

PROVENANCE = "proxy"
ALL = ""
"""Group key used when a sample has none of the group-by labels."""


class MetricSample(NamedTuple):
    """One parsed sample: the sample name (`…_total` kept), its labels and value."""

    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class LabelFilter:
    """`label = "value"` (equality) or `label = "~regex"` (full match)."""

    label: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether the sample's labels pass (a missing label is the empty string)."""
        actual = labels.get(self.label, "")
        if self.value.startswith("~"):
            return re.fullmatch(self.value[1:], actual) is not None
        return actual == self.value


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """How to compute one logical series.

    Attributes:
        samples: alternative sample names, best first: the first one present in a scrape is read and
            the others ignored (a deprecated name and its replacement count the same requests); `X`
            also matches `X_total` and the other way round.
        labels: filters every sample must pass (a subset: extra labels never stop a match).
        group_by: labels tried in order; the first present and non-empty one groups the values.
        kind: `counter` (deltas, resets detected) or `gauge` (read as is).
    """

    samples: tuple[str, ...]
    labels: tuple[LabelFilter, ...] = ()
    group_by: tuple[str, ...] = ()
    kind: str = "counter"

    def matches(self, sample: MetricSample, names: Sequence[str] | None = None) -> bool:
        """Whether a sample feeds this series (`names`: the alternative chosen for this scrape)."""
        if not _name_matches(sample.name, self.samples if names is None else names):
            return False
        return all(f.matches(sample.labels) for f in self.labels)

    def chosen(self, samples: Sequence[MetricSample]) -> tuple[str, ...]:
        """The first alternative name with a matching sample in this scrape (all of them when none has)."""
        for name in self.samples:
            if any(self.matches(s, (name,)) for s in samples):
                return (name,)
        return self.samples

    def group(self, labels: Mapping[str, str]) -> str:
        """The group a sample belongs to."""
        for name in self.group_by:
            value = labels.get(name)
            if value:
                return value
        return ALL


def _name_matches(name: str, wanted: Sequence[str]) -> bool:
    base = name[:-6] if name.endswith("_total") else name
    return any(w in (name, base) or (w.endswith("_total") and w[:-6] == base) for w in wanted)


MetricMap = Mapping[str, SeriesSpec]

_TOKENS_GROUP = ("model", "requested_model")

LITELLM_PRESET: dict[str, SeriesSpec] = {
    "requests_total": SeriesSpec(
        ("litellm_proxy_total_requests_metric_total", "litellm_requests_metric_total"),
        group_by=("requested_model", "model"),
    ),
    "requests_failed_total": SeriesSpec(
        ("litellm_proxy_failed_requests_metric_total", "litellm_llm_api_failed_requests_metric_total"),
        group_by=("requested_model", "model"),
    ),
    "rate_limited_total": SeriesSpec(
        ("litellm_proxy_failed_requests_metric_total",),
        labels=(LabelFilter("exception_status", "429"),),
        group_by=("requested_model", "model"),
    ),
    "tokens_input_total": SeriesSpec(
        ("litellm_input_tokens_metric_total", "litellm_input_tokens_total"), group_by=_TOKENS_GROUP
    ),
    "tokens_output_total": SeriesSpec(
        ("litellm_output_tokens_metric_total", "litellm_output_tokens_total"), group_by=_TOKENS_GROUP
    ),
    "tokens_total": SeriesSpec(
        ("litellm_total_tokens_metric_total", "litellm_total_tokens_total"), group_by=_TOKENS_GROUP
    ),
    "tokens_cached_total": SeriesSpec(("litellm_input_cached_tokens_metric_total",), group_by=_TOKENS_GROUP),
}
"""LiteLLM's proxy metrics (checked against the 1.110.2 names in the reference), grouped by model."""

ZAI_DASH_PRESET: dict[str, SeriesSpec] = {
    "prompts": SeriesSpec(("zai_dash_cycle_prompts",), group_by=("tool",), kind="gauge"),
    "calls": SeriesSpec(("zai_dash_cycle_calls",), group_by=("tool",), kind="gauge"),
    "calls_by_model": SeriesSpec(("zai_dash_cycle_calls",), group_by=("model",), kind="gauge"),
    "searches": SeriesSpec(("zai_dash_cycle_searches",), group_by=("tool",), kind="gauge"),
    "mcp_calls": SeriesSpec(("zai_dash_cycle_mcp_calls",), group_by=("service",), kind="gauge"),
    "month_mcp_calls": SeriesSpec(("zai_dash_month_mcp_calls",), group_by=("service",), kind="gauge"),
    "prompt_equivalents": SeriesSpec(("zai_dash_cycle_prompt_equivalents",), kind="gauge"),
    "cycle_end": SeriesSpec(("zai_dash_cycle_end_timestamp_seconds",), kind="gauge"),
    "official_percent": SeriesSpec(("zai_dash_official_percent",), group_by=("kind",), kind="gauge"),
    # Which machine(s) the exporter speaks for: one that is this dashboard's own counts once (domain/fleet.py).
    "machines": SeriesSpec(("zai_dash_info",), group_by=("machine",), kind="gauge"),
}
"""Another zai-dash's exporter (`zai_dash.exporter`): per-cycle counts are gauges there."""

PRESETS: dict[str, dict[str, SeriesSpec]] = {"litellm": LITELLM_PRESET, "zai-dash": ZAI_DASH_PRESET}


def parse_metric_map(raw: Mapping[str, Any]) -> tuple[dict[str, SeriesSpec], list[str]]:
    """Turn a config table (`logical = {samples = [...], labels = {k = v}, group_by = "model", kind}`)
    into specs.

    Returns:
        The specs that parsed, and one line per entry that did not (config errors, never raised).
    """
    specs: dict[str, SeriesSpec] = {}
    errors: list[str] = []
    for logical, entry in raw.items():
        if not isinstance(entry, Mapping):
            errors.append(f"metric map entry {logical!r} is not a table")
            continue
        samples = entry.get("samples")
        if isinstance(samples, str):
            samples = [samples]
        if not isinstance(samples, list) or not samples or not all(isinstance(s, str) for s in samples):
            errors.append(f'metric map entry {logical!r} needs samples = ["name", …]')
            continue
        labels = entry.get("labels", {})
        if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
            errors.append(f"metric map entry {logical!r}: labels must map label names to strings")
            continue
        bad_regex = [v for v in labels.values() if v.startswith("~") and not _valid_regex(v[1:])]
        if bad_regex:
            errors.append(f"metric map entry {logical!r}: bad regex {bad_regex[0]!r}")
            continue
        group_by = entry.get("group_by", ())
        if isinstance(group_by, str):
            group_by = (group_by,)
        kind = entry.get("kind", "counter")
        if kind not in ("counter", "gauge"):
            errors.append(f"metric map entry {logical!r}: kind must be counter or gauge")
            continue
        specs[str(logical)] = SeriesSpec(
            tuple(samples),
            tuple(LabelFilter(str(k), v) for k, v in labels.items()),
            tuple(str(g) for g in group_by),
            kind,
        )
    return specs, errors


def _valid_regex(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


def build_metric_map(
    preset: str | None, overrides: Mapping[str, SeriesSpec] | None = None, group_by: str | None = None
) -> dict[str, SeriesSpec]:
    """A preset's map with the user's entries winning; `group_by` regroups every preset entry.

    Raises:
        KeyError: for an unknown preset name (a config error the caller reports).
    """
    base: dict[str, SeriesSpec] = {}
    if preset and preset != "custom":
        base = dict(PRESETS[preset])
    if group_by:
        base = {
            k: SeriesSpec(s.samples, s.labels, (group_by, *[g for g in s.group_by if g != group_by]), s.kind)
            for k, s in base.items()
        }
    base.update(overrides or {})
    return base


def select(samples: Sequence[MetricSample], spec: SeriesSpec) -> dict[str, float]:
    """Sum the matching samples' values per group (current absolute values), of one alternative name."""
    out: dict[str, float] = {}
    names = spec.chosen(samples)
    for s in samples:
        if spec.matches(s, names):
            group = spec.group(s.labels)
            out[group] = out.get(group, 0.0) + s.value
    return out


def without_scrape_requests(samples: Iterable[MetricSample], paths: Iterable[str]) -> list[MetricSample]:
    """Drop the samples that count requests to the metrics endpoint itself (their `route` is its path).

    A proxy that counts every request (LiteLLM does) would otherwise show each scrape, or each refused
    one, as traffic. `paths` are the scraped paths (the configured one and any redirect target); a
    trailing slash does not matter.
    """
    own = {_path(p) for p in paths}
    return [s for s in samples if "route" not in s.labels or _path(s.labels["route"]) not in own]


def _path(path: str) -> str:
    return path.rstrip("/") or "/"


SeriesId = tuple[str, tuple[tuple[str, str], ...]]


def series_id(sample: MetricSample) -> SeriesId:
    """Identity of one time series: sample name plus its full label set."""
    return sample.name, tuple(sorted(sample.labels.items()))


@dataclass
class _Step:
    at: datetime
    deltas: dict[str, dict[str, float]]


@dataclass
class ProxyState:
    """What one endpoint's counters did over time, bounded by `horizon`.

    Counter deltas are computed per series (name + label set) between scrapes. A value lower than the
    last one means the proxy restarted: the new value is the increase since the restart (reference §5),
    so windowed sums survive restarts. The first scrape is only a baseline: counters count from the
    proxy's start, which says nothing about this cycle. A series first seen on a later scrape was born
    after the baseline, so its whole value is new.

    Attributes:
        metric_map: the logical series.
        horizon: how much history to keep (enough for one 5-hour cycle).
    """

    metric_map: Mapping[str, SeriesSpec]
    horizon: timedelta = timedelta(hours=6)
    first_at: datetime | None = None
    last_at: datetime | None = None
    resets: int = 0
    _last: dict[SeriesId, float] = field(default_factory=dict)
    _current: dict[str, dict[str, float]] = field(default_factory=dict)
    _history: deque[_Step] = field(default_factory=deque)

    def update(self, samples: Sequence[MetricSample], at: datetime) -> int:
        """Take one scrape; returns how many counter resets it showed."""
        baseline = self.first_at is None
        reset_ids: set[SeriesId] = set()
        seen: dict[SeriesId, float] = {}
        deltas: dict[str, dict[str, float]] = {}
        current: dict[str, dict[str, float]] = {}
        for logical, spec in self.metric_map.items():
            cur = current.setdefault(logical, {})
            step = deltas.setdefault(logical, {})
            names = spec.chosen(samples)
            for s in samples:
                if not spec.matches(s, names):
                    continue
                group = spec.group(s.labels)
                cur[group] = cur.get(group, 0.0) + s.value
                if spec.kind != "counter":
                    continue
                sid = series_id(s)
                seen[sid] = s.value
                prev = self._last.get(sid)
                if prev is None:
                    delta = 0.0 if baseline else s.value
                elif s.value < prev:
                    delta = s.value
                    reset_ids.add(sid)
                else:
                    delta = s.value - prev
                if delta:
                    step[group] = step.get(group, 0.0) + delta
        # Several logical series may share one sample: a set counts its reset once.
        self.resets += len(reset_ids)
        self._last = seen
        self._current = current
        if baseline:
            self.first_at = at
        self.last_at = at
        self._history.append(_Step(at, {k: v for k, v in deltas.items() if v}))
        while self._history and self._history[0].at < at - self.horizon:
            self._history.popleft()
        return len(reset_ids)

    def totals(self) -> dict[str, dict[str, float]]:
        """Latest absolute values per logical series and group (counters: since the proxy started)."""
        return {k: dict(v) for k, v in self._current.items()}

    def since(self, start: datetime | None) -> dict[str, dict[str, float]]:
        """Per logical series and group: the increase since `start` (gauges: the current value).

        With no `start` (no window open) counters have nothing to count; gauges still report.
        """
        out: dict[str, dict[str, float]] = {}
        for logical, spec in self.metric_map.items():
            if spec.kind != "counter":
                out[logical] = dict(self._current.get(logical, {}))
                continue
            acc: dict[str, float] = {}
            for step in self._history:
                if start is not None and step.at > start:
                    for group, delta in step.deltas.get(logical, {}).items():
                        acc[group] = acc.get(group, 0.0) + delta
            out[logical] = acc
        return out

    def rates(self, now: datetime, window: timedelta = timedelta(minutes=5)) -> dict[str, dict[str, float]]:
        """Per counter series and group: increase per minute over the last `window` (or since watching)."""
        if self.first_at is None:
            return {}
        start = max(now - window, self.first_at)
        minutes = (now - start).total_seconds() / 60
        if minutes <= 0:
            return {}
        counters = {k: v for k, v in self.since(start).items() if self.metric_map[k].kind == "counter"}
        return {k: {g: round(v / minutes, 3) for g, v in groups.items()} for k, groups in counters.items()}


def proxy_row(
    *,
    name: str,
    url: str,
    preset: str | None,
    state: ProxyState,
    status: str,
    message: str,
    now: datetime,
    cycle_start: datetime | None,
    stale_after: timedelta,
) -> dict[str, Any]:
    """One endpoint as a JSON-able mapping for `Snapshot.proxies`.

    Args:
        name: the endpoint's configured name (the machine, for a zai-dash exporter).
        url: the endpoint URL, already redacted.
        preset: the preset in use.
        state: its metric history.
        status: `ok` or an error class of the last attempt.
        message: the last attempt's one-line outcome.
        now: the instant.
        cycle_start: the current 5-hour window's start, for "since this cycle" (None: not started).
        stale_after: age past which values are marked stale.
    """
    age = (now - state.last_at).total_seconds() if state.last_at else None
    stale = status != "ok" or age is None or age > stale_after.total_seconds()
    since = state.since(cycle_start)
    return {
        "name": name,
        "url": url,
        "preset": preset,
        "status": status,
        "message": message,
        "provenance": PROVENANCE,
        "fetched_at": state.last_at,
        "age_seconds": round(age, 1) if age is not None else None,
        "stale": stale,
        "watching_since": state.first_at,
        # Counter deltas only cover the time zai-dash has been watching this endpoint.
        "since_cycle_partial": bool(cycle_start and state.first_at and state.first_at > cycle_start),
        "totals": state.totals(),
        "since_cycle": since,
        "rates_per_minute": state.rates(now),
        "resets": state.resets,
    }


def merge_machines(rows: Sequence[Mapping[str, Any]], series: str = "prompts") -> dict[str, dict[str, Any]]:
    """Merge one series across endpoints (several zai-dash exporters): group → total and per-machine.

    Args:
        rows: `proxy_row` mappings.
        series: the logical series (`prompts`, `calls`, `searches`, …).

    Returns:
        `{group: {"total": n, "by_machine": {endpoint name: n}, "stale": bool}}`; a stale endpoint's
        values are kept and flagged, never dropped.
    """
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        for group, value in row.get("since_cycle", {}).get(series, {}).items():
            entry = out.setdefault(group, {"total": 0.0, "by_machine": {}, "stale": False})
            entry["total"] += value
            entry["by_machine"][row["name"]] = value
            entry["stale"] = entry["stale"] or bool(row.get("stale"))
    return out
