"""First run: the "assuming Pro, credits" note and the plan chooser (`c`) that writes the config file."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.env import FIXED_NOW
from tests.support.pilot import wait_for
from tests.support.ui import write_claude_history
from zai_dash.clock import FixedClock
from zai_dash.config import Config, ConfigError, load_config
from zai_dash.engine import Engine
from zai_dash.sources.base import SourceContext
from zai_dash.ui.app import DashApp
from zai_dash.ui.chooser import NEW_FILE_HEADER, PlanChooser, config_text, write_choice

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def test_a_fresh_file_is_valid_toml_with_the_choice() -> None:
    text = config_text(None, "max", "legacy-v2")
    assert text.startswith(NEW_FILE_HEADER)
    assert tomllib.loads(text) == {"plan": "max", "billing": "legacy-v2"}


def test_an_existing_file_keeps_everything_but_its_plan_and_billing() -> None:
    existing = 'bell = true\nplan = "lite"\n\n[thresholds]\nwarning = 60\n\n[tools.claude-code]\nroots = ["/x"]\n'
    doc = tomllib.loads(config_text(existing, "pro", "credits"))
    assert doc == {
        "plan": "pro",
        "billing": "credits",
        "bell": True,
        "thresholds": {"warning": 60},
        "tools": {"claude-code": {"roots": ["/x"]}},
    }


def test_write_choice_never_overwrites_without_asking(tmp_path: Path) -> None:
    path = tmp_path / "zai-dash" / "config.toml"
    write_choice(path, "lite", "credits", replace_existing=False)
    config = load_config(path, env={})
    assert (config.plan.name, config.billing, config.assumption()) == ("lite", "credits", "")
    with pytest.raises(FileExistsError):
        write_choice(path, "max", "credits", replace_existing=False)
    assert load_config(path, env={}).plan.name == "lite"
    write_choice(path, "max", "credits", replace_existing=True)
    assert load_config(path, env={}).plan.name == "max"


def test_write_choice_refuses_what_the_loader_refuses(tmp_path: Path) -> None:
    path = tmp_path / "zai-dash" / "config.toml"
    path.parent.mkdir()
    path.write_text('plan = "pro"\n')
    with pytest.raises(ConfigError, match=str(path)):
        write_choice(path, "team-standard", "legacy-v1", replace_existing=True)  # not sold on legacy-v1
    assert path.read_text() == 'plan = "pro"\n'
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left behind


def live_app(home: Path, config_path: Path) -> DashApp:
    """The dashboard over the real engine (a temp HOME, the fixed clock), reloading from `config_path`."""
    write_claude_history(home, FIXED_NOW, prompts=3)
    clock = FixedClock(FIXED_NOW)
    ctx = SourceContext(home=home, env=dict(os.environ), clock=clock.now)

    def engine_for(config: Config) -> Engine:
        engine = Engine(replace(config, timezone="UTC"), ctx=ctx, clock=clock)
        engine.publish_state = False
        return engine

    return DashApp(
        engine_for(Config()),
        clock,
        theme="textual-dark",
        config_path=config_path,
        reload=lambda: engine_for(load_config(config_path, env={})),
    )


def header_note(app: DashApp) -> str:
    label = app.query_one("#hdr-assumed")
    return str(label.render()) if label.display else ""


async def test_c_chooses_the_plan_writes_the_file_and_the_screen_follows(home: Path, tmp_path: Path) -> None:
    config_path = home / ".config" / "zai-dash" / "config.toml"
    app = live_app(home, config_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.base is not None and app.base.has_data)
        assert "assuming Pro, credits — press c to choose" in header_note(app)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanChooser))
        await pilot.click("#plan-max")
        await pilot.click("#chooser-save")
        await wait_for(pilot, lambda: not isinstance(app.screen, PlanChooser))
        await wait_for(pilot, lambda: app.base is not None and app.base.plan.name == "max")
        assert header_note(app) == ""
    assert tomllib.loads(config_path.read_text()) == {"plan": "max", "billing": "credits"}


async def test_an_existing_file_is_changed_only_after_a_second_save(home: Path) -> None:
    config_path = home / ".config" / "zai-dash" / "config.toml"
    config_path.parent.mkdir(parents=True)
    config_path.write_text("bell = true\n")
    app = live_app(home, config_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.base is not None)
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanChooser))
        await pilot.click("#plan-lite")
        await pilot.click("#chooser-save")
        await pilot.pause()
        assert "This file exists" in str(app.screen.query_one("#chooser-note").render())
        assert config_path.read_text() == "bell = true\n"
        # A button ignores presses during its 0.2 s press animation, as it would a user's double click.
        save = app.screen.query_one("#chooser-save")
        await wait_for(pilot, lambda: not save.has_class("-active"))
        await pilot.click("#chooser-save")
        await wait_for(pilot, lambda: app.base is not None and app.base.plan.name == "lite")
    assert tomllib.loads(config_path.read_text()) == {"plan": "lite", "billing": "credits", "bell": True}


async def test_escape_cancels_without_writing(home: Path) -> None:
    config_path = home / ".config" / "zai-dash" / "config.toml"
    app = live_app(home, config_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, PlanChooser))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, PlanChooser))
    assert not config_path.exists()
