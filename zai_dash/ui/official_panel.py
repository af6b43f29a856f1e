"""The "Official quota" panel: every window Z.ai's quota endpoint reports, with resets, age and staleness.

Shown only when the opt-in endpoint is on and has something to say (rows, or why it has none). The
text helpers here (`pct`, `age_text`, `row_age`, `reset_text`, `quota_health`) are shared with the
prompt gauge and the proxies panel. Countdowns and ages are recomputed from the injected clock on
every tick (`next_reset − now`, `now − fetched_at`), never decremented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from zai_dash import text as fmt
from zai_dash.domain.snapshot import SourceHealth
from zai_dash.ui.live import ClockedPanel

QUOTA_SOURCE = "zai-quota"
"""`SourceHealth.name` of the quota endpoint."""
COUNTDOWN_WITHIN = timedelta(hours=48)
"""Resets closer than this read as a countdown; further ones as a date."""
SERVICES = ("search", "reader", "zread")
STALE_CUE = "◌ stale"


def safe(text: object) -> str:
    """Text from outside (server messages, labels, names) made inert for Textual markup."""
    return str(text).replace("[", r"\[")


def pct(value: float | None) -> str:
    """`42 %`, `11.9 %`, or `—` when unknown (one decimal only when it carries information)."""
    if value is None:
        return "—"
    rounded = round(float(value), 1)
    return f"{rounded:.0f} %" if rounded == int(rounded) else f"{rounded:.1f} %"


def age_text(seconds: float | None) -> str:
    """`<1m old`, `4m old`, `2h 05m old`; minute steps keep an idle screen from repainting each second."""
    if seconds is None:
        return "age unknown"
    if seconds < 60:
        return "<1m old"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m old"
    h, m = divmod(minutes, 60)
    return f"{h}h {m:02d}m old"


def _when(value: Any) -> datetime | None:
    """A row's time field: a datetime in the snapshot, an ISO string when read back from JSON."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def row_age(row: Mapping[str, Any], snap_at: datetime, now: datetime) -> float | None:
    """Seconds since the row's values arrived, as of `now` (the snapshot's age plus time since it was built)."""
    fetched = _when(row.get("fetched_at"))
    if fetched is not None:
        return max(0.0, (now - fetched).total_seconds())
    age = row.get("age_seconds")
    if isinstance(age, (int, float)) and not isinstance(age, bool):
        return max(0.0, float(age) + (now - snap_at).total_seconds())
    return None


def reset_text(next_reset: Any, now: datetime, tz: tzinfo | None) -> str:
    """`resets in 1h 05m at 13:00`, `resets Dec 1 00:00`, or `` when the row names no reset."""
    when = _when(next_reset)
    if when is None:
        return ""
    left = (when - now).total_seconds()
    if left <= 0:
        return f"reset at {fmt.hhmm(when, tz)}"
    if left < COUNTDOWN_WITHIN.total_seconds():
        return f"resets in {fmt.duration(left)} at {fmt.hhmm(when, tz)}"
    local = fmt.local(when, tz)
    return f"resets {local:%b} {local.day} {local:%H:%M}"


def quota_health(sources: Iterable[SourceHealth]) -> SourceHealth | None:
    """The quota endpoint's health row, if the endpoint is on."""
    return next((s for s in sources if s.name == QUOTA_SOURCE), None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def weekly_blocks(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The weekly row when it is used up (it blocks requests even while the 5-hour window has room)."""
    for row in rows:
        percent = _number(row.get("percent"))
        if row.get("kind") == "weekly" and percent is not None and percent >= 100:
            return row
    return None


def row_line(
    row: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], snap_at: datetime, now: datetime, tz: tzinfo | None
) -> str:
    """One window: label, percent, used/limit, reset, age and stale marker (plus per-kind notes)."""
    label = safe(row.get("label") or row.get("kind") or "quota")
    parts = [f"{label}: [b]{pct(_number(row.get('percent')))}[/b]"]
    used, limit = _number(row.get("used")), _number(row.get("limit"))
    if used is not None and limit is not None:
        parts[0] += f" ({fmt.count(used)} / {fmt.count(limit)})"
    elif used is not None:
        parts[0] += f" ({fmt.count(used)} used)"
    state = row.get("state")
    if state == "not-started":
        parts.append("not started: opens on your next prompt")
    elif state == "reset":
        parts.append("window reset: waiting for the next reading")
    reset = reset_text(row.get("next_reset"), now, tz)
    if reset and state != "reset":
        parts.append(reset)
    details = row.get("usage_details")
    if row.get("kind") == "monthly-mcp" and isinstance(details, Mapping) and details:
        known = [s for s in SERVICES if s in details] + sorted(k for k in details if k not in SERVICES)
        parts.append(" ".join(f"{safe(s)} {fmt.count(details[s])}" for s in known))
    age = age_text(row_age(row, snap_at, now))
    parts.append(f"[b]{STALE_CUE}[/b], {age}" if row.get("stale") else age)
    line = " · ".join(parts)
    if row is weekly_blocks(rows):
        five = next((r for r in rows if r.get("kind") == "five-hour"), None)
        five_pct = _number(five.get("percent")) if five else None
        room = " even though the 5-hour window has room" if five_pct is None or five_pct < 100 else ""
        line += f"\n  [b]‼ weekly limit reached[/b]: requests are blocked until it resets{room}"
    return line


def compact_line(row: Mapping[str, Any], now: datetime, tz: tzinfo | None) -> str:
    """One short line per window for short and narrow screens."""
    label = safe(row.get("label") or row.get("kind") or "quota")
    text = f"{label} [b]{pct(_number(row.get('percent')))}[/b]"
    when = _when(row.get("next_reset"))
    if when is not None and when > now:
        left = (when - now).total_seconds()
        if left < COUNTDOWN_WITHIN.total_seconds():
            text += f" ↻{fmt.duration(left)}"
        else:
            local = fmt.local(when, tz)
            text += f" ↻{local:%b} {local.day}"
    if row.get("kind") == "weekly" and (_number(row.get("percent")) or 0) >= 100:
        text += " ‼ BLOCKS"
    if row.get("stale"):
        text += f" {STALE_CUE}"
    return text


def official_text(
    rows: Sequence[Mapping[str, Any]],
    health: SourceHealth | None,
    snap_at: datetime,
    now: datetime,
    tz: tzinfo | None,
    *,
    compact: bool = False,
) -> str:
    """The panel's text: one line per row (any kind, known or not), then the last poll's error if it failed."""
    if compact:
        lines = [" · ".join(compact_line(r, now, tz) for r in rows)] if rows else []
    else:
        lines = [row_line(r, rows, snap_at, now, tz) for r in rows]
    if not rows:
        lines.append("no reading from Z.ai yet")
    if health is not None and health.status in ("error", "stale") and health.detail:
        # The detail is already redacted by the source (the key shows as …last4 at most).
        lines.append(f"⚠ last poll: {safe(health.detail)}")
    return "\n".join(lines)


class OfficialPanel(ClockedPanel):
    """Z.ai's own quota windows; hidden (by class) while the endpoint is off."""

    DEFAULT_CSS = """
    OfficialPanel { height: auto; width: 1fr; }
    """

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.rows: tuple[Mapping[str, Any], ...] = ()
        self.health: SourceHealth | None = None
        self.snap_at: datetime | None = None

    @property
    def wanted(self) -> bool:
        """Whether there is anything to show: rows, or the endpoint's reason for having none."""
        return bool(self.rows) or (self.health is not None and self.health.status == "error")

    def set_data(
        self, rows: Sequence[Mapping[str, Any]], sources: Iterable[SourceHealth], snap_at: datetime, now: datetime
    ) -> None:
        """Take a snapshot's official rows and the quota source's health."""
        self.rows = tuple(rows)
        self.health = quota_health(sources)
        self.snap_at = snap_at
        self.set_class(self.wanted, "-shown")
        self.set_class(any(r.get("stale") for r in self.rows), "-stale")
        self.set_class(weekly_blocks(self.rows) is not None, "-blocked")
        self.tick(now)

    def text_at(self, now: datetime) -> str | None:
        """Countdowns and ages at `now` (compact: one line for all windows)."""
        if self.snap_at is None or not self.wanted:
            return None
        return official_text(self.rows, self.health, self.snap_at, now, self.tz, compact=self.compact)
