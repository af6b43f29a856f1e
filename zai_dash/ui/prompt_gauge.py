"""The prompt gauge: prompt-equivalents used against the cycle's limit."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from rich.style import Style
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.renderables.bar import Bar
from textual.widget import Widget
from textual.widgets import Static

from zai_dash.domain.snapshot import PromptGauge as GaugeData
from zai_dash.ui import fmt

LEVEL_CUES: dict[str, str] = {
    "ok": "",
    "warning": "▲ WARNING",
    "critical": "‼ CRITICAL",
    "exhausted": "✖ LIMIT REACHED",
}
"""Text cue per level, so the state reads under NO_COLOR and in 16 colours, not by colour alone."""

LEVEL_CLASSES = ("-warning", "-critical", "-exhausted")


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
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.data: GaugeData | None = None
        """The gauge of the latest snapshot."""

    def compose(self) -> ComposeResult:
        yield Static("—", id="gauge-headline")
        yield GaugeBar(id="gauge-bar")
        yield Static("", id="gauge-detail")

    def set_gauge(self, data: GaugeData) -> None:
        """Show a new gauge; a no-op when nothing changed."""
        if data == self.data:
            return
        self.data = data
        for cls in LEVEL_CLASSES:
            self.remove_class(cls)
        if data.level != "ok":
            self.add_class(f"-{data.level}")
        self.query_one("#gauge-headline", Static).update(headline(data))
        fraction = data.equivalents / data.limit if data.limit else 0.0
        self.query_one("#gauge-bar", GaugeBar).fraction = fraction
        self.query_one("#gauge-detail", Static).update(detail(data))


def headline(data: GaugeData) -> str:
    """`412 / 600 used · 188 left · 68.7 %  ▲ WARNING`."""
    cue = LEVEL_CUES.get(data.level, "")
    text = (
        f"[b]{fmt.count(data.left)}[/b] left · {fmt.count(data.equivalents)} / {fmt.count(data.limit)} used"
        f" · {data.percent:.1f} %"
    )
    return f"{text}  [b]{cue}[/b]" if cue else text


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
