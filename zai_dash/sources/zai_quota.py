"""Z.ai's quota endpoint (`GET /api/monitor/usage/quota/limit`): opt-in, polled, never leaking the key.

Off unless configured. The key comes from the env var the user names (default `ZAI_API_KEY`); reading
`ANTHROPIC_AUTH_TOKEN` from Claude Code's environment or settings is a second, explicit opt-in. The
request sends the raw key first (as Z.ai's own plugin does), retries once with `Bearer`, and tries the
other region once on an auth failure; whatever worked is reused while the process runs. The key is
only ever placed in the request header: every message passes through a `Redactor`.

Pure rules (envelope decision, row mapping) live in `zai_dash.domain.official`. httpx is imported
only where a request is made: `status` builds this source to show the saved reading, never to poll.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from zai_dash.config import ApiSettings
from zai_dash.domain.endpoints import is_loopback
from zai_dash.domain.official import (
    Calibration,
    Decision,
    OfficialRow,
    OfficialTracker,
    QuotaReading,
    QuotaStatus,
    billing_warning,
    decide,
    official_reset_for_cycle,
    parse_limits,
    row_json,
)
from zai_dash.domain.snapshot import SourceHealth
from zai_dash.redact import Redactor, key_hint, redact_url
from zai_dash.safeio import read_text_capped
from zai_dash.sources.base import SourceContext
from zai_dash.sources.pollers import (
    Attempt,
    HttpPollSource,
    get_bounded,
    network_reason,
    parse_retry_after,
)

if TYPE_CHECKING:
    import httpx

NAME = "zai-quota"
QUOTA_PATH = "/api/monitor/usage/quota/limit"
HOSTS = {"intl": "https://api.z.ai", "cn": "https://open.bigmodel.cn"}
REGION_NAMES = {"intl": "api.z.ai", "cn": "open.bigmodel.cn"}
DEFAULT_INTERVAL = 60.0
MIN_INTERVAL = 30.0
"""Floor on the poll interval: the endpoint is undocumented and shared with Z.ai's console."""
RESET_GRACE = 5.0
"""Seconds after a known reset at which to poll again, so the new window shows promptly."""


QuotaSettings = ApiSettings
"""The `[api]` table's settings (declared once, in `zai_dash.config`)."""


@dataclass(frozen=True, slots=True)
class KeyChoice:
    """Where the key came from; never the key itself in anything shown.

    Attributes:
        key: the secret (None when not found).
        origin: e.g. `env ZAI_API_KEY`, for `doctor`.
        problem: one line when no usable key was found.
    """

    key: str | None
    origin: str
    problem: str = ""

    @property
    def hint(self) -> str:
        """`…last4` at most."""
        return key_hint(self.key)


def _claude_settings_env(ctx: SourceContext) -> Mapping[str, Any]:
    """The `env` block of Claude Code's user settings (only the block is looked at)."""
    base = ctx.env.get("CLAUDE_CONFIG_DIR")
    path = Path(base) / "settings.json" if base else ctx.home / ".claude" / "settings.json"
    try:
        data = json.loads(read_text_capped(path))
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    env = data.get("env") if isinstance(data, dict) else None
    return env if isinstance(env, dict) else {}


def claude_base_url(ctx: SourceContext) -> str | None:
    """Claude Code's configured base URL: the process env first, then its settings' `env` block."""
    value = ctx.env.get("ANTHROPIC_BASE_URL") or _claude_settings_env(ctx).get("ANTHROPIC_BASE_URL")
    return value if isinstance(value, str) and value.strip() else None


def _is_zai_host(url: str | None) -> bool:
    host = (urlsplit(url).hostname or "").lower() if url else ""
    return host == "api.z.ai" or host.endswith("bigmodel.cn")


def resolve_key(settings: QuotaSettings, ctx: SourceContext) -> KeyChoice:
    """Find the key: the named env var, then (only when opted in) Claude Code's token."""
    value = ctx.env.get(settings.key_env, "").strip()
    if value:
        return KeyChoice(value, f"env {settings.key_env}")
    if settings.use_claude_token:
        base = claude_base_url(ctx)
        if not _is_zai_host(base):
            return KeyChoice(
                None,
                "claude-code",
                f"${settings.key_env} is not set, and Claude Code's base URL is not a Z.ai host, "
                "so its ANTHROPIC_AUTH_TOKEN is not used",
            )
        token = ctx.env.get("ANTHROPIC_AUTH_TOKEN", "").strip()
        if token:
            return KeyChoice(token, "env ANTHROPIC_AUTH_TOKEN (use_claude_token)")
        stored = _claude_settings_env(ctx).get("ANTHROPIC_AUTH_TOKEN")
        if isinstance(stored, str) and stored.strip():
            return KeyChoice(stored.strip(), "Claude Code settings.json env (use_claude_token)")
    return KeyChoice(None, f"env {settings.key_env}", f"no API key: set ${settings.key_env}")


def resolve_region(settings: QuotaSettings, ctx: SourceContext) -> str:
    """`intl` or `cn`: as configured, or for `auto` from Claude Code's base URL (intl by default)."""
    if settings.region in ("intl", "cn"):
        return settings.region
    base = claude_base_url(ctx)
    host = (urlsplit(base).hostname or "").lower() if base else ""
    return "cn" if host.endswith("bigmodel.cn") else "intl"


@dataclass(frozen=True, slots=True)
class _Route:
    label: str  # region name or host shown in messages
    url: str
    form: str  # "raw" or "bearer"


class ZaiQuotaSource(HttpPollSource):
    """Polls the quota endpoint and keeps the last good reading.

    Args:
        settings: the `[api]` settings.
        ctx: the source context (env, home, clock).
        hosts: region → base URL; tests point both regions at loopback servers.
        rng: jitter randomness.
        floor: interval floor (tests lower it).
        on_result: called after every attempt (the engine rebuilds the snapshot).
    """

    name = NAME

    def __init__(
        self,
        settings: QuotaSettings,
        ctx: SourceContext,
        *,
        hosts: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
        floor: float = MIN_INTERVAL,
        on_result: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self._clock = ctx.clock
        self.key = resolve_key(settings, ctx)
        self.redact = Redactor([self.key.key])
        self.region = resolve_region(settings, ctx)
        self._hosts = dict(hosts or HOSTS)
        self._worked: tuple[str, str] | None = None  # (url, form) that last succeeded
        self._client: httpx.AsyncClient | None = None
        self.timeout = settings.timeout
        self.reading: QuotaReading | None = None
        """The last successful reading."""
        self.last_data: Any = None
        """The `data` of the last successful response (what `official_memory` keeps for `status`)."""
        self.skipped: dict[str, int] = {}
        self.tracker = OfficialTracker()
        """Each window across polls: reset cards, starts, calibrations."""
        self._start_poller(NAME, settings.interval, floor=floor, clock=self._clock, rng=rng, on_result=on_result)

    @property
    def stale_after(self) -> timedelta:
        """`[api] stale_after` when set, else `STALE_INTERVALS` poll intervals."""
        stale = self.settings.stale_after
        return timedelta(seconds=stale) if stale is not None else super().stale_after

    # --- requests ---------------------------------------------------------------------------------

    def _routes(self) -> list[_Route]:
        """Raw key on the primary host, then `Bearer`, then the other region once; what worked first."""
        if self.settings.base_url:
            base = self.settings.base_url.rstrip("/")
            label = urlsplit(base).hostname or base
            routes = [_Route(label, base + QUOTA_PATH, "raw"), _Route(label, base + QUOTA_PATH, "bearer")]
        else:
            other = "cn" if self.region == "intl" else "intl"
            primary = self._hosts[self.region].rstrip("/") + QUOTA_PATH
            secondary = self._hosts[other].rstrip("/") + QUOTA_PATH
            routes = [
                _Route(REGION_NAMES[self.region], primary, "raw"),
                _Route(REGION_NAMES[self.region], primary, "bearer"),
                _Route(REGION_NAMES[other], secondary, "raw"),
            ]
        if self._worked:
            known = [r for r in routes if (r.url, r.form) == self._worked]
            routes = known + [r for r in routes if (r.url, r.form) != self._worked]
        return routes

    def _insecure(self, url: str) -> bool:
        parts = urlsplit(url)
        return parts.scheme != "https" and not is_loopback(parts.hostname or "")

    async def fetch(self) -> Attempt:
        """One poll (the poller calls this; `report`/`status` may call it once via `refresh`)."""
        if not self.settings.enabled:
            return Attempt(False, QuotaStatus.DISABLED.value, "Z.ai quota endpoint is off (enable it in [api])")
        if not self.key.key:
            return Attempt(False, QuotaStatus.NO_KEY.value, self.redact(self.key.problem))
        return await self._fetch_any_client()

    async def _fetch_with(self, client: httpx.AsyncClient) -> Attempt:
        key = self.key.key or ""
        tried: list[str] = []
        rejected: Attempt | None = None  # the first auth failure: the real problem if fallbacks fail too
        for route in self._routes():
            if self._insecure(route.url):
                return Attempt(
                    False,
                    QuotaStatus.HTTP_ERROR.value,
                    f"refusing to send the API key over plain http to {redact_url(route.url)}",
                )
            attempt, decision = await self._request(client, route, key)
            if decision is not None and decision.status is QuotaStatus.OK:
                self._worked = (route.url, route.form)
                return attempt
            tried.append(f"{route.label} ({route.form})")
            if decision is not None and decision.auth_failure:
                rejected = rejected or attempt
                continue
            if rejected is None:
                return attempt
            # A fallback route that fails otherwise (other region unreachable) does not hide the rejection.
            note = f"; {route.label}: {attempt.message}"
            return self._rejected(rejected, tried, note)
        assert rejected is not None
        return self._rejected(rejected, tried, "")

    def _rejected(self, attempt: Attempt, tried: list[str], note: str) -> Attempt:
        text = f"{attempt.message} (tried {', '.join(tried)}){note}"
        return Attempt(False, attempt.status, self.redact(text), attempt.retry_after)

    async def _request(self, client: httpx.AsyncClient, route: _Route, key: str) -> tuple[Attempt, Decision | None]:
        headers = {
            "Authorization": key if route.form == "raw" else f"Bearer {key}",
            "Accept-Language": "en-US,en",
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        import httpx

        timeout = self.settings.timeout
        try:
            response = await get_bounded(client, route.url, headers=headers, deadline=timeout)
        except httpx.TimeoutException:
            return Attempt(False, QuotaStatus.TIMEOUT.value, f"no answer from {route.label} within {timeout:g} s"), None
        except httpx.HTTPError as exc:
            reason = network_reason(exc)
            return Attempt(False, QuotaStatus.NETWORK.value, f"cannot reach {route.label}: {reason}"), None
        now = self._clock()
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        decision = decide(response.status_code, response.content)
        if decision.status is QuotaStatus.OK:
            reading = parse_limits(decision.data, now)
            self.reading, self.last_data = reading, decision.data
            self.tracker.update(reading)
            for reason, n in reading.skipped.items():
                self.skipped[reason] = self.skipped.get(reason, 0) + n
            return Attempt(True, "ok", self._ok_message(reading, route), due_in=self._due_in(reading, now)), decision
        message = self._error_message(decision, route, retry_after)
        return Attempt(False, decision.status.value, message, retry_after), decision

    def _ok_message(self, reading: QuotaReading, route: _Route) -> str:
        plan = f"plan {reading.level}, " if reading.level else ""
        billing = f", {reading.billing} billing" if reading.billing else ""
        return f"ok: {len(reading.rows)} quota row(s) from {route.label} ({plan}{reading.version}{billing})"

    def _error_message(self, d: Decision, route: _Route, retry_after: float | None) -> str:
        server = f": {self.redact(d.msg)[:120]}" if d.msg else ""  # mask first: a cut key is still a key
        host = route.label
        if d.status is QuotaStatus.INVALID_KEY:
            text = f"{host} rejected the API key {self.key.hint}{server}"
        elif d.status is QuotaStatus.NO_PLAN:
            text = f"the API key {self.key.hint} works but its account has no GLM Coding Plan"
        elif d.status is QuotaStatus.EMPTY:
            text = f"empty response from {host}: wrong region, proxy or path?"
        elif d.status is QuotaStatus.BAD_RESPONSE:
            text = f"unreadable response from {host} (HTTP {d.http_status}): not JSON"
        elif d.status is QuotaStatus.HTTP_ERROR:
            hint = " (wrong region, proxy or path?)" if d.http_status == 404 else ""
            wait = f", retry after {retry_after:.0f} s" if retry_after is not None else ""
            text = f"HTTP {d.http_status} from {host}{hint}{wait}{server}"
        else:
            text = f"{host} answered code {d.code}{server}"
        return self.redact(text)

    def _due_in(self, reading: QuotaReading, now: datetime) -> float | None:
        """Poll again just after the 5-hour reset, so the fresh window shows without waiting an interval."""
        five = reading.row("five-hour")
        if five is None or five.next_reset is None:
            return None
        seconds = (five.next_reset - now).total_seconds()
        return seconds + RESET_GRACE if seconds >= 0 else None

    def endpoint(self) -> str:
        """What identifies where readings come from (base URL or region), for `official_memory`."""
        return self.settings.base_url or self.region

    def adopt(self, data: Any, fetched_at: datetime) -> bool:
        """Take a reading an earlier process saved: shown with its age (and stale once old), not polled."""
        try:
            reading = parse_limits(data, fetched_at)
        except Exception:  # a saved reading of any shape is only a missed shortcut
            return False
        self.reading = reading
        self.poller.last = Attempt(True, "ok", "saved reading")
        self.poller.last_at = self.poller.last_ok_at = fetched_at
        return True

    # --- views ------------------------------------------------------------------------------------

    def is_fresh(self, now: datetime | None = None) -> bool:
        """Whether the last reading is recent and the last attempt succeeded."""
        age = self.poller.age(now)
        last = self.poller.last
        return age is not None and age <= self.stale_after.total_seconds() and last is not None and last.ok

    def fresh_rows(self, now: datetime | None = None) -> tuple[OfficialRow, ...]:
        """The rows, only when fresh: what may anchor the cycle or calibrate."""
        return self.reading.rows if self.reading and self.is_fresh(now) else ()

    def official_reset(self, now: datetime) -> datetime | None:
        """What the engine passes as `build_snapshot(official_reset=...)`."""
        return official_reset_for_cycle(self.fresh_rows(now), now)

    def rows(self, now: datetime) -> tuple[dict[str, Any], ...]:
        """`Snapshot.official`: every row of the last good reading, with its window start, age and a stale flag."""
        if self.reading is None:
            return ()
        stale = not self.is_fresh(now)
        r, t = self.reading, self.tracker
        return tuple(
            row_json(
                row,
                now,
                stale=stale,
                level=r.level,
                version=r.version,
                start=t.start(row),
                reset_card=t.re_anchored(row),
                billing=r.billing,
            )
            for row in r.rows
        )

    @property
    def calibration(self) -> Calibration:
        """The 5-hour window's calibration (what `reconcile` takes for the prompt gauge)."""
        return self.tracker.calibration("5h")

    def observe_local(self, local: float | Mapping[str, float], now: datetime) -> None:
        """Feed the calibrations after a fresh poll with what local logs count in each window.

        Args:
            local: window id → the local amount used in it (credits, or prompt-equivalents on legacy
                plans); a bare number is the 5-hour window's.
            now: the instant (only a fresh reading is calibrated against).
        """
        if self.reading is None or not self.fresh_rows(now):
            return
        amounts = local if isinstance(local, Mapping) else {"5h": float(local)}
        self.tracker.observe_local(self.reading, amounts)

    def billing_warning(self, configured: str | None) -> str | None:
        """One line when the last reading shows another billing generation than `configured`."""
        return billing_warning(self.reading.billing if self.reading else None, configured)

    def health(self, now: datetime | None = None) -> SourceHealth:
        """One line for `doctor` and `Snapshot.sources`: last result, age, key hint, route."""
        now = now or self._clock()
        last = self.poller.last
        if not self.settings.enabled:
            status, detail = "absent", "off (enable it in [api])"
        elif last is None:
            no_key = not self.key.key
            status, detail = ("error", self.key.problem) if no_key else ("stale", "not polled yet")
        elif last.ok and self.is_fresh(now):
            status, detail = "ok", last.message
        elif self.reading is not None:
            age = self.poller.age(now) or 0.0
            status, detail = "stale", f"{last.message}; showing values from {age:.0f} s ago"
        else:
            status, detail = "error", last.message
        roots: tuple[tuple[str, bool], ...] = ()
        if self._worked:
            roots = ((redact_url(self._worked[0]) + f" ({self._worked[1]} key)", True),)
        return SourceHealth(
            name=NAME,
            tool=None,
            status=status,
            detail=self.redact(detail),
            roots=roots,
            files=0,
            skipped=dict(self.skipped),
        )

    def doctor_lines(self, now: datetime | None = None, billing: str | None = None) -> list[str]:
        """Human lines for `zai-dash doctor` (no secret beyond `…last4`).

        Args:
            now: the instant.
            billing: the configured billing generation, checked against the one the rows show.
        """
        h = self.health(now)
        base = f", base_url {redact_url(self.settings.base_url)}" if self.settings.base_url else ""
        lines = [
            f"Z.ai quota endpoint: {h.status}: {h.detail}",
            f"  key: {self.key.origin} {self.key.hint or '(none)'}",
            f"  region: {self.region}{base}",
            f"  interval: {self.poller.interval:g} s, timeout {self.settings.timeout:g} s",
        ]
        if self._worked:
            lines.append(f"  working route: {redact_url(self._worked[0])} with the {self._worked[1]} key header")
        if self.reading is not None and self.reading.billing:
            lines.append(f"  billing shown by the rows: {self.reading.billing}")
        warning = self.billing_warning(billing)
        if warning:
            lines.append(f"  warning: {warning}")
        return [self.redact(line) for line in lines]
