"""Proxy metrics: any number of Prometheus endpoints (LiteLLM, another zai-dash, anything mapped).

Each `[[proxy]]` endpoint is polled with httpx, parsed with `prometheus_client`'s classic text parser
(the OpenMetrics parser only when that content type is served), and fed to a
`zai_dash.domain.proxy.ProxyState` that turns counters into deltas surviving restarts. Header values
may name env vars (`${LITELLM_MASTER_KEY}`); they are secrets and never shown.

httpx and `prometheus_client` are imported where a scrape is made or parsed: `status` builds these
sources with the engine but never scrapes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from zai_dash.config import ProxyEndpoint
from zai_dash.domain.proxy import (
    PRESETS,
    MetricSample,
    ProxyState,
    SeriesSpec,
    build_metric_map,
    parse_metric_map,
    proxy_row,
    without_scrape_requests,
)
from zai_dash.domain.snapshot import SourceHealth
from zai_dash.redact import Redactor, redact_url
from zai_dash.sources.base import SourceContext
from zai_dash.sources.pollers import (
    Attempt,
    HttpPollSource,
    OffHostRedirect,
    get_same_host,
    network_reason,
    parse_retry_after,
    poll_health,
)

if TYPE_CHECKING:
    import httpx

DEFAULT_INTERVAL = 15.0
MIN_INTERVAL = 5.0
ACCEPT = "text/plain; version=0.0.4, */*;q=0.1"
OPENMETRICS = "application/openmetrics-text"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

LITELLM_401 = (
    "401 from {name}: LiteLLM protects /metrics by default; add "
    'headers = {{ Authorization = "Bearer ${{LITELLM_MASTER_KEY}}" }} to this [[proxy]] or set '
    "litellm_settings.require_auth_for_metrics_endpoint: false"
)


ProxySettings = ProxyEndpoint
"""One `[[proxy]]` table's settings (declared once, in `zai_dash.config`)."""


def expand_headers(headers: Mapping[str, str], env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Replace `${VAR}` in header values from `env`.

    Returns:
        The expanded headers (a header naming a missing variable is left out), and one line per
        missing variable.
    """
    out: dict[str, str] = {}
    problems: list[str] = []
    for name, value in headers.items():
        missing = [v for v in _ENV_REF.findall(value) if not env.get(v)]
        if missing:
            problems.append(f"header {name} needs ${{{missing[0]}}}, which is not set")
            continue
        out[name] = _ENV_REF.sub(lambda m: env[m.group(1)], value)
    return out, problems


def parse_exposition(text: str, content_type: str) -> list[MetricSample]:
    """Samples from an exposition: classic text, or OpenMetrics when that content type was served.

    `*_created` series are dropped: the classic parser sees them as separate gauges (reference §4).

    Raises:
        ValueError: malformed input (the caller reports "parse error" and keeps the last values).
    """
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    parser = parse_openmetrics if content_type.lower().startswith(OPENMETRICS) else parse_text
    samples: list[MetricSample] = []
    for family in parser(text):
        if family.name.endswith("_created"):
            continue
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            samples.append(MetricSample(s.name, dict(s.labels), float(s.value)))
    return samples


class PrometheusSource(HttpPollSource):
    """Polls one metrics endpoint.

    Args:
        settings: the endpoint's settings.
        ctx: the source context (env for header references, clock).
        rng: jitter randomness.
        floor: interval floor (tests lower it).
        on_result: called after every attempt.
    """

    def __init__(
        self,
        settings: ProxySettings,
        ctx: SourceContext,
        *,
        rng: random.Random | None = None,
        floor: float = MIN_INTERVAL,
        on_result: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self._clock = ctx.clock
        self.headers, self.problems = expand_headers(settings.headers, ctx.env)
        self.redact = Redactor(self.headers.values())
        self.url = redact_url(settings.url)
        self._resolved = settings.url
        """Where the endpoint answered last (after a same-host redirect): asked first next time."""
        self.metric_map: dict[str, SeriesSpec] = {}
        try:
            custom, errors = parse_metric_map(settings.metric_map or {})
            self.problems.extend(errors)
            self.metric_map = build_metric_map(settings.preset, custom, settings.group_by)
        except KeyError:
            known = ", ".join(sorted(PRESETS))
            self.problems.append(f"unknown preset {settings.preset!r} (known: {known}, custom)")
        if not self.metric_map and not self.problems:
            self.problems.append("no metrics to read: set a preset or a metric map")
        self.state = ProxyState(self.metric_map)
        self._client: httpx.AsyncClient | None = None
        self.timeout = settings.timeout
        self._start_poller(
            settings.name, settings.interval, floor=floor, clock=self._clock, rng=rng, on_result=on_result
        )

    async def fetch(self) -> Attempt:
        """One scrape."""
        if self.problems:
            return Attempt(False, "config-error", self.redact(f"{self.name}: {self.problems[0]}"))
        return await self._fetch_any_client()

    async def _fetch_with(self, client: httpx.AsyncClient) -> Attempt:
        import httpx

        name, timeout = self.name, self.settings.timeout
        headers = {"Accept": ACCEPT, **self.headers}
        try:
            response, answered = await get_same_host(client, self._resolved, headers, deadline=timeout)
        except OffHostRedirect as exc:
            self._resolved = self.settings.url
            message = (
                f"{name} ({self.url}) redirected to another host ({redact_url(exc.target)}): not followed, so "
                "its headers stay here; use that URL in this [[proxy]] if you trust it"
            )
            return Attempt(False, "redirect", self.redact(message))
        except httpx.TimeoutException:
            self._resolved = self.settings.url
            return Attempt(False, "timeout", f"no answer from {name} ({self.url}) within {timeout:g} s")
        except httpx.HTTPError as exc:
            self._resolved = self.settings.url
            reason = network_reason(exc)
            return Attempt(False, "network", self.redact(f"cannot reach {name} ({self.url}): {reason}"))
        now = self._clock()
        self._resolved = answered if response.status_code == 200 else self.settings.url
        retry_after = parse_retry_after(response.headers.get("retry-after"), now)
        if response.status_code == 401:
            return Attempt(False, "unauthorized", self._unauthorized(), retry_after)
        if response.status_code != 200:
            wait = f", retry after {retry_after:.0f} s" if retry_after is not None else ""
            message = f"HTTP {response.status_code} from {name} ({self.url}){wait}"
            return Attempt(False, "http-error", self.redact(message), retry_after)
        try:
            samples = parse_exposition(response.text, response.headers.get("content-type", ""))
        except ValueError:
            return Attempt(False, "parse-error", f"parse error in {name}'s metrics; keeping the last values")
        own_paths = (httpx.URL(self.settings.url).path, httpx.URL(answered).path)
        samples = without_scrape_requests(samples, own_paths)
        resets = self.state.update(samples, now)
        note = f", {resets} counter reset(s): proxy restarted" if resets else ""
        matched = sum(1 for groups in self.state.totals().values() if groups)
        return Attempt(True, "ok", f"ok: {len(samples)} samples, {matched} series matched{note}")

    def _unauthorized(self) -> str:
        """The one line that explains a 401."""
        if self.headers:
            return f"401 from {self.name}: the configured headers were rejected (check the key they name)"
        if self.settings.preset == "litellm":
            return LITELLM_401.format(name=self.name)
        return f"401 from {self.name}: the endpoint wants credentials; set headers in its [[proxy]] table"

    def row(self, now: datetime, cycle_start: datetime | None) -> dict[str, Any]:
        """`Snapshot.proxies` entry: totals, since-cycle deltas, rates, age and stale flag."""
        last = self.poller.last
        status = last.status if last else "pending"
        message = last.message if last else "not polled yet"
        return proxy_row(
            name=self.name,
            url=self.url,
            preset=self.settings.preset,
            state=self.state,
            status=status,
            message=self.redact(message),
            now=now,
            cycle_start=cycle_start,
            stale_after=self.stale_after,
        )

    def health(self, now: datetime | None = None) -> SourceHealth:
        """One line for `doctor` and `Snapshot.sources`."""
        now = now or self._clock()
        if self.poller.last is None:
            status, detail = ("error", self.problems[0]) if self.problems else ("stale", "not polled yet")
        else:
            status, detail = poll_health(
                self.poller, self.stale_after.total_seconds(), self.state.last_at is not None, now
            )
        return SourceHealth(
            name=f"proxy:{self.name}",
            tool=None,
            status=status,
            detail=self.redact(detail),
            roots=((self.url, self.state.last_at is not None),),
        )


def create_proxy_sources(
    settings: Iterable[ProxySettings],
    ctx: SourceContext,
    on_result: Callable[[Attempt], None] | None = None,
) -> list[PrometheusSource]:
    """One source per configured endpoint (names made unique so rows never collide)."""
    seen: dict[str, int] = {}
    out = []
    for s in settings:
        n = seen.get(s.name, 0)
        seen[s.name] = n + 1
        if n:
            s = replace(s, name=f"{s.name}-{n + 1}")
        out.append(PrometheusSource(s, ctx, on_result=on_result))
    return out
