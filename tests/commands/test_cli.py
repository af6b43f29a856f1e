"""The CLI end to end over real Claude Code files in a temp HOME: report, status, doctor."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import AT, SESSION, publish_running_dashboard, run_cli, write_known_fixture


def test_report_json_known_answer(home: Path) -> None:
    write_known_fixture(home)
    out = run_cli(home, "report", "--json", "--at", AT)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["schema"] == 2
    assert doc["at"] == "2026-11-26T10:00:00+00:00"
    assert doc["cycle"]["start"] == "2026-11-26T08:13:27+00:00"
    assert doc["cycle"]["end"] == "2026-11-26T13:13:27+00:00"
    assert doc["cycle"]["anchor"] == "local"
    assert doc["prompts"]["used"] == 2
    assert doc["prompts"]["calls"] == 5  # m1..m5; m1's two streamed lines are one call
    assert doc["prompts"]["calls_subagent"] == 1
    assert doc["prompts"]["equivalents"] == 2 + 1  # max(2, ceil(5/15)) + one vision call
    assert doc["prompts"]["left"] == 600 - 3
    assert doc["searches"]["cycle"] == 2
    assert doc["searches"]["month"] == 3
    assert doc["searches"]["by_service"] == {"search": 1, "reader": 1, "zread": 1, "vision": 1}
    cc = next(t for t in doc["tools"] if t["tool"] == "claude-code")
    assert cc["found"] is True
    assert cc["model"] == "glm-4.5-air" and cc["model_source"] == "log"
    assert cc["prompts"] == 2 and cc["calls"] == 5 and cc["searches"] == 2
    assert cc["last_activity"] == "2026-11-26T08:50:00+00:00"
    assert all(not t["found"] for t in doc["tools"] if t["tool"] != "claude-code")
    assert "sk-secret" not in out.stdout


def test_report_human_table(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    out = run_cli(home, "report", "--at", AT)
    assert out.returncode == 0, out.stderr
    assert "Claude Code" in out.stdout and "glm-4.5-air" in out.stdout
    assert "08:13–13:13" in out.stdout
    lines = out.stdout.splitlines()
    five = next(line for line in lines if line.startswith("▶5h"))  # the binding window leads
    assert "/12k credits" in five and "(first-request, local)" in five and "estimated" in five
    weekly = next(line for line in lines if line.startswith(" weekly"))
    assert "last 7 days (reset time unknown: set weekly_reset)" in weekly and "(unknown, local)" in weekly
    legacy = tmp_path / "legacy.toml"
    legacy.write_text('billing = "legacy-v1"\n')
    text = run_cli(home, "report", "--at", AT, config=legacy).stdout
    assert "4/600 prompts" in text and "596 left" in text and "monthly-mcp 3/1000 calls" in text


def test_status_line_and_exit_codes(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    # Legacy V1 counts prompts, each weighted by its model's rate: glm-4.6 and glm-4.5-air bill as
    # GLM-5.3-Flash, 1.2× at peak (08:13–08:50 UTC is 16:13–16:50 in UTC+8, a Thursday):
    # max(ceil(2 × 1.2), ceil(5 × 1.2 / 15)) + one vision call = 4.
    legacy = tmp_path / "legacy.toml"
    legacy.write_text('billing = "legacy-v1"\n')
    ok = run_cli(home, "status", "--at", AT, config=legacy)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "GLM✓ 4/600 ⟳3h13m 🔎3/1000"
    ascii_line = run_cli(home, "status", "--ascii", "--at", AT, config=legacy)
    assert ascii_line.stdout.strip() == "GLM+ 4/600 R3h13m S3/1000"
    custom = run_cli(home, "status", "--at", AT, "--format", "{left} left, reset {reset_at}", config=legacy)
    assert custom.stdout.strip() == "596 left, reset 13:13"

    warn_cfg = tmp_path / "warn.toml"
    warn_cfg.write_text(
        'billing = "legacy-v1"\nplan = "tiny"\n[plans.tiny]\nprompts_per_cycle = 5\nsearches_per_month = 10\n'
    )
    assert run_cli(home, "status", "--at", AT, config=warn_cfg).returncode == 10
    out_cfg = tmp_path / "out.toml"
    out_cfg.write_text(
        'billing = "legacy-v1"\nplan = "tiny"\n[plans.tiny]\nprompts_per_cycle = 4\nsearches_per_month = 10\n'
    )
    assert run_cli(home, "status", "--at", AT, config=out_cfg).returncode == 11

    # The default plan is Pro on credits: the binding 5-hour window in credits, the weekly figure beside it.
    # Five calls billed as GLM-5.3-Flash at peak, each 1,000 uncached and 5,000 cached input tokens:
    # m1 (80 out) (1000 × 2.3 + 5000 × 0.56 + 80 × 8) / 10k = 0.574, m2–m5 (50 out) 0.55 each; then
    # search and zread 1.2 each and the vision estimate 1.5: 0.574 + 2.2 + 3.9 = 6.674 of 12,000.
    credits = run_cli(home, "status", "--at", AT)
    assert credits.returncode == 0, credits.stderr
    assert credits.stdout.strip() == "GLM✓ 6.7/12k cr ⟳3h13m wk 0%"
    fields = run_cli(home, "status", "--at", AT, "--format", "{credits}|{week}|{binding}|{prompts_left}")
    assert fields.stdout.strip() == "6.7|0%|6.7/12k cr|—"  # two prompts: too few for an estimate


def test_status_no_data(home: Path) -> None:
    out = run_cli(home, "status")
    assert out.returncode == 20
    assert out.stdout.startswith("GLM✓ 0/12k cr ⟳idle wk 0%")


def test_status_does_not_import_textual(home: Path) -> None:
    write_known_fixture(home)
    code = (
        "import sys, runpy\nsys.argv=['zai-dash','status','--at','" + AT + "']\n"
        "try:\n    runpy.run_module('zai_dash', run_name='__main__')\nexcept SystemExit: pass\n"
        "assert 'textual' not in sys.modules, 'textual imported'\n"
    )
    env = dict(os.environ, HOME=str(home))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr


def test_broken_config_is_one_line_exit_2(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('plan = "pro"\nrenewal_day = "soon"\n')
    for args in (("report",), ("status",), ("doctor",)):
        out = run_cli(home, *args, config=bad)
        assert out.returncode == 2
        assert out.stderr.strip() == f"zai-dash: {bad}:2: renewal_day must be an integer, got 'soon'"
        assert "Traceback" not in out.stderr


def test_doctor_lists_roots_skips_and_no_secrets(home: Path) -> None:
    write_known_fixture(home)
    log = home / ".claude" / "projects" / "-home-u-proj" / f"{SESSION}.jsonl"
    with open(log, "ab") as fh:
        fh.write(b"{not json\n\xff\xfe\n")
    out = run_cli(home, "doctor")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert str(home / ".claude") in text
    assert "missing" in text and "found" in text
    assert "skipped:" in text and "first at" in text
    assert "coding-plan" in text
    assert "sk-secret" not in text
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("plan", ["lite", "max"])
def test_plan_flag(home: Path, plan: str) -> None:
    write_known_fixture(home)
    doc = json.loads(run_cli(home, "report", "--json", "--at", AT, "--plan", plan).stdout)
    assert doc["plan"]["name"] == plan
    assert doc["prompts"]["limit"] == {"lite": 120, "max": 2400}[plan]


@pytest.mark.wall_clock
def test_status_reads_a_running_dashboards_state_file(home: Path) -> None:
    """No logs at all, but a live dashboard published a snapshot: status answers from it."""
    path = publish_running_dashboard(home)
    for f in (home / ".claude" / "projects").rglob("*.jsonl"):
        f.unlink()
    out = run_cli(home, "status")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("GLM✓ 123/12k cr ⟳1h0")
    # A different plan is a different fingerprint: the file is ignored and the (now empty) logs scanned.
    assert run_cli(home, "status", "--plan", "max").stdout.startswith("GLM✓ 0/28k cr ⟳idle")
    # A dead writer's file is ignored too.
    payload = json.loads(path.read_text())
    payload["pid"] = 2**22 + 12345
    path.write_text(json.dumps(payload))
    assert run_cli(home, "status").stdout.startswith("GLM✓ 0/12k cr ⟳idle")


@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_global_options_work_before_or_after_the_command(home: Path, tmp_path: Path, before: bool) -> None:
    write_known_fixture(home)
    legacy = tmp_path / "legacy.toml"
    legacy.write_text('billing = "legacy-v1"\n')
    options = ["--plan", "max", "--config", str(legacy), "--at", AT]
    args = [*options, "report", "--json"] if before else ["report", "--json", *options]
    doc = json.loads(run_cli(home, *args).stdout)
    assert doc["plan"]["name"] == "max" and doc["at"] == "2026-11-26T10:00:00+00:00"
    assert doc["prompts"]["limit"] == 2400
    status = run_cli(home, *options, "status") if before else run_cli(home, "status", *options)
    assert status.stdout.strip() == "GLM✓ 4/2400 ⟳3h13m 🔎3/4000", status.stdout


def test_at_is_refused_where_the_view_runs_live(home: Path) -> None:
    out = run_cli(home, "export", "--at", AT)
    assert out.returncode == 2
    assert out.stderr.strip() == "zai-dash: --at applies to report, status, doctor; the export runs live"


def test_a_closed_pipe_exits_quietly(home: Path) -> None:
    """`zai-dash report | head -1`: the reader is gone before zai-dash writes; no traceback, exit 141."""
    write_known_fixture(home)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        env = dict(os.environ, HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), ZAI_DASH_TIMEZONE="UTC")
        cmd = [sys.executable, "-m", "zai_dash", "report", "--json", "--at", AT]
        out = subprocess.run(cmd, stdout=write_end, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(write_end)
    assert out.returncode == 141
    assert out.stderr == ""


def test_the_dashboard_without_a_terminal_says_so_and_exits_2(home: Path) -> None:
    out = run_cli(home)  # stdin and stdout are pipes here
    assert out.returncode == 2
    assert out.stdout == ""  # not one escape code
    assert "the dashboard needs a terminal" in out.stderr and "zai-dash serve" in out.stderr


def test_unknown_theme_is_an_error_listing_the_themes(home: Path, tmp_path: Path) -> None:
    out = run_cli(home, "--theme", "solarised")
    assert out.returncode == 2
    assert out.stderr.startswith("zai-dash: --theme: unknown theme 'solarised' (themes: ")
    assert "nord" in out.stderr and "textual-dark" in out.stderr
    # Every command, not only those that start a dashboard: `report` once ran with a theme that does not exist.
    for command in ("report", "status", "doctor", "export", "serve"):
        bad = run_cli(home, "--theme", "nosuch", command)
        assert bad.returncode == 2 and bad.stderr.startswith("zai-dash: --theme: unknown theme 'nosuch'"), command
        assert "nord" in bad.stderr and "zai-ansi" in bad.stderr
    # In the file, FILE:LINE like every config error, for every command (it was refused by the dashboard only).
    cfg = tmp_path / "theme.toml"
    cfg.write_text('plan = "pro"\ntheme = "neon"\n')
    for command in ("report", "serve"):
        from_config = run_cli(home, command, config=cfg)
        assert from_config.returncode == 2, command
        assert from_config.stderr.startswith(f"zai-dash: {cfg}:2: unknown theme 'neon' (themes: "), from_config.stderr
    good = tmp_path / "good.toml"
    good.write_text('theme = "zai-ansi"\n')
    assert run_cli(home, "--theme", "nord", "report", config=good).returncode == 0


def test_status_help_lists_every_field_and_exit_code(home: Path) -> None:
    from zai_dash.commands.status import STATUS_EXITS, STATUS_FIELDS

    text = run_cli(home, "status", "--help").stdout
    for name in STATUS_FIELDS:
        assert "{" + name + "}" in text
    for code, _ in STATUS_EXITS:
        assert re.search(rf"^  {code}\s", text, re.M), code
    write_known_fixture(home)
    every = " ".join("{" + name + "}" for name in STATUS_FIELDS)
    out = run_cli(home, "status", "--at", AT, "--format", every)
    assert out.returncode == 0, out.stderr  # every listed field exists


def test_status_glyph_follows_the_level(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    for limit, glyph, ascii_glyph in ((5, "!", "!"), (4, "✗", "X")):
        cfg = tmp_path / f"tiny{limit}.toml"
        tiny = f"[plans.tiny]\nprompts_per_cycle = {limit}\nsearches_per_month = 10\n"
        cfg.write_text(f'billing = "legacy-v1"\nplan = "tiny"\n{tiny}')
        assert run_cli(home, "status", "--at", AT, "--format", "{glyph}", config=cfg).stdout.strip() == glyph
        plain = run_cli(home, "status", "--at", AT, config=cfg, extra_env={"LANG": "C", "LC_ALL": "C"})
        assert plain.stdout.startswith(f"GLM{ascii_glyph} "), plain.stdout


def test_first_run_note_in_report_and_doctor(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    config_file = home / ".config" / "zai-dash" / "config.toml"
    report = run_cli(home, "report", "--at", AT).stdout.splitlines()
    assert (
        report[1]
        == f"! assuming Pro, credits — press c in the dashboard to choose, or set plan and billing in {config_file}"
    )
    assert "! assuming Pro, credits — press c" in run_cli(home, "doctor").stdout
    chosen = tmp_path / "chosen.toml"
    chosen.write_text('plan = "pro"\nbilling = "credits"\n')
    assert "assuming" not in run_cli(home, "report", "--at", AT, config=chosen).stdout
    assert "assuming" not in run_cli(home, "doctor", config=chosen).stdout


def test_serve_listens_on_loopback_and_passes_the_global_options() -> None:
    from zai_dash.cli import _parser
    from zai_dash.commands.serve import app_command
    from zai_dash.domain.endpoints import is_loopback  # what serve warns by

    args = _parser().parse_args(["--plan", "max", "serve", "--theme", "nord"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)
    command = app_command(args)
    assert "--plan max" in command and "--theme nord" in command and "--no-title" in command
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("devbox")
    assert is_loopback("127.0.0.5") and is_loopback("LOCALHOST")  # all of 127/8; names are case-blind


def test_report_says_ago_as_the_dashboard_does(home: Path) -> None:
    """Hours up to two days, then days (`zai_dash.text.ago`): the tool was last active at 08:50 on the 26th."""
    write_known_fixture(home)
    for at, said in (("2026-11-27T14:50:00+00:00", "30h ago"), ("2026-11-28T08:50:00+00:00", "2d ago")):
        row = run_cli(home, "report", "--at", at).stdout.splitlines()[-1]
        assert row.startswith("Claude Code") and f"  {said} " in row, row


def test_status_exits_30_when_a_source_is_corrupt(home: Path, tmp_path: Path) -> None:
    """A corrupt OpenCode database beside good Claude Code logs: the line still shows, the exit code is 30.

    It once exited 0, as if every source had been read; README's table says 30 for an error.
    """
    write_known_fixture(home)
    db = home / ".local" / "share" / "opencode" / "opencode.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_bytes(b"this is not an SQLite database\n" * 64)
    out = run_cli(home, "status", "--at", AT)
    assert out.returncode == 30, out.stdout + out.stderr
    assert out.stdout.strip() == "GLM✓ 6.7/12k cr ⟳3h13m wk 0%"
    limited = tmp_path / "out.toml"
    limited.write_text(
        'billing = "legacy-v1"\nplan = "tiny"\n[plans.tiny]\nprompts_per_cycle = 4\nsearches_per_month = 10\n'
    )
    assert run_cli(home, "status", "--at", AT, config=limited).returncode == 11  # exhausted is certain
    db.unlink()
    assert run_cli(home, "status", "--at", AT).returncode == 0


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{", "'{' is not a template: a brace without its pair; a brace meant as text is written twice ({{ or }})"),
        ("GLM }", "'GLM }' is not a template: a brace without its pair"),
        ("{binding", "'{binding' is not a template: a brace without its pair"),
        ("{nosuch}", "unknown field {nosuch} (fields: {binding} {calls} {credits} {glyph} "),
        ("{} left", "fields have names, e.g. {binding} or {reset}"),
    ],
)
def test_a_bad_status_template_says_what_is_wrong(home: Path, template: str, message: str) -> None:
    """It once said `unknown field Single '{' encountered in format string` (Python's words, mislabelled)."""
    write_known_fixture(home)
    out = run_cli(home, "status", "--at", AT, "--format", template)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"zai-dash: --format: {message}"), out.stderr
    assert "Single" not in out.stderr and "Traceback" not in out.stderr
    assert run_cli(home, "status", "--at", AT, "--format", "{{{binding}}}").stdout.strip() == "{6.7/12k cr}"


def test_a_replay_reads_later_records_as_records_not_as_future_ones(home: Path) -> None:
    """Sources judge "far in the future" by the wall clock, not by `--at` (docs/architecture.md, One clock).

    Replayed five days before the fixture's 26 Nov records, they are not counted (not yet written then) and
    not skipped either: the skip counts are those of a replay after them.
    """
    write_known_fixture(home)
    early = json.loads(run_cli(home, "report", "--json", "--at", "2026-11-21T12:00:00+00:00").stdout)
    late = json.loads(run_cli(home, "report", "--json", "--at", AT).stdout)
    assert early["skipped"] == late["skipped"]
    assert "timestamp far in the future" not in early["skipped"]["reasons"]
    assert early["prompts"]["used"] == 0 and late["prompts"]["used"] > 0
