"""The timeline: prompt-equivalents per 10-minute bucket, the running total and a projection to the limit."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Sparkline, Static
from textual_plotext import PlotextPlot

from zai_dash import text as fmt
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.history_screen import cycle_line


@dataclass(frozen=True, slots=True)
class PlotData:
    """Everything the plot depends on; the plot is rebuilt only when this changes."""

    start: datetime | None
    end: datetime | None
    bucket_minutes: int
    equivalents: tuple[int, ...]
    limit: int
    used: int
    rate_recent: float


class TimelinePanel(Widget):
    """A plotext chart when there is room, a Sparkline of the same buckets in narrow or short panes."""

    DEFAULT_CSS = """
    TimelinePanel {
        height: 1fr;
        min-height: 3;
        #timeline-plot { height: 1fr; min-height: 6; }
        #timeline-spark { height: 1fr; min-height: 1; max-height: 3; display: none; }
        #timeline-caption { height: 1; color: $text-muted; display: none; }
        #timeline-summary { height: auto; display: none; }
    }
    """

    def __init__(self, tz: tzinfo | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.tz = tz
        self.data: PlotData | None = None
        """What is plotted now."""
        self.replots = 0
        """How many times the data changed and the plot was rebuilt (idle must not replot)."""

    def compose(self) -> ComposeResult:
        yield PlotextPlot(id="timeline-plot")
        yield Sparkline([], id="timeline-spark")
        yield Static("", id="timeline-caption")
        yield Static("", id="timeline-summary")

    def set_snapshot(self, snap: Snapshot) -> None:
        """Replot when the buckets, the limit or the pace changed; otherwise do nothing.

        With no cycle open the panel shows the last cycle's summary instead of an empty frame.
        """
        last = snap.history.last_cycle
        ended = snap.cycle.state != "open" and last is not None
        self.set_class(ended, "-ended")
        self.border_title = "Last cycle" if ended else "Timeline"
        if last is not None and ended:
            self.query_one("#timeline-summary", Static).update(
                f"{cycle_line(last, snap.history.unit, self.tz)}\nthe next opens on your next prompt · h: history"
            )
        tl = snap.timeline
        data = PlotData(
            start=tl.start,
            end=snap.cycle.end if snap.cycle.state == "open" else None,
            bucket_minutes=tl.bucket_minutes,
            equivalents=tl.equivalents,
            limit=snap.prompts.limit,
            used=snap.prompts.equivalents,
            rate_recent=round(snap.forecast.rate_recent, 1) if snap.forecast else 0.0,
        )
        if data == self.data:
            return
        self.data = data
        self.replots += 1
        # plotext rebuilds inside render() (~7 ms at 80x10), so the widget refreshes only here.
        self._replot(data)
        self.query_one("#timeline-spark", Sparkline).data = list(data.equivalents) or [0]
        peak = max(data.equivalents, default=0)
        self.query_one("#timeline-caption", Static).update(
            f"per {data.bucket_minutes} min · peak {peak} · {len(data.equivalents)} buckets"
        )

    def _replot(self, data: PlotData) -> None:
        widget = self.query_one("#timeline-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        if data.start is None or data.end is None:
            plt.title("no open cycle")
            widget.refresh()
            return
        total_min = max(1.0, (data.end - data.start).total_seconds() / 60)
        step = data.bucket_minutes
        xs = [i * step + step / 2 for i in range(len(data.equivalents))]
        if xs:
            plt.bar(xs, list(data.equivalents), width=0.6, label=f"per {step} min", marker="sd")
        cumulative = [0, *itertools.accumulate(data.equivalents)]
        edges = [min(i * step, total_min) for i in range(len(cumulative))]
        plt.plot(edges, cumulative, yside="right", label="used", marker="braille")
        now_x = edges[-1]
        if data.rate_recent > 0 and now_x < total_min:
            projected = projection(data.used, data.rate_recent, data.limit, now_x, total_min)
            plt.plot(*projection_xy(projected), yside="right", label="pace", marker="braille")
        plt.plot([0, total_min], [data.limit, data.limit], yside="right", label="limit", marker="braille")
        peak = max(data.equivalents, default=0)
        # plotext's stubs type `yside` as a number, but the library takes "left"/"right".
        plt.ylim(0, max(1, peak) * 1.3, yside="left")  # type: ignore[arg-type]
        plt.ylim(0, data.limit * 1.1 if data.limit else 1, yside="right")  # type: ignore[arg-type]
        plt.xlim(0, total_min)
        ticks = hour_ticks(data.start, total_min)
        plt.xticks([t for t, _ in ticks], [fmt.hhmm(at, self.tz) for _, at in ticks])
        widget.refresh()


def projection(
    used: int, rate_per_hour: float, limit: int, now_min: float, end_min: float
) -> list[tuple[float, float]]:
    """Points of the projected running total from now to the reset, stopping at the limit.

    Args:
        used: prompt-equivalents used so far.
        rate_per_hour: the recent burn rate.
        limit: the plan's limit.
        now_min: minutes since the window opened.
        end_min: the window's length in minutes.
    """
    at_end = used + rate_per_hour * (end_min - now_min) / 60
    if at_end <= limit or rate_per_hour <= 0:
        return [(now_min, float(used)), (end_min, at_end)]
    hit = now_min + (limit - used) / rate_per_hour * 60
    return [(now_min, float(used)), (hit, float(limit))]


def projection_xy(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Split points into x and y lists for plotext."""
    return [p[0] for p in points], [p[1] for p in points]


def hour_ticks(start: datetime, total_min: float) -> list[tuple[float, datetime]]:
    """A tick at the window's start and every hour after it."""
    out: list[tuple[float, datetime]] = []
    minute = 0.0
    while minute <= total_min + 0.01:
        out.append((minute, start + timedelta(minutes=minute)))
        minute += 60
    return out
