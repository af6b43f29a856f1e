"""The tariff: known answers, hand-computed in the comments, against the packaged data (metering.md)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from zai_dash.config import packaged_tariff, packaged_tariff_data
from zai_dash.domain.events import EventKind, McpService, UsageEvent
from zai_dash.domain.tariff import (
    BilledModel,
    Rates,
    Tariff,
    TariffError,
    WindowPool,
    merge_tariff,
    tariff_from_mapping,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def call(ts: str, model: str | None, inp: int, cached: int, out: int, tool: str = "claude-code") -> UsageEvent:
    return UsageEvent(
        EventKind.CALL, utc(ts), tool, f"{tool}:{ts}:{model}", model=model,
        input_tokens=inp, cached_tokens=cached, output_tokens=out, tokens=inp + out,
    )  # fmt: skip


def mcp(ts: str, service: McpService) -> UsageEvent:
    return UsageEvent(EventKind.MCP, utc(ts), "claude-code", f"mcp:{ts}", service=service)


def with_override(override: dict[str, Any]) -> Tariff:
    return tariff_from_mapping(merge_tariff(packaged_tariff_data(), override))


T = packaged_tariff()


# GLM-5.3 (6.9 / 1.7 / 24): 20,000 input of which 15,000 cached, 1,000 output
#   = (5,000 × 6.9 + 15,000 × 1.7 + 1,000 × 24) / 10,000 = (34,500 + 25,500 + 24,000) / 10,000 = 8.4 at peak.
GLM53 = (20_000, 15_000, 1_000)
# GLM-5.3-Flash (2.3 / 0.56 / 8): 10,000 uncached input, 2,000 output = (23,000 + 16,000) / 10,000 = 3.9.
FLASH = (10_000, 0, 2_000)


def test_credits_across_a_peak_boundary_and_a_weekend() -> None:
    # Peak is Mon–Fri 14:00–18:00 UTC+8 = 06:00–10:00 UTC. 2026-11-27 is a Friday, 11-28 a Saturday.
    events = [
        call("2026-11-27T05:59:59", "glm-5.3", *GLM53),  # 13:59 UTC+8: off-peak, 8.4 × 0.5 = 4.2
        call("2026-11-27T06:00:00", "glm-5.3", *GLM53),  # 14:00: peak, 8.4
        call("2026-11-27T09:59:00", "GLM-5.3", *GLM53),  # 17:59: peak, 8.4
        call("2026-11-27T10:00:00", "glm-5.3", *GLM53),  # 18:00: off-peak, 4.2
        call("2026-11-28T07:00:00", "glm-5.3", *GLM53),  # Saturday 15:00: weekends off-peak, 4.2
        call("2026-11-27T07:00:00", "glm-4.7", *FLASH),  # GLM-4.7 is billed as Flash: 3.9 at peak
        mcp("2026-11-27T07:00:00", McpService.SEARCH),  # 1.2, peak or not
        mcp("2026-11-28T07:00:00", McpService.READER),  # 1.2
        mcp("2026-11-27T07:00:00", McpService.VISION),  # the 1.5 estimate at peak
        mcp("2026-11-28T07:00:00", McpService.VISION),  # 0.75 off-peak
        UsageEvent(EventKind.PROMPT, utc("2026-11-27T07:00:00"), "claude-code", "p1"),  # 0: prompts cost nothing
    ]
    credits = [T.call_credits(e) for e in events]
    assert credits == pytest.approx([4.2, 8.4, 8.4, 4.2, 4.2, 3.9, 1.2, 1.2, 1.5, 0.75, 0.0])
    assert sum(credits) == pytest.approx(37.95)  # 33.3 model credits + 2.4 search/reader + 2.25 vision
    assert [T.is_peak(e.ts) for e in events[:5]] == [False, True, True, False, False]
    assert T.mcp_is_estimate(McpService.VISION) and not T.mcp_is_estimate(McpService.SEARCH)


def test_cached_tokens_are_never_priced_twice() -> None:
    # cached_tokens is part of input_tokens; a record claiming more cached than input is clamped to input.
    assert T.call_credits(call("2026-11-27T07:00:00", "glm-5.3", 1_000, 5_000, 0)) == pytest.approx(0.17)


def test_weekends_were_not_special_before_2026_07_30() -> None:
    assert T.is_peak(utc("2026-07-25T07:00:00"))  # Saturday 15:00 UTC+8, the old schedule: peak
    assert not T.is_peak(utc("2026-08-01T07:00:00"))  # a Saturday under the new one
    assert T.is_peak(utc("2026-07-27T06:00:00")) and not T.is_peak(utc("2026-07-27T05:59:00"))


def test_campaign_off_peak_all_day() -> None:
    # 2026-09-25 … 10-07 (days in UTC+8): off-peak price all day. Wednesday 2026-09-30 15:00 UTC+8 is peak otherwise.
    assert T.call_credits(call("2026-09-30T07:00:00", "glm-5.3", *GLM53)) == pytest.approx(4.2)
    assert not T.is_peak(utc("2026-10-07T06:30:00"))  # the last day
    assert T.is_peak(utc("2026-10-08T06:30:00"))  # over
    assert T.call_credits(call("2026-10-08T07:00:00", "glm-5.3", *GLM53)) == pytest.approx(8.4)
    assert T.is_peak(utc("2026-09-24T06:30:00"))  # not yet


def test_campaign_for_zcode_only_by_tool() -> None:
    # 2026-09-03 … 10-07, 23:00–09:00 UTC+8: Flash free through ZCode, half price in other agents.
    night = "2026-09-10T16:00:00"  # Friday 2026-09-11 00:00 UTC+8: off-peak anyway
    assert T.call_credits(call(night, "glm-5.3-flash", *FLASH, tool="zcode")) == 0.0
    # Other agents: 3.9 × 0.5 (off-peak) × 0.5 (doubled quota) = 0.975.
    assert T.call_credits(call(night, "glm-5.3-flash", *FLASH, tool="claude-code")) == pytest.approx(0.975)
    # GLM-4.7 is billed as Flash, so it is free too.
    assert T.call_credits(call(night, "glm-4.7", *FLASH, tool="zcode")) == 0.0
    # Not Flash: the campaign does not apply; 8.4 × 0.5 off-peak.
    assert T.call_credits(call(night, "glm-5.3", *GLM53, tool="zcode")) == pytest.approx(4.2)
    # ZCode at 14:00 UTC+8 on a Friday, outside the campaign hours: Flash at the peak price, 3.9.
    assert T.call_credits(call("2026-09-11T06:00:00", "glm-5.3-flash", *FLASH, tool="zcode")) == pytest.approx(3.9)
    # After the campaign: off-peak only, 1.95.
    assert T.call_credits(call("2026-10-08T16:00:00", "glm-5.3-flash", *FLASH, tool="zcode")) == pytest.approx(1.95)


def test_legacy_v2_day_with_model_rates() -> None:
    # Thursday 2026-11-26. Peak 06:00–10:00 UTC: GLM-5.3 counts 3, off-peak 1; Flash 1.2 / 0.4.
    prompts = [
        ("2026-11-26T06:10:00", "glm-5.3"),  # 3
        ("2026-11-26T07:00:00", "glm-5.3"),  # 3
        ("2026-11-26T09:59:00", "glm-5.2"),  # billed as GLM-5.3: 3
        ("2026-11-26T02:00:00", "glm-5.3"),  # 1
        ("2026-11-26T12:00:00", "glm-5.3"),  # 1
        ("2026-11-26T06:30:00", "glm-5.3-flash"),  # 1.2
        ("2026-11-26T08:00:00", "glm-4.7"),  # billed as Flash: 1.2
        ("2026-11-26T13:00:00", "glm-4.7"),  # 0.4
        ("2026-11-26T07:00:00", "glm-4.6v"),  # no legacy rate: 1
        ("2026-11-26T07:00:00", "GLM-5.4[1m]"),  # 1.5 × GLM-5.3 at peak: 4.5
    ]
    rates = [T.prompt_rate(model, utc(ts)) for ts, model in prompts]
    assert rates == pytest.approx([3, 3, 3, 1, 1, 1.2, 1.2, 0.4, 1, 4.5])
    assert sum(rates) == pytest.approx(19.3)


def test_legacy_rates_before_2026_07_30() -> None:
    assert T.prompt_rate("glm-5.3", utc("2026-07-01T02:00:00")) == 2  # off-peak was 2× then
    assert T.prompt_rate("glm-5.3", utc("2026-07-25T07:00:00")) == 3  # a Saturday at 15:00: still peak
    assert T.prompt_rate("glm-5.3", utc("2026-08-01T07:00:00")) == 1  # a Saturday after: off-peak


def test_routing_and_aliases() -> None:
    at = utc("2026-12-01T00:00:00")
    assert T.billed_model("GLM-5.4[1m]", at) == BilledModel("GLM-5.4[1m]", "glm-5.4", True)
    assert T.billed_model("glm-5.4", at).billed == "glm-5.4"
    assert T.billed_model("GLM-5.2", at).billed == "glm-5.3"
    assert T.billed_model("glm-5.1", at).billed == "glm-5.3"
    assert T.billed_model("glm-4.7", at).billed == "glm-5.3-flash"
    assert T.billed_model("zai/GLM-4.6", at).billed == "glm-5.3-flash"
    assert T.billed_model("glm-4.5-air", at).billed == "glm-5.3-flash"
    assert T.billed_model("kimi-k2", at) == BilledModel("kimi-k2", "glm-5.3", False)
    assert T.billed_model(None, at) == BilledModel(None, "glm-5.3", False)
    assert T.rates("GLM-5.4[1m]", at) == Rates(10.35, 2.55, 36)  # 1.5 × GLM-5.3 [unverified]


def test_default_model_for_unknown_names_is_configurable() -> None:
    tariff = with_override({"default_model": "glm-5.3-flash"})
    assert tariff.billed_model("mystery", utc("2026-12-01T00:00:00")) == BilledModel("mystery", "glm-5.3-flash", False)
    assert tariff.call_credits(call("2026-11-27T07:00:00", "mystery", *FLASH)) == pytest.approx(3.9)


def test_replay_uses_the_rates_valid_then() -> None:
    # In the August 2026 table GLM-4.7 was its own product at 4.6 / 1.2 / 16; later it is billed as Flash.
    assert T.rates("glm-4.7", utc("2026-08-14T07:00:00")) == Rates(4.6, 1.2, 16)
    assert T.rates("glm-4.7", utc("2026-10-01T07:00:00")) == Rates(2.3, 0.56, 8)
    # 10,000 input, 2,000 output at Friday peak: (46,000 + 32,000) / 10,000 = 7.8 then, 3.9 now.
    assert T.call_credits(call("2026-08-14T07:00:00", "glm-4.7", *FLASH)) == pytest.approx(7.8)
    assert T.call_credits(call("2026-11-27T07:00:00", "glm-4.7", *FLASH)) == pytest.approx(3.9)
    # GLM-4.6 was not routed yet in August: unknown, billed at the default and flagged.
    assert not T.billed_model("glm-4.6", utc("2026-08-14T07:00:00")).known


def test_pools_by_generation_and_tier() -> None:
    at = utc("2026-12-01T00:00:00")
    assert T.pools("credits", "pro", at) == (WindowPool("5h", "credits", 12000), WindowPool("weekly", "credits", 60000))
    assert T.pools("credits", "team-premium", at) == (
        WindowPool("5h", "credits", 35000),
        WindowPool("weekly", "credits", 155000),
    )
    assert T.pools("legacy-v2", "max", at) == (
        WindowPool("5h", "prompts", 1600),
        WindowPool("weekly", "prompts", 8000),
        WindowPool("monthly-mcp", "calls", 4000),
    )
    assert T.pools("legacy-v1", "lite", at) == (WindowPool("5h", "prompts", 120), WindowPool("monthly-mcp", "calls", 0))
    assert T.plan_names("credits") == ("lite", "pro", "max", "team-standard", "team-premium")
    assert T.plan_names("legacy-v1") == ("lite", "pro", "max")
    with pytest.raises(KeyError):
        T.pools("legacy-v2", "team-standard", at)
    with pytest.raises(KeyError):
        T.pools("credits-v9", "pro", at)


def test_override_a_multiplier_for_every_version_or_from_a_date() -> None:
    at = utc("2026-12-15T00:00:00")
    assert with_override({"rates": {"glm-5.3": {"output": 30}}}).rates("glm-5.3", at) == Rates(6.9, 1.7, 30)
    dated = with_override({"rates": {"glm-5.3": {"2026-12-10": {"output": 30}}}})
    assert dated.rates("glm-5.3", utc("2026-12-09T12:00:00")) == Rates(6.9, 1.7, 24)  # 20:00 UTC+8 on the 9th
    assert dated.rates("glm-5.3", utc("2026-12-09T16:00:00")) == Rates(6.9, 1.7, 30)  # 00:00 UTC+8 on the 10th


def test_override_a_pool_and_a_peak_schedule() -> None:
    at = utc("2026-12-01T00:00:00")
    tariff = with_override({"billing": {"credits": {"plans": {"pro": {"weekly": 70000}}}}})
    assert tariff.pools("credits", "pro", at)[1] == WindowPool("weekly", "credits", 70000)
    late = with_override({"peak": {"2026-12-01": {"hours": "15:00-19:00"}}})
    assert not late.is_peak(utc("2026-12-02T06:30:00")) and late.is_peak(utc("2026-12-02T10:30:00"))
    assert late.is_peak(utc("2026-11-25T06:30:00"))  # the old hours before the change


def test_entries_mark_unverified_and_show_the_version_in_effect() -> None:
    entries = {(e.section, e.key): e for e in T.entries(utc("2026-12-01T00:00:00"))}
    rates = entries[("rates", "glm-5.4")]
    assert rates.unverified and rates.valid_from == date(2026, 11, 24) and "1.5" in rates.note
    assert entries[("routing", "glm-4.6")].unverified
    assert not entries[("billing.credits.plans.pro", "weekly")].unverified
    assert entries[("billing.credits.plans.pro", "weekly")].value == "60,000 credits"
    assert entries[("tariff", "peak")].value == "Mon–Fri 14:00–18:00 UTC+8"
    assert entries[("mcp", "vision")].unverified
    assert not any(e.section == "campaigns" for e in entries.values())  # the 2026 campaigns are over
    during = {(e.section, e.key) for e in T.entries(utc("2026-09-30T00:00:00"))}
    assert ("campaigns", "off-peak-all-day") in during
    old = {(e.section, e.key): e for e in T.entries(utc("2026-07-01T00:00:00"))}
    assert old[("tariff", "peak")].value == "Mon–Sun 14:00–18:00 UTC+8" and old[("tariff", "peak")].valid_from is None


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"rates": {"glm-5.3": {"2026-12-10": {"input": "x"}}}}, "rates.glm-5.3.2026-12-10.input"),
        ({"rates": {"glm-9": {"input": 1, "output": 2}}}, "rates.glm-9.cached"),
        ({"billing": {"credits": {"plans": {"pro": {"daily": 5}}}}}, "billing.credits.plans.pro.daily"),
        ({"billing": {"credits-v3": {}}}, "billing.credits-v3"),
        ({"peak": {"2026-12-01": {"hours": "25:00-26:00"}}}, "peak.2026-12-01.hours"),
        ({"campaigns": {"x": {"from": "2026-12-01", "until": "2026-11-01"}}}, "campaigns.x.until"),
        ({"campaigns": {"x": {"from": "soon"}}}, "campaigns.x.from"),
        ({"mcp": {"search": -1}}, "mcp.search"),
        ({"mcp": {"telepathy": 1}}, "mcp.telepathy"),
        ({"default_model": "glm-0"}, "default_model"),
        ({"timezone": "Mars"}, "timezone"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_entries_name_the_key(override: dict[str, Any], key: str) -> None:
    with pytest.raises(TariffError) as err:
        with_override(override)
    assert err.value.key == key
    assert str(err.value).startswith(f"tariff.{key}:")


def test_explicit_zero_is_kept() -> None:
    free = with_override({"mcp": {"vision": 0}, "off_peak_factor": 0})
    assert free.mcp_credits(McpService.VISION, utc("2026-11-27T07:00:00")) == 0.0
    assert free.call_credits(call("2026-11-28T07:00:00", "glm-5.3", *GLM53)) == 0.0  # weekend, free off-peak
    assert free.call_credits(call("2026-11-27T07:00:00", "glm-5.3", *GLM53)) == pytest.approx(8.4)


def test_doctor_prints_the_tariff_in_effect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zai_dash.cli import main

    assert main(["doctor", "--config", str(tmp_path / "none.toml")]) != 0  # a named file must exist
    capsys.readouterr()
    config = tmp_path / "config.toml"
    config.write_text(
        'timezone = "UTC"\nplan = "max"\nbilling = "legacy-v2"\nweekly_reset = 2026-11-03T09:00:00+08:00\n'
    )
    assert main(["doctor", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "plan          max, legacy-v2 billing: 5h 1,600 prompts · weekly 8,000 prompts" in out
    assert "weekly reset  Tue 2026-11-03 01:00 +0000, every 7 days" in out
    pools = [line for line in out.splitlines() if line.startswith("  pools ")]
    assert [line.split()[1] for line in pools] == ["5h", "weekly", "monthly-mcp"]
    assert all(line.endswith("[unverified]") for line in pools)  # the page gives them as approximate
    assert "the page gives the prompt pools as approximate" in out
    assert "prompt_rates   glm-5.3         3× peak, 1× off-peak  from 2026-07-30  [unverified]" in out
    assert "  rates " not in out  # credit prices do not meter a legacy plan

    config.write_text("")
    assert main(["doctor", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "pro, credits billing (assumed: no plan in config)" in out
    assert "weekly reset  unknown" in out
    assert "rates          glm-5.4         input 10.35 · cached 2.55 · output 36" in out


def test_plan_names_are_case_insensitive_like_the_config() -> None:
    tariff = with_override({"billing": {"credits": {"plans": {"Solo": {"5h": 100}}}}})
    assert tariff.pools("credits", "solo", utc("2026-12-01T00:00:00")) == (WindowPool("5h", "credits", 100),)
