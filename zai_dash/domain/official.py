"""Z.ai's own quota meter (`/api/monitor/usage/quota/limit`), as pure rules.

Everything here works on already-received bytes or values: deciding what a response means from its
envelope, mapping `data.limits[]` rows to windows by `(type, unit, number)`, reading the exact integers,
detecting the billing generation, following a window across polls (reset cards re-anchor it), learning a
calibration factor against local counts, and reconciling the two. The HTTP side lives in
`zai_dash.sources.zai_quota`. See `reference/zai-quota-api.md` §6–§8, §10, §12–§13 and `metering.md` §1–§2.

What the snapshot builder gets (the hand-over shape):

* **An official row** (`row_json`, one mapping per `data.limits[]` row, in `Snapshot.official`):

  - `window`: `"5h"`, `"weekly"`, `"monthly-mcp"`, or `"other"` (a row no window maps to; shown in the
    official panel only). `kind` (`five-hour`, `weekly`, `monthly-mcp`, `credit`, `unknown`) stays for
    the older callers.
  - `unit`: what `used`/`limit`/`remaining` count: `"credits"` (`CREDIT_LIMIT`), `"calls"`
    (`TIME_LIMIT`, the MCP pool), `"tokens"` (an early-2026 `TOKENS_LIMIT` with integers), `"count"`
    (an unknown type with integers), or `"percent"` when the server gave only the rounded percentage
    (then `used`/`limit`/`remaining` are None and `percent` is all there is). Official rows never count
    prompts: legacy plans report a percentage of their prompt pool. `unit_code`/`number` are the raw
    `(unit, number)` codes.
  - `used` (`currentValue`), `limit` (`usage`, despite its name), `remaining` (`remaining`, else
    `limit − used`): floats ≥ 0, or None when not known. `used` may exceed `limit` (team overage).
  - `percent`: percent used, 0–100, exact `used / limit` when both exist, else the rounded `percentage`;
    `percent_exact` says which.
  - `next_reset`: aware UTC datetime of the next reset, or None (an idle 5-hour window, or an account
    that never sends it); `seconds_to_reset` ≥ 0.
  - `start`: where the window began: `next_reset − span` (5 h, 7 d), or, after a reset card, the
    re-anchored start; None when not known (monthly rows, idle windows). `anchor`: `"official"` when
    `start` is known, else None. `reset_card`: a reset card re-anchored this window.
  - `state`: `active`, `not-started` (idle 5-hour window) or `reset` (its reset time has passed).
  - `stale`: the reading is old, the last poll failed, or the reset has passed; `age_seconds`,
    `fetched_at`, `provenance` (`"official"`), `billing` (the generation the reading shows),
    `plan_level`, `plan_version`, `usage_details` (MCP service → calls).

* **`detect_billing(rows) -> "credits" | "legacy-v2" | "legacy-v1" | None`** and
  **`billing_warning(detected, configured) -> str | None`**.

* **`reconcile_window(official_row, local_used, calibration, *, local_limit=None, margin=15.0)`** →
  `WindowReconciliation` (`.to_json()`): `window`, `unit`, `official_used`, `official_percent`,
  `local_used`, `local_percent`, `drift_points` (|official % − local %|, ≥ 0) and `drift_direction`
  (`official-above` / `local-above` / `equal`), `drift_warning`, the calibration `factor` (official
  used ÷ local used, learned from successive polls: an estimate) with `factor_from` and
  `factor_polls`, `estimate_used` (local used × factor, in the official unit) and `estimate_left_local`
  (official left ÷ factor, in the local unit: "≈ prompts/credits left at your mix"), `start`, `end`,
  `anchor`, `reset_card`, `stale`. Estimates are labelled `"estimate"`; no field is ever negative.

`OfficialTracker` is the state behind it (kept by the quota source): one per poll it compares each
window with the previous reading, re-anchors on a reset card, and owns each window's
`Calibration`.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

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

WINDOW_OF_KIND = {"five-hour": "5h", "weekly": "weekly", "monthly-mcp": "monthly-mcp"}
"""Row kind → the window id the snapshot uses; every other kind is `other`."""

WINDOW_SPANS = {"5h": FIVE_HOURS, "weekly": timedelta(days=7)}
"""Windows of fixed length: their start is `next_reset − span`."""

COUNTED_UNITS = {"CREDIT_LIMIT": "credits", "TIME_LIMIT": "calls", "TOKENS_LIMIT": "tokens"}
"""What a row's integers count, by type (an unknown type counts `count`)."""

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
        window: `5h`, `weekly`, `monthly-mcp` or `other` (the snapshot's window id).
        label: a short human label.
        type: the raw `type` (`TOKENS_LIMIT`, `TIME_LIMIT`, `CREDIT_LIMIT`, …).
        unit: what the amounts count: `credits`, `calls`, `tokens`, `count`, or `percent` when only the
            rounded percentage was given.
        unit_code: the raw `unit` code.
        number: the raw `number`.
        used: `currentValue` (the amount used), ≥ 0, when given.
        limit: `usage` (the limit, despite its name), ≥ 0, when given.
        remaining: `remaining` when given, else `limit − used`; never below 0.
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
    window: str
    label: str
    type: str
    unit: str
    unit_code: int | None
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

    @property
    def amount(self) -> float | None:
        """The figure that moves as the window is used, in `unit`: `used`, or the percentage."""
        return self.percent if self.unit == "percent" else self.used


@dataclass(frozen=True, slots=True)
class QuotaReading:
    """A parsed `quota/limit` success.

    Attributes:
        level: the raw plan level (`lite`, `pro`, `max`, …), if given.
        version: `V1` (5 h only), `V2` (5 h + weekly, percentages) or `V3` (credits).
        billing: the billing generation the rows show (`detect_billing`), None when they show none.
        rows: every row, known or not, in a stable order (five-hour, weekly, monthly MCP, credit, other).
        skipped: reason → count of rows or fields that could not be read.
        fetched_at: when the response was received.
    """

    level: str | None
    version: str
    rows: tuple[OfficialRow, ...]
    skipped: Mapping[str, int]
    fetched_at: datetime
    billing: str | None = None

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
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _amount(value: Any) -> float | None:
    """A count from the server, never below 0 (a negative `remaining` means none left)."""
    num = _number(value)
    return max(0.0, num) if num is not None else None


def _int(value: Any) -> int | None:
    num = _number(value)
    return int(num) if num is not None and num == int(num) else None


def _reset_time(value: Any) -> datetime | None:
    """`nextResetTime`: epoch milliseconds (one client also saw a numeric string)."""
    ms = _number(value)
    if ms is None or ms <= 0:
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
    return QuotaReading(level, plan_version(rows), tuple(rows), skipped, fetched_at, detect_billing(rows))


def _parse_row(item: Any, fetched_at: datetime, skip: Any) -> OfficialRow | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
        skip("limit row without a type")
        return None
    type_ = item["type"]
    unit_code, number = _int(item.get("unit")), _int(item.get("number"))
    kind = window_kind(type_, unit_code, number)
    used, limit = _amount(item.get("currentValue")), _amount(item.get("usage"))
    remaining = _amount(item.get("remaining"))
    percent: float | None = None
    exact = False
    # The integers are exact; `percentage` is server-rounded (1438/12000 shows as 11).
    counted = used is not None and limit is not None and limit > 0
    if counted and used is not None and limit is not None:
        percent, exact = clamp_percent(100.0 * used / limit), True
        if remaining is None:
            remaining = max(0.0, limit - used)
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
    label = KIND_LABELS[kind]
    if kind in ("credit", "unknown"):
        label = f"{type_} {span_text(unit_code, number)}"
    return OfficialRow(
        kind=kind,
        window=WINDOW_OF_KIND.get(kind, "other"),
        label=label,
        type=type_,
        unit=COUNTED_UNITS.get(type_, "count") if counted else "percent",
        unit_code=unit_code,
        number=number,
        used=used if counted else None,
        limit=limit if counted else None,
        remaining=remaining if counted else None,
        percent=percent,
        percent_exact=exact,
        next_reset=next_reset,
        state=state,
        usage_details=_usage_details(item.get("usageDetails"), skip),
        fetched_at=fetched_at,
    )


def _usage_details(raw: Any, skip: Any) -> dict[str, int]:
    details: dict[str, int] = {}
    if not isinstance(raw, list):
        return details
    for d in raw:
        code = d.get("modelCode") if isinstance(d, Mapping) else None
        count = _number(d.get("usage")) if isinstance(d, Mapping) else None
        if not isinstance(code, str) or count is None:
            skip("usageDetails entry unreadable")
            continue
        service = MCP_CODES.get(code, code)
        details[service] = details.get(service, 0) + max(0, int(count))
    return details


def plan_version(rows: Sequence[OfficialRow]) -> str:
    """V3 if any credit row, else V2 if a weekly token row, else V1 (reference §12)."""
    return {"credits": "V3", "legacy-v2": "V2"}.get(detect_billing(rows) or "", "V1")


# --- billing generation -----------------------------------------------------------------------------

BILLINGS = ("credits", "legacy-v2", "legacy-v1")
"""The billing generations (`metering.md` §1); `billing` in the config names one."""

_BILLING_EVIDENCE = {
    "credits": "CREDIT_LIMIT rows",
    "legacy-v2": "a weekly TOKENS_LIMIT row and no credits",
    "legacy-v1": "a 5-hour TOKENS_LIMIT row only",
}


def _get(row: OfficialRow | Mapping[str, Any], name: str) -> Any:
    """A field of a parsed row or of its `row_json` mapping (callers hold either)."""
    return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)


def detect_billing(rows: Sequence[OfficialRow | Mapping[str, Any]]) -> str | None:
    """The billing generation the official rows show (reference §12, metering.md §1).

    A `CREDIT_LIMIT` row means credits; else a `TOKENS_LIMIT` row with unit 6 (weeks) means legacy V2;
    else a `TOKENS_LIMIT` row at all means legacy V1. Rows that show none of these (no reading, or
    only the MCP pool) decide nothing: None.
    """
    types = [(_get(r, "type"), _get(r, "unit_code")) for r in rows]
    if any(t == "CREDIT_LIMIT" for t, _ in types):
        return "credits"
    if any(t == "TOKENS_LIMIT" and code == 6 for t, code in types):
        return "legacy-v2"
    if any(t == "TOKENS_LIMIT" for t, _ in types):
        return "legacy-v1"
    return None


def billing_warning(detected: str | None, configured: str | None) -> str | None:
    """One line when Z.ai's rows show another billing generation than the config names, else None."""
    if detected is None or configured is None or detected == configured:
        return None
    return (
        f"Z.ai's quota endpoint shows a {detected} plan ({_BILLING_EVIDENCE[detected]}), but the config says "
        f'billing = "{configured}": local figures use the configured rules; set billing = "{detected}"'
    )


# --- following a window across polls ---------------------------------------------------------------

RESET_TOLERANCE = timedelta(seconds=60)
"""Reset times closer than this are the same reset (the server's clock and ours differ a little)."""


def is_reset_card(previous: OfficialRow, current: OfficialRow) -> bool:
    """Whether `current` shows the window reset early (a reset card) since `previous`.

    The official figure fell, or the reset time moved earlier, while the previous reading's window was
    still running. A window that reached its own reset time is a normal reset, not a card.
    """
    if previous.window != current.window or previous.window not in WINDOW_SPANS:
        return False
    now = current.fetched_at
    if previous.next_reset is not None and now is not None and now >= previous.next_reset - RESET_TOLERANCE:
        return False
    earlier = (
        previous.next_reset is not None
        and current.next_reset is not None
        and current.next_reset < previous.next_reset - RESET_TOLERANCE
    )
    return earlier or _dropped(previous, current)


def _dropped(previous: OfficialRow, current: OfficialRow) -> bool:
    if previous.used is not None and current.used is not None:
        return current.used < previous.used
    if previous.percent is None or current.percent is None:
        return False
    # A rounded percentage beside an exact one can differ by less than a point without any reset.
    slack = 0.0 if previous.percent_exact == current.percent_exact else 1.0
    return current.percent < previous.percent - slack


MIN_MOVE_ROUNDED = 2.0
"""Percentage points a percent-only row must move before a factor is trusted (it is rounded to 1)."""
MIN_MOVE_EXACT = 0.005
"""Share of the pool an exact row must move before a factor is trusted."""


class Calibration:
    """Learns the factor official used ÷ local used for one window, from successive polls.

    Feed it one observation per successful poll: the official amount (credits, calls, or percent for a
    percent-only row), the local amount at the same instant (credits or prompt-equivalents), and the
    window's start. The factor is the ratio of the two increases since the window's first observation,
    once the official meter has moved at least `min_move`. A new window (another start), or either
    figure falling (a reset card), starts over; the last factor learned is kept as the estimate until
    the new window has moved enough.
    """

    def __init__(self) -> None:
        self._start: datetime | None = None
        self._first: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._min_move = MIN_MOVE_ROUNDED
        self._prior: float | None = None
        self.polls = 0
        """Observations in the current window."""

    def observe(
        self, official: float, local: float, start: datetime | None, min_move: float = MIN_MOVE_ROUNDED
    ) -> None:
        """Record one poll (a window with no start, or a figure that is not finite, is not observed).

        Args:
            official: the official amount used (the row's `amount`).
            local: the local amount used in the same window.
            start: the window's start (its identity: another start is another window).
            min_move: how far the official amount must move before the factor is trusted.
        """
        if start is None or not (math.isfinite(official) and math.isfinite(local)):
            return
        point = (max(0.0, official), max(0.0, local))
        same = self._start is not None and abs((start - self._start).total_seconds()) <= RESET_TOLERANCE.seconds
        fell = self._last is not None and (point[0] < self._last[0] or point[1] < self._last[1])
        if not same or fell or self._first is None:
            self._prior = self._learned() or self._prior
            self._start, self._first, self.polls = start, point, 0
        self._min_move = min_move
        self._last = point
        self.polls += 1

    def observe_row(self, row: OfficialRow, local: float, start: datetime | None) -> None:
        """Record one poll of an official row: its amount, and the movement its precision needs."""
        if row.amount is None:
            return
        exact_move = max(1.0, MIN_MOVE_EXACT * (row.limit or 0.0))
        self.observe(row.amount, local, start, MIN_MOVE_ROUNDED if row.unit == "percent" else exact_move)

    def _learned(self) -> float | None:
        if self._first is None or self._last is None:
            return None
        d_official = self._last[0] - self._first[0]
        d_local = self._last[1] - self._first[1]
        if d_official < self._min_move or d_local <= 0:
            return None
        return d_official / d_local

    @property
    def factor(self) -> float | None:
        """Official used per local unit (an estimate), or None until learned."""
        return self._learned() or self._prior

    @property
    def factor_from(self) -> str | None:
        """`this-window`, `previous-window` (carried over until this one has moved), or None."""
        if self._learned() is not None:
            return "this-window"
        return "previous-window" if self._prior is not None else None


class OfficialTracker:
    """Follows each official window across polls: re-anchors on reset cards, keeps the calibrations.

    `update` takes every successful reading. When a window's figure falls or its reset time moves
    earlier mid-window, the window restarts at the previous reading's instant (the last time the old
    window was known to be running: an early bound, so no call after the reset goes uncounted), or at
    the new window's own start (`next_reset − span`) when that is later, as when a request opened a
    fresh 5-hour window after the card. Its calibration starts over when the figures fall.
    """

    def __init__(self) -> None:
        self._last: dict[str, OfficialRow] = {}
        self._reset_at: dict[str, datetime] = {}
        self._carded_start: dict[str, datetime | None] = {}
        self.reset_cards: dict[str, int] = {}
        """Window id → reset cards seen while running."""
        self._calibrations: dict[str, Calibration] = {}

    def update(self, reading: QuotaReading) -> tuple[str, ...]:
        """Take a reading; returns the windows a reset card re-anchored."""
        carded = []
        for row in reading.rows:
            if row.window not in WINDOW_SPANS:
                continue
            previous = self._last.get(row.window)
            if previous is not None and is_reset_card(previous, row):
                self._reset_at[row.window] = previous.fetched_at or reading.fetched_at
                self.reset_cards[row.window] = self.reset_cards.get(row.window, 0) + 1
                self._carded_start[row.window] = self.start(row)
                carded.append(row.window)
            self._last[row.window] = row
        return tuple(carded)

    def start(self, row: OfficialRow) -> datetime | None:
        """Where `row`'s window began: `next_reset − span`, or later when a reset card re-anchored it."""
        span = WINDOW_SPANS.get(row.window)
        if span is None or row.state == "not-started":
            return None
        natural = row.next_reset - span if row.next_reset is not None else None
        reset_at = self._reset_at.get(row.window)
        if reset_at is not None and row.fetched_at is not None and row.fetched_at >= reset_at + span:
            reset_at = None  # a whole window has passed since the card
        if natural is None or reset_at is None:
            return natural or reset_at
        return max(natural, reset_at)

    def re_anchored(self, row: OfficialRow) -> bool:
        """Whether `row`'s window is the one a reset card restarted (not a later, natural one)."""
        start, carded = self.start(row), self._carded_start.get(row.window)
        return start is not None and carded is not None and abs(start - carded) <= RESET_TOLERANCE

    def calibration(self, window: str) -> Calibration:
        """The window's calibration (created empty on first use)."""
        return self._calibrations.setdefault(window, Calibration())

    def observe_local(self, reading: QuotaReading, local_used: Mapping[str, float]) -> None:
        """Feed each window's calibration with the local amount at the reading's instant."""
        for row in reading.rows:
            if row.window in local_used:
                self.calibration(row.window).observe_row(row, float(local_used[row.window]), self.start(row))


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


def row_json(
    row: OfficialRow,
    now: datetime,
    *,
    stale: bool,
    level: str | None,
    version: str,
    start: datetime | None = None,
    reset_card: bool = False,
    billing: str | None = None,
) -> dict[str, Any]:
    """One row as a JSON-able mapping for `Snapshot.official`, with age and freshness (module docstring).

    A row whose reset has passed is shown as `reset` and stale: its numbers belong to the last window.

    Args:
        row: the parsed row.
        now: the instant.
        stale: whether the reading is old or the last poll failed.
        level: the plan level of the reading.
        version: `V1` / `V2` / `V3`.
        start: the window's start (`OfficialTracker.start`).
        reset_card: whether a reset card set that start.
        billing: the generation the reading shows.
    """
    age = (now - row.fetched_at).total_seconds() if row.fetched_at else None
    reset_passed = row.next_reset is not None and row.next_reset <= now
    return {
        "kind": row.kind,
        "window": row.window,
        "label": row.label,
        "type": row.type,
        "unit": row.unit,
        "unit_code": row.unit_code,
        "number": row.number,
        "span": span_text(row.unit_code, row.number),
        "used": row.used,
        "limit": row.limit,
        "remaining": row.remaining,
        "percent": row.percent,
        "percent_exact": row.percent_exact,
        "next_reset": row.next_reset,
        "seconds_to_reset": max(0.0, (row.next_reset - now).total_seconds()) if row.next_reset else None,
        "start": start,
        "anchor": "official" if start is not None else None,
        "reset_card": reset_card,
        "state": "reset" if reset_passed else row.state,
        "usage_details": dict(row.usage_details),
        "plan_level": level,
        "plan_version": version,
        "billing": billing,
        "provenance": row.provenance,
        "fetched_at": row.fetched_at,
        "age_seconds": round(max(0.0, age), 1) if age is not None else None,
        "stale": stale or reset_passed,
    }


def binding_row(rows: Sequence[OfficialRow]) -> OfficialRow | None:
    """The window that binds first: the highest percent among the 5-hour and weekly rows (§15.5)."""
    candidates = [r for r in rows if r.kind in ("five-hour", "weekly") and r.percent is not None]
    return max(candidates, key=lambda r: r.percent or 0.0, default=None)


# --- reconciliation ---------------------------------------------------------------------------------


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

    @property
    def direction(self) -> str:
        """`official-above`, `local-above` or `equal`."""
        return "official-above" if self.points > 0 else "local-above" if self.points < 0 else "equal"


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
            f"Z.ai says {official:.0f}% used, local logs {local:.0f}%: the plan size or rates in the config may be off"
        )
    return Drift(official, local, round(points, 1), warn, message)


@dataclass(frozen=True, slots=True)
class WindowReconciliation:
    """Local and official figures of one window side by side (the module docstring lists the fields).

    Every amount is ≥ 0; `factor`, `estimate_used` and `estimate_left_local` are estimates.
    """

    window: str
    unit: str
    official_used: float | None
    official_percent: float | None
    local_used: float | None
    local_percent: float | None
    drift_points: float | None
    drift_direction: str | None
    drift_warning: str | None
    factor: float | None
    factor_from: str | None
    factor_polls: int
    estimate_used: float | None
    estimate_left_local: float | None
    start: datetime | None
    end: datetime | None
    anchor: str | None
    reset_card: bool
    stale: bool

    def to_json(self) -> dict[str, Any]:
        """A JSON-able mapping; the calibrated figures carry `provenance: estimate`."""
        return {
            "window": self.window,
            "unit": self.unit,
            "official_used": self.official_used,
            "official_percent": self.official_percent,
            "local_used": self.local_used,
            "local_percent": self.local_percent,
            "drift_points": self.drift_points,
            "drift_direction": self.drift_direction,
            "drift_warning": self.drift_warning,
            "calibration": {
                "factor": self.factor,
                "from": self.factor_from,
                "polls": self.factor_polls,
                "estimate_used": self.estimate_used,
                "estimate_left_local": self.estimate_left_local,
                "provenance": "estimate",
            },
            "start": self.start,
            "end": self.end,
            "anchor": self.anchor,
            "reset_card": self.reset_card,
            "stale": self.stale,
        }


def reconcile_window(
    official_row: OfficialRow | Mapping[str, Any],
    local_used: float | None,
    calibration: Calibration | None,
    *,
    local_limit: float | None = None,
    margin: float = 15.0,
) -> WindowReconciliation:
    """Hold one window's local figure against the official one.

    Args:
        official_row: the window's official row (a `row_json` mapping from `Snapshot.official`, or an
            `OfficialRow`).
        local_used: what the local logs count in the same window (from the row's `start`), in the local
            unit (credits, or prompt-equivalents on legacy plans); None when not counted.
        calibration: the window's `Calibration` (`OfficialTracker.calibration`), if any.
        local_limit: the local pool in the local unit (the tariff's); without it a counted official row's
            `limit` is taken, which assumes the local unit is the official one (credits).
        margin: percentage points of drift before `drift_warning` is set.

    Returns:
        The reconciliation; drift is only computed against a fresh official row.
    """
    unit = str(_get(official_row, "unit") or "percent")
    official_percent = _get(official_row, "percent")
    official_used = _get(official_row, "used")
    stale = bool(_get(official_row, "stale"))
    pool = local_limit if local_limit is not None else (_get(official_row, "limit") if unit != "percent" else None)
    local = max(0.0, float(local_used)) if local_used is not None else None
    local_percent = clamp_percent(100.0 * local / pool) if local is not None and pool else None
    d = None
    if official_percent is not None and local_percent is not None and not stale:
        d = drift(float(official_percent), local_percent, margin)
    factor = calibration.factor if calibration is not None else None
    official_left = _get(official_row, "remaining")
    if unit == "percent" and official_percent is not None:
        official_left = 100.0 - float(official_percent)
    estimate_used = local * factor if local is not None and factor is not None else None
    if estimate_used is not None and unit == "percent":
        estimate_used = clamp_percent(estimate_used)
    estimate_left = max(0.0, float(official_left)) / factor if official_left is not None and factor else None
    start = _get(official_row, "start")
    return WindowReconciliation(
        window=str(_get(official_row, "window") or "other"),
        unit=unit,
        official_used=official_used,
        official_percent=official_percent,
        local_used=local,
        local_percent=local_percent,
        drift_points=abs(d.points) if d else None,
        drift_direction=d.direction if d else None,
        drift_warning=(d.message or None) if d else None,
        factor=factor,
        factor_from=calibration.factor_from if calibration is not None else None,
        factor_polls=calibration.polls if calibration is not None else 0,
        estimate_used=estimate_used,
        estimate_left_local=estimate_left,
        start=start,
        end=_get(official_row, "next_reset"),
        anchor="official" if start is not None else None,
        reset_card=bool(_get(official_row, "reset_card")),
        stale=stale,
    )


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
        calibration: the 5-hour window's calibration, if any. `prompts_left_estimate` comes from it only
            for a percent-only (legacy) row, whose window is counted locally in prompt-equivalents.

    Returns:
        `primary` (`official` or `local`), `official_percent`, `local_percent`, `drift` (|official − local|,
        points) and `drift_direction`, `drift_warning` (one line or None), `prompts_left_estimate` (≈N or
        None), `weekly_percent`.
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
        "drift_direction": None,
        "drift_warning": None,
        "prompts_left_estimate": None,
        "weekly_percent": weekly.get("percent") if weekly else None,
    }
    if fresh and five is not None:
        d = drift(float(five["percent"]), local_percent, margin)
        out["drift"] = abs(d.points)
        out["drift_direction"] = d.direction
        out["drift_warning"] = d.message or None
        # A counted row (credits) is calibrated against local credits: its estimate is not in prompts.
        if five.get("unit") == "percent":
            left = reconcile_window(five, None, calibration).estimate_left_local
            out["prompts_left_estimate"] = math.floor(left) if left is not None else None
    return out
