"""The dashboard app: paints at once, scans in a thread, then renders each snapshot the engine yields.

The app computes no usage. It holds the latest `Snapshot` and hands its parts to the widgets; the only
thing it does on a timer is repaint the countdown (from the deadline, once a second).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, ClassVar, Protocol

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.events import Resize
from textual.widgets import Footer, Label, LoadingIndicator, Static
from textual.worker import Worker, WorkerState

from zai_dash import paths
from zai_dash import text as fmt
from zai_dash.clock import Clock, SystemClock
from zai_dash.domain.series import PeakRule, usage_series
from zai_dash.domain.snapshot import Snapshot
from zai_dash.domain.tariff import Tariff
from zai_dash.domain.windows import WindowRow
from zai_dash.text import fmt_amount
from zai_dash.ui.chooser import PlanChooser
from zai_dash.ui.commands import DashCommands
from zai_dash.ui.contrast import legible_variables
from zai_dash.ui.countdown import RefreshCountdown
from zai_dash.ui.fleet_panel import FleetPanel
from zai_dash.ui.forecast_line import ForecastLine
from zai_dash.ui.glyphs import ascii_wanted
from zai_dash.ui.help_screen import HelpScreen
from zai_dash.ui.hero import Hero
from zai_dash.ui.history_screen import HistoryScreen
from zai_dash.ui.live import set_text
from zai_dash.ui.messages import PreviewReady, ScanFinished, SnapshotReady
from zai_dash.ui.official_panel import OfficialPanel
from zai_dash.ui.palette import ANSI_THEME, default_theme
from zai_dash.ui.prompt_gauge import UNIT_SHORT, WINDOW_NAMES, OfficialView, PromptGauge
from zai_dash.ui.proxy_panel import ProxyPanel, machine_rows
from zai_dash.ui.search_panel import SearchPanel
from zai_dash.ui.state import load_state, save_state
from zai_dash.ui.timeline import TimelinePanel
from zai_dash.ui.title import POP_TITLE, PUSH_TITLE, osc_title, window_title
from zai_dash.ui.tools_table import ToolsTable
from zai_dash.ui.window_rows import WindowRows

LEVEL_RANK = {"ok": 0, "warning": 1, "critical": 2, "exhausted": 3}
TERMINAL_CHECK_SECONDS = 5.0
"""Seconds between checks that the terminal is still there (a dropped SSH link may send no SIGHUP)."""
HANGUP_GRACE_SECONDS = 2.0
"""Once the terminal is gone, how long the orderly exit may take before the process ends anyway."""
EXIT_HANGUP = 129
"""The exit code of a dashboard ended after its terminal went away (128 + SIGHUP, as the shell reports one)."""
COMPACT_WIDTH = 60
"""At or below this many columns the layout is a compact single column."""
WIDE_WIDTH = 100
"""From this many columns panels sit two abreast."""
ROOMY_HEIGHT = 30
"""From this many rows the official-quota and proxies panels show a line per window/endpoint."""
DEFAULT_THEME = "textual-dark"


class EngineLike(Protocol):
    """What the app needs of `zai_dash.engine.Engine`."""

    def scan(self) -> bool: ...
    def snapshot(self, now: datetime | None = None, plan: Any = None) -> Snapshot: ...
    def plan_named(self, name: str) -> Any: ...
    def watch(self, stop: asyncio.Event) -> AsyncIterator[Snapshot]: ...
    def rescan_now(self) -> None: ...
    def search_locations(self) -> list[tuple[str, str, bool]]: ...


EngineFactory = Callable[[], EngineLike]
"""Builds a fresh engine from the config file (after the plan chooser wrote it)."""


@dataclass(frozen=True, slots=True)
class Ticked:
    """The widgets whose text follows the clock (countdowns, ages)."""

    countdown: RefreshCountdown
    tools: ToolsTable
    hero: Hero
    gauge: PromptGauge
    official: OfficialPanel
    proxies: ProxyPanel


class DashApp(App[int]):
    """The live dashboard."""

    CSS_PATH = Path(__file__).with_name("dash.tcss")
    """Absolute, so subclasses defined elsewhere (tests, screenshots) find it too."""
    TITLE = "zai-dash"
    COMMANDS = App.COMMANDS | {DashCommands}
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (61, "-medium"), (100, "-wide")]  # noqa: RUF012
    """≤60 columns compact single column; 61–99 stacked; ≥100 two columns of panels."""
    VERTICAL_BREAKPOINTS = [(0, "-tiny"), (16, "-short"), (30, "-tall")]  # noqa: RUF012
    """Under 16 rows only the essentials (prompts left, countdown); ≥30 rows room for the big digits."""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("r", "rescan", "Rescan"),
        Binding("p", "preview_plan", "Plan"),
        Binding("t", "toggle_tools", "Tools"),
        Binding("c", "choose_plan", "Choose"),
        Binding("h", "history", "History"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self,
        engine: EngineLike | None = None,
        clock: Clock | None = None,
        *,
        demo: bool = False,
        plan_names: tuple[str, ...] = ("lite", "pro", "max"),
        bell: bool = False,
        theme: str | None = None,
        tz: tzinfo | None = None,
        state_file: Path | None = None,
        watch_terminal: bool = True,
        title: bool = False,
        config_path: Path | None = None,
        reload: EngineFactory | None = None,
        tariff: Tariff | None = None,
        ascii_only: bool | None = None,
    ) -> None:
        """Build the app.

        Args:
            engine: the usage engine; None for an app fed by `show()` (tests, screenshots).
            clock: the clock the countdown reads; the system clock by default.
            demo: label the screen DEMO.
            plan_names: the plans `p` cycles through.
            bell: ring the terminal bell with warning/critical/refresh notifications.
            theme: a theme for this run (not remembered); else the remembered one.
            tz: display timezone; None = the machine's local zone.
            state_file: where the chosen theme is remembered; `$XDG_STATE_HOME/zai-dash/state.json`.
            watch_terminal: exit when the terminal goes away (SIGHUP, stdin no longer a TTY).
            title: keep the terminal's window title on the key figure (restored on exit).
            config_path: where the plan chooser (`c`) writes the config file.
            reload: a fresh engine from the config file, used after the chooser wrote it.
            tariff: whose peak hours the usage chart shades; the engine's config's by default.
            ascii_only: ASCII charts; by default when the locale is not UTF-8 (`LANG=C`).
        """
        super().__init__()
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.demo = demo
        self.plan_names = plan_names
        self.bell_on_alert = bell
        self.tz = tz
        self.state_file = state_file or paths.ui_memory_file()
        self.watch_terminal = watch_terminal
        self.snap: Snapshot | None = None
        """The snapshot on screen (a plan preview when one is active)."""
        self.base: Snapshot | None = None
        """The latest snapshot under the configured plan: alerts compare these only."""
        self.preview_name: str | None = None
        """The plan being previewed, or None for the configured plan."""
        self.locations: list[tuple[str, str, bool]] = []
        """(tool, path, exists) of every place searched, for the empty state."""
        self.scanning = engine is not None
        """True until the first scan finishes; the empty state waits for it."""
        self._stop = asyncio.Event()
        self._gone = False
        """Whether the terminal went away (the exit is under way, with its watchdog)."""
        self.exit_cleanup: Callable[[], object] | None = None
        """What `run_dashboard` runs after the app, run by the hang-up watchdog too when it ends the process."""
        self._refresh_alerted: set[datetime] = set()
        self._keys_offered: tuple[bool, ...] = ()
        """What `check_action` depended on when the footer was last rebuilt."""
        self._ticked: Ticked | None = None
        """The widgets the 1 Hz tick drives, found once on mount."""
        self.register_theme(ANSI_THEME)
        wanted = theme or load_state(self.state_file).get("theme")
        # Only a real terminal says how many colours it has (tests and pipes report a guess).
        tty = sys.__stdout__ is not None and sys.__stdout__.isatty()
        colours = self.console.color_system if tty else None
        fallback = default_theme(colours, DEFAULT_THEME)
        self.theme = wanted if isinstance(wanted, str) and wanted in self.available_themes else fallback
        self._remember_theme = theme is None
        self.set_title = title
        self._title_shown: str | None = None
        self.config_path = config_path
        self.reload = reload
        self.tariff = tariff
        """Shades the usage chart's peak hours; None: the engine's (`config.tariff`), if any."""
        self.ascii_only = ascii_wanted() if ascii_only is None else ascii_only
        """Draw the charts with ASCII only (a non-UTF-8 locale)."""

    # ------------------------------------------------------------------ layout

    def get_css_variables(self) -> dict[str, str]:
        """The theme's variables with the text colours the numbers use raised to ≥ 4.5:1 contrast."""
        return legible_variables(super().get_css_variables())

    def compose(self) -> ComposeResult:
        with Horizontal(id="header"):
            yield Label("zai-dash", id="hdr-title")
            yield Label("", id="hdr-plan")
            yield Label("", id="hdr-window")
            yield Label("", id="hdr-badge")
            yield Label("", id="hdr-preview")
            yield Label("", id="hdr-assumed")
            yield Label(" DEMO ", id="hdr-demo")
        if self.scanning:
            # Mounted only while scanning: a LoadingIndicator repaints 16 times a second even when hidden.
            with Horizontal(id="scanning"):
                yield LoadingIndicator(id="scan-spinner")
                yield Label("scanning your coding tools' logs…", id="scan-label")
        with Vertical(id="body"):
            with Horizontal(id="row-top"):
                yield Hero(self.tz, id="hero")
                yield PromptGauge(id="gauge")
            yield WindowRows(self.tz, id="windows")
            # The 5-hour cycle's own countdown: kept for its states and the refresh alert, shown when no
            # window binds (the hero counts down to the binding window's reset).
            yield RefreshCountdown(self.clock, self.tz, id="countdown")
            with Horizontal(id="row-mid"):
                yield ForecastLine(self.tz, id="forecast")
                yield SearchPanel(self.tz, id="search")
            # Opt-in sources: hidden by class until the snapshot carries official rows or proxies.
            with Horizontal(id="row-extra"):
                yield OfficialPanel(self.tz, id="official")
                yield ProxyPanel(id="proxies")
            yield FleetPanel(id="fleet")
            yield Static("", id="empty")
            yield ToolsTable(id="tools")
            yield TimelinePanel(self.tz, ascii_only=self.ascii_only, id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        titles = {
            "hero": "Left",
            "windows": "Windows",
            "countdown": "Refresh",
            "gauge": "Prompts this cycle",
            "forecast": "Forecast",
            "search": "Search MCP",
            "official": "Official quota (Z.ai)",
            "proxies": "Proxies",
            "fleet": "Fleet (Prometheus)",
            "tools": "Tools",
            "timeline": "Timeline",
        }
        for wid, title in titles.items():
            self.query_one(f"#{wid}").border_title = title
        self.query_one("#hdr-demo").display = self.demo
        # Held, not queried each second: a query walks the DOM, and the tick runs on an idle dashboard.
        self._ticked = Ticked(
            self.query_one(RefreshCountdown),
            self.query_one(ToolsTable),
            self.query_one(Hero),
            self.query_one(PromptGauge),
            self.query_one(OfficialPanel),
            self.query_one(ProxyPanel),
        )
        self.set_interval(1.0, self.tick, name="countdown")
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.engine is not None:
            self._first_scan()
        self._show_assumed()
        if self.watch_terminal and not self.is_headless and not self.is_web:
            self.set_interval(TERMINAL_CHECK_SECONDS, self._check_terminal, name="terminal")
            self._install_sighup()

    def on_resize(self, event: Resize) -> None:
        width = event.size.width
        width_class = "narrow" if width <= COMPACT_WIDTH else "medium" if width < WIDE_WIDTH else "wide"
        self.query_one(ToolsTable).set_width_class(width_class)
        compact = width <= COMPACT_WIDTH or event.size.height < ROOMY_HEIGHT
        now = self.clock.now()
        self.query_one(OfficialPanel).set_compact(compact, now)
        self.query_one(ProxyPanel).set_compact(compact, now)
        footer = self.query_one(Footer)
        footer.compact = width <= COMPACT_WIDTH
        # The palette hint costs 12 columns; under 61 the keys need them (ctrl+p still opens it).
        footer.show_command_palette = width > COMPACT_WIDTH
        # A form the breakpoints newly show paints its latest text on Textual's Show event (`ui/live.py`).

    # ------------------------------------------------------------------ data in

    def show(self, snap: Snapshot) -> None:
        """Render a snapshot under the configured plan (what the engine's watch yields).

        With a plan preview active and an engine present, the preview is recomputed from the engine
        (in a worker: `_preview_snapshot`) so the screen keeps showing the previewed plan.
        """
        previous = self.base
        self.base = snap
        if self.preview_name is not None and self.engine is not None:
            self._preview_snapshot(self.preview_name)
        else:
            self._render(snap)
        if previous is not None:
            self._alert(previous, snap)

    def _render(self, snap: Snapshot) -> None:
        self.snap = snap
        now = self.clock.now()
        with self.batch_update():
            self._render_header(snap)
            self.query_one(RefreshCountdown).set_cycle(snap.cycle)
            head = snap.headline
            self.query_one(Hero).set_headline(head, snap.window(head.window) if head and head.window else None, now)
            self.query_one(WindowRows).set_windows(snap.windows, snap.official, now)
            self.query_one("#body").set_class(head is None or head.window is None, "-no-binding")
            official = OfficialView.of(snap.reconciliation, snap.official, snap.thresholds, snap.at, snap)
            self.query_one(PromptGauge).set_gauge(snap.prompts, official, now)
            self.query_one(ForecastLine).set_snapshot(snap)
            self.query_one(SearchPanel).set_gauge(snap.searches, snap.thresholds)
            self.query_one(OfficialPanel).set_data(snap.official, snap.sources, snap.at, now)
            self.query_one(ProxyPanel).set_rows(snap.proxies, snap.at, now, snap.tool_names)
            self.query_one(FleetPanel).set_fleet(snap.fleet)
            self.query_one(ToolsTable).set_rows(snap.tools, now, machine_rows(snap.proxies, snap.tool_names))
            self.query_one(TimelinePanel).set_snapshot(snap, usage_series(snap, self._peak_rule()))
            self._render_empty(snap)
            # The footer rebuilds its keys on every refresh_bindings (a full layout pass): only when the
            # answers of `check_action` can have changed.
            keys = (self.engine is not None, self.reload is not None, snap.has_data)
            if keys != self._keys_offered:
                self._keys_offered = keys
                self.refresh_bindings()
            self.query_one("#hdr-demo").display = self.demo or snap.demo
        self._update_title(now)

    def _peak_rule(self) -> PeakRule | None:
        """The tariff's peak rule: this app's tariff, else the engine's (it changes when the chooser reloads)."""
        tariff = self.tariff or getattr(getattr(self.engine, "config", None), "tariff", None)
        return tariff.is_peak if tariff is not None else None

    def _render_header(self, snap: Snapshot) -> None:
        plan = snap.plan
        # The plan's own pools (a window only the official endpoint names has no size of ours).
        pools = [w for w in snap.windows if w.id != "monthly-mcp" and w.unit != "percent"]
        if [w.unit for w in pools] in ([], ["prompts"]):
            sizes = f"{fmt.count(plan.prompts_per_cycle)}/cycle"
        else:
            sizes = " · ".join(f"{fmt_amount(w.limit, w.unit)} {UNIT_SHORT.get(w.unit, w.unit)}/{w.id}" for w in pools)
        set_text(self.query_one("#hdr-plan", Label), f"{plan.name.title()} plan · {sizes}")
        head = snap.headline
        title = "Prompts this cycle"
        if head is not None and head.window is not None and (head.unit != "prompts" or head.window != "5h"):
            title = f"{WINDOW_NAMES.get(head.window, head.window).capitalize()} {head.unit} (binding)"
        self.query_one("#gauge").border_title = title
        cycle = snap.cycle
        if cycle.state == "open" and cycle.start and cycle.end:
            window = f"cycle {fmt.hhmm(cycle.start, self.tz)}–{fmt.hhmm(cycle.end, self.tz)}"
        else:
            window = "no open cycle"
        set_text(self.query_one("#hdr-window", Label), window)
        badge = self.query_one("#hdr-badge", Label)
        # The figure the gauge leads with: official only while Z.ai's reading is fresh.
        provenance = snap.reconciliation.get("primary") or snap.prompts.provenance
        set_text(badge, f" {provenance} ")
        for kind in ("local", "official", "estimate", "proxy"):
            badge.set_class(provenance == kind, f"-{kind}")
        preview = self.query_one("#hdr-preview", Label)
        preview.display = self.preview_name is not None
        set_text(preview, f" PREVIEW {plan.name.title()} — config unchanged " if self.preview_name else "")

    def _render_empty(self, snap: Snapshot) -> None:
        empty = not snap.has_data and not self.scanning
        # Classes, not inline `display`: inline styles would beat the breakpoint rules in dash.tcss.
        self.query_one("#body").set_class(empty, "-empty")
        panel = self.query_one("#empty", Static)
        if empty:
            panel.update(empty_text(self.locations or locations_from(snap), snap.tool_names))

    def tick(self) -> None:
        """Once a second: the countdowns, and the "ago" column when its minute changes.

        Each widget recomputes its text from the clock and repaints only when that text changed and it is
        on screen (`ui/live.py`): an idle dashboard repaints one countdown line a second and nothing else.
        """
        if self._ticked is None:
            return  # not mounted yet
        try:
            self._tick(self._ticked)
        except NoMatches:
            # A panel still composing its children (a busy machine): the first snapshot paints it all.
            return

    def _tick(self, w: Ticked) -> None:
        now = self.clock.now()
        countdown = w.countdown
        countdown.tick()
        w.tools.refresh_ago(now)
        w.hero.tick(now)
        w.gauge.tick(now)
        w.official.tick(now)
        w.proxies.tick(now)
        self._update_title(now)
        cycle = countdown.cycle
        if cycle is not None and cycle.end is not None and countdown.seconds_left() == 0:
            self._cycle_refreshed(cycle.end)

    def _update_title(self, now: datetime) -> None:
        """Put the headline (left, and the countdown) in the terminal's title; written only when it changes."""
        if not self.set_title or self.is_headless or self.base is None:
            return
        text = window_title(self.base.headline, now)
        if text != self._title_shown:
            self._write_terminal(("" if self._title_shown is not None else PUSH_TITLE) + osc_title(text))
            self._title_shown = text

    def _write_terminal(self, data: str) -> None:
        # Textual has no title API; its driver writes straight to the terminal (a tmux pane's title too).
        driver = self._driver
        if driver is not None:
            driver.write(data)
            driver.flush()

    def _show_assumed(self) -> None:
        """The first-run note: no plan or billing in the config, so the numbers assume Pro on credits."""
        note = self.query_one("#hdr-assumed", Label)
        config = getattr(self.engine, "config", None)
        text = "" if self.demo or config is None else config.assumption()
        note.display = bool(text)
        note.update(f" {text} — press c to choose " if text else "")

    # ------------------------------------------------------------------ alerts

    def _alert(self, before: Snapshot, after: Snapshot) -> None:
        # The binding window's level (the snapshot decides which window binds and how full it is).
        was, now_row = _binding_row(before), _binding_row(after)
        old = LEVEL_RANK.get(was.level if was else before.prompts.level, 0)
        level = now_row.level if now_row else after.prompts.level
        new = LEVEL_RANK.get(level, 0)
        if new > old and after.cycle.start == before.cycle.start:
            if now_row is None or (now_row.id == "5h" and now_row.unit == "prompts"):
                p = after.prompts
                message = {
                    "warning": f"{p.percent:.0f} % of this cycle's prompts used — {fmt.count(p.left)} left",
                    "critical": f"{p.percent:.0f} % used — only {fmt.count(p.left)} prompts left this cycle",
                    "exhausted": "Prompt limit reached for this cycle",
                }[level]
            else:
                name = WINDOW_NAMES.get(now_row.id, now_row.id)
                left = f"{fmt_amount(now_row.left, now_row.unit)} {now_row.unit}"
                message = {
                    "warning": f"{now_row.percent:.0f} % of the {name} {now_row.unit} used — {left} left",
                    "critical": f"{now_row.percent:.0f} % used — only {left} left in the {name} window",
                    "exhausted": f"The {name} limit is reached: requests fail until it resets",
                }[level]
            self._notify(message, "warning" if level == "warning" else "error")
        b = before.cycle
        if b.state == "open" and b.end is not None and after.at >= b.end and after.cycle.start != b.start:
            self._cycle_refreshed(b.end)

    def _cycle_refreshed(self, end: datetime) -> None:
        if end in self._refresh_alerted:
            return
        self._refresh_alerted.add(end)
        five = self.base.window("5h") if self.base else None
        if five is not None and five.unit == "credits":
            available = f"{fmt_amount(five.limit, five.unit)} credits"
        else:
            available = f"{fmt.count(self.base.plan.prompts_per_cycle if self.base else 0)} prompts"
        at = fmt.hhmm(end, self.tz)
        self._notify(f"Cycle refreshed at {at} — {available} available", "information")

    def _notify(self, message: str, severity: str) -> None:
        self.notify(message, severity=severity, timeout=8)  # type: ignore[arg-type]
        if self.bell_on_alert:
            self.bell()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys are offered only where they act: rescan and plan preview need the engine, `t` a tools table,
        `c` a live dashboard that can write its config file and reload."""
        if action in ("rescan", "preview_plan"):
            return self.engine is not None
        if action == "choose_plan":
            return self.config_path is not None and self.reload is not None
        if action == "toggle_tools":
            return self.snap is None or self.snap.has_data
        if action == "history":
            return self.snap is not None and self.snap.has_data
        return True

    async def action_quit(self) -> None:
        """Quit with exit code 0."""
        self._stop.set()
        self.exit(0)

    def action_rescan(self) -> None:
        """Ask the engine to read every log again now."""
        if self.engine is None:
            self.notify("Nothing to rescan: no engine attached", severity="warning")
            return
        self.engine.rescan_now()
        self.notify("Rescanning…", timeout=2)

    def action_preview_plan(self) -> None:
        """Cycle the plan preview: each of `plan_names`, then back to the configured plan."""
        order: list[str | None] = [*self.plan_names, None]
        current = order.index(self.preview_name) if self.preview_name in order else len(order) - 1
        self.preview(order[(current + 1) % len(order)])

    def preview(self, name: str | None) -> None:
        """Show the numbers under plan `name` (None = the configured plan); config is never touched."""
        if self.engine is None:
            self.notify("Plan preview needs the engine", severity="warning")
            return
        self.preview_name = name
        self._preview_snapshot(name)
        said = f"Previewing the {name.title()} plan" if name else "Back to the configured plan"
        self.notify(said, timeout=2)

    def action_choose_plan(self) -> None:
        """Open the plan × billing chooser; a saved choice reloads the engine from the new file."""
        if self.config_path is None or self.reload is None:
            self.notify("Choosing a plan needs the live dashboard (edit the config file instead)", severity="warning")
            return
        config = getattr(self.engine, "config", None)
        plan = config.plan.name if config is not None else "pro"
        billing = config.billing if config is not None else "credits"
        self.push_screen(PlanChooser(self.config_path, plan, billing), self._plan_chosen)

    def _plan_chosen(self, path: Path | None) -> None:
        if path is None or self.reload is None:
            return
        try:
            engine = self.reload()
        except Exception as exc:  # the file was checked; a surprise still must not take the screen down
            self.notify(f"Saved to {path}, but reloading failed: {exc}", severity="error", timeout=10)
            return
        # Stop the old engine's watch; a new stop event for the new one, then scan it as at start-up.
        self._stop.set()
        self._stop = asyncio.Event()
        self.engine = engine
        self.preview_name = None
        self._show_assumed()
        self.notify(f"Saved to {path}", timeout=4)
        self._first_scan()

    def action_toggle_tools(self) -> None:
        """Show or hide the tools table."""
        self.query_one("#body").toggle_class("-hide-tools")

    def action_history(self) -> None:
        """Open the history view of the snapshot on screen (or close it)."""
        if isinstance(self.screen, HistoryScreen):
            self.screen.dismiss(None)
        elif self.snap is not None:
            self.push_screen(HistoryScreen(self.snap, self.tz))

    def action_help(self) -> None:
        """Open the help screen (or close it)."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen())

    # ------------------------------------------------------------------ workers

    @work(thread=True, group="scan", exit_on_error=False, description="First scan of the tools' logs")
    def _first_scan(self) -> None:
        engine = self.engine
        assert engine is not None
        engine.scan()
        self.post_message(ScanFinished(engine.snapshot(), engine.search_locations()))

    @work(thread=True, exclusive=True, group="preview", exit_on_error=False, description="Plan preview")
    def _preview_snapshot(self, name: str | None) -> None:
        # Off the UI loop: building a snapshot waits for the engine's lock, which a scan may hold for a while.
        engine = self.engine
        assert engine is not None
        snap = engine.snapshot() if name is None else engine.snapshot(plan=engine.plan_named(name))
        self.post_message(PreviewReady(snap, name))

    def on_preview_ready(self, message: PreviewReady) -> None:
        if message.plan == self.preview_name:  # a later choice (or none) wins over a slow build
            self._render(message.snapshot)

    def on_scan_finished(self, message: ScanFinished) -> None:
        self._scan_done()
        self.locations = message.locations
        if message.snapshot is not None:
            self.show(message.snapshot)
        self._watch()

    def _scan_done(self) -> None:
        self.scanning = False
        for row in self.query("#scanning"):
            row.remove()

    @work(exclusive=True, group="watch", exit_on_error=False, description="Watching the tools' logs")
    async def _watch(self) -> None:
        assert self.engine is not None
        async for snap in self.engine.watch(self._stop):
            self.post_message(SnapshotReady(snap))

    def on_snapshot_ready(self, message: SnapshotReady) -> None:
        self.show(message.snapshot)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is not WorkerState.ERROR:
            return
        reason = f"{type(worker.error).__name__}: {worker.error}" if worker.error else "unknown error"
        if worker.group == "scan":
            self._scan_done()
            self.notify(f"The first scan failed ({reason}); watching anyway", severity="error", timeout=10)
            self._watch()
        elif worker.group == "watch" and not self._stop.is_set():
            # Keep the last good numbers on screen and try again shortly rather than going blank.
            self.notify(f"Watching stopped ({reason}); retrying in 5 s", severity="error", timeout=10)
            self.set_timer(5.0, self._watch)
        elif worker.group == "preview":
            self.notify(f"The plan preview failed ({reason})", severity="error", timeout=10)

    # ------------------------------------------------------------------ terminal and theme

    def _check_terminal(self) -> None:
        # dolphie's guard: a dashboard whose terminal vanished would otherwise spin forever.
        stdin = sys.__stdin__
        if stdin is None or stdin.closed or not stdin.isatty():
            self._terminal_gone()

    def _install_sighup(self) -> None:
        if not hasattr(signal, "SIGHUP"):
            return
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)
        except (NotImplementedError, RuntimeError, ValueError):
            pass

    def _hangup(self) -> None:
        self._terminal_gone()

    def _terminal_gone(self) -> None:
        """End the dashboard whose terminal went away (SIGHUP: tmux session killed, SSH link dropped).

        It stops publishing the state file at once, so `status` scans rather than read a dashboard that is
        going. Textual's exit writes to the terminal to restore it: to a hung-up terminal that write fails,
        its writer thread dies, and the exit then waits for it for ever (the process lived on under pid 1,
        publishing). So the standard streams are pointed at /dev/null first, and a daemon timer ends the
        process if the orderly exit still has not finished after `HANGUP_GRACE_SECONDS`.
        """
        if self._gone:
            return
        self._gone = True
        if self.engine is not None and hasattr(self.engine, "publish_state"):
            self.engine.publish_state = False
        _detach_standard_streams()
        watchdog = threading.Timer(HANGUP_GRACE_SECONDS, self._end_now)
        watchdog.daemon = True
        watchdog.start()
        self._stop.set()
        self.exit(0)

    def _end_now(self) -> None:
        _end_process(self.exit_cleanup)

    def _theme_changed(self, theme: Any) -> None:
        if self._remember_theme:
            save_state(self.state_file, theme=getattr(theme, "name", str(theme)))

    async def on_unmount(self) -> None:
        self._stop.set()
        if self._title_shown is not None:
            self._write_terminal(POP_TITLE)


def _end_process(cleanup: Callable[[], object] | None) -> None:
    """Run `cleanup` (the demo removes its temp dir) and end the process at once with `EXIT_HANGUP`."""
    try:
        if cleanup is not None:
            cleanup()
    finally:
        os._exit(EXIT_HANGUP)


def _detach_standard_streams() -> None:
    """Point file descriptors 0-2 at /dev/null, so writes meant for a terminal that is gone succeed."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
    except OSError:
        return
    for fd in (0, 1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    if null > 2:
        os.close(null)


def needs_terminal_message() -> str | None:
    """Why the TUI cannot start here (no terminal on stdin or stdout), or None when it can.

    Textual would otherwise write its escape codes into a pipe or file and exit 0. A browser session
    (`zai-dash serve`) has pipes but a web driver, so it may start.
    """
    if os.environ.get("TEXTUAL_DRIVER"):
        return None
    for name, stream in (("standard input", sys.stdin), ("standard output", sys.stdout)):
        if stream is None or not stream.isatty():
            return (
                f"the dashboard needs a terminal, and {name} is not one; "
                "try `zai-dash report`, `zai-dash status`, or `zai-dash serve` for a browser"
            )
    return None


def locations_from(snap: Snapshot) -> list[tuple[str, str, bool]]:
    """(tool, path, exists) from the snapshot's source health, when no engine listed them."""
    return [(s.tool or s.name, path, exists) for s in snap.sources for path, exists in s.roots]


def empty_text(locations: Iterable[tuple[str, str, bool]], names: Mapping[str, str] | None = None) -> str:
    """The empty state: what was searched, how to point zai-dash elsewhere, and the demo.

    Args:
        locations: (tool id, path, exists) of every place searched.
        names: tool id → human name (the snapshot's `tool_names`).
    """
    names = names or {}
    home = str(Path.home())
    lines = ["[b]No coding-tool usage found yet.[/b] Searched:"]
    seen = False
    for tool, path, exists in locations:
        seen = True
        shown = "~" + path[len(home) :] if path.startswith(home) else path
        name = names.get(tool, tool)
        lines.append(f"  {'✔' if exists else '✖'} {name:<13} {shown}{'' if exists else '  (not found)'}")
    if not seen:
        lines.append("  (no locations configured)")
    lines += [
        "Logs elsewhere? In ~/.config/zai-dash/config.toml add",
        '  [tools.claude-code]  roots = ["/path/to/.claude"]   (or set CLAUDE_CONFIG_DIR)',
        "Just looking? Run [b]zai-dash --demo[/b] for a simulated session.",
    ]
    return "\n".join(lines)


def _binding_row(snap: Snapshot) -> WindowRow | None:
    """The snapshot's binding window row, if it has one."""
    head = snap.headline
    return snap.window(head.window) if head is not None and head.window is not None else None


def run_dashboard(
    engine: EngineLike,
    clock: Clock,
    *,
    demo: bool = False,
    plan_names: tuple[str, ...] = ("lite", "pro", "max"),
    bell: bool = False,
    theme: str | None = None,
    mouse: bool = True,
    on_exit: Callable[[], object] | None = None,
    tz: tzinfo | None = None,
    title: bool = True,
    config_path: Path | None = None,
    reload: EngineFactory | None = None,
) -> int:
    """Run the dashboard until the user quits; returns the process exit code.

    Args:
        engine: the usage engine (scanned and watched by the app's workers).
        clock: the clock the countdown reads.
        demo: label the screen DEMO.
        plan_names: plans `p` cycles through.
        bell: ring the terminal bell with alerts.
        theme: a theme for this run; else the remembered one.
        mouse: False keeps tmux's own mouse and copy mode working.
        on_exit: called once the terminal is restored (e.g. the demo removing its temp dir).
        tz: display timezone; None = local.
        title: keep the terminal's window title on the key figure.
        config_path: where the plan chooser writes (None: no chooser, e.g. the demo).
        reload: a fresh engine from the config file, after the chooser wrote it.
    """
    # The engine knows the user's configured timezone; times on screen follow it.
    zone = tz if tz is not None else getattr(engine, "tz", None)
    app = DashApp(
        engine,
        clock,
        demo=demo,
        plan_names=plan_names,
        bell=bell,
        theme=theme,
        tz=zone,
        title=title,
        config_path=config_path,
        reload=reload,
    )
    done = threading.Lock()

    def cleanup() -> None:
        # Once: after the app, or from the hang-up watchdog when the app's exit never returns.
        if on_exit is not None and done.acquire(blocking=False):
            on_exit()

    app.exit_cleanup = cleanup
    try:
        app.run(mouse=mouse)
    finally:
        cleanup()
    code = app.return_code
    return 0 if code is None else code
