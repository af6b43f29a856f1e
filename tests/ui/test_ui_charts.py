"""The timeline charts (`ui/charts.py`): each rule of issue 12 §2, checked on the drawn cells.

The charts are laid out as a grid of (character, role) cells, so every rule is a property of that grid:
what row a label sits on, which glyphs a line uses, which role (and so which theme colour) a cell takes.
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest

from tests.support.series import credit_snapshot
from tests.support.ui import NOW, at_percent, make_snapshot
from tests.support.windows import TARIFF
from zai_dash.clock import FixedClock
from zai_dash.domain.series import UsageSeries, usage_series
from zai_dash.domain.snapshot import Snapshot
from zai_dash.ui.app import DashApp
from zai_dash.ui.charts import CHROME_ROWS, Canvas, pool_chart, spark_chart, usage_chart
from zai_dash.ui.forecast_line import ForecastLine, forecast_text
from zai_dash.ui.glyphs import ASCII, UNICODE, Glyphs, ascii_wanted
from zai_dash.ui.timeline import ChartView, TimelinePanel

SIZES = [(40, 6), (60, 8), (80, 10), (118, 12), (200, 20)]
"""Chart sizes from the smallest the panel draws to a wide pane."""


def series(snap: Snapshot) -> UsageSeries:
    s = usage_series(snap, TARIFF.is_peak)
    assert s is not None
    return s


def on_pace() -> UsageSeries:
    return series(make_snapshot(prompts=60, calls=0, opened_ago=timedelta(hours=2)))


def running_out() -> UsageSeries:
    return series(at_percent(93))


def rows(canvas: Canvas) -> list[str]:
    return ["".join(r) for r in canvas.chars]


def cells(canvas: Canvas, role: str) -> list[tuple[int, int]]:
    """(x, y) of every non-blank cell drawn in a role."""
    return [
        (x, y)
        for y in range(canvas.height)
        for x in range(canvas.width)
        if canvas.roles[y][x] == role and canvas.chars[y][x] != " "
    ]


def y_labels(canvas: Canvas) -> dict[int, str]:
    """Row → the number left of the y axis."""
    out = {}
    for y, line in enumerate(rows(canvas)[1:], start=1):
        label = line[:5].strip()
        if label:
            out[y] = label
    return out


def plot_rows(canvas: Canvas) -> range:
    return range(1, canvas.height - CHROME_ROWS + 1)


# ------------------------------------------------------------------ the usage chart


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_usage_counts_have_whole_ticks_that_read_the_bars_exactly(size: tuple[int, int]) -> None:
    s = series(make_snapshot(prompts=310, calls=3400, opened_ago=timedelta(hours=2, minutes=40)))
    canvas = usage_chart(s, *size, UNICODE, timezone.utc)
    labels = y_labels(canvas)
    n = canvas.height - CHROME_ROWS
    assert labels[n + 1] == "0"  # zero is on the axis, not on a row that bars fill
    top = int(labels[1])
    assert top >= max(s.per_bucket)
    for row, text in labels.items():
        value = int(text)  # counts: integers only, never "12.5"
        # The row's top edge is its label: a full cell there means the bar reached that value.
        assert value == top * (n - row + 1) / n


def test_usage_is_in_the_plans_unit_with_the_axis_titled() -> None:
    credits = usage_chart(series(credit_snapshot()), 80, 10, UNICODE, timezone.utc)
    prompts = usage_chart(on_pace(), 80, 10, UNICODE, timezone.utc)
    assert rows(credits)[0].startswith("credits per 10 min")
    assert rows(prompts)[0].startswith("prompts per 10 min")
    # Credits need not be whole; a middle tick shows only where its label is exact (8 rows: 4 is a row's edge;
    # 7 rows: the middle edge is 4.57, which no label names, so there is none).
    shorter = usage_chart(series(credit_snapshot()), 80, 9, UNICODE, timezone.utc)
    assert set(y_labels(credits).values()) == {"8", "4", "0"}
    assert set(y_labels(shorter).values()) == {"8", "0"}


def test_no_bar_reaches_below_zero_and_an_empty_or_negative_bucket_draws_nothing() -> None:
    s = series(credit_snapshot())
    s = UsageSeries(**{**{f: getattr(s, f) for f in s.__slots__}, "per_bucket": (5.0, 0.0, 0.0, 2.0)})
    canvas = usage_chart(s, 80, 10, UNICODE, timezone.utc)
    axis_row = canvas.height - CHROME_ROWS + 1
    bars = cells(canvas, "bar")
    assert bars and all(y < axis_row for _, y in bars)
    # Bucket 1 and 2 are empty: no bar cell between the first bar and the last.
    xs = sorted({x for x, _ in bars})
    assert len(xs) < 2 * 4 and xs[0] < xs[-1]


def test_peak_buckets_are_shaded_with_a_heavy_axis_and_a_legend_off_the_plot() -> None:
    s = series(credit_snapshot())  # the first 12 of 30 buckets touch peak hours
    for glyphs in (UNICODE, ASCII):
        # As the app draws it above the pool chart: the time labels are the pool chart's, the axis all marks.
        canvas = usage_chart(s, 100, 10, glyphs, timezone.utc, time_labels=False)
        axis_row = canvas.height - CHROME_ROWS + 1
        shaded = sorted({x for y in plot_rows(canvas) for x in range(canvas.width) if canvas.shade[y][x]})
        heavy = sorted(x for x in range(canvas.width) if canvas.chars[axis_row][x] == glyphs.axis_peak)
        assert shaded == heavy
        assert 0.3 < len(shaded) / (canvas.width - 6) < 0.5  # 12/30 of the plot's width
        assert f"{glyphs.axis_peak * 2} peak hours" in rows(canvas)[0]
        assert all(canvas.chars[axis_row][x] in (glyphs.axis, glyphs.axis_peak) for x in range(6, canvas.width))
    unshaded = usage_chart(series(credit_snapshot()), 100, 10, UNICODE, timezone.utc)
    no_rule = usage_series(credit_snapshot())
    assert no_rule is not None
    plain = usage_chart(no_rule, 100, 10, UNICODE, timezone.utc)
    assert "peak hours" not in rows(plain)[0] and "peak hours" in rows(unshaded)[0]


def test_time_labels_sit_in_the_axis_on_the_hours_from_the_windows_start() -> None:
    s = on_pace()  # opened 10:00 UTC: 10:00 … 15:00
    for draw in (usage_chart, pool_chart):
        axis = rows(draw(s, 100, 10, UNICODE, timezone.utc))[-1]
        assert [axis.split()[i] for i in range(1, len(axis.split()), 2)] == [
            "10:00", "11:00", "12:00", "13:00", "14:00", "15:00",
        ]  # fmt: skip
        assert axis.rstrip().endswith("15:00")


def test_the_running_total_fills_up_to_what_was_used_now() -> None:
    """The area's height at the now column is the used share of the pool, to an eighth of a cell."""
    s = series(make_snapshot(prompts=150, calls=0, opened_ago=timedelta(hours=2)))  # 150 of 600 used
    canvas = pool_chart(s, 100, 10, UNICODE, timezone.utc)  # 8 plot rows = 64 eighths
    (now_x,) = {x for x, y in cells(canvas, "now") if y > 0}
    column = [canvas.chars[y][now_x] for y in range(1, 9)]
    eighths = sum(
        8 if c == UNICODE.eighths[-1] else UNICODE.eighths.index(c) + 1 for c in column if c in UNICODE.eighths
    )
    assert eighths == round(150 / 600 * 64)
    assert y_labels(canvas)[9] == "0"


def test_bars_and_lines_never_share_a_chart() -> None:
    s = on_pace()
    usage = usage_chart(s, 100, 10, UNICODE, timezone.utc)
    pool = pool_chart(s, 100, 10, UNICODE, timezone.utc)
    assert cells(usage, "bar") and not any(cells(usage, r) for r in ("used", "pace-ok", "limit", "now"))
    assert not cells(pool, "bar") and all(cells(pool, r) for r in ("used", "pace-ok", "limit", "now"))


# ------------------------------------------------------------------ the pool chart


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("make", [on_pace, running_out], ids=["on-pace", "running-out"])
def test_the_legend_never_covers_the_pool_line(size: tuple[int, int], make: object) -> None:
    s = make()  # type: ignore[operator]
    canvas = pool_chart(s, *size, UNICODE, timezone.utc)
    # The legend is on row 0 with the title; the pool line is the plot's top row, which holds only the pool,
    # the now marker and a line reaching it: every one of its columns shows one of those.
    assert {y for _, y in cells(canvas, "limit")} - {0} == {1}, rows(canvas)
    line = {(canvas.roles[1][x], canvas.chars[1][x]) for x in range(6, canvas.width)}
    area = {("used", glyph) for glyph in UNICODE.eighths}
    assert line <= {("limit", UNICODE.limit), ("now", UNICODE.now), (f"pace-{s.verdict}", UNICODE.pace),
                    (f"pace-{s.verdict}", UNICODE.out), *area}  # fmt: skip
    assert y_labels(canvas)[1] == "600"
    assert rows(canvas)[0].startswith("prompts used of 600")


def test_lines_are_told_apart_by_marker_as_well_as_colour() -> None:
    for glyphs in (UNICODE, ASCII):
        markers = [glyphs.used, glyphs.pace, glyphs.limit, glyphs.now]
        assert len(set(markers)) == len(markers)
        canvas = pool_chart(on_pace(), 100, 12, glyphs, timezone.utc)
        for role, marker in (("pace-ok", glyphs.pace), ("limit", glyphs.limit)):
            drawn = {canvas.chars[y][x] for x, y in cells(canvas, role) if y > 0}
            assert drawn == {marker}, role
        # The running total is a filled area (eighths of a cell), not a line: nothing else is drawn so.
        area = {canvas.chars[y][x] for x, y in cells(canvas, "used") if y > 0}
        assert glyphs.used in area and area <= set(glyphs.eighths)
        assert not area & {glyphs.pace, glyphs.limit, glyphs.now}
        legend = rows(canvas)[0]
        for marker, name in zip(markers, ("used", "pace", "pool", "now"), strict=True):
            assert f"{marker} {name}" in legend


def test_the_now_marker_splits_the_running_total_from_the_projection() -> None:
    s = on_pace()
    canvas = pool_chart(s, 100, 12, UNICODE, timezone.utc)
    now_cols = {x for x, y in cells(canvas, "now") if y > 0}
    assert len(now_cols) == 1
    (now_x,) = now_cols
    used_xs = [x for x, y in cells(canvas, "used") if y > 0]
    pace_xs = [x for x, y in cells(canvas, "pace-ok") if y > 0]
    assert max(used_xs) <= now_x < min(pace_xs)
    assert max(pace_xs) == canvas.width - 1  # on pace: the projection reaches the reset


def test_the_pace_line_takes_the_forecasts_verdict() -> None:
    ok = pool_chart(on_pace(), 100, 12, UNICODE, timezone.utc)
    assert cells(ok, "pace-ok") and not cells(ok, "pace-critical")
    bad = pool_chart(running_out(), 100, 12, UNICODE, timezone.utc)
    assert cells(bad, "pace-critical") and not cells(bad, "pace-ok")
    # Where it runs out, the mark sits on the pool line, before the reset.
    assert any(bad.chars[1][x] == UNICODE.out for x in range(bad.width - 1))


def test_the_forecast_line_and_the_pace_line_agree() -> None:
    for snap in (make_snapshot(prompts=60, calls=0, opened_ago=timedelta(hours=2)), at_percent(93)):
        text, level = forecast_text(snap, timezone.utc)
        s = series(snap)
        assert level == s.verdict
        assert text.startswith("✔ on pace") == (s.verdict == "ok")


# ------------------------------------------------------------------ ASCII


@pytest.mark.parametrize(
    ("env", "ascii"),
    [
        ({"LANG": "C"}, True),
        ({"LANG": "POSIX"}, True),
        ({"LANG": "en_US.ISO-8859-1"}, True),
        ({"LANG": "en_US.UTF-8"}, False),
        ({"LANG": "C.UTF-8"}, False),
        ({"LANG": "C", "LC_CTYPE": "C.UTF-8"}, True),  # Python's PEP 538 coercion, not the user's choice
        ({"LANG": "en_US.UTF-8", "LC_ALL": "C"}, True),  # LC_ALL wins
        ({"LANG": "C", "LC_ALL": "de_DE.utf8"}, False),
    ],
)
def test_ascii_under_a_non_utf8_locale(env: dict[str, str], ascii: bool) -> None:
    assert ascii_wanted(env, encoding="utf-8") is ascii


def test_no_locale_set_follows_the_output_encoding() -> None:
    assert ascii_wanted({}, encoding="ascii") is True
    assert ascii_wanted({}, encoding="UTF-8") is False


@pytest.mark.parametrize("glyphs", [ASCII], ids=["ascii"])
def test_the_ascii_charts_are_pure_ascii(glyphs: Glyphs) -> None:
    for s in (on_pace(), running_out(), series(credit_snapshot())):
        for canvas in (
            usage_chart(s, 90, 10, glyphs, timezone.utc),
            pool_chart(s, 90, 10, glyphs, timezone.utc),
            spark_chart(s, 40, 3, glyphs),
        ):
            text = "\n".join(rows(canvas))
            assert text.isascii(), text
            assert text.strip()


async def test_lang_c_draws_the_dashboards_charts_in_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANG", "C")
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_CTYPE", raising=False)
    app = DashApp(clock=FixedClock(NOW), tz=timezone.utc, theme="textual-dark")
    assert app.ascii_only
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(make_snapshot(prompts=310, calls=3400, opened_ago=timedelta(hours=2, minutes=40)))
        await pilot.pause()
        for chart in app.query(ChartView):
            if chart.display and chart.size.area:
                canvas = chart.canvas(chart.size.width, chart.size.height)
                assert canvas is not None
                assert "\n".join(rows(canvas)).isascii()


# ------------------------------------------------------------------ in the app: theme roles


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light", "nord", "zai-ansi"])
async def test_on_pace_the_pace_line_is_never_the_error_colour(theme: str) -> None:
    app = DashApp(clock=FixedClock(NOW), tz=timezone.utc, theme=theme, ascii_only=False)
    async with app.run_test(size=(120, 36)) as pilot:
        app.show(make_snapshot(prompts=60, calls=0, opened_ago=timedelta(hours=2)))
        await pilot.pause()
        assert app.query_one(TimelinePanel).has_class("-both")
        assert app.query_one(ForecastLine).has_class("-ok")
        chart = app.query_one("#chart-pool", ChartView)
        ok = chart.get_component_rich_style("chart--pace-ok", partial=True).color
        critical = chart.get_component_rich_style("chart--pace-critical", partial=True).color
        assert ok is not None and critical is not None and ok != critical
        error = app.current_theme.error
        assert error is not None
        assert ok.triplet is None or ok.triplet.hex.lower() != error.lower()
