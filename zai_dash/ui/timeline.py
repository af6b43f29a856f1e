"""The timeline: usage per 10 minutes (peak hours shaded) above the running total against the pool.

The panel picks what fits its own size: both charts when tall enough, the pool chart alone when not,
and a one-to-three-row bar strip in small panes. It redraws only when the series changes (a new snapshot
whose buckets, pool, forecast or instant differ), never on the clock's tick.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.events import Resize
from textual.widget import Widget
from textual.widgets import Static

from zai_dash.domain.series import UsageSeries
from zai_dash.domain.snapshot import Snapshot
from zai_dash.text import fmt_amount
from zai_dash.ui.charts import Canvas, pool_chart, spark_chart, usage_chart
from zai_dash.ui.glyphs import ASCII, UNICODE
from zai_dash.ui.history_screen import cycle_line
from zai_dash.ui.live import set_text

BOTH_ROWS = 10
"""From this many content rows both charts show (each needs its title, axis and labels)."""
POOL_ROWS = 5
"""From this many rows the pool chart shows alone; below, the bar strip."""
CHART_COLUMNS = 30
"""Narrower than this, the bar strip."""
ROLES = ("title", "axis", "bar", "peak", "used", "pace-ok", "pace-critical", "pace-none", "limit", "now")
"""The canvas roles; each is the component class `chart--<role>`, styled in dash.tcss."""


class ChartView(Widget):
    """One chart (`usage`, `pool` or `spark`) drawn for the widget's current size."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {f"chart--{role}" for role in ROLES} | {"chart--shade"}
    DEFAULT_CSS = """
    ChartView { height: 1fr; }
    """

    def __init__(self, kind: str, *, ascii_only: bool = False, tz: tzinfo | None = None, id: str | None = None):
        super().__init__(id=id)
        self.kind = kind
        self.glyphs = ASCII if ascii_only else UNICODE
        self.tz = tz
        self.series: UsageSeries | None = None
        self.time_labels = True
        """Set HH:MM into the x axis (the usage chart leaves it to the pool chart right below it)."""

    def set_series(self, series: UsageSeries | None) -> None:
        """Draw `series` (a refresh of this widget only: its size does not depend on the data)."""
        self.series = series
        self.refresh()

    def canvas(self, width: int, height: int) -> Canvas | None:
        """The chart laid out at a size (None without a series)."""
        s = self.series
        if s is None:
            return None
        if self.kind == "usage":
            return usage_chart(s, width, height, self.glyphs, self.tz, time_labels=self.time_labels)
        if self.kind == "pool":
            return pool_chart(s, width, height, self.glyphs, self.tz)
        return spark_chart(s, width, height, self.glyphs)

    def render(self) -> RenderResult:
        canvas = self.canvas(self.size.width, self.size.height)
        if canvas is None:
            return ""
        # Not partial: the full style resolves `auto` colours such as `$text-muted` against the background
        # behind the chart (a partial style leaves them white, invisible on a light theme).
        styles = {role: self.get_component_rich_style(f"chart--{role}") for role in ROLES}
        # The shade is a translucent tint (`$warning 15%`): a Rich style has no alpha, so blend it here over
        # what is behind the chart.
        tint = self.get_component_styles("chart--shade").background
        shade = Style(bgcolor=(self.background_colors[1] + tint).rich_color) if tint.a > 0 else Style()
        text = Text()
        for y, row in enumerate(canvas.runs()):
            if y:
                text.append("\n")
            for chunk, role, shaded in row:
                style = styles.get(role, Style())
                text.append(chunk, style + shade if shaded else style)
        return text


class TimelinePanel(Widget):
    """Usage per bucket and the running total against the pool, or a bar strip where there is no room."""

    DEFAULT_CSS = """
    TimelinePanel {
        height: 1fr;
        min-height: 3;
        #chart-usage, #chart-pool, #timeline-spark, #timeline-caption, #timeline-summary { display: none; }
        #timeline-spark { height: 1fr; max-height: 3; }
        /* The pool chart (how close to the limit) gets the larger share; the usage chart lends it its time row. */
        #chart-usage { height: 2fr; }
        #chart-pool { height: 3fr; }
        #timeline-caption { height: 1; color: $text-muted; }
        #timeline-summary { height: auto; }
    }
    TimelinePanel.-both #chart-usage, TimelinePanel.-both #chart-pool, TimelinePanel.-pool #chart-pool,
    TimelinePanel.-spark #timeline-spark, TimelinePanel.-spark #timeline-caption { display: block; }
    """

    def __init__(self, tz: tzinfo | None = None, *, ascii_only: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.series: UsageSeries | None = None
        """What is drawn now."""
        self.replots = 0
        """How many times the series changed and the charts were redrawn (idle must not redraw)."""
        self.charts = (
            ChartView("usage", ascii_only=ascii_only, tz=tz, id="chart-usage"),
            ChartView("pool", ascii_only=ascii_only, tz=tz, id="chart-pool"),
            ChartView("spark", ascii_only=ascii_only, tz=tz, id="timeline-spark"),
        )

    def compose(self) -> ComposeResult:
        yield from self.charts
        yield Static("", id="timeline-caption")
        yield Static("", id="timeline-summary")

    def on_resize(self, event: Resize) -> None:
        # The panel's height comes from the layout (1fr of what is left), never from its children, so
        # choosing children by size cannot loop.
        height, width = self.content_size.height, self.content_size.width
        form = "-spark"
        if width >= CHART_COLUMNS:
            form = "-both" if height >= BOTH_ROWS else "-pool" if height >= POOL_ROWS else "-spark"
        for name in ("-both", "-pool", "-spark"):
            self.set_class(name == form, name)
        usage = self.charts[0]
        if usage.time_labels != (form != "-both"):
            usage.time_labels = form != "-both"
            usage.refresh()

    def set_snapshot(self, snap: Snapshot, series: UsageSeries | None) -> None:
        """Redraw when the series changed; otherwise do nothing.

        With no cycle open the panel shows the last cycle's summary instead of an empty frame.

        Args:
            snap: the snapshot (for the last cycle's summary).
            series: its `usage_series`, or None with no window open.
        """
        last = snap.history.last_cycle
        ended = snap.cycle.state != "open" and last is not None
        self.set_class(ended, "-ended")
        title = "Last cycle" if ended else "Timeline"
        if self.border_title != title:
            self.border_title = title
        if last is not None and ended:
            summary = self.query_one("#timeline-summary", Static)
            set_text(
                summary,
                f"{cycle_line(last, snap.history.unit, self.tz)}\nthe next opens on your next prompt · h: history",
            )
        if series == self.series:
            return
        self.series = series
        self.replots += 1
        for chart in self.charts:
            chart.set_series(series)
        caption = ""
        if series is not None:
            peak = max(series.per_bucket, default=0.0)
            caption = (
                f"{series.unit} per {series.bucket_minutes} min · max {fmt_amount(peak, series.unit)}"
                f" · {len(series.per_bucket)}/{series.buckets} buckets"
            )
        set_text(self.query_one("#timeline-caption", Static), caption)
