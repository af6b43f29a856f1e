"""The one module of text formatters (`zai_dash.text`): the rules every view shares."""

from __future__ import annotations

import re
from datetime import timedelta, timezone
from pathlib import Path

import pytest

import zai_dash
from tests.support.env import FIXED_NOW
from zai_dash import text


@pytest.mark.parametrize(
    ("before", "said"),
    [
        (timedelta(seconds=-30), "just now"),  # a clock a little ahead of ours
        (timedelta(seconds=59), "just now"),
        (timedelta(minutes=2), "2m ago"),
        (timedelta(hours=3), "3h ago"),
        (timedelta(hours=30), "30h ago"),  # the dashboard's rule, now the report's too (it said "1d ago")
        (timedelta(hours=47, minutes=59), "47h ago"),
        (timedelta(hours=48), "2d ago"),
        (timedelta(days=9, hours=23), "9d ago"),
    ],
)
def test_ago_counts_hours_for_two_days_then_days(before: timedelta, said: str) -> None:
    assert text.ago(FIXED_NOW - before, FIXED_NOW) == said


def test_ago_of_nothing_is_never() -> None:
    assert text.ago(None, FIXED_NOW) == "never"


def test_clock_and_durations() -> None:
    utc8 = timezone(timedelta(hours=8))
    at = FIXED_NOW.replace(hour=6, minute=5, second=0, microsecond=0)
    assert text.hhmm(at, utc8) == text.fmt_clock(at, utc8) == "14:05"
    assert text.fmt_clock(None, utc8) == "—"
    assert [text.fmt_duration(s) for s in (None, 45, 420, 4980, 183600)] == ["—", "45s", "7m", "1h23m", "2d03h"]
    assert [text.duration(s) for s in (45, 38 * 60, 3900)] == ["45 s", "38 min", "1h 05m"]
    assert [text.clock_digits(s) for s in (-5, 0.2, 17947)] == ["0:00:00", "0:00:01", "4:59:07"]


def test_amounts_counts_and_rates() -> None:
    assert [text.fmt_amount(v, "credits") for v in (None, 1.25, 950.4, 8200, 12000, 1_500_000)] == [
        "—",
        "1.2",
        "950",
        "8.2k",
        "12k",
        "1.5M",
    ]
    assert text.fmt_amount(412.6, "prompts") == "413"
    assert text.count(1234.4) == "1,234"
    assert [text.rate(r) for r in (0, 0.3, 52.4, 1234)] == ["0/h", "<1/h", "52/h", "1,234/h"]


def test_no_view_writes_its_own_ago() -> None:
    """`… ago` is written in one place: a second copy of the rule is how report and dashboard came to differ."""
    package = Path(zai_dash.__file__).parent
    pattern = re.compile(r"""[}\d]\s?[mhd] ago|"just now"|'just now'""")
    others = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.name != "text.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert others == []
