"""The engine: owns the sources and the ledger, scans, watches, and builds snapshots.

Views (TUI, `report`, `status`, exporter) only ever see the immutable `Snapshot` it builds.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zai_dash import cache, paths, statefile
from zai_dash.clock import Clock, SystemClock
from zai_dash.config import Config
from zai_dash.domain.events import McpService
from zai_dash.domain.ledger import Ledger, Meter, TariffMeter
from zai_dash.domain.month import month_window
from zai_dash.domain.plans import Plan
from zai_dash.domain.snapshot import PROMPT_BILLINGS, Metering, Snapshot, SourceHealth, ToolConfigInfo, build_snapshot
from zai_dash.domain.windows import WINDOW_ORDER
from zai_dash.scan import ClockGuard, paused_gc, poll_transaction
from zai_dash.sources.base import Root, SourceBatch, SourceContext, ToolSource
from zai_dash.sources.tools import create_all_sources, registered_tools

if TYPE_CHECKING:
    import asyncio

    from zai_dash.sources.fleet import FleetSource
    from zai_dash.sources.otlp import OtlpSource
    from zai_dash.sources.prometheus import PrometheusSource
    from zai_dash.sources.zai_quota import ZaiQuotaSource

log = logging.getLogger(__name__)

DETAIL_HORIZON = timedelta(hours=24)
"""Events this recent are kept one by one; older ones are folded into the ledger's minute buckets.

The cycle chains from the last gap longer than 5 h; a day of history covers that for anyone who
sleeps, and the timeline and per-prompt credits need no more.
"""
CALL_HORIZON = timedelta(days=8)
"""Prompts and calls older than this (before the evaluation instant) are not kept: the weekly window
and the week before it. MCP calls are kept for the whole month window (and at least as long)."""
TICK = 1.0
"""Seconds between the watcher's idle wake-ups (cheap: they only check clocks)."""
RESCAN_EVERY = 60.0
"""Seconds between slow rescans that catch missed wake-ups and new roots."""
SNAPSHOT_GAP = 1.0
"""Least seconds between two snapshots while changes keep coming (the first after a quiet spell is at once).

One a second: the dashboard's countdowns move by the second anyway, and each snapshot costs a scan, a
build and a state-file write (at 0.5 s a tool writing steadily kept the engine at 2.4 % of a core)."""
HEARTBEAT_EVERY = 60.0
"""Seconds between snapshots sent even when nothing changed (statuses age, cycles end)."""
DEBOUNCE_MS = 150
WATCH_STEP_MS = 90
"""How often watchfiles' Rust loop looks at what the OS reported, in ms: a change waits up to one step to be seen,
then one quiet step before it is handed over, so append-to-screen grows by about two steps. Each look takes the
GIL, so it is also the engine's idle cost: at 50 ms the looks were half of a dashboard's idle CPU. 90 ms keeps
both targets (idle ≤ 0.5 % of a core, append p95 ≤ 300 ms) with room under load; bench/RESULTS.md has the figures."""
CACHE_SAVE_EVERY = 60.0
"""Seconds between cache writes while watching (and once more when the watch stops)."""


@dataclass(slots=True)
class SourceState:
    """What the engine saw of one source's health: each failure holds until that step works again.

    Attributes:
        poll_error: why the last poll failed as a whole (None: it read through).
        config_error: why the last read of its settings raised (None: it read).
    """

    poll_error: str | None = None
    config_error: str | None = None

    @property
    def error(self) -> str | None:
        """The failure to show (the poll's first), or None when the source is well."""
        return self.poll_error or self.config_error


class Engine:
    """Reads every source into one ledger and answers with snapshots.

    Args:
        config: the configuration in effect.
        ctx: where sources look (home, env). Its `since` is set from the clock and the month window.
        clock: what time it is; `report --at` passes a fixed clock.
        sources: sources to use instead of discovering every tool adapter (tests).
        demo: label snapshots as demo data.
        use_cache: resume from the on-disk cache and keep it up to date (off for `--at` replays and demos).
    """

    def __init__(
        self,
        config: Config,
        ctx: SourceContext | None = None,
        clock: Clock | None = None,
        sources: list[ToolSource] | None = None,
        demo: bool = False,
        use_cache: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.demo = demo
        self.tz = config.tz()
        now = self.clock.now()
        month_start, _ = month_window(now, config.renewal_day, self.tz)
        since = min(month_start, now - CALL_HORIZON)
        base = ctx or SourceContext.from_environment()
        self.ctx = replace(
            base,
            since=since,
            calls_since=now - CALL_HORIZON,
            extra_roots={**base.extra_roots, **config.extra_roots},
        )
        self.sources = sources if sources is not None else create_all_sources(self.ctx, config.disabled_tools)
        self.tools = registered_tools()
        """Every tool an adapter declares: one row each in the snapshot."""
        self.clock_guard = ClockGuard(now, getattr(self.clock, "ticks", None))
        """Tells a wall clock that jumped or went back (the cache is not written meanwhile)."""
        self.ledger = Ledger(self._meter())
        self.ledger.calls_floor = now - CALL_HORIZON
        self.ledger.mcp_floor = since
        self.ledger.detail_floor = now - DETAIL_HORIZON
        self._lock = threading.Lock()
        self._source_states: dict[int, SourceState] = {}
        """Per source (by identity): the failures the engine saw, kept here rather than on the source."""
        self._roots: dict[int, list[Root]] = {}
        """Per source, its roots as of the last full poll: a wake-up is routed without asking every source
        (some read their tool's project list or settings to answer)."""
        self._rescan: asyncio.Event | None = None
        self.scans = 0
        self.publish_state = True
        """Whether `watch` publishes snapshots to the state file (the live dashboard does)."""
        # HTTP sources are imported only when configured: `status` must start fast, and httpx is not free.
        self.quota: ZaiQuotaSource | None = None
        """The opt-in official quota poller (None when `[api]` is off or in the demo)."""
        if config.api.enabled and not demo:
            from zai_dash.sources.zai_quota import ZaiQuotaSource

            self.quota = ZaiQuotaSource(config.api, self.ctx, on_result=self._polled)
        self.proxies: list[PrometheusSource] = []
        if config.proxies and not demo:
            from zai_dash.sources.prometheus import create_proxy_sources

            self.proxies = create_proxy_sources(config.proxies, self.ctx, on_result=self._polled)
        # platform (already loaded with orjson), not socket: `status` builds an engine on every call.
        self.machine = config.fleet.machine or config.otlp.machine or platform.node() or "localhost"
        """This machine's name: the exporter's `machine` label, the fleet's own row, OTLP's default host."""
        self.fleet: FleetSource | None = None
        """The `[fleet]` Prometheus poller: other machines' exporters (None when off or in the demo)."""
        if config.fleet.prometheus and not demo:
            from zai_dash.sources.fleet import FleetSource

            fleet = replace(config.fleet, machine=self.machine)
            self.fleet = FleetSource(fleet, self.ctx, on_result=self._polled)
        self.otlp: OtlpSource | None = None
        """The OTLP receiver (`[otlp]`): a source like the adapters; it listens only while `watch` runs."""
        if config.otlp.enabled and not demo:
            from zai_dash.sources.otlp import OtlpSource

            otlp = replace(config.otlp, machine=self.machine)
            self.otlp = OtlpSource(otlp, self.ctx, ledger=self.ledger)
            self.sources.append(self.otlp)
        self.use_cache = use_cache and not demo
        self.cache_used = self.use_cache and self._load_cache()
        """Whether this engine resumed from the on-disk cache."""
        # Every event seen, folded ones too (not only the detail tier): a warm start prunes from the
        # same instant a cold scan of the same files does.
        self._newest: datetime | None = self.ledger.newest()
        """The newest event seen: pruning never measures its horizon past it (see `ClockGuard`)."""
        self._saved_version = self.ledger.version if self.cache_used else -1

    # -- reading -----------------------------------------------------------------------------

    def scan(self, paths: set[Path] | None = None) -> bool:
        """Poll sources once and fold what is new into the ledger (blocking).

        Args:
            paths: paths a wake-up named; only sources with a root above one of them are polled.
                None (the first scan, a periodic rescan, `r`): every source.

        Returns:
            Whether anything changed.
        """
        changed = False

        def take(batch: SourceBatch) -> None:
            # Called with what a poll found so far (`ToolSource.spill`) and with the rest when it returns.
            nonlocal changed
            newest = self._newest
            for event in batch.events:
                if newest is None or event.ts > newest:
                    newest = event.ts
            self._newest = newest
            changed |= self.ledger.add_batch(batch.events)
            for hit in batch.limit_hits:
                changed |= self.ledger.add_limit_hit(hit)
            batch.events.clear()
            batch.limit_hits.clear()

        # What the first scan reads stays for the life of the process: frozen out of later collections.
        with self._lock, paused_gc(freeze=self.scans == 0):
            now = self.clock.now()
            for source, named in self._to_poll(paths):
                source.spill = take
                try:
                    result = poll_transaction(source, named)
                finally:
                    source.spill = None
                take(result.batch)
                self._state_of(source).poll_error = result.error  # a poll that read through ends an error
            # Prune against the newest event, not the wall clock alone: a clock that jumps two days
            # ahead must not drop the day's events (and then, back on time, count nothing).
            prune_at = self.clock_guard.prune_reference(now, self._newest)
            month_start, _ = month_window(prune_at, self.config.renewal_day, self.tz)
            horizon = prune_at - CALL_HORIZON
            self.ledger.prune(
                calls_before=horizon, mcp_before=min(month_start, horizon), detail_before=prune_at - DETAIL_HORIZON
            )
            self.scans += 1
        return changed

    def _cache_fingerprint(self) -> str:
        # hashlib, not hash(): str hashes are salted per process, and the cache must outlive one.
        roots = "\0".join(sorted(path for _, path, _ in self.search_locations()))
        return f"{self.config.fingerprint()}:{hashlib.sha256(roots.encode()).hexdigest()[:16]}"

    def _load_cache(self) -> bool:
        path = cache.cache_path(dict(self.ctx.env))
        with self._lock:
            return cache.load(path, self._cache_fingerprint(), self.ledger, self.sources, now=self.clock.now())

    def save_cache(self) -> None:
        """Write the on-disk cache if anything changed since the last write (and the clock is sane)."""
        if not self.use_cache or self.ledger.version == self._saved_version:
            return
        with self._lock:
            if self.clock_guard.jumped(self.clock.now()):
                log.warning("cache not written: the wall clock moved %s", self.clock_guard.describe(self.clock.now()))
                return
            cache.save(
                cache.cache_path(dict(self.ctx.env)),
                self._cache_fingerprint(),
                self.ledger,
                self.sources,
                saved_at=self.clock.now(),
            )
            self._saved_version = self.ledger.version

    def _to_poll(self, changed: set[Path] | None) -> list[tuple[ToolSource, set[Path] | None]]:
        """Every source to poll, with the changed paths under its roots (None: poll it whole).

        Wake-ups are routed by the roots found at the last full poll (some sources read their tool's
        project list or settings to name them); a path under none of those asks every source again.
        """
        if changed is None or not self._roots:
            self._roots = {id(source): source.roots() for source in self.sources}
        if changed is None:
            return [(source, None) for source in self.sources]
        picked, claimed = self._route(changed)
        if claimed != changed:  # a root appeared since the last full poll
            self._roots = {id(source): source.roots() for source in self.sources}
            picked, _ = self._route(changed)
        return picked

    def _route(self, changed: set[Path]) -> tuple[list[tuple[ToolSource, set[Path] | None]], set[Path]]:
        """(source, its changed paths) by the kept roots, and the changed paths some source claimed."""
        picked: list[tuple[ToolSource, set[Path] | None]] = []
        claimed: set[Path] = set()
        for source in self.sources:
            declared = self._roots.get(id(source))
            if declared is None:  # a source added since (OTLP): ask it
                declared = self._roots[id(source)] = source.roots()
            if not declared:
                picked.append((source, None))  # a receiver (OTLP) has no files: polling it only drains its queue
                continue
            roots = [r.path for r in declared if r.exists]
            mine = {p for p in changed if any(p == root or root in p.parents for root in roots)}
            if mine:
                picked.append((source, mine))
                claimed |= mine
        return picked, claimed

    def _state_of(self, source: ToolSource) -> SourceState:
        """What the engine knows of `source`'s health (made on first use)."""
        state = self._source_states.get(id(source))
        if state is None:
            state = self._source_states[id(source)] = SourceState()
        return state

    def rescan_now(self) -> None:
        """Make `watch` rescan at once and poll every endpoint now (the TUI's `r`)."""
        for poller in self.pollers():
            poller.poll_now()
        if self._rescan is not None:
            self._rescan.set()

    def pollers(self) -> list[ZaiQuotaSource | PrometheusSource | FleetSource]:
        """The HTTP sources: official quota, proxy metrics and the fleet's Prometheus."""
        return [*([self.quota] if self.quota else []), *self.proxies, *([self.fleet] if self.fleet else [])]

    def _polled(self, attempt: Any) -> None:
        """A poll finished: feed calibration, and have `watch` send a fresh snapshot."""
        if self.quota is not None and attempt is not None and self.use_cache:
            ok = getattr(attempt, "ok", False) and self.quota.last_data is not None
            self._official_memory("save" if ok else "attempt", self.clock.now())
        if self.quota is not None and attempt is not None and getattr(attempt, "ok", False):
            now = self.clock.now()
            with self._lock:
                snap = self._build(now, None, official_only=True)
            self.quota.observe_local({w.id: w.local_used for w in snap.windows if w.local_used is not None}, now)
        if self._rescan is not None:
            self._rescan.set()

    def restore_official(self) -> bool:
        """Show the last official reading saved by any zai-dash process (with its age) until a poll lands."""
        return self.quota is not None and self._official_memory("load", self.clock.now())

    def _official_memory(self, action: str, now: datetime) -> bool:
        from zai_dash import official_memory

        assert self.quota is not None
        path = official_memory.memory_path(dict(self.ctx.env))
        who = official_memory.identity(self.quota.key.key, self.quota.endpoint())
        if action == "save":
            official_memory.save(path, who, self.quota.last_data, now)
            return True
        if action == "attempt":
            official_memory.note_attempt(path, who, now)
            return True
        saved = official_memory.load(path, who, now)
        return saved is not None and self.quota.adopt(*saved)

    def refresh_pollers(self) -> None:
        """Poll every HTTP source once (blocking), each bounded by its own total deadline: `report`,
        `doctor` and `export` use this (`status` never polls; it shows the saved reading)."""
        pollers = self.pollers()
        if not pollers:
            return
        import asyncio
        import contextlib

        async def once() -> None:
            async with contextlib.AsyncExitStack() as stack:
                for poller in pollers:
                    # Clients are made before the clock starts: TLS set-up is local work, not waiting.
                    await stack.enter_async_context(poller.session())
                await asyncio.gather(*(p.refresh() for p in pollers), return_exceptions=True)

        asyncio.run(once())

    # -- building ------------------------------------------------------------------------------

    def plan_named(self, name: str) -> Plan:
        """A plan by name (built-in or from config), for previews."""
        return self.config.plans[name]

    def tool_configs(self) -> dict[str, ToolConfigInfo]:
        """Every tool's configured model and endpoint, merged over sources."""
        merged: dict[str, ToolConfigInfo] = {}
        for source in self.sources:
            state = self._state_of(source)
            try:
                merged.update({k: v for k, v in source.configs().items() if k not in merged or v.model})
            except Exception as exc:
                log.exception("source %s configs failed", source.name)
                state.config_error = f"internal error reading settings: {exc}"
            else:
                state.config_error = None  # the settings read again: that failure is over
        return merged

    def health(self) -> list[SourceHealth]:
        """Health of every source: its own rows, with a failure the engine saw (until it is over) first."""
        rows: list[SourceHealth] = []
        for source in self.sources:
            error = self._state_of(source).error
            try:
                own = source.health()
            except Exception as exc:
                rows.append(SourceHealth(source.name, None, "error", f"internal error: {exc}"))
                continue
            rows.extend(own if error is None else [replace(row, status="error", detail=error) for row in own])
        return rows

    def skipped(self) -> dict[str, Any]:
        """Skipped records summed over sources: `lines`, `files`, `reasons` → count, `first` → where."""
        reasons: dict[str, int] = {}
        first: dict[str, str] = {}
        files = 0
        for source in self.sources:
            files += source.skips.files
            for reason, n in source.skips.counts.items():
                reasons[reason] = reasons.get(reason, 0) + n
            for reason, where in source.skips.first.items():
                first.setdefault(reason, where)
        return {"lines": sum(reasons.values()) - files, "files": files, "reasons": reasons, "first": first}

    def snapshot(self, now: datetime | None = None, plan: Plan | None = None) -> Snapshot:
        """Build the snapshot as of `now` (default: the clock)."""
        now = now or self.clock.now()
        with self._lock:
            return self._build(now, plan)

    def _meter(self) -> Meter:
        """How the ledger prices events (credits and legacy weight at each event's own instant)."""
        return TariffMeter(self.config.tariff, weighted=self.config.billing in PROMPT_BILLINGS)

    def metering(self, now: datetime, plan: Plan | None = None) -> Metering:
        """Billing generation, pools (as valid at `now`: a replay gets that day's) and weekly anchor."""
        plan = plan or self.config.plan
        tariff = self.config.tariff
        try:
            pools = tariff.pools(plan.billing, plan.name, now)
        except KeyError:
            pools = plan.pools
        priced = (s for s in McpService if tariff.mcp_is_estimate(s) and tariff.mcp_credits(s, now) > 0)
        return Metering(
            billing=plan.billing,
            pools=pools,
            weekly_reset=self.config.weekly_reset,
            estimated_services=frozenset(s.value for s in priced),
            peak=tariff.is_peak(now),
            configured=self.config.billing if self.config.billing_explicit else None,
            tariff={"entries": tariff.entries(now), "default_model": tariff.default_model},
        )

    def _build(self, now: datetime, plan: Plan | None, official_only: bool = False) -> Snapshot:
        official = self.quota.rows(now) if self.quota else ()
        official_reset = self.quota.official_reset(now) if self.quota else None
        configs = {} if official_only else self.tool_configs()  # first: a settings failure shows in health
        health = [] if official_only else self.health()
        if not official_only:
            health += [p.health(now) for p in self.pollers()]
        snap = build_snapshot(
            now=now,
            plan=plan or self.config.plan,
            ledger=self.ledger,
            tz=self.tz,
            renewal_day=self.config.renewal_day,
            thresholds=self.config.thresholds,
            tool_configs=configs,
            sources=health,
            skipped=self.skipped(),
            demo=self.demo,
            official_reset=official_reset,
            official=official,
            metering=self.metering(now, plan),
            drift_margin=self.config.api.drift_margin,
            calibrations={w: self.quota.tracker.calibration(w) for w in WINDOW_ORDER} if self.quota else None,
            tools=self.tools,
        )
        if official_only or not (self.proxies or self.fleet):
            return snap
        # Proxy rows are another machine's figures beside ours; they never change the windows.
        cycle_start = snap.cycle.start if snap.cycle.state == "open" else None
        extra: dict[str, Any] = {"proxies": self._proxy_rows(now, cycle_start)}
        if self.fleet is not None:
            extra["fleet"] = self._fleet_view(snap, now)
        return replace(snap, **extra)

    def _proxy_rows(self, now: datetime, cycle_start: datetime | None) -> tuple[dict[str, Any], ...]:
        """Proxy rows; a zai-dash exporter of this machine (or an OTLP sender) is marked counted locally."""
        from zai_dash.domain.fleet import mark_self_scrapes

        rows = [p.row(now, cycle_start) for p in self.proxies]
        return mark_self_scrapes(rows, [self.machine, *(self.otlp.hosts() if self.otlp else ())])

    def _fleet_view(self, snap: Snapshot, now: datetime) -> Any:
        """The fleet rows: this machine and the hosts sending OTLP here count from the local ledger."""
        from zai_dash.domain.fleet import LocalFigures

        assert self.fleet is not None
        p, c = snap.prompts, snap.credits
        by_model: dict[str, float] = {}
        for row in snap.tools:
            for model, value in row.credits_by_model.items():
                by_model[model] = by_model.get(model, 0.0) + value
        local = LocalFigures(
            p.equivalents, p.used, p.calls, snap.searches.month, p.limit,
            credits={"5h": c.window_5h, "weekly": c.week}, credits_by_model=by_model,
        )  # fmt: skip
        five = snap.window("5h")
        official = five.percent if five is not None and five.source == "official" else None
        return self.fleet.view(now, local, self.otlp.hosts() if self.otlp else [], official)

    def published_snapshot(self) -> Snapshot:
        """A snapshot, also published to the state file for `zai-dash status` (not for the demo)."""
        snap = self.snapshot()
        if self.publish_state and not self.demo:
            statefile.publish(
                snap.to_json(self.tz), self.config.fingerprint(), paths.dashboard_state_file(self.ctx.env)
            )
        return snap

    def search_locations(self) -> list[tuple[str, str, bool]]:
        """(source, path, exists) for every location looked at: the empty state and `doctor` list them."""
        return [(s.name, str(r.path), r.exists) for s in self.sources for r in s.roots()]

    # -- watching ------------------------------------------------------------------------------

    def watch_paths(self) -> list[Path]:
        """Existing roots to watch, with nested duplicates removed."""
        paths = sorted({r.path for s in self.sources for r in s.roots() if r.exists})
        kept: list[Path] = []
        for p in paths:
            if not any(p.is_relative_to(k) for k in kept):
                kept.append(p)
        return kept

    def missing_roots(self) -> list[Path]:
        """Locations a source would read that do not exist yet (a tool installed after the start)."""
        return sorted({r.path for s in self.sources for r in s.roots() if not r.path.exists()})

    async def watch(self, stop: asyncio.Event) -> AsyncIterator[Snapshot]:
        """Yield a snapshot after every change until `stop` is set.

        watchfiles is only a wake-up: each batch makes the readers look, and they decide what is new.
        A slow rescan catches lost events and roots that appear later; a heartbeat snapshot lets
        statuses age and cycles end on screen even when nothing is written.
        """
        # Imported here: `report` and `status` never watch, and asyncio + watchfiles cost start-up time.
        import asyncio

        from watchfiles import awatch

        self._rescan = asyncio.Event()
        loop = asyncio.get_running_loop()
        if self.otlp is not None:
            self.otlp.start()
        poll_tasks = [asyncio.ensure_future(p.run(stop)) for p in self.pollers()]
        # Publish at once, so `zai-dash status` can answer from this process from its first second.
        await asyncio.to_thread(self.published_snapshot)
        last_yield = last_save = last_full = loop.time()
        try:
            while not stop.is_set():
                paths = self.watch_paths()
                # Nothing watches a folder that does not exist: each wake-up (at least every TICK) looks
                # whether one appeared, so a tool's first log shows within seconds, not at the rescan.
                missing = self.missing_roots()
                watch_stop = asyncio.Event()
                relay = asyncio.ensure_future(self._relay_stop(stop, watch_stop))
                waker: AsyncIterator[Any]
                if paths:
                    waker = awatch(
                        *paths,
                        debounce=DEBOUNCE_MS,
                        step=WATCH_STEP_MS,
                        stop_event=watch_stop,
                        rust_timeout=int(TICK * 1000),
                        yield_on_timeout=True,
                        recursive=True,
                    )
                else:
                    waker = self._ticks(TICK, watch_stop)
                caught_up = False
                try:
                    async for batch in waker:
                        roots_moved = False
                        if batch:
                            # A batch names what changed: poll only the sources that live there.
                            changed = await asyncio.to_thread(self.scan, {Path(p) for _, p in batch})
                        elif any(p.exists() for p in missing):
                            changed, roots_moved = await asyncio.to_thread(self.scan), True
                        elif not caught_up or loop.time() - last_full >= RESCAN_EVERY:
                            # The first tick catches what was written between the caller's first scan and
                            # the watcher starting; later ones are the slow rescan for lost events and new roots.
                            caught_up, last_full = True, loop.time()
                            changed = await asyncio.to_thread(self.scan)
                            roots_moved = self.watch_paths() != paths
                        elif self.otlp is not None and self.otlp.has_news():
                            changed = await asyncio.to_thread(self.scan, set())  # drains the receiver only
                        else:
                            changed = False
                        if changed and (wait := SNAPSHOT_GAP - (loop.time() - last_yield)) > 0:
                            # A tool writing steadily changes something every debounce: waiting out the
                            # gap (events pile up meanwhile, read in one batch next) caps snapshots per second.
                            await asyncio.sleep(wait)
                        if changed or loop.time() - last_yield >= HEARTBEAT_EVERY:
                            last_yield = loop.time()
                            yield await asyncio.to_thread(self.published_snapshot)
                        if loop.time() - last_save >= CACHE_SAVE_EVERY:
                            last_save = loop.time()
                            await asyncio.to_thread(self.save_cache)
                        if stop.is_set() or roots_moved:
                            break  # stopping, or a root appeared or vanished: watch the new set
                finally:
                    watch_stop.set()
                    relay.cancel()
                if self._rescan.is_set() and not stop.is_set():
                    # `r` stops the watcher so the rescan happens now, not at the next wake-up.
                    self._rescan.clear()
                    await asyncio.to_thread(self.scan)
                    last_yield = loop.time()
                    yield await asyncio.to_thread(self.published_snapshot)
        finally:
            for task in poll_tasks:
                task.cancel()
            if self.otlp is not None:
                self.otlp.close()
            self.save_cache()

    async def _relay_stop(self, stop: asyncio.Event, watch_stop: asyncio.Event) -> None:
        """Stop the current watcher when the caller stops or asks for a rescan."""
        import asyncio

        assert self._rescan is not None
        stop_wait = asyncio.ensure_future(stop.wait())
        rescan_wait = asyncio.ensure_future(self._rescan.wait())
        try:
            await asyncio.wait({stop_wait, rescan_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop_wait.cancel()
            rescan_wait.cancel()
        watch_stop.set()

    @staticmethod
    async def _ticks(seconds: float, stop: asyncio.Event) -> AsyncIterator[set[Any]]:
        import asyncio

        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            except asyncio.TimeoutError:
                pass
            yield set()
