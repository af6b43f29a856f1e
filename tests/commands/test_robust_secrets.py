"""Secrets (issue 15 §5): no run of 8+ characters of the key survives, however it is echoed or cut."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.cli import run_cli
from tests.support.http import FAKE_KEY, LoopbackServer, Reply, fixed
from tests.support.zai_quota import _source
from zai_dash.redact import MIN_FRAGMENT, scrub

pytestmark = pytest.mark.timeout(60)


def leaks(text: str, secret: str = FAKE_KEY) -> list[str]:
    """Every run of `MIN_FRAGMENT` characters of `secret` (or its encodings) found in `text`."""
    forms = [secret, quote(secret, safe="")]
    raw = secret.encode()
    forms += [base64.b64encode(raw[i:]).decode()[:-4] for i in range(3)]
    found = []
    for form in forms:
        found += [
            form[i : i + MIN_FRAGMENT]
            for i in range(len(form) - MIN_FRAGMENT + 1)
            if form[i : i + MIN_FRAGMENT] in text
        ]
    return found


@pytest.mark.parametrize(
    "text",
    [
        f"invalid key {FAKE_KEY}",
        f"invalid key {FAKE_KEY[:45]}",  # cut short by the server
        f"{'x' * 100}{FAKE_KEY}{'y' * 20}"[:120],  # cut by a length limit mid-key
        f"key={FAKE_KEY[7:30]}; retry",  # a piece from the middle
        f"token={quote(FAKE_KEY, safe='')}",
        f"basic {base64.b64encode(f'user:{FAKE_KEY}'.encode()).decode()}",
        f"{base64.b64encode(FAKE_KEY.encode()).decode()}",
        f"{base64.urlsafe_b64encode(('ab' + FAKE_KEY).encode()).decode()}",
    ],
)
def test_no_fragment_of_the_key_survives_scrub(text: str) -> None:
    out = scrub(text, [FAKE_KEY])
    assert leaks(out) == [], out


def test_scrub_keeps_ordinary_text_and_the_hint() -> None:
    assert scrub(f"bad key {FAKE_KEY} (tried intl)", [FAKE_KEY]) == f"bad key …{FAKE_KEY[-4:]} (tried intl)"
    assert scrub("nothing secret here, quota 1234", [FAKE_KEY]) == "nothing secret here, quota 1234"


def test_url_passwords_are_masked_in_any_text() -> None:
    out = scrub("cannot reach proxy http://alice:hunter2secret@proxy.local:3128 (refused)")
    assert "hunter2" not in out and "proxy.local:3128" in out


async def test_an_endpoint_echoing_the_key_after_a_long_prefix(home: Path) -> None:
    """The server echoes the key after 100 characters: the message is masked before it is cut to 120."""
    body = {"code": 1001, "msg": "x" * 100 + f" invalid api key {FAKE_KEY}", "success": False}
    with LoopbackServer(fixed(Reply(status=401, body=body))) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert not attempt.ok
    shown = [attempt.message, src.health().detail, *src.doctor_lines()]
    for text in shown:
        assert leaks(text) == [], text


def test_doctor_never_prints_a_proxy_password(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[proxy]]\nname = "litellm"\nurl = "http://admin:s3cr3t-passw0rd@127.0.0.1:9/metrics?token=abc12345"\n'
    )
    out = run_cli(home, "doctor", config=config)
    assert out.returncode in (0, 1), out.stderr
    assert "s3cr3t" not in out.stdout + out.stderr
    assert "abc12345" not in out.stdout + out.stderr
    assert "127.0.0.1:9/metrics" in out.stdout


def test_report_json_and_state_never_hold_the_key(home: Path, tmp_path: Path) -> None:
    """End to end: a quota endpoint echoing the key, `report --json` printed; no fragment anywhere."""
    body = {"code": 1001, "msg": "y" * 90 + f" bad key {FAKE_KEY}", "success": False}
    with LoopbackServer(fixed(Reply(status=401, body=body))) as server:
        config = tmp_path / "config.toml"
        config.write_text(f'[api]\nenabled = true\nbase_url = "{server.base}"\ntimeout = 5\n')
        out = run_cli(home, "report", "--json", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
    assert out.returncode == 0, out.stderr
    json.loads(out.stdout)
    assert leaks(out.stdout + out.stderr) == []
    for path in (home / ".cache").rglob("*"):
        if path.is_file():
            assert leaks(path.read_text(errors="replace")) == [], path
