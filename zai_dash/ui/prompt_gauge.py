"""The gauge: the snapshot's binding window against its pool, and a line with every window.

On a prompt plan whose 5-hour window binds it is the prompt-equivalents gauge: with Z.ai's quota endpoint
on, a fresh official percentage is the primary figure and the local estimate sits beside it; a stale one
is shown with its age after the local figures, never as fresh. On a credit plan (or when the week binds)
it leads with the binding window in its own unit. Levels and the weekly block come from the snapshot's
windows: the widget decides nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from rich.console import RenderableType
from rich.style import Style
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.renderables.bar import Bar
from textual.widget import Widget
from textual.widgets import Static

from zai_dash import text as fmt
from zai_dash.domain.plans import Thresholds
from zai_dash.domain.snapshot import PromptGauge as GaugeData
from zai_dash.domain.snapshot import Snapshot
from zai_dash.domain.windows import WindowRow
from zai_dash.text import fmt_amount
from zai_dash.ui.live import set_text
from zai_dash.ui.official_panel import age_text, pct, row_age, safe

LEVEL_CUES: dict[str, str] = {
    "ok": "",
    "warning": "▲ WARNING",
    "critical": "‼ CRITICAL",
    "exhausted": "✖ LIMIT REACHED",
}
"""Text cue per level, so the state reads under NO_COLOR and in 16 colours, not by colour alone."""

LEVEL_CLASSES = ("-warning", "-critical", "-exhausted")
WEEKLY_CUE = "✖ WEEKLY LIMIT REACHED"


@dataclass(frozen=True)
class OfficialView:
    """What the gauge needs from the official side of a snapshot (empty when the endpoint is off).

    Attributes:
        reconciliation: `Snapshot.reconciliation`.
        five_hour: the official 5-hour row, if any (its age is shown when stale).
        weekly_blocked: the weekly row is used up (requests fail even with 5-hour room).
        thresholds: warning/critical levels for the official percentage.
        snap_at: when the snapshot was built.
    """

    reconciliation: Mapping[str, Any] = field(default_factory=dict)
    five_hour: Mapping[str, Any] | None = None
    weekly_blocked: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    snap_at: datetime | None = None

    binding: WindowRow | None = None
    """The snapshot's binding window (`Snapshot.headline`)."""
    windows: tuple[WindowRow, ...] = ()
    """Every window of the plan."""
    prompts_left: str | None = None
    """`≈123` on a credit plan (estimate), `123` natively; None before any estimate."""

    @classmethod
    def of(
        cls,
        reconciliation: Mapping[str, Any],
        official: Sequence[Mapping[str, Any]],
        thresholds: Thresholds,
        snap_at: datetime,
        snap: Snapshot | None = None,
    ) -> OfficialView:
        """Pick the parts of a snapshot the gauge shows."""
        five = next((r for r in official if r.get("kind") == "five-hour"), None)
        windows = snap.windows if snap is not None else ()
        weekly = next((w for w in windows if w.id == "weekly"), None)
        head = snap.headline if snap is not None else None
        binding = next((w for w in windows if head is not None and w.id == head.window), None)
        left = None
        if head is not None and head.prompts_left is not None:
            left = ("≈" if head.prompts_left_source == "estimate" else "") + fmt.count(head.prompts_left)
        blocked = weekly is not None and weekly.level == "exhausted"
        return cls(dict(reconciliation), five, blocked, thresholds, snap_at, binding, tuple(windows), left)

    @property
    def leads(self) -> bool:
        """Whether the binding window leads (credits, or the week binds) instead of the prompt gauge."""
        b = self.binding
        return b is not None and not (b.id == "5h" and b.unit == "prompts")

    @property
    def primary(self) -> bool:
        """Whether the fresh official percentage is the figure to lead with."""
        return self.reconciliation.get("primary") == "official" and self.official_percent is not None

    @property
    def official_percent(self) -> float | None:
        value = self.reconciliation.get("official_percent")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class GaugeBar(Widget):
    """A one-line bar filled to `fraction`; repaints only when the fraction changes.

    Textual's ProgressBar refreshes itself every second for its ETA even when the ETA is hidden,
    which alone costs an idle dashboard a repaint a second; this bar has no timer.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"gauge-bar--filled", "gauge-bar--empty"}
    DEFAULT_CSS = """
    GaugeBar {
        height: 1;
        width: 1fr;
        & > .gauge-bar--filled { color: $primary; }
        & > .gauge-bar--empty { color: $surface-lighten-2; }
    }
    """

    fraction: reactive[float] = reactive(0.0)
    """Share of the bar filled (0–1)."""

    def render(self) -> RenderableType:
        width = self.size.width
        filled = self.get_component_rich_style("gauge-bar--filled")
        empty = self.get_component_rich_style("gauge-bar--empty")
        return Bar(
            highlight_range=(0, width * max(0.0, min(1.0, self.fraction))),
            highlight_style=Style.from_color(filled.color),
            background_style=Style.from_color(empty.color),
            width=width,
        )


class PromptGauge(Widget):
    """Prompt-equivalents / limit, left and percent, with raw prompts, calls and vision beside them."""

    DEFAULT_CSS = """
    PromptGauge {
        height: auto;
        #gauge-headline { width: 1fr; }
        #gauge-detail { width: 1fr; color: $text-muted; }
        #gauge-note { width: 1fr; display: none; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: GaugeData | None = None
        """The gauge of the latest snapshot."""
        self.official = OfficialView()
        """The official side of the latest snapshot (empty when the endpoint is off)."""
        self.text = ""
        """The headline last shown (markup)."""

    def compose(self) -> ComposeResult:
        yield Static("—", id="gauge-headline")
        yield GaugeBar(id="gauge-bar")
        yield Static("", id="gauge-detail")
        yield Static("", id="gauge-note")

    def set_gauge(self, data: GaugeData, official: OfficialView | None = None, now: datetime | None = None) -> None:
        """Show a new gauge; a no-op when nothing changed.

        Args:
            data: the local gauge.
            official: the official figures, when the quota endpoint is on.
            now: the clock's time (a stale official value's age is measured to it).
        """
        official = official or OfficialView()
        if data == self.data and official == self.official:
            return
        self.data = data
        self.official = official
        level = self.level()
        for cls in LEVEL_CLASSES:
            self.set_class(cls == f"-{level}", cls)
        if official.leads and official.binding is not None:
            fraction = official.binding.percent / 100
        elif official.primary and official.official_percent is not None:
            fraction = official.official_percent / 100
        else:
            fraction = data.equivalents / data.limit if data.limit else 0.0
        self.query_one("#gauge-bar", GaugeBar).fraction = fraction
        set_text(self.query_one("#gauge-detail", Static), detail(data))
        drift = official.reconciliation.get("drift_warning")
        self.set_class(bool(drift), "-has-note")
        set_text(self.query_one("#gauge-note", Static), f"⚠ {safe(drift)}" if drift else "")
        self.tick(now or official.snap_at)

    def level(self) -> str:
        """The level shown: the official percentage's when it leads, exhausted when the weekly row blocks."""
        assert self.data is not None
        if self.official.weekly_blocked:
            return "exhausted"
        if self.official.binding is not None:
            return self.official.binding.level
        percent = self.official.official_percent
        if self.official.primary and percent is not None:
            return self.official.thresholds.level(percent / 100)
        return self.data.level

    def tick(self, now: datetime | None) -> None:
        """Recompute the headline (a stale official value's age follows the clock); repaint when it changed."""
        if self.data is None:
            return
        text = headline(self.data, self.official, now, self.level())
        if text != self.text:
            self.text = text
            set_text(self.query_one("#gauge-headline", Static), text)


def headline(
    data: GaugeData, official: OfficialView | None = None, now: datetime | None = None, level: str | None = None
) -> str:
    """`188 left · 412 / 600 used · 68.7 %  ▲ WARNING`, or with the official figure leading:
    `official 42 % · local 38 % · ≈310 prompts left at your current mix`."""
    official = official or OfficialView()
    recon = official.reconciliation
    level = level or data.level
    cue = WEEKLY_CUE if official.weekly_blocked else LEVEL_CUES.get(level, "")
    if official.leads and official.binding is not None:
        text = window_headline(official.binding, official.prompts_left)
        if recon and official.binding.source == "local":
            text += " · " + stale_official(official, now)
    elif official.primary:
        text = f"official [b]{pct(official.official_percent)}[/b] · local {pct(data.percent)}"
        estimate = recon.get("prompts_left_estimate")
        if isinstance(estimate, (int, float)) and not isinstance(estimate, bool):
            text += f" · [b]≈{fmt.count(estimate)}[/b] prompts left at your current mix"
        else:
            text += f" · [b]{fmt.count(data.left)}[/b] left by local count"
    else:
        text = (
            f"[b]{fmt.count(data.left)}[/b] left · {fmt.count(data.equivalents)} / {fmt.count(data.limit)} used"
            f" · {data.percent:.1f} %"
        )
        if recon:
            text += " · " + stale_official(official, now)
    return f"{text}  [b]{cue}[/b]" if cue else text


def stale_official(official: OfficialView, now: datetime | None) -> str:
    """`official 42 % (stale, 4m old)`: the last official value, never passed off as fresh."""
    percent = official.official_percent
    if percent is None:
        return "official: no reading yet"
    age = ""
    five, snap_at = official.five_hour, official.snap_at
    if five is not None and snap_at is not None:
        age = ", " + age_text(row_age(five, snap_at, now or snap_at))
    return f"official {pct(percent)} (stale{age})"


def detail(data: GaugeData) -> str:
    """Raw counts: prompts, model calls (and the split), calls per prompt, vision."""
    parts = [f"prompts {fmt.count(data.used)}", f"calls {fmt.count(data.calls)}"]
    split = [f"{fmt.count(n)} {what}" for n, what in ((data.calls_subagent, "sub"), (data.calls_auxiliary, "aux")) if n]
    if split:
        parts[-1] += f" ({', '.join(split)})"
    if data.calls_per_prompt is not None:
        parts.append(f"{data.calls_per_prompt:.1f}/prompt")
    parts.append(f"vision {fmt.count(data.vision)}")
    return " · ".join(parts)


WINDOW_NAMES = {"5h": "5-hour", "weekly": "weekly", "monthly-mcp": "monthly MCP"}
UNIT_SHORT = {"credits": "cr", "prompts": "prompts", "calls": "calls", "percent": "%"}


def window_headline(w: WindowRow, prompts_left: str | None) -> str:
    """`[b]11.6k[/b] credits left (5-hour) · 402 / 12k used · 3.4 % official · ≈88 prompts left`."""
    unit = "%" if w.unit == "percent" else w.unit
    text = (
        f"[b]{fmt_amount(w.left, w.unit)}[/b] {unit} left ({WINDOW_NAMES.get(w.id, w.id)})"
        f" · {fmt_amount(w.used, w.unit)} / {fmt_amount(w.limit, w.unit)} used · {w.percent:.1f} %"
    )
    if w.source != "local":
        text += f" {w.source}"
    if prompts_left is not None:
        text += f" · [b]{prompts_left}[/b] prompts left" + (" (estimate)" if prompts_left.startswith("≈") else "")
    return text
