"""Config file, overrides and errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from zai_dash.config import Config, ConfigError, load_config
from zai_dash.domain.events import McpService
from zai_dash.domain.tariff import Rates, WindowPool
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
        ('plan = "pro"\nbilling = "v3"\n', 2, "billing must be one of credits, legacy-v2, legacy-v1"),
        ('plan = "team-standard"\nbilling = "legacy-v2"\n', 2, "'team-standard' is not sold on legacy-v2 billing"),
        ('weekly_reset = "2026-11-03T09:00:00"\n', 1, "weekly_reset needs a UTC offset"),
        ("\nweekly_reset = 2026-11-03\n", 2, "weekly_reset must be an instant"),
        ('weekly_reset = "tuesday"\n', 1, "weekly_reset must be an ISO 8601 instant"),
        ("vision_credits = -1\n", 1, "vision_credits must be ≥ 0"),
        ('plan = "pro"\ndefault_model = "glm-0"\n', 2, "tariff.default_model: 'glm-0' has no rates"),
        ('[tariff.rates."glm-5.3"]\n\ninput = "x"\n', 3, "tariff.rates.glm-5.3.2026-09-01.input: must be a number"),
        ('[tariff.rates]\n"glm-5.3" = { "2026-12-01" = { input = -1 } }\n', 2, "must be a number ≥ 0"),
        ("[tariff]\nsurprise = 1\n", 2, "tariff.surprise: unknown entry"),
        ('plan = "x"\n[plans.x]\nbase = "pro"\nweekly = -5\n', 4, "weekly must be a number ≥ 0"),
        ('plan = "x"\n[plans.x]\ndaily = 5\n', 3, "unknown field 'daily'"),
        ('plan = "x"\nbilling = "credits"\n[plans.x]\nprompts_per_cycle = 5\n', 3, "[plans.x] sets no pool"),
        ("renewal_day = 0\n", 1, "renewal_day must be 1–31"),
        ("[api]\ntimeout = 0\n", 2, "api.timeout must be > 0"),
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


# ── billing, tariff and weekly window (issue 10) ─────────────────────────────────────────────────────

AT = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_no_config_assumes_pro_on_credits_and_says_so(tmp_path: Path) -> None:
    cfg = load_config(env={"HOME": str(tmp_path)})
    assert cfg.billing == "credits" and cfg.plan.billing == "credits"
    assert not cfg.plan_explicit and not cfg.billing_explicit and cfg.weekly_reset is None
    assert cfg.plan.pools == (WindowPool("5h", "credits", 12000), WindowPool("weekly", "credits", 60000))
    assert cfg.plan.pool("weekly") == WindowPool("weekly", "credits", 60000) and cfg.plan.pool("monthly-mcp") is None
    assert set(cfg.plans) == {"lite", "pro", "max", "team-standard", "team-premium"}
    assert Config().plan == cfg.plan and Config().billing == "credits"


def test_todays_config_keeps_working(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, 'plan = "max"\nrenewal_day = 3\n'), env={})
    assert cfg.plan_explicit and cfg.plan.name == "max" and cfg.billing == "credits"
    assert cfg.plan.pool("5h") == WindowPool("5h", "credits", 28000)
    assert cfg.plan.prompts_per_cycle == 2400  # the legacy figure, for views that still count prompts


@pytest.mark.parametrize(
    ("billing", "pools"),
    [
        ("legacy-v2", [("5h", "prompts", 400), ("weekly", "prompts", 2000), ("monthly-mcp", "calls", 1000)]),
        ("legacy-v1", [("5h", "prompts", 600), ("monthly-mcp", "calls", 1000)]),
    ],
)
def test_legacy_billing(tmp_path: Path, billing: str, pools: list[tuple[str, str, int]]) -> None:
    cfg = load_config(_write(tmp_path, f'plan = "pro"\nbilling = "{billing}"\n'), env={})
    assert cfg.billing == billing and cfg.billing_explicit
    assert cfg.plan.pools == tuple(WindowPool(*p) for p in pools)
    assert cfg.plan.prompts_per_cycle == pools[0][2] and cfg.plan.searches_per_month == 1000
    assert set(cfg.plans) == {"lite", "pro", "max"}


def test_team_plans_are_credits(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, 'plan = "team-premium"\n'), env={})
    assert cfg.plan.pools == (WindowPool("5h", "credits", 35000), WindowPool("weekly", "credits", 155000))


def test_weekly_reset_as_string_or_toml_datetime(tmp_path: Path) -> None:
    expected = datetime(2026, 11, 3, 1, 0, tzinfo=timezone.utc)
    for value in ('"2026-11-03T09:00:00+08:00"', "2026-11-03T09:00:00+08:00", '"2026-11-03T01:00:00Z"'):
        cfg = load_config(_write(tmp_path, f"weekly_reset = {value}\n"), env={})
        assert cfg.weekly_reset == expected and cfg.weekly_reset.tzinfo == timezone.utc
    env = {"ZAI_DASH_WEEKLY_RESET": "2026-11-03T01:00:00+00:00", "ZAI_DASH_BILLING": "legacy-v2"}
    cfg = load_config(_write(tmp_path, ""), env=env)
    assert cfg.weekly_reset == expected and cfg.billing == "legacy-v2"


def test_config_overrides_a_multiplier_and_a_pool(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        'plan = "pro"\nvision_credits = 0.8\ndefault_model = "glm-5.3-flash"\n'
        "[plans.pro]\nweekly = 65000\n"
        '[tariff.rates."glm-5.3"]\noutput = 30\n'
        '[tariff.rates."glm-5.4"."2026-12-20"]\ninput = 12\n',
    )
    cfg = load_config(p, env={}, now=AT)
    assert cfg.plan.pools == (WindowPool("5h", "credits", 12000), WindowPool("weekly", "credits", 65000))
    assert cfg.tariff.rates("glm-5.3", AT) == Rates(6.9, 1.7, 30)
    assert cfg.tariff.rates("glm-5.4", AT) == Rates(10.35, 2.55, 36)
    assert cfg.tariff.rates("glm-5.4", datetime(2026, 12, 21, tzinfo=timezone.utc)) == Rates(12, 2.55, 36)
    assert cfg.tariff.mcp_credits(McpService.VISION, datetime(2026, 11, 27, 7, tzinfo=timezone.utc)) == 0.8
    assert cfg.tariff.billed_model("mystery", AT).billed == "glm-5.3-flash"
    assert cfg.fingerprint() != load_config(_write(tmp_path, 'plan = "pro"\n'), env={}).fingerprint()


def test_custom_plan_on_credits_from_a_base(tmp_path: Path) -> None:
    p = _write(tmp_path, 'plan = "solo"\n[plans.solo]\nbase = "pro"\n5h = 5000\n')
    cfg = load_config(p, env={})
    assert cfg.plan.name == "solo" and cfg.billing == "credits"
    assert cfg.plan.pools == (WindowPool("5h", "credits", 5000), WindowPool("weekly", "credits", 60000))
    assert "solo" in cfg.plans and cfg.tariff.pools("credits", "solo", AT) == cfg.plan.pools


def test_custom_prompt_plan_without_billing_stays_legacy(tmp_path: Path) -> None:
    # Written before the credits plans: prompts per cycle, searches per month. It keeps meaning that.
    p = _write(tmp_path, 'plan = "tiny"\n[plans.tiny]\nprompts_per_cycle = 4\nsearches_per_month = 10\n')
    cfg = load_config(p, env={})
    assert cfg.billing == "legacy-v1" and not cfg.billing_explicit
    assert cfg.plan.pools == (WindowPool("5h", "prompts", 4), WindowPool("monthly-mcp", "calls", 10))


def test_explicit_zero_is_kept_where_zero_is_legal(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        'plan = "pro"\nbilling = "legacy-v2"\nvision_credits = 0\n[plans.pro]\nmonthly-mcp = 0\n'
        "[api]\ndrift_margin = 0\n",
    )
    cfg = load_config(p, env={})
    assert cfg.plan.pool("monthly-mcp") == WindowPool("monthly-mcp", "calls", 0)
    assert cfg.tariff.mcp_credits(McpService.VISION, AT) == 0.0
    assert cfg.api.drift_margin == 0.0


def test_the_readme_config_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```\n", section.index("```toml") + 7)]
    cfg = load_config(_write(tmp_path, example), env={}, known_tools=registered_tool_ids)
    assert cfg.plan_explicit and cfg.billing == "credits" and cfg.weekly_reset is not None
    assert cfg.plan.pool("weekly") == WindowPool("weekly", "credits", 65000)
    assert cfg.plans["solo"].pool("5h") == WindowPool("5h", "credits", 5000)
