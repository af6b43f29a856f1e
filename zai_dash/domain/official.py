"""Z.ai's own quota meter (`/api/monitor/usage/quota/limit`), as pure rules.

Everything here works on already-received bytes or values: deciding what a response means from its
envelope, mapping `data.limits[]` rows to windows by `(type, unit, number)`, clamping, the cycle anchor,
calibrating "prompts left" against local counts, and the drift check. The HTTP side lives in
`zai_dash.sources.zai_quota`. See `reference/zai-quota-api.md` §6–§8, §10, §12–§13.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from zai_dash.domain.bounds import epoch_in_range, official_value

FIVE_HOURS = timedelta(hours=5)
PROVENANCE = "official"


class QuotaStatus(str, enum.Enum):
    """What one quota request came to."""

    OK = "ok"
    INVALID_KEY = "invalid-key"
    NO_PLAN = "no-plan"
    EMPTY = "empty"
    BAD_RESPONSE = "bad-response"
    API_ERROR = "api-error"
    HTTP_ERROR = "http-error"
    NETWORK = "network"
    TIMEOUT = "timeout"
    NO_KEY = "no-key"
    DISABLED = "disabled"


@dataclass(frozen=True, slots=True)
class Decision:
    """The meaning of one response.

    Attributes:
        status: the outcome class.
        http_status: the HTTP status code.
        code: the envelope's business `code`, when there was an envelope.
        msg: the envelope's `msg` (server text; scrub before showing).
        data: the envelope's `data` on success.
    """

    status: QuotaStatus
    http_status: int
    code: int | None = None
    msg: str = ""
    data: Any = None

    @property
    def auth_failure(self) -> bool:
        """Whether another auth form or region is worth one more try."""
        return self.status is QuotaStatus.INVALID_KEY


def decide(http_status: int, body: bytes) -> Decision:
    """Decide what a response means from its JSON envelope, falling back to the HTTP status.

    Z.ai answers almost everything with HTTP 200, auth failures included, so the envelope
    (`success`, `code`) is read first whenever the body is one (reference §6, §10).

    Args:
        http_status: the HTTP status code.
        body: the raw response body.

    Returns:
        The decision.
    """
    text = body.strip()
    envelope: Any = None
    if text:
        try:
            envelope = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            envelope = None
    if isinstance(envelope, dict) and ("success" in envelope or "code" in envelope):
        return _decide_envelope(http_status, envelope)
    if http_status in (401, 403):
        return Decision(QuotaStatus.INVALID_KEY, http_status, msg=_plain(text))
    if not 200 <= http_status < 300:
        return Decision(QuotaStatus.HTTP_ERROR, http_status, msg=_plain(text))
    if not text:
        return Decision(QuotaStatus.EMPTY, http_status)
    return Decision(QuotaStatus.BAD_RESPONSE, http_status, msg="not a JSON envelope")


def _decide_envelope(http_status: int, env: Mapping[str, Any]) -> Decision:
    code = env.get("code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    msg = env.get("msg")
    msg = msg if isinstance(msg, str) else ""
    if env.get("success") is True and code == 200:
        return Decision(QuotaStatus.OK, http_status, code, msg, env.get("data"))
    # The phrase stays ASCII even in the Chinese message (reference §10).
    if "coding plan" in msg.lower():
        return Decision(QuotaStatus.NO_PLAN, http_status, code, msg)
    if code == 401 or (code is not None and 1000 <= code <= 1099) or http_status in (401, 403):
        return Decision(QuotaStatus.INVALID_KEY, http_status, code, msg)
    if http_status >= 400:
        return Decision(QuotaStatus.HTTP_ERROR, http_status, code, msg)
    return Decision(QuotaStatus.API_ERROR, http_status, code, msg)


def _plain(text: bytes) -> str:
    return text[:200].decode("utf-8", "replace").splitlines()[0] if text else ""


# --- rows -------------------------------------------------------------------------------------------

UNIT_NAMES = {1: "day", 3: "hour", 5: "month", 6: "week"}
"""`unit` codes (reference §8): 3 = hours, 6 = weeks, 5 = months, 1 = days."""

KIND_LABELS = {
    "five-hour": "5-hour",
    "weekly": "weekly",
    "monthly-mcp": "monthly MCP",
    "credit": "credits",
    "unknown": "other",
}

MCP_CODES = {"search-prime": "search", "web-reader": "reader", "zread": "zread"}
"""`usageDetails[].modelCode` → the MCP service names used elsewhere (`McpService` values)."""

PLAN_KEYS = ("level", "planName", "plan", "plan_type", "packageName")


def window_kind(type_: str, unit: int | None, number: int | None) -> str:
    """Which window a row is, from `(type, unit, number)` only: never from its position in the list."""
    span = (unit, number)
    if type_ in ("TOKENS_LIMIT", "CREDIT_LIMIT"):
        if span == (3, 5):
            return "five-hour"
        if span in ((6, 1), (1, 7)):
            return "weekly"
        return "credit" if type_ == "CREDIT_LIMIT" else "unknown"
    if type_ == "TIME_LIMIT" and span in ((5, 1), (1, 30), (1, 31)):
        return "monthly-mcp"
    return "unknown"


def span_text(unit: int | None, number: int | None) -> str:
    """`5 hours`, `1 week`, or the raw codes for an unknown unit."""
    name = UNIT_NAMES.get(unit) if unit is not None else None
    if name is None or number is None:
        return f"unit {unit} × {number}"
    return f"{number} {name}{'s' if number != 1 else ''}"


@dataclass(frozen=True, slots=True)
class OfficialRow:
    """One quota window as Z.ai reports it.

    Attributes:
        kind: `five-hour`, `weekly`, `monthly-mcp`, `credit` or `unknown`.
        label: a short human label.
        type: the raw `type` (`TOKENS_LIMIT`, `TIME_LIMIT`, `CREDIT_LIMIT`, …).
        unit: the raw `unit` code.
        number: the raw `number`.
        used: `currentValue` (the amount used), when given.
        limit: `usage` (the limit, despite its name), when given.
        remaining: `remaining`, when given.
        percent: percent used, 0–100: exact `used / limit` when both exist, else the rounded
            `percentage`; None when neither does.
        percent_exact: whether `percent` came from `used / limit`.
        next_reset: when the window resets (aware UTC), if given.
        state: `active`, or `not-started` for an idle 5-hour window (no reset time, nothing used).
        usage_details: MCP service → calls this month (only on the monthly MCP row).
        fetched_at: when the response was received.
        provenance: always `official`.
    """

    kind: str
    label: str
    type: str
    unit: int | None
    number: int | None
    used: float | None
    limit: float | None
    remaining: float | None
    percent: float | None
    percent_exact: bool
    next_reset: datetime | None
    state: str
    usage_details: Mapping[str, int] = field(default_factory=dict)
    fetched_at: datetime | None = None
    provenance: str = PROVENANCE


@dataclass(frozen=True, slots=True)
class QuotaReading:
    """A parsed `quota/limit` success.

    Attributes:
        level: the raw plan level (`lite`, `pro`, `max`, …), if given.
        version: `V1` (5 h only), `V2` (5 h + weekly, percentages) or `V3` (credits).
        rows: every row, known or not, in a stable order (five-hour, weekly, monthly MCP, credit, other).
        skipped: reason → count of rows or fields that could not be read.
        fetched_at: when the response was received.
    """

    level: str | None
    version: str
    rows: tuple[OfficialRow, ...]
    skipped: Mapping[str, int]
    fetched_at: datetime

    def row(self, kind: str) -> OfficialRow | None:
        """The first row of a kind, if any."""
        return next((r for r in self.rows if r.kind == kind), None)


_ORDER = {"five-hour": 0, "weekly": 1, "monthly-mcp": 2, "credit": 3, "unknown": 4}


def clamp_percent(value: float) -> float:
    """Clamp to 0–100: the server's percentage can be stale or out of range, and used can exceed the limit."""
    if not math.isfinite(value):
        return 0.0
    return min(100.0, max(0.0, value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return official_value(value)  # the shared bound (domain.bounds): finite, no 1e300
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return official_value(parsed)
    return None


def _int(value: Any) -> int | None:
    num = _number(value)
    return int(num) if num is not None and num == int(num) else None


def _reset_time(value: Any) -> datetime | None:
    """`nextResetTime`: epoch milliseconds (one client also saw a numeric string)."""
    ms = _number(value)
    if ms is None or not epoch_in_range(ms / 1000):
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def parse_limits(data: Any, fetched_at: datetime) -> QuotaReading:
    """Turn a success envelope's `data` into rows.

    Args:
        data: the envelope's `data` object.
        fetched_at: when the response arrived (aware).

    Returns:
        The reading; rows that cannot be read are counted in `skipped`, never raised.
    """
    skipped: dict[str, int] = {}

    def skip(reason: str) -> None:
        skipped[reason] = skipped.get(reason, 0) + 1

    if not isinstance(data, Mapping):
        skip("data is not an object")
        return QuotaReading(None, "V1", (), skipped, fetched_at)
    level = next((str(data[k]) for k in PLAN_KEYS if isinstance(data.get(k), str) and data[k]), None)
    limits = data.get("limits")
    if not isinstance(limits, list):
        skip("limits missing or not a list")
        limits = []
    rows = []
    for item in limits:
        row = _parse_row(item, fetched_at, skip)
        if row is not None:
            rows.append(row)
    rows.sort(key=lambda r: _ORDER[r.kind])
    return QuotaReading(level, plan_version(rows), tuple(rows), skipped, fetched_at)


def _parse_row(item: Any, fetched_at: datetime, skip: Any) -> OfficialRow | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
        skip("limit row without a type")
        return None
    type_ = item["type"]
    unit, number = _int(item.get("unit")), _int(item.get("number"))
    kind = window_kind(type_, unit, number)
    used, limit = _number(item.get("currentValue")), _number(item.get("usage"))
    remaining = _number(item.get("remaining"))
    percent: float | None = None
    exact = False
    # `currentValue / usage` is exact; `percentage` is server-rounded (1438/12000 shows as 11).
    if used is not None and limit is not None and limit > 0:
        percent, exact = clamp_percent(100.0 * used / limit), True
    else:
        rounded = _number(item.get("percentage"))
        if rounded is not None:
            percent = clamp_percent(rounded)
        elif "percentage" in item:
            skip("percentage not a number")
    raw_reset = item.get("nextResetTime")
    next_reset = _reset_time(raw_reset)
    if raw_reset is not None and next_reset is None:
        skip("nextResetTime not an epoch in ms")
    state = "active"
    if kind == "five-hour" and next_reset is None and not percent:
        state = "not-started"
    details: dict[str, int] = {}
    raw_details = item.get("usageDetails")
    if isinstance(raw_details, list):
        for d in raw_details:
            code = d.get("modelCode") if isinstance(d, Mapping) else None
            count = _number(d.get("usage")) if isinstance(d, Mapping) else None
            if not isinstance(code, str) or count is None:
                skip("usageDetails entry unreadable")
                continue
            service = MCP_CODES.get(code, code)
            details[service] = details.get(service, 0) + max(0, int(count))
    label = KIND_LABELS[kind]
    if kind in ("credit", "unknown"):
        label = f"{type_} {span_text(unit, number)}"
    return OfficialRow(
        kind=kind,
        label=label,
        type=type_,
        unit=unit,
        number=number,
        used=used,
        limit=limit,
        remaining=remaining,
        percent=percent,
        percent_exact=exact,
        next_reset=next_reset,
        state=state,
        usage_details=details,
        fetched_at=fetched_at,
    )


def plan_version(rows: Sequence[OfficialRow]) -> str:
    """V3 if any credit row, else V2 if a weekly token row, else V1 (reference §12)."""
    if any(r.type == "CREDIT_LIMIT" for r in rows):
        return "V3"
    if any(r.type == "TOKENS_LIMIT" and r.kind == "weekly" for r in rows):
        return "V2"
    return "V1"


# --- views ------------------------------------------------------------------------------------------


def official_reset_for_cycle(rows: Sequence[OfficialRow], now: datetime) -> datetime | None:
    """The 5-hour row's reset time when it names the window open at `now`; what the engine passes as
    `build_snapshot(official_reset=...)`.

    Pass only fresh rows (`ZaiQuotaSource.fresh_rows`): a stale reading must not anchor the cycle.
    A reset already past means the window ended, and an idle row names none, so both give None.
    """
    for row in rows:
        if row.kind == "five-hour" and row.next_reset is not None:
            if row.next_reset > now and row.next_reset - FIVE_HOURS <= now:
                return row.next_reset
            return None
    return None


def row_json(row: OfficialRow, now: datetime, *, stale: bool, level: str | None, version: str) -> dict[str, Any]:
    """One row as a JSON-able mapping for `Snapshot.official`, with age and freshness.

    A row whose reset has passed is shown as `reset` and stale: its numbers belong to the last window.
    """
    age = (now - row.fetched_at).total_seconds() if row.fetched_at else None
    reset_passed = row.next_reset is not None and row.next_reset <= now
    return {
        "kind": row.kind,
        "label": row.label,
        "type": row.type,
        "unit": row.unit,
        "number": row.number,
        "span": span_text(row.unit, row.number),
        "used": row.used,
        "limit": row.limit,
        "remaining": row.remaining,
        "percent": row.percent,
        "percent_exact": row.percent_exact,
        "next_reset": row.next_reset,
        "seconds_to_reset": max(0.0, (row.next_reset - now).total_seconds()) if row.next_reset else None,
        "state": "reset" if reset_passed else row.state,
        "usage_details": dict(row.usage_details),
        "plan_level": level,
        "plan_version": version,
        "provenance": row.provenance,
        "fetched_at": row.fetched_at,
        "age_seconds": round(max(0.0, age), 1) if age is not None else None,
        "stale": stale or reset_passed,
    }


def binding_row(rows: Sequence[OfficialRow]) -> OfficialRow | None:
    """The window that binds first: the highest percent among the 5-hour and weekly rows (§15.5)."""
    candidates = [r for r in rows if r.kind in ("five-hour", "weekly") and r.percent is not None]
    return max(candidates, key=lambda r: r.percent or 0.0, default=None)


@dataclass(frozen=True, slots=True)
class Drift:
    """How far the official 5-hour percentage and the local estimate are apart.

    Attributes:
        official: official percent used.
        local: local estimate, percent used.
        points: official − local, in percentage points.
        warn: whether they differ by more than the margin.
        message: one line for the gauge when `warn`.
    """

    official: float
    local: float
    points: float
    warn: bool
    message: str


def drift(official: float, local: float, margin: float = 15.0) -> Drift:
    """Compare the official and local percentages.

    Local counts are a lower bound (other machines, unreadable tools and title/summary calls never
    reach the logs), so official above local is the usual direction; both directions warn.
    """
    points = official - local
    warn = abs(points) > margin
    if not warn:
        message = ""
    elif points > 0:
        message = (
            f"Z.ai says {official:.0f}% used, local logs {local:.0f}%: other machines or tools "
            "zai-dash cannot read are using the plan"
        )
    else:
        message = (
            f"Z.ai says {official:.0f}% used, local logs {local:.0f}%: the plan size or calls per "
            "prompt in the config may be too small"
        )
    return Drift(official, local, round(points, 1), warn, message)


MIN_CALIBRATION_POINTS = 2.0
"""Percentage points the official meter must move before a rate is trusted (it is rounded to 1)."""


class Calibration:
    """Learns prompt-equivalents per official percentage point within one 5-hour window.

    Feed it one observation per successful poll: the official 5-hour percent, the local
    prompt-equivalents at the same instant, and the window's reset time. The ratio of the changes
    since the window's first observation gives "≈N prompts left at your current mix". A new window
    (different reset) or a falling percentage starts over.
    """

    def __init__(self) -> None:
        self._window: datetime | None = None
        self._first: tuple[float, int] | None = None
        self._last: tuple[float, int] | None = None

    def observe(self, percent: float, equivalents: int, window_end: datetime | None) -> None:
        """Record one poll."""
        same_window = (
            self._window is not None
            and window_end is not None
            and abs((window_end - self._window).total_seconds()) <= 60
        )
        if not same_window or self._first is None or percent < self._first[0]:
            self._window, self._first = window_end, (percent, equivalents)
        self._last = (percent, equivalents)

    @property
    def per_point(self) -> float | None:
        """Prompt-equivalents per percentage point, once the meter has moved enough."""
        if self._first is None or self._last is None:
            return None
        d_pct = self._last[0] - self._first[0]
        d_eq = self._last[1] - self._first[1]
        if d_pct < MIN_CALIBRATION_POINTS or d_eq <= 0:
            return None
        return d_eq / d_pct

    def prompts_left(self, percent: float) -> int | None:
        """≈ prompts left at the current mix, or None until calibrated."""
        rate = self.per_point
        if rate is None:
            return None
        return max(0, math.floor((100.0 - clamp_percent(percent)) * rate))


def reconcile(
    official_rows: Sequence[Mapping[str, Any]],
    local_percent: float,
    *,
    margin: float = 15.0,
    calibration: Calibration | None = None,
) -> dict[str, Any]:
    """What the prompt gauge shows: the official figure first when fresh, the local one beside it.

    Args:
        official_rows: `Snapshot.official` mappings (`row_json` output).
        local_percent: the local gauge's percent (`Snapshot.prompts.percent`).
        margin: drift warning threshold in percentage points.
        calibration: the engine's calibration, if any.

    Returns:
        `primary` (`official` or `local`), `official_percent`, `local_percent`, `drift` (points),
        `drift_warning` (one line or None), `prompts_left_estimate` (≈N or None), `weekly_percent`.
    """
    five = next((r for r in official_rows if r.get("kind") == "five-hour"), None)
    weekly = next((r for r in official_rows if r.get("kind") == "weekly"), None)
    fresh = five is not None and not five.get("stale") and five.get("percent") is not None
    out: dict[str, Any] = {
        "primary": "official" if fresh else "local",
        "official_percent": five.get("percent") if five else None,
        "official_stale": bool(five.get("stale")) if five else None,
        "local_percent": local_percent,
        "drift": None,
        "drift_warning": None,
        "prompts_left_estimate": None,
        "weekly_percent": weekly.get("percent") if weekly else None,
    }
    if fresh and five is not None:
        d = drift(float(five["percent"]), local_percent, margin)
        out["drift"] = d.points
        out["drift_warning"] = d.message or None
        if calibration is not None:
            out["prompts_left_estimate"] = calibration.prompts_left(float(five["percent"]))
    return out
