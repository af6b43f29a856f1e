"""The fleet source: every box's `zai-dash export`, read back from the Prometheus server that scrapes them.

One instant query (`zai_dash.domain.fleet.FLEET_QUERY`) per poll against Prometheus's HTTP API
(`GET /api/v1/query`), through the shared poll loop: timeouts, backoff, `r` to poll now. A dead or slow
Prometheus only marks the fleet stale; the local view never waits for it (the TUI polls in the
background; `report` waits at most `timeout` seconds).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from zai_dash.config import FleetSettings
from zai_dash.domain.fleet import FLEET_QUERY, FleetSample, FleetState, LocalFigures, fleet_view
from zai_dash.domain.snapshot import SourceHealth
from zai_dash.redact import redact_url
from zai_dash.sources.base import SourceContext
from zai_dash.sources.pollers import Attempt, HttpPollSource, network_reason, poll_health

if TYPE_CHECKING:
    import httpx  # imported where a query is made: `status` builds this source but never polls

PREFIX = "zai_dash_"
MIN_INTERVAL = 5.0


def parse_query_result(doc: Any) -> list[FleetSample]:
    """Samples from a `/api/v1/query` answer.

    Raises:
        ValueError: not a successful instant-vector answer.
    """
    if not isinstance(doc, dict) or doc.get("status") != "success":
        error = doc.get("error") if isinstance(doc, dict) else None
        raise ValueError(f"query failed: {error}" if error else "not a Prometheus query answer")
    data = doc.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise ValueError("not an instant vector")
    out: list[FleetSample] = []
    for series in data["result"]:
        try:
            labels = {str(k): str(v) for k, v in series["metric"].items()}
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            continue  # one odd series must not hide the others
        name = labels.pop("__name__", "")
        if name.startswith(PREFIX) and value == value:  # NaN never counts
            out.append(FleetSample(name[len(PREFIX) :], labels, value))
    return out


class FleetSource(HttpPollSource):
    """Polls the fleet's Prometheus and keeps every machine's last figures.

    Args:
        settings: the `[fleet]` table.
        ctx: the source context (clock).
        floor: interval floor (tests lower it).
        on_result: called after every attempt (the engine builds a new snapshot).
    """

    name = "fleet"

    def __init__(
        self,
        settings: FleetSettings,
        ctx: SourceContext,
        *,
        floor: float = MIN_INTERVAL,
        on_result: Callable[[Attempt], None] | None = None,
    ) -> None:
        self.settings = settings
        self.machine = self.settings.machine or socket.gethostname()
        base = (self.settings.prometheus or "").rstrip("/")
        self.endpoint = f"{base}/api/v1/query"
        self.url = redact_url(base)
        self._clock = ctx.clock
        self.timeout = self.settings.timeout
        self.state = FleetState()
        self._start_poller("fleet", self.settings.interval, floor=floor, clock=self._clock, on_result=on_result)

    async def _fetch_with(self, client: httpx.AsyncClient) -> Attempt:
        import httpx

        try:
            response = await client.get(self.endpoint, params={"query": FLEET_QUERY})
        except httpx.TimeoutException:
            return Attempt(False, "timeout", f"no answer from Prometheus ({self.url}) within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Attempt(False, "network", f"cannot reach Prometheus ({self.url}): {network_reason(exc)}")
        if response.status_code != 200 and response.status_code != 400:
            return Attempt(False, "http-error", f"HTTP {response.status_code} from Prometheus ({self.url})")
        try:
            samples = parse_query_result(response.json())
        except ValueError as exc:
            return Attempt(False, "parse-error", f"Prometheus ({self.url}): {exc}; keeping the last values")
        machines = self.state.update(samples, self._clock())
        return Attempt(True, "ok", f"ok: {machines} machine(s), {len(samples)} series")

    def view(self, now: datetime, local: LocalFigures, also_local: Sequence[str], official: float | None) -> Any:
        """`Snapshot.fleet`: this machine and `also_local` (OTLP senders) count from the local figures."""
        last = self.poller.last
        return fleet_view(
            self.state,
            local=local,
            local_machines=[self.machine, *[m for m in also_local if m != self.machine]],
            now=now,
            status=last.status if last else "pending",
            message=last.message if last else "not queried yet",
            url=self.url,
            stale_after=self.stale_after,
            official_percent=official,
        )

    def health(self, now: datetime | None = None) -> SourceHealth:
        """One line for `doctor` and `Snapshot.sources`."""
        now = now or self._clock()
        reached = self.state.fetched_at is not None
        if self.poller.last is None:
            status, detail = "stale", "not queried yet"
        else:
            status, detail = poll_health(self.poller, self.stale_after.total_seconds(), reached, now)
        return SourceHealth(name="fleet", tool=None, status=status, detail=detail, roots=((self.url, reached),))
