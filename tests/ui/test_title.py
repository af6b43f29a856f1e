"""The window title: the headline's amount left in its unit and the countdown."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from tests.support.env import FIXED_NOW
from zai_dash.domain.windows import Headline
from zai_dash.ui.title import osc_title, window_title

HEAD = Headline(
    window="5h",
    unit="credits",
    used=2700,
    limit=12000,
    left=9300,
    percent=22.5,
    seconds_left=None,
    end=FIXED_NOW + timedelta(hours=3, minutes=13),
    source="local",
    level="ok",
    blocked_until=None,
    weekly_percent=4.0,
    prompts_left=None,
    prompts_left_source=None,
)


def test_title_leads_with_what_is_left_and_when_it_comes_back() -> None:
    assert window_title(HEAD, FIXED_NOW) == "GLM 9.3k cr left · 3h13m"
    assert window_title(replace(HEAD, unit="prompts", left=596, limit=600), FIXED_NOW) == "GLM 596 prompts left · 3h13m"
    assert window_title(replace(HEAD, window="weekly"), FIXED_NOW) == "GLM 9.3k cr left wk · 3h13m"
    assert window_title(replace(HEAD, percent_only=True, percent=42), FIXED_NOW) == "GLM 58% left · 3h13m"
    assert window_title(replace(HEAD, end=None), FIXED_NOW) == "GLM 9.3k cr left · idle"
    blocked = replace(HEAD, blocked_until=FIXED_NOW + timedelta(minutes=42))
    assert window_title(blocked, FIXED_NOW) == "GLM blocked · 42m"
    assert window_title(None, FIXED_NOW) == "zai-dash"


def test_osc_title_drops_control_characters() -> None:
    assert osc_title("GLM 1\x1b]0;x\x07 left") == "\x1b]2;GLM 1]0;x left\x07"
