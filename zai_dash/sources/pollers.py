"""One async poll loop for every HTTP source (Z.ai quota, proxy metrics).

The loop calls a source's `fetch()` on an interval (with a floor), backs off exponentially with
jitter while it fails, honours `Retry-After`, can be woken at once (`poll_now`, the TUI's `r`), and
keeps the last result and when it arrived. Nothing raised by `fetch` escapes the loop: it becomes a
failed `Attempt`, so a broken source marks itself stale and never blocks anything else.

httpx's timeout is per read, so a server trickling a byte a second never trips it: every request goes
through `get_bounded` (one total deadline, a cap on the body), and every fetch (all its routes) is
bounded by the source's `timeout` as a whole.

httpx, asyncio and ssl are imported where a request is made, not with this module: `status` builds the
HTTP sources (to read their saved figures) but never polls, and importing httpx costs more than the
whole status line (see `tests/domain/test_import_hygiene.py`).
"""

from __future__ import annotations

import contextlib
import functools
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from zai_dash.clock import SYSTEM_CLOCK

if TYPE_CHECKING:
    import asyncio

    import httpx

MAX_BACKOFF = 900.0
"""Longest wait between failed attempts (15 min), unless `Retry-After` asks for more."""
MAX_RETRY_AFTER = 3600.0
"""A server asking for a longer pause than an hour is capped there."""
MIN_DUE = 2.0
"""An early poll requested by the source (e.g. just after a known reset) waits at least this long."""
DEADLINE_SLACK = 0.5
"""A fetch's total deadline exceeds one request's by this, so a single route's own timeout speaks first."""
MAX_BODY_BYTES = 4 * 1024 * 1024
"""Larger response bodies are refused: a quota envelope is ~1 KiB, a proxy's metrics a few hundred."""


_FIRST_REQUEST_MODULES = (
    "anyio.lowlevel",
    "anyio._core._tasks",
    "anyio._core._sockets",
    "anyio._core._streams",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio._backends._asyncio",
)
"""What httpx (through httpcore and anyio) imports lazily on a client's first request."""


@functools.cache
def body_too_large() -> type[Exception]:
    """The error for a response body over `MAX_BODY_BYTES`: an `httpx.RequestError`, made on first use.

    A transport error to every caller (`except httpx.HTTPError`), defined only once httpx is loaded.
    """
    import httpx

    class BodyTooLarge(httpx.RequestError):
        """A response body over `MAX_BODY_BYTES` (read no further)."""

    return BodyTooLarge


async def get_bounded(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str],
    deadline: float,
    max_bytes: int = MAX_BODY_BYTES,
) -> httpx.Response:
    """GET `url` within `deadline` seconds in all, reading at most `max_bytes` of (decoded) body.

    Raises:
        httpx.TimeoutException: the whole exchange took longer than `deadline` (a trickling server).
        BodyTooLarge: the body is larger than `max_bytes` (see `body_too_large`).
        httpx.HTTPError: any other transport failure.
    """
    import asyncio

    import httpx

    async def exchange() -> httpx.Response:
        async with client.stream("GET", url, headers=headers) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise body_too_large()(f"response body larger than {max_bytes // (1024 * 1024)} MiB")
                chunks.append(chunk)
            # Already decoded: drop the headers that would make httpx decode or measure it again.
            kept = [
                (k, v) for k, v in response.headers.items() if k.lower() not in ("content-encoding", "content-length")
            ]
            return httpx.Response(
                response.status_code, headers=kept, content=b"".join(chunks), request=response.request
            )

    try:
        return await asyncio.wait_for(exchange(), timeout=deadline)
    except asyncio.TimeoutError:
        raise httpx.ReadTimeout(f"no complete answer within {deadline:g} s") from None


REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
"""Same-host redirects followed per request (LiteLLM answers `/metrics` with a 307 to `/metrics/`)."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one poll.

    Attributes:
        ok: whether fresh values were obtained.
        status: an outcome class (`ok`, `timeout`, `http-error`, …).
        message: one human line, already scrubbed of secrets.
        retry_after: seconds the server asked us to wait, if it did.
        due_in: the source would like the next poll this soon (seconds), e.g. right after a reset.
    """

    ok: bool
    status: str
    message: str
    retry_after: float | None = None
    due_in: float | None = None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds from `now`: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


def network_reason(exc: BaseException) -> str:
    """A short, secret-free reason for a failed connection (the exception chain, not its text)."""
    import ssl

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "host name not resolved"
        if isinstance(seen, ssl.SSLError):
            return "TLS error"
        seen = seen.__cause__ or seen.__context__
    return "connection failed" if "connect" in type(exc).__name__.lower() else type(exc).__name__


class Poller:
    """Runs `fetch` on a schedule. Create it anywhere; `run` it inside the event loop.

    Args:
        name: the source name (for messages).
        fetch: one poll; should return an `Attempt` and not raise (if it does, the loop records it).
        interval: seconds between successful polls; raised to `floor`.
        floor: the shortest allowed interval.
        clock: the wall clock (ages are measured on it).
        rng: randomness for the jitter (tests pass a seeded one).
        on_result: called after every attempt (the engine uses it to build a new snapshot).
        max_backoff: longest wait between failed attempts.
    """

    def __init__(
        self,
        name: str,
        fetch: Callable[[], Awaitable[Attempt]],
        *,
        interval: float,
        floor: float,
        clock: Callable[[], datetime] = SYSTEM_CLOCK.now,
        rng: random.Random | None = None,
        on_result: Callable[[Attempt], None] | None = None,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.name = name
        self._fetch = fetch
        self.interval = max(float(interval), float(floor))
        self.floor = float(floor)
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_result = on_result
        self.max_backoff = max(max_backoff, self.interval)
        self.last: Attempt | None = None
        """The latest attempt."""
        self.last_at: datetime | None = None
        """When the latest attempt finished."""
        self.last_ok_at: datetime | None = None
        """When the latest successful attempt finished."""
        self.failures = 0
        """Consecutive failed attempts."""
        self.attempts = 0
        self.next_delay: float | None = None
        """The wait chosen after the latest attempt (seconds)."""
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake_requested = False
        self._not_before = 0.0  # loop time before which Retry-After forbids a request

    def age(self, now: datetime | None = None) -> float | None:
        """Seconds since the last successful poll, or None if there was none."""
        if self.last_ok_at is None:
            return None
        return max(0.0, ((now or self._clock()) - self.last_ok_at).total_seconds())

    def delay_after(self, attempt: Attempt) -> float:
        """How long to wait after `attempt`: the interval, or a jittered exponential backoff."""
        if attempt.ok:
            delay = self.interval
        else:
            base = min(self.max_backoff, self.interval * 2 ** max(0, self.failures - 1))
            # ±20 % jitter so several dashboards on one account do not retry in step.
            delay = base * self._rng.uniform(0.8, 1.2)
        if attempt.due_in is not None:
            delay = min(delay, max(MIN_DUE, attempt.due_in))
        if attempt.retry_after is not None:
            delay = max(delay, attempt.retry_after)
        return delay

    async def poll_once(self) -> Attempt:
        """One attempt, recorded; never raises (except cancellation)."""
        import asyncio

        try:
            attempt = await self._fetch()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a source must not kill the loop
            attempt = Attempt(False, "internal-error", f"{self.name}: internal error ({type(exc).__name__})")
        now = self._clock()
        self.attempts += 1
        self.last, self.last_at = attempt, now
        if attempt.ok:
            self.failures = 0
            self.last_ok_at = now
        else:
            self.failures += 1
        self.next_delay = self.delay_after(attempt)
        if attempt.retry_after is not None and self._loop is not None:
            self._not_before = self._loop.time() + attempt.retry_after
        if self._on_result is not None:
            try:
                self._on_result(attempt)
            except Exception:  # a view callback must not stop polling either
                pass
        return attempt

    def poll_now(self) -> None:
        """Poll as soon as possible (still after any `Retry-After`). Safe from any thread."""
        self._wake_requested = True
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        import asyncio

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. The first poll happens at once."""
        import asyncio

        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        loop = self._loop
        try:
            while not stop.is_set():
                self._wake.clear()
                self._wake_requested = False
                await self.poll_once()
                deadline = loop.time() + (self.next_delay or self.interval)
                while not stop.is_set():
                    remaining = deadline - loop.time()
                    if self._wake_requested:
                        # `r`: poll now, unless the server told us to hold off.
                        remaining = min(remaining, self._not_before - loop.time())
                    if remaining <= 0:
                        break
                    await _wait_any(stop, self._wake, remaining)
        finally:
            self._wake = None
            self._loop = None


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, timeout: float) -> None:
    import asyncio

    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    wake.clear()


class OffHostRedirect(Exception):
    """A redirect to another host (or from https to http), not followed: the headers may carry a secret.

    Attributes:
        target: where the server pointed.
    """

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def same_host(origin: httpx.URL, target: httpx.URL) -> bool:
    """Whether a redirect from `origin` to `target` stays on the same host, without leaving https.

    An upgrade from http to https on the same host is allowed (the port then follows the scheme).
    """
    if (target.host or "").lower() != (origin.host or "").lower():
        return False
    if target.scheme == origin.scheme:
        return target.port == origin.port
    return origin.scheme == "http" and target.scheme == "https"


async def get_same_host(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    max_redirects: int = MAX_REDIRECTS,
    *,
    deadline: float,
) -> tuple[httpx.Response, str]:
    """GET `url`, following redirects only within its host (the headers go along only there).

    Args:
        client: a client that does not follow redirects itself.
        url: the configured URL.
        headers: request headers (may hold a key).
        max_redirects: hops followed before the last redirect response is returned as is.
        deadline: seconds each hop may take in all (`get_bounded`: a trickling server is cut off).

    Returns:
        The final response and the URL that answered it.

    Raises:
        OffHostRedirect: the server pointed to another host.
        httpx.HTTPError: as `client.get`.
    """
    import httpx

    current = httpx.URL(url)
    for _ in range(max_redirects):
        response = await get_bounded(client, str(current), headers=headers, deadline=deadline)
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUSES or not location:
            return response, str(current)
        target = current.join(location)
        if not same_host(current, target):
            raise OffHostRedirect(str(target))
        current = target
    return await get_bounded(client, str(current), headers=headers, deadline=deadline), str(current)


def poll_health(poller: Poller, stale_after: float, has_values: bool, now: datetime) -> tuple[str, str]:
    """(status, detail) of an HTTP source from its poller: ok while fresh, stale with values, else error.

    Args:
        poller: the source's poll loop (polled at least once).
        stale_after: seconds after which the last good poll is stale.
        has_values: whether earlier values are still shown.
        now: the instant.
    """
    last = poller.last
    assert last is not None
    age = poller.age(now)
    if last.ok and age is not None and age <= stale_after:
        return "ok", last.message
    if has_values:
        return "stale", f"{last.message}; showing values from {age or 0:.0f} s ago"
    return "error", last.message


STALE_INTERVALS = 3
"""An HTTP source's values older than this many poll intervals are stale (unless its settings say otherwise)."""


class HttpPollSource:
    """Plumbing shared by the HTTP sources: the poll loop, one client while it runs, one-shot refreshes, `r`.

    Subclasses call `_start_poller` and set `timeout` in `__init__`, and implement `_fetch_with(client)`
    (and `fetch`, when a poll may end before any request).
    """

    poller: Poller
    timeout: float
    _client: httpx.AsyncClient | None = None

    def _start_poller(
        self,
        name: str,
        interval: float,
        *,
        floor: float,
        clock: Callable[[], datetime],
        rng: random.Random | None = None,
        on_result: Callable[[Attempt], None] | None = None,
    ) -> None:
        """Build `poller`, which runs `fetch` every `interval` seconds (not below `floor`)."""
        self.poller = Poller(
            name, self.fetch, interval=interval, floor=floor, clock=clock, rng=rng, on_result=on_result
        )

    async def fetch(self) -> Attempt:
        """One poll: the request, with the loop's client or a short-lived one."""
        return await self._fetch_any_client()

    @property
    def stale_after(self) -> timedelta:
        """Values older than `STALE_INTERVALS` poll intervals are stale."""
        return timedelta(seconds=STALE_INTERVALS * self.poller.interval)

    def _new_client(self) -> httpx.AsyncClient:
        import httpx

        # No redirects: an Authorization header must never follow one to another host.
        return httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), follow_redirects=False)

    async def _fetch_with(self, client: httpx.AsyncClient) -> Attempt:
        raise NotImplementedError

    async def _fetch_any_client(self) -> Attempt:
        """Fetch with the loop's client when running, else with a short-lived one, within `total_deadline`."""
        import asyncio

        try:
            return await asyncio.wait_for(self._fetch_with_some_client(), timeout=self.total_deadline)
        except asyncio.TimeoutError:  # every route together, not each read, is bounded
            limit = self.total_deadline
            return Attempt(False, "timeout", f"{self.poller.name}: no complete answer within {limit:g} s")

    @property
    def total_deadline(self) -> float:
        """Seconds one fetch may take with all its routes: each request has `timeout`, this a little more."""
        return self.timeout + DEADLINE_SLACK

    async def _fetch_with_some_client(self) -> Attempt:
        if self._client is not None:
            return await self._fetch_with(self._client)
        async with self._new_client() as client:
            return await self._fetch_with(client)

    async def refresh(self) -> Attempt:
        """One recorded poll outside the loop (`report`, `status`, `doctor`)."""
        return await self.poller.poll_once()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, sharing one HTTP client."""
        async with self.session():
            await self.poller.run(stop)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Share one HTTP client for the polls made inside (made here, closed on exit).

        The modules httpx loads on its first request are loaded here too, so a caller that times the
        polls inside (`status`) measures waiting on the network, not this process's start-up.
        """
        import importlib

        for name in _FIRST_REQUEST_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        async with self._new_client() as client:
            self._client = client
            try:
                yield
            finally:
                self._client = None

    def poll_now(self) -> None:
        """Poll at once (the TUI's `r`)."""
        self.poller.poll_now()
