"""The meter as dated data: pools, model rates, routing, peak hours, campaigns and legacy prompt rates.

A `Tariff` is built from a mapping (the packaged `data/tariff.toml` deep-merged with the user's `[tariff]`
table) and answers every question by instant, so replaying an old day prices it with that day's rates.
The file's layout and its dated-value rules are described at its top.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from zai_dash.domain.events import EventKind, McpService, UsageEvent

BILLINGS = ("credits", "legacy-v2", "legacy-v1")
"""The billing generations, newest first (metering.md §1)."""

WINDOW_IDS = ("5h", "weekly", "monthly-mcp")
"""Every metered window, in display order."""

TOKENS_PER_RATE = 10_000
"""Rates are credits per this many tokens."""

ALWAYS = "always"
"""The key of a dated value's version with no known start."""

_CALL = EventKind.CALL
_MCP = EventKind.MCP
_MINUTES_A_DAY = 24 * 60
_CACHE_LIMIT = 4096
"""Entries per lookup cache (keyed by day, model and tool) before it starts over: memory stays bounded."""
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TOP_KEYS = frozenset(
    {
        "timezone",
        "default_model",
        "billing",
        "rates",
        "routing",
        "mcp",
        "peak",
        "off_peak_factor",
        "prompt_rates",
        "campaigns",
        "unverified",
    }
)
_CAMPAIGN_KEYS = frozenset(
    {"from", "until", "hours", "tools", "except_tools", "models", "factor", "off_peak", "legacy"}
)
_SERVICES = frozenset(s.value for s in McpService)
_CONTEXT_TAG = re.compile(r"\[[^\]]*\]$")
_OFFSET = re.compile(r"^(?:UTC)?([+-])(\d{1,2}):?(\d{2})?$")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class WindowPool:
    """The size of one metered window on one plan.

    Attributes:
        id: `5h`, `weekly` or `monthly-mcp`.
        unit: `credits`, `prompts` or `calls`.
        limit: the pool, in that unit.
    """

    id: str
    unit: str
    limit: float


@dataclass(frozen=True, slots=True)
class Rates:
    """Credits per 10,000 tokens of each kind, for one billed model (metering.md §2)."""

    input: float
    cached: float
    output: float


@dataclass(frozen=True, slots=True)
class BilledModel:
    """What a request naming `requested` is billed as.

    Attributes:
        requested: the model the tool asked for, as logged (None when unknown).
        billed: the model whose rates apply (the tariff's default when the name is unknown).
        known: False when the tariff has no rates for the name and the default was used.
    """

    requested: str | None
    billed: str
    known: bool


@dataclass(frozen=True, slots=True)
class TariffEntry:
    """One line of the tariff in effect, as `doctor` prints it.

    Attributes:
        section: the table it lives in (`billing.credits.plans.pro`, `rates`, `tariff` for top-level ones).
        key: the entry within it (`5h`, `glm-5.3`, …).
        value: the value, formatted for people.
        valid_from: the day the version in effect took effect (None: no known start).
        unverified: the reference does not confirm it (the user may want to override it).
        note: why it is unverified, or other context.
    """

    section: str
    key: str
    value: str
    valid_from: date | None
    unverified: bool
    note: str = ""


class TariffError(ValueError):
    """A bad tariff entry. `path` names it (`rates`, `glm-5.3`, `2026-09-01`, `input`)."""

    def __init__(self, path: Iterable[str], problem: str) -> None:
        self.path = tuple(path)
        self.key = ".".join(self.path)
        super().__init__(f"tariff.{self.key}: {problem}" if self.path else f"tariff: {problem}")


_Versions = tuple[tuple[date | None, Any], ...]
"""A dated value: (valid-from day or None, value), oldest first."""


@dataclass(frozen=True, slots=True)
class _Span:
    """A daily span of local time, in minutes since midnight (may cross midnight)."""

    start: int
    end: int

    def contains(self, minute: int) -> bool:
        if self.start <= self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}–{self.end // 60:02d}:{self.end % 60:02d}"


@dataclass(frozen=True, slots=True)
class _Peak:
    days: frozenset[int]
    span: _Span


@dataclass(frozen=True, slots=True)
class _PromptRate:
    peak: float
    off_peak: float


@dataclass(frozen=True, slots=True)
class _Campaign:
    name: str
    first: date
    last: date | None
    span: _Span | None
    tools: frozenset[str] | None
    except_tools: frozenset[str]
    models: frozenset[str] | None
    factor: float
    off_peak: bool
    legacy: bool

    def covers(self, day: date, minute: int) -> bool:
        if day < self.first or (self.last is not None and day > self.last):
            return False
        return self.span is None or self.span.contains(minute)

    def applies(self, tool: str | None, billed: str | None) -> bool:
        if tool is not None and tool in self.except_tools:
            return False
        if self.tools is not None and tool not in self.tools:
            return False
        return self.models is None or billed in self.models

    @property
    def unconditional(self) -> bool:
        return self.tools is None and not self.except_tools and self.models is None


@dataclass(frozen=True, slots=True)
class _Billing:
    unit: str
    calls_per_prompt: int
    plans: Mapping[str, Mapping[str, _Versions]]


def normalise_model(model: str) -> str:
    """The tariff's key for a model name: lower case, no provider prefix, no context tag (`[1m]`)."""
    text = model.strip().lower().rsplit("/", 1)[-1]
    return _CONTEXT_TAG.sub("", text).strip()


class Tariff:
    """The meter: pools, prices and rates, each looked up by instant. Build with `tariff_from_mapping`."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise TariffError([unknown[0]], f"unknown entry (known: {', '.join(sorted(_TOP_KEYS))})")
        self._tz = _offset(data.get("timezone", "+08:00"), ["timezone"])
        self.default_model = normalise_model(_text(data.get("default_model", "glm-5.3"), ["default_model"]))
        self._billings = _billings(_table(data.get("billing", {}), ["billing"]))
        self._rates = {
            normalise_model(m): _dated(v, ["rates", m], _rates_value)
            for m, v in _table(data.get("rates", {}), ["rates"]).items()
        }
        self._routing = {
            normalise_model(m): _dated(v, ["routing", m], lambda x, p: normalise_model(_text(x, p)))
            for m, v in _table(data.get("routing", {}), ["routing"]).items()
        }
        self._mcp: dict[str, _Versions] = {}
        for name, v in _table(data.get("mcp", {}), ["mcp"]).items():
            if name not in _SERVICES:
                raise TariffError(["mcp", name], "unknown MCP service (known: search, reader, zread, vision)")
            self._mcp[name] = _dated(v, ["mcp", name], _number)
        self._peak = _dated(data.get("peak", {ALWAYS: {"days": [], "hours": "00:00-00:00"}}), ["peak"], _peak_value)
        self._off_peak = _dated(data.get("off_peak_factor", 1.0), ["off_peak_factor"], _number)
        self._prompt_rates = {
            normalise_model(m): _dated(v, ["prompt_rates", m], _prompt_rate_value)
            for m, v in _table(data.get("prompt_rates", {}), ["prompt_rates"]).items()
        }
        self._campaigns = tuple(
            _campaign(name, row, ["campaigns", name])
            for name, row in _table(data.get("campaigns", {}), ["campaigns"]).items()
        )
        self._unverified = _table(data.get("unverified", {}), ["unverified"])
        if self.default_model not in self._rates:
            raise TariffError(["default_model"], f"{self.default_model!r} has no rates")
        self._billed_cache: dict[tuple[str | None, date], BilledModel] = {}
        self._price_cache: dict[tuple[str | None, date], tuple[str, Rates]] = {}
        self._factor_cache: dict[tuple[date, str | None, str | None], tuple[list[int], list[float]]] = {}
        self._entries_cache: dict[tuple[date, str | None, str | None], tuple[TariffEntry, ...]] = {}

    # ── pools ────────────────────────────────────────────────────────────────────────────────────────

    @property
    def billings(self) -> tuple[str, ...]:
        """The billing generations the tariff defines."""
        return tuple(self._billings)

    def plan_names(self, billing: str) -> tuple[str, ...]:
        """The tiers of a billing generation, in file order.

        Raises:
            KeyError: an unknown billing generation.
        """
        return tuple(self._billings[billing].plans)

    def pools(self, billing: str, plan: str, at: datetime) -> tuple[WindowPool, ...]:
        """The windows of `plan` on `billing` and the size of each, as valid at `at`.

        Raises:
            KeyError: an unknown billing generation, or a plan it does not sell.
        """
        gen = self._billings[billing]
        windows = gen.plans[plan]
        day = self._day(at)
        return tuple(
            WindowPool(wid, "calls" if wid == "monthly-mcp" else gen.unit, float(_at(windows[wid], day)[1]))
            for wid in WINDOW_IDS
            if wid in windows
        )

    def unit(self, billing: str) -> str:
        """What the 5-hour and weekly pools of `billing` count (`credits` or `prompts`)."""
        return self._billings[billing].unit

    def calls_per_prompt(self, billing: str) -> int:
        """Model calls that make one prompt-equivalent on a legacy generation (15 where not given)."""
        return self._billings[billing].calls_per_prompt

    # ── models and prices ────────────────────────────────────────────────────────────────────────────

    def billed_model(self, model: str | None, at: datetime) -> BilledModel:
        """What a request naming `model` at `at` is billed as (routing, aliases, the unknown default)."""
        day = self._day(at)
        key = (model, day)
        found = self._billed_cache.get(key)
        if found is None:
            if len(self._billed_cache) > _CACHE_LIMIT:
                self._billed_cache.clear()
            found = self._billed_cache[key] = self._route(model, day)
        return found

    def _route(self, model: str | None, day: date) -> BilledModel:
        if model is None or not normalise_model(model):
            return BilledModel(model, self.default_model, False)
        name = normalise_model(model)
        seen = {name}
        while name in self._routing:
            valid_from, target = _at(self._routing[name], day)
            if (valid_from is not None and valid_from > day) or target in seen:
                # A route starts on its first day: before it the name was billed as itself.
                break
            seen.add(target)
            name = target
        if name in self._rates:
            return BilledModel(model, name, True)
        return BilledModel(model, self.default_model, False)

    def rates(self, model: str | None, at: datetime) -> Rates:
        """The per-model multipliers valid at `at` for what `model` is billed as (before off-peak/campaigns)."""
        billed = self.billed_model(model, at).billed
        rates: Rates = _at(self._rates[billed], self._day(at))[1]
        return rates

    def is_peak(self, at: datetime) -> bool:
        """Whether model usage on credit plans is charged the peak price at `at`.

        The peak schedule in effect that day, unless a campaign open to every tool and model charges the
        off-peak rate all day.
        """
        day, minute = self._local(at)
        if not self._scheduled_peak(day, minute):
            return False
        return not any(c.off_peak and c.unconditional and c.covers(day, minute) for c in self._campaigns)

    def _scheduled_peak(self, day: date, minute: int) -> bool:
        peak: _Peak = _at(self._peak, day)[1]
        return day.weekday() in peak.days and peak.span.contains(minute)

    def credit_factor(self, at: datetime, tool: str | None = None, billed: str | None = None) -> float:
        """The share of the peak price charged at `at` (off-peak discount and campaigns) for model usage.

        Args:
            at: when the request was made.
            tool: the tool that made it (campaigns may be for one tool only).
            billed: the billed model (campaigns may be for one model only).
        """
        day, minute = self._local(at)
        starts, factors = self._day_factors(day, tool, billed)
        return factors[bisect_right(starts, minute) - 1]

    def _day_factors(self, day: date, tool: str | None, billed: str | None) -> tuple[list[int], list[float]]:
        """The price factor over one local day, as (start minute, factor) steps, cached per day."""
        key = (day, tool, billed)
        found = self._factor_cache.get(key)
        if found is None:
            if len(self._factor_cache) > _CACHE_LIMIT:
                self._factor_cache.clear()
            # The factor can only change where the peak span or a campaign's hours begin or end.
            spans = [_at(self._peak, day)[1].span, *(c.span for c in self._campaigns if c.span is not None)]
            starts = sorted({0, *(m for span in spans for m in (span.start, span.end) if m < _MINUTES_A_DAY)})
            found = self._factor_cache[key] = (starts, [self._factor(day, m, tool, billed) for m in starts])
        return found

    def _factor(self, day: date, minute: int, tool: str | None, billed: str | None) -> float:
        active = [c for c in self._campaigns if c.covers(day, minute) and c.applies(tool, billed)]
        peak = self._scheduled_peak(day, minute) and not any(c.off_peak for c in active)
        factor = 1.0 if peak else float(_at(self._off_peak, day)[1])
        for campaign in active:
            factor *= campaign.factor
        return factor

    def call_credits(self, event: UsageEvent) -> float:
        """Credits an event costs on a credit plan, priced at `event.ts`.

        A model call: `((input − cached) × in + cached × cached + output × out) / 10,000` at the rates of its
        billed model, times `credit_factor`. An MCP call: `mcp_credits`. A prompt costs nothing by itself.
        """
        kind = event.kind
        if kind is _CALL:
            return self.tokens_credits(
                event.model, event.tool, event.ts, event.input_tokens, event.cached_tokens, event.output_tokens
            )
        if kind is _MCP and event.service is not None:
            return self.mcp_credits(event.service, event.ts)
        return 0.0

    def tokens_credits(
        self, model: str | None, tool: str | None, at: datetime, input_tokens: int, cached_tokens: int, output: int
    ) -> float:
        """Credits of tokens sent to `model` by `tool` at `at` (`input_tokens` includes `cached_tokens`).

        The price is linear in the tokens and constant within a minute, so a ledger may sum the tokens of a
        minute (or of any span the peak hours and campaigns do not cut) and price them once.
        """
        # The hot path of pricing a whole history: one time-zone conversion, cached lookups per day.
        day, minute = self._local(at)
        price = self._price_cache.get((model, day))
        if price is None:
            if len(self._price_cache) > _CACHE_LIMIT:
                self._price_cache.clear()
            billed = self._route(model, day).billed
            price = self._price_cache[(model, day)] = (billed, _at(self._rates[billed], day)[1])
        billed, rates = price
        starts, factors = self._day_factors(day, tool, billed)
        inp = input_tokens if input_tokens > 0 else 0
        cached = cached_tokens if 0 < cached_tokens <= inp else (inp if cached_tokens > inp else 0)
        out = output if output > 0 else 0
        tokens = (inp - cached) * rates.input + cached * rates.cached + out * rates.output
        return tokens / TOKENS_PER_RATE * factors[bisect_right(starts, minute) - 1]

    def mcp_credits(self, service: McpService, at: datetime) -> float:
        """Credits one MCP call costs at `at`: flat for search/reader/zread; for vision the estimate, off-peak aware."""
        versions = self._mcp.get(service.value)
        if versions is None:
            return 0.0
        value = float(_at(versions, self._day(at))[1])
        if service is McpService.VISION:
            value *= self.credit_factor(at)
        return value

    def mcp_is_estimate(self, service: McpService) -> bool:
        """True where the per-call figure is an estimate rather than the published price (vision)."""
        return service is McpService.VISION

    def prompt_rate(self, model: str | None, at: datetime) -> float:
        """How many prompts one prompt on `model` at `at` counts as on a legacy plan (GLM-5.3 at peak: 3)."""
        billed = self.billed_model(model, at).billed
        day, minute = self._local(at)
        active = [c for c in self._campaigns if c.legacy and c.covers(day, minute) and c.applies(None, billed)]
        versions = self._prompt_rates.get(billed)
        if versions is None:
            rate = 1.0
        else:
            row: _PromptRate = _at(versions, day)[1]
            peak = self._scheduled_peak(day, minute) and not any(c.off_peak for c in active)
            rate = row.peak if peak else row.off_peak
        for campaign in active:
            rate *= campaign.factor
        return rate

    # ── what doctor prints ───────────────────────────────────────────────────────────────────────────

    def entries(self, at: datetime, billing: str | None = None, plan: str | None = None) -> tuple[TariffEntry, ...]:
        """Every entry in effect at `at` (and campaigns running or still to come), for `doctor`.

        Args:
            at: the instant whose versions are shown.
            billing: only what meters this generation (its pools; credit prices or legacy prompt rates).
            plan: only this tier's pools.
        """
        day = self._day(at)
        key = (day, billing, plan)
        found = self._entries_cache.get(key)
        if found is None:
            # Every snapshot shows them (the dashboard builds two a second while a tool writes): per day.
            if len(self._entries_cache) > _CACHE_LIMIT:
                self._entries_cache.clear()
            found = self._entries_cache[key] = self._entries(day, billing, plan)
        return found

    def _entries(self, day: date, billing: str | None, plan: str | None) -> tuple[TariffEntry, ...]:
        out: list[TariffEntry] = []
        credits = billing is None or billing == "credits"
        legacy = billing is None or billing != "credits"

        def add(section: str, key: str, versions: _Versions, show: Any) -> None:
            valid_from, value = _at(versions, day)
            path = (*section.split("."), key) if section != "tariff" else (key,)
            note = self._note(path, valid_from)
            out.append(TariffEntry(section, key, show(value), valid_from, note is not None, note or ""))

        add("tariff", "timezone", ((None, self._tz),), _show_offset)
        add("tariff", "default_model", ((None, self.default_model),), lambda v: f"unknown models billed as {v}")
        for name, gen in self._billings.items():
            for tier, windows in gen.plans.items():
                if (billing is not None and name != billing) or (plan is not None and tier != plan):
                    continue
                for wid in (w for w in WINDOW_IDS if w in windows):
                    unit = "calls" if wid == "monthly-mcp" else gen.unit
                    add(f"billing.{name}.plans.{tier}", wid, windows[wid], lambda v, u=unit: f"{v:,g} {u}")
        for model, versions in self._rates.items() if credits else ():
            add("rates", model, versions, _show_rates)
        for model, versions in self._routing.items():
            add("routing", model, versions, lambda v: f"billed as {v}")
        for service, versions in self._mcp.items() if credits else ():
            estimate = self.mcp_is_estimate(McpService(service))
            add("mcp", service, versions, lambda v, e=estimate: f"{'≈' if e else ''}{v:g} credits per call")
        tz = _show_offset(self._tz)
        add("tariff", "peak", self._peak, lambda p: f"{_show_days(p.days)} {p.span} {tz}")
        if credits:
            add("tariff", "off_peak_factor", self._off_peak, lambda v: f"off-peak model usage at {v:.0%}")
        for model, versions in self._prompt_rates.items() if legacy else ():
            add("prompt_rates", model, versions, lambda r: f"{r.peak:g}× peak, {r.off_peak:g}× off-peak")
        for c in self._campaigns:
            if (c.last is None or c.last >= day) and (credits or c.legacy):
                add("campaigns", c.name, ((c.first, c),), _show_campaign)
        return tuple(out)

    def _note(self, path: tuple[str, ...], valid_from: date | None) -> str | None:
        node: Any = self._unverified
        for part in (*path, valid_from.isoformat() if valid_from else ALWAYS):
            if not isinstance(node, Mapping):
                break
            node = node.get(part)
            if node is None or node is False:
                return None
        if isinstance(node, Mapping):
            return None
        return node if isinstance(node, str) else "unverified"

    # ── time ─────────────────────────────────────────────────────────────────────────────────────────

    def _day(self, at: datetime) -> date:
        return _aware(at).astimezone(self._tz).date()

    def _local(self, at: datetime) -> tuple[date, int]:
        local = _aware(at).astimezone(self._tz)
        return local.date(), local.hour * 60 + local.minute


def tariff_from_mapping(data: Mapping[str, Any]) -> Tariff:
    """Build a tariff from its mapping (the packaged file merged with config overrides).

    Raises:
        TariffError: (a ValueError) naming the bad key.
    """
    return Tariff(data)


def merge_tariff(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge a config `[tariff]` table over the packaged tariff: tables merge, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_tariff(old, value)
        else:
            merged[key] = value
    return merged


# ── parsing ──────────────────────────────────────────────────────────────────────────────────────────


def _aware(at: datetime) -> datetime:
    # A naive instant would be read in the machine's zone; the domain's convention is UTC.
    return at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc)


def _at(versions: _Versions, day: date) -> tuple[date | None, Any]:
    """The version in effect on `day`: the last one started by then, else the first."""
    found = versions[0]
    for version in versions:
        if version[0] is None or version[0] <= day:
            found = version
        else:
            break
    return found


def _version_days(table: Mapping[str, Any]) -> dict[str, date | None]:
    """The keys of `table` that name a version, and the day each names (None for `always`)."""
    days: dict[str, date | None] = {}
    for key in table:
        if key == ALWAYS:
            days[key] = None
        elif isinstance(key, str) and len(key) == 10 and key[4] == "-":
            try:
                days[key] = date.fromisoformat(key)
            except ValueError:
                continue
    return days


def _dated(raw: Any, path: list[str], parse: Any) -> _Versions:
    """Parse a value that may be dated; `parse(value, path)` checks and converts one version."""
    days = _version_days(raw) if isinstance(raw, Mapping) else {}
    if not days:
        return ((None, parse(raw, path)),)
    fields = {k: v for k, v in raw.items() if k not in days}
    out: list[tuple[date | None, Any]] = []
    previous: Any = None
    for key, day in sorted(days.items(), key=lambda kv: (kv[1] is not None, kv[1] or date.min)):
        value = raw[key]
        if isinstance(value, Mapping):
            value = {**(previous if isinstance(previous, Mapping) else {}), **value, **fields}
        elif fields:
            raise TariffError([*path, next(iter(fields))], "not a version date (YYYY-MM-DD or always)")
        previous = value
        out.append((day, parse(value, [*path, key])))
    return tuple(out)


def _table(raw: Any, path: list[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise TariffError(path, "must be a table")
    return raw


def _text(raw: Any, path: list[str]) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise TariffError(path, f"must be a non-empty string, got {raw!r}")
    return raw


def _number(raw: Any, path: list[str]) -> float:
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
        raise TariffError(path, f"must be a number ≥ 0, got {raw!r}")
    return float(raw)


def _fields(raw: Any, path: list[str], names: tuple[str, ...]) -> list[float]:
    row = _table(raw, path)
    extra = sorted(set(row) - set(names))
    if extra:
        raise TariffError([*path, extra[0]], f"unknown field (known: {', '.join(names)})")
    missing = [n for n in names if n not in row]
    if missing:
        raise TariffError([*path, missing[0]], "missing")
    return [_number(row[n], [*path, n]) for n in names]


def _rates_value(raw: Any, path: list[str]) -> Rates:
    return Rates(*_fields(raw, path, ("input", "cached", "output")))


def _prompt_rate_value(raw: Any, path: list[str]) -> _PromptRate:
    return _PromptRate(*_fields(raw, path, ("peak", "off_peak")))


def _span(raw: Any, path: list[str]) -> _Span:
    m = _SPAN.match(raw.strip()) if isinstance(raw, str) else None
    if m is None:
        raise TariffError(path, f"must be a daily span like '14:00-18:00', got {raw!r}")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
        raise TariffError(path, f"not a time of day: {raw!r}")
    return _Span(h1 * 60 + m1, h2 * 60 + m2)


def _peak_value(raw: Any, path: list[str]) -> _Peak:
    row = _table(raw, path)
    extra = sorted(set(row) - {"days", "hours"})
    if extra:
        raise TariffError([*path, extra[0]], "unknown field (known: days, hours)")
    days = row.get("days")
    if not isinstance(days, list) or not all(isinstance(d, str) and d.lower()[:3] in _DAYS for d in days):
        raise TariffError([*path, "days"], f"must be a list of weekdays like ['mon', 'fri'], got {days!r}")
    return _Peak(frozenset(_DAYS.index(d.lower()[:3]) for d in days), _span(row.get("hours"), [*path, "hours"]))


def _day_value(raw: Any, path: list[str]) -> date:
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise TariffError(path, f"must be a day (YYYY-MM-DD), got {raw!r}")


def _names(raw: Any, path: list[str], normalise: bool = False) -> frozenset[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
        raise TariffError(path, f"must be a list of names, got {raw!r}")
    return frozenset(normalise_model(v) if normalise else v for v in raw)


def _flag(raw: Any, path: list[str]) -> bool:
    if not isinstance(raw, bool):
        raise TariffError(path, f"must be true or false, got {raw!r}")
    return raw


def _campaign(name: str, raw: Any, path: list[str]) -> _Campaign:
    row = _table(raw, path)
    extra = sorted(set(row) - _CAMPAIGN_KEYS)
    if extra:
        raise TariffError([*path, extra[0]], f"unknown field (known: {', '.join(sorted(_CAMPAIGN_KEYS))})")
    if "from" not in row:
        raise TariffError([*path, "from"], "missing")
    first = _day_value(row["from"], [*path, "from"])
    last = _day_value(row["until"], [*path, "until"]) if "until" in row else None
    if last is not None and last < first:
        raise TariffError([*path, "until"], "is before from")
    return _Campaign(
        name=name,
        first=first,
        last=last,
        span=_span(row["hours"], [*path, "hours"]) if "hours" in row else None,
        tools=_names(row["tools"], [*path, "tools"]) if "tools" in row else None,
        except_tools=_names(row.get("except_tools", []), [*path, "except_tools"]),
        models=_names(row["models"], [*path, "models"], normalise=True) if "models" in row else None,
        factor=_number(row.get("factor", 1), [*path, "factor"]),
        off_peak=_flag(row.get("off_peak", False), [*path, "off_peak"]),
        legacy=_flag(row.get("legacy", False), [*path, "legacy"]),
    )


def _billings(raw: Mapping[str, Any]) -> dict[str, _Billing]:
    out: dict[str, _Billing] = {}
    for billing, row in raw.items():
        path = ["billing", billing]
        if billing not in BILLINGS:
            raise TariffError(path, f"unknown billing generation (known: {', '.join(BILLINGS)})")
        table = _table(row, path)
        extra = sorted(set(table) - {"unit", "calls_per_prompt", "plans"})
        if extra:
            raise TariffError([*path, extra[0]], "unknown field (known: unit, calls_per_prompt, plans)")
        unit = table.get("unit", "credits" if billing == "credits" else "prompts")
        if unit not in ("credits", "prompts"):
            raise TariffError([*path, "unit"], f"must be credits or prompts, got {unit!r}")
        per_prompt = table.get("calls_per_prompt", 15)
        if isinstance(per_prompt, bool) or not isinstance(per_prompt, int) or per_prompt < 1:
            raise TariffError([*path, "calls_per_prompt"], f"must be an integer ≥ 1, got {per_prompt!r}")
        plans: dict[str, dict[str, _Versions]] = {}
        for plan, windows in _table(table.get("plans", {}), [*path, "plans"]).items():
            where = [*path, "plans", plan]
            extra = sorted(set(_table(windows, where)) - set(WINDOW_IDS))
            if extra:
                raise TariffError([*where, extra[0]], f"unknown window (known: {', '.join(WINDOW_IDS)})")
            plans[plan.lower()] = {w: _dated(v, [*where, w], _number) for w, v in windows.items()}
        out[billing] = _Billing(unit, per_prompt, plans)
    return out


def _offset(raw: Any, path: list[str]) -> timezone:
    m = _OFFSET.match(raw.strip()) if isinstance(raw, str) else None
    if isinstance(raw, str) and raw.strip().upper() in ("UTC", "Z"):
        return timezone.utc
    if m is None or int(m.group(2)) > 14:
        raise TariffError(path, f"must be a UTC offset like '+08:00', got {raw!r}")
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


# ── formatting (doctor) ──────────────────────────────────────────────────────────────────────────────


def _show_offset(tz: timezone) -> str:
    delta = tz.utcoffset(None)
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _show_days(days: frozenset[int]) -> str:
    ordered = sorted(days)
    if not ordered:
        return "no days"
    if ordered == list(range(ordered[0], ordered[-1] + 1)) and len(ordered) > 2:
        return f"{_DAYS[ordered[0]].title()}–{_DAYS[ordered[-1]].title()}"
    return ", ".join(_DAYS[d].title() for d in ordered)


def _show_rates(r: Rates) -> str:
    return f"input {r.input:g} · cached {r.cached:g} · output {r.output:g} credits / 10k tokens"


def _show_campaign(c: _Campaign) -> str:
    parts = [f"{c.first} … {c.last or 'open'}"]
    if c.span is not None:
        parts.append(str(c.span))
    if c.tools is not None:
        parts.append(f"via {', '.join(sorted(c.tools))}")
    if c.except_tools:
        parts.append(f"not via {', '.join(sorted(c.except_tools))}")
    if c.models is not None:
        parts.append(", ".join(sorted(c.models)))
    if c.off_peak:
        parts.append("off-peak rate all day")
    if c.factor != 1:
        parts.append(f"credits × {c.factor:g}")
    return ", ".join(parts)
