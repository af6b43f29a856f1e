"""Config file, overrides and errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from zai_dash.config import ConfigError, load_config
from zai_dash.sources.tools import registered_tool_ids


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_without_file(tmp_path: Path) -> None:
    cfg = load_config(env={"HOME": str(tmp_path)})
    assert cfg.plan.name == "pro" and cfg.plan.prompts_per_cycle == 600
    assert cfg.plan.searches_per_month == 1000 and cfg.plan.calls_per_prompt == 15
    assert cfg.plans["lite"].prompts_per_cycle == 120 and cfg.plans["lite"].searches_per_month == 0
    assert cfg.plans["max"].prompts_per_cycle == 2400 and cfg.plans["max"].searches_per_month == 4000
    assert cfg.renewal_day == 1 and cfg.plan.cycle == timedelta(hours=5)


def test_plan_and_limit_overrides(tmp_path: Path) -> None:
    p = _write(tmp_path, 'plan = "max"\nrenewal_day = 17\n[limits]\ncalls_per_prompt = 20\nsearches_per_month = 5000\n')
    cfg = load_config(p, env={})
    assert cfg.plan.name == "max" and cfg.plan.prompts_per_cycle == 2400
    assert cfg.plan.calls_per_prompt == 20 and cfg.plan.searches_per_month == 5000
    assert cfg.renewal_day == 17


def test_fully_custom_plan(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        'plan = "team"\n[plans.team]\nprompts_per_cycle = 900\nsearches_per_month = 2000\n'
        "calls_per_prompt = 18\ncycle_hours = 4\n",
    )
    cfg = load_config(p, env={})
    assert cfg.plan.name == "team" and cfg.plan.prompts_per_cycle == 900
    assert cfg.plan.cycle == timedelta(hours=4) and cfg.plan.calls_per_prompt == 18


def test_env_overrides_file(tmp_path: Path) -> None:
    p = _write(tmp_path, 'plan = "max"\n')
    cfg = load_config(
        p, env={"ZAI_DASH_PLAN": "lite", "ZAI_DASH_RENEWAL_DAY": "5", "ZAI_DASH_TIMEZONE": "Asia/Shanghai"}
    )
    assert cfg.plan.name == "lite" and cfg.renewal_day == 5 and cfg.timezone == "Asia/Shanghai"


def test_config_path_from_env(tmp_path: Path) -> None:
    p = _write(tmp_path, 'plan = "lite"\n')
    assert load_config(env={"ZAI_DASH_CONFIG": str(p)}).plan.name == "lite"


def test_tool_roots_and_disable(tmp_path: Path) -> None:
    p = _write(tmp_path, '[tools.claude-code]\nroots = ["/srv/claude"]\n[tools.goose]\nenabled = false\n')
    cfg = load_config(p, env={}, known_tools=registered_tool_ids)
    assert cfg.extra_roots["claude-code"] == (Path("/srv/claude"),)
    assert cfg.disabled_tools == {"goose"}


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ('plan = "pro"\nrenewal_day = [1\n', 2, "invalid TOML"),
        ('plan = "gold"\n', 1, "unknown plan 'gold'"),
        ('\n\nrenewal_day = "x"\n', 3, "renewal_day must be an integer"),
        ("renewal_day = 40\n", 1, "renewal_day must be 1–31"),
        ('timezone = "Mars/Olympus"\n', 1, "unknown timezone"),
        ("[thresholds]\nwarning = 95\ncritical = 90\n", 2, "below thresholds.critical"),
        ("[tools.vim]\nroots = []\n", 1, "unknown tool 'vim'"),
        ("[limits]\nprompts_per_cycle = -3\n", 2, "prompts_per_cycle must be ≥ 1"),
        ("colour = 1\n", 1, "unknown setting 'colour'"),
    ],
)
def test_broken_config_names_file_line_problem(tmp_path: Path, text: str, line: int, needle: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(p, env={}, known_tools=registered_tool_ids)
    message = str(err.value)
    assert message.startswith(f"{p}:{line}:"), message
    assert needle in message
    assert "\n" not in message


def test_missing_explicit_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})
