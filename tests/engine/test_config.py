"""Config file, overrides and errors."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.paths import REPO
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
        ('plan = "x"\n[plans.x]\nbase = "pro"\nweekly = -5\n', 4, "plans.x.weekly must be ≥ 0, got -5"),
        ('plan = "x"\n[plans.x]\ndaily = 5\n', 3, "unknown setting 'daily' in [plans.x]"),
        ('plan = "x"\nbilling = "credits"\n[plans.x]\nprompts_per_cycle = 5\n', 3, "[plans.x] sets no pool"),
        ("renewal_day = 0\n", 1, "renewal_day must be 1–31"),
        ("[api]\ntimeout = 0\n", 2, "api.timeout must be > 0"),
        # Unknown keys at any depth (issue 13): the table's key, its line, and the likely intended name.
        ("[api]\nenable = true\n", 2, "unknown setting 'enable' in [api]: did you mean 'enabled'?"),
        ("bell = true\n\n[thresholds]\nwarning = 70\nwarnign = 80\n", 5, "unknown setting 'warnign' in [thresholds]"),
        ('[tools.claude-code]\nroot = ["/srv"]\n', 2, "unknown setting 'root' in [tools.claude-code]"),
        (
            '[tools.goose]\nenabled = false\n[tools.claude-code]\nroots = "/srv"\n',
            4,
            "tools.claude-code.roots must be a list",
        ),
        (
            '[[proxy]]\nurl = "http://a/metrics"\n[[proxy]]\nurl = "http://b/metrics"\nintervall = 5\n',
            5,
            "unknown setting 'intervall' in [[proxy]] #2: did you mean 'interval'?",
        ),
        ('[[proxy]]\nurl = "http://a/metrics"\n[[proxy]]\nname = "b"\n', 3, "[[proxy]] #2 needs url"),
        (
            '[[proxy]]\nurl = "http://a/metrics"\nheaders = { Authorization = 1 }\n',
            3,
            "proxy#1.headers.Authorization must be a string, got 1",
        ),
        ('api = { enabled = true, regoin = "cn" }\n', 1, "unknown setting 'regoin' in [api]"),
        ('[api]\nregion = "eu"\n', 2, "api.region must be one of auto, intl, cn, got 'eu'"),
        ('[api]\nkey_env = ""\n', 2, "api.key_env must be a non-empty string"),
        ("[fleet]\nprometheus = 'http://p:9090'\ntimeout = 0\n", 3, "fleet.timeout must be > 0, got 0"),
        ("[thresholds]\ncritical = 0\n", 2, "thresholds.critical must be in (0, 100], got 0"),
        ("[otlp]\nlisten = 4318\n", 2, "otlp.listen must be a string, got 4318"),
        ("[limits]\ncycle_hours = 0\n", 2, "limits.cycle_hours must be > 0, got 0"),
        ("api = 3\n", 1, "api must be a table, got 3"),
        ("bell = 1\n", 1, "bell must be true or false, got 1"),
        ('\nplan = ""\n', 2, "plan must be a non-empty string, got ''"),
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


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    p = _write(tmp_path, "renewal_day = 3\n")
    for value, needle in (("0", "renewal_day must be 1–31, got 0"), ("x", "renewal_day must be an integer, got 'x'")):
        with pytest.raises(ConfigError) as err:
            load_config(p, env={"ZAI_DASH_RENEWAL_DAY": value})
        assert str(err.value) == f"$ZAI_DASH_RENEWAL_DAY: {needle}"
    with pytest.raises(ConfigError, match=r"^\$ZAI_DASH_TIMEZONE: unknown timezone"):
        load_config(env={"HOME": str(tmp_path), "ZAI_DASH_TIMEZONE": "Mars/Olympus"})


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


def test_explicit_zero_is_never_the_default(tmp_path: Path) -> None:
    # B4: `x or default` turned these zeros into 15, 60, 30. A zero interval is raised to the poll floor
    # (documented), which is not the default.
    p = _write(
        tmp_path,
        '[api]\ndrift_margin = 0\ninterval = 0\n[[proxy]]\nurl = "http://127.0.0.1:1/metrics"\ninterval = 0\n',
    )
    cfg = load_config(p, env={})
    assert (cfg.api.drift_margin, cfg.api.interval, cfg.proxies[0].interval) == (0.0, 30.0, 5.0)
    defaults = load_config(_write(tmp_path, "[api]\n[[proxy]]\nurl = 'http://x/'\n"), env={})
    assert (defaults.api.drift_margin, defaults.api.interval, defaults.proxies[0].interval) == (15.0, 60.0, 30.0)


def test_proxy_tables_become_the_sources_settings(tmp_path: Path) -> None:
    from zai_dash.sources.prometheus import ProxySettings
    from zai_dash.sources.zai_quota import QuotaSettings

    p = _write(
        tmp_path,
        "[api]\nenabled = true\nstale_after = 90\n"
        '[[proxy]]\nurl = "http://a/metrics"\ngroup_by = "requested_model"\ntimeout = 3\n'
        '[[proxy]]\nname = "mapped"\nurl = "http://b/metrics"\n[proxy.metrics.calls]\nsamples = "x_total"\n',
    )
    cfg = load_config(p, env={})
    assert isinstance(cfg.api, QuotaSettings) and cfg.api.stale_after == 90
    first, mapped = cfg.proxies
    assert isinstance(first, ProxySettings)
    assert (first.name, first.preset, first.group_by, first.timeout) == ("proxy1", "litellm", "requested_model", 3)
    assert (mapped.name, mapped.preset, mapped.metric_map) == ("mapped", None, {"calls": {"samples": "x_total"}})


def test_the_shipped_schema_is_the_generated_one() -> None:
    import json

    from zai_dash.config import SCHEMA_PATH, schema_text

    shipped = SCHEMA_PATH.read_text(encoding="utf-8")
    assert shipped == schema_text(), "regenerate: python -m zai_dash.config > zai_dash/data/config.schema.json"
    schema = json.loads(shipped)
    assert schema["additionalProperties"] is False
    api = schema["definitions"]["ApiSettings"]
    assert api["additionalProperties"] is False and api["properties"]["timeout"]["exclusiveMinimum"] == 0
    assert set(schema["properties"]) >= {"plan", "api", "proxy", "tools", "tariff", "thresholds", "fleet", "otlp"}
    assert "5h" in schema["definitions"]["PlanTable"]["properties"]
    assert schema["definitions"]["ProxyEndpoint"]["required"] == ["url"]


def test_no_config_file_never_imports_msgspec(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from zai_dash.config import load_config; "
        f"load_config(env={{'HOME': {str(tmp_path)!r}, 'ZAI_DASH_RENEWAL_DAY': '3'}}); "
        "print('msgspec' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_readme_config_example_loads(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Configuration") :]
    example = section[section.index("```toml") + len("```toml") : section.index("```\n", section.index("```toml") + 7)]
    cfg = load_config(_write(tmp_path, example), env={}, known_tools=registered_tool_ids)
    assert cfg.plan_explicit and cfg.billing == "credits" and cfg.weekly_reset is not None
    assert cfg.plan.pool("weekly") == WindowPool("weekly", "credits", 65000)
    assert cfg.plans["solo"].pool("5h") == WindowPool("5h", "credits", 5000)


def test_the_theme_list_is_textuals_and_the_palettes() -> None:
    """`config.THEMES` is written out (importing textual.theme costs `status` 0.2 s): it must be what the app offers."""
    from textual.theme import BUILTIN_THEMES

    from zai_dash.config import THEMES
    from zai_dash.ui.palette import ANSI_THEME

    assert sorted(THEMES) == list(THEMES)
    assert set(THEMES) == set(BUILTIN_THEMES) | {ANSI_THEME.name}


def test_an_unknown_theme_in_the_file_is_an_error_with_its_line(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('plan = "max"\n\ntheme = "neon"\n')
    with pytest.raises(ConfigError, match=rf"^{cfg}:3: unknown theme 'neon' \(themes: ansi-dark, .*nord"):
        load_config(cfg)
    cfg.write_text('theme = "nord"\n')
    assert load_config(cfg).theme == "nord"
