"""`status` never waits; `report`/`doctor` bound each endpoint by a total deadline; bodies capped (issue 15 §6).

Endpoints are real servers on 127.0.0.1: refused, slow (answers after 10 s), trickling (one byte every
0.2 s, so no single read ever times out) and oversized. `status` never polls: what shows it is that the
servers see no connection from it, not how long it took. Waits here are hang guards, not timings: the
figures are in `bench/RESULTS.md`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.support.cli import run_cli, write_known_fixture
from tests.support.http import FAKE_KEY, LoopbackServer, Reply, TricklingServer, fixed, refused_port
from tests.support.official import _five_hour
from tests.support.zai_quota import _source
from zai_dash import official_memory

pytestmark = [pytest.mark.timeout(90), pytest.mark.wall_clock]


@dataclass
class BadEndpoint:
    """A bad server's base URL and how many connections reached it (None: refused, nothing to count)."""

    base: str
    connections: Callable[[], int | None]


@pytest.fixture(params=["dead", "slow", "trickling"])
def bad_endpoint(request: pytest.FixtureRequest) -> Iterator[BadEndpoint]:
    if request.param == "dead":
        yield BadEndpoint(f"http://127.0.0.1:{refused_port()}", lambda: None)
    elif request.param == "slow":
        with LoopbackServer(fixed(Reply(200, _five_hour(42), delay=10))) as server:
            yield BadEndpoint(server.base, lambda: len(server.requests))
    else:
        with TricklingServer() as trickle:
            yield BadEndpoint(trickle.base, lambda: trickle.accepted)


def unglyphed(line: str) -> str:
    """The status line without its level glyph (`GLM✓ 42% …` → `GLM 42% …`)."""
    return re.sub(r"^GLM[✓!‼✗+X]+", "GLM", line)


def config_for(tmp_path: Path, base: str, timeout: float = 10) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[api]\nenabled = true\nbase_url = "{base}"\ntimeout = {timeout}\n')
    return path


def every_endpoint_at(tmp_path: Path, base: str) -> Path:
    """`[api]`, a `[[proxy]]` and `[fleet]`, all at `base`: everything `status` could poll."""
    path = config_for(tmp_path, base)
    with path.open("a") as fh:
        fh.write(f'\n[[proxy]]\nname = "litellm"\nurl = "{base}/metrics"\n\n[fleet]\nprometheus = "{base}"\n')
    return path


def save_reading(home: Path, base: str, age: timedelta, percent: int = 42) -> Path:
    """An official reading `age` old, as another zai-dash process (dashboard, `report`) saves it."""
    path = official_memory.memory_path({"XDG_CACHE_HOME": str(home / ".cache")})
    fetched = datetime.now(timezone.utc) - age
    official_memory.save(path, official_memory.identity(FAKE_KEY, base), _five_hour(percent)["data"], fetched)
    return path


def wait_for(condition: Callable[[], bool]) -> None:
    """Wait for another process's work (no timing: the test's timeout is the hang guard)."""
    while not condition():
        time.sleep(0.05)


@pytest.mark.timeout(30)  # a status that waited on the slow (10 s) or trickling endpoint would fail here, not stall
def test_status_shows_the_saved_reading_and_touches_no_endpoint(
    home: Path, tmp_path: Path, bad_endpoint: BadEndpoint
) -> None:
    """A reading saved 2 minutes ago, every endpoint (quota, proxy, fleet) dead, slow or trickling.

    `status` answers from the reading, with its age, and no connection of its reaches any endpoint: it
    does not start a background refresh either (the reading is fresh), so the saved file is untouched.
    """
    write_known_fixture(home)
    config = every_endpoint_at(tmp_path, bad_endpoint.base)
    path = save_reading(home, bad_endpoint.base, timedelta(minutes=2))
    saved = path.read_bytes()
    out = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
    assert out.returncode == 0, out.stderr
    assert unglyphed(out.stdout).startswith("GLM 42% (2m old) "), out.stdout
    assert bad_endpoint.connections() in (None, 0)
    assert path.read_bytes() == saved
    other = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY + "x"})
    assert not unglyphed(other.stdout).startswith("GLM 42%")  # another key: not this account's figure


@pytest.mark.timeout(30)
def test_status_without_a_bad_endpoints_reading_answers_from_the_logs(
    home: Path, tmp_path: Path, bad_endpoint: BadEndpoint
) -> None:
    """No reading saved yet and a bad endpoint: the local line at once (the refresh runs detached)."""
    write_known_fixture(home)
    out = run_cli(home, "status", config=config_for(tmp_path, bad_endpoint.base), extra_env={"ZAI_API_KEY": FAKE_KEY})
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("GLM") and not unglyphed(out.stdout).startswith("GLM 42%"), out.stdout


def test_report_saves_the_reading_status_then_uses(home: Path, tmp_path: Path) -> None:
    write_known_fixture(home)
    with LoopbackServer(fixed(Reply(200, _five_hour(37)))) as server:
        config = config_for(tmp_path, server.base)
        assert run_cli(home, "report", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY}).returncode == 0
    saved = json.loads((home / ".cache" / "zai-dash" / "official-v1.json").read_text())
    assert FAKE_KEY not in json.dumps(saved)
    # The server is gone; status answers from the saved reading (fresh: no age shown).
    out = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
    assert unglyphed(out.stdout).startswith("GLM 37% "), out.stdout


def test_report_bounds_a_trickling_endpoint_by_a_total_deadline(home: Path, tmp_path: Path) -> None:
    """httpx's timeout is per read; the trickle never trips it. The total deadline (1 s + slack) does."""
    write_known_fixture(home)
    with TricklingServer() as server:
        config = config_for(tmp_path, server.base, timeout=1)
        started = time.monotonic()
        out = run_cli(home, "report", "--json", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
        took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    quota = next(s for s in doc["sources"] if s["name"] == "zai-quota")
    assert quota["status"] != "ok" and "within" in quota["detail"]
    assert took < 20  # hang guard (it used to take 61–67 s)


async def test_an_oversized_body_is_refused(home: Path) -> None:
    huge = b'{"code":200,"data":{"limits":[]},"pad":"' + b"x" * (5 * 1024 * 1024) + b'"}'
    with LoopbackServer(fixed(Reply(200, huge))) as server:
        src = _source(home, server.base)
        attempt = await src.refresh()
    assert not attempt.ok
    assert src.reading is None


@pytest.mark.timeout(60)
def test_a_stale_reading_is_refreshed_in_the_background(home: Path, tmp_path: Path) -> None:
    """`status` shows the old reading (local figures: it is stale) and leaves a detached child to poll.

    The next `status` shows what the child saved. The line of the first one never waits for it: it was
    built from what was on disk when it started.
    """
    write_known_fixture(home)
    with LoopbackServer(fixed(Reply(200, _five_hour(37)))) as server:
        config = config_for(tmp_path, server.base)
        path = save_reading(home, server.base, timedelta(hours=1), percent=42)
        first = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
        assert not unglyphed(first.stdout).startswith(("GLM 37%", "GLM 42%")), first.stdout  # stale: local
        wait_for(lambda: _saved_percent(path) == 37)  # the background refresh landed
        second = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
    assert unglyphed(second.stdout).startswith("GLM 37% "), second.stdout
    assert len(server.requests) == 1
    assert FAKE_KEY not in path.read_text()


def _saved_percent(path: Path) -> object:
    try:
        return json.loads(path.read_text())["data"]["limits"][0]["percentage"]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


@pytest.mark.timeout(60)
def test_status_starts_one_refresh_per_interval(home: Path, tmp_path: Path) -> None:
    """A slow endpoint: the first `status` starts one refresh, abandoned at its deadline (1 s here); the
    calls after it, within the interval, start none."""
    write_known_fixture(home)
    arrivals: list[float] = []

    def slow(_headers: dict[str, str]) -> Reply:
        arrivals.append(time.time())
        return Reply(200, _five_hour(42), delay=10)

    with LoopbackServer(slow) as server:
        config = config_for(tmp_path, server.base, timeout=1)
        memory = official_memory.memory_path({"XDG_CACHE_HOME": str(home / ".cache")})
        for _ in range(3):
            run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
        # The child notes its abandoned poll after the request arrived: then it is done.
        wait_for(lambda: bool(arrivals) and json.loads(memory.read_text())["attempted_at"] > arrivals[0])
        assert len(arrivals) == 1
    who = official_memory.identity(FAKE_KEY, server.base)
    assert official_memory.load(memory, who, datetime.now(timezone.utc)) is None  # nothing good was saved


def test_a_refresh_is_due_only_without_a_fresh_reading_or_a_recent_attempt(home: Path) -> None:
    base = f"http://127.0.0.1:{refused_port()}"
    quota = _source(home, base)
    env = {"XDG_CACHE_HOME": str(home / ".cache")}
    now = datetime.now(timezone.utc)
    assert official_memory.refresh_due(quota, env, now)
    path, who = official_memory.locate(quota, env)
    official_memory.note_attempt(path, who, now - timedelta(seconds=quota.poller.interval / 2))
    assert not official_memory.refresh_due(quota, env, now)  # tried within the interval
    assert official_memory.refresh_due(quota, env, now + timedelta(seconds=quota.poller.interval))
    official_memory.save(path, who, _five_hour(42)["data"], now)
    saved = official_memory.load(path, who, now)
    assert saved is not None and quota.adopt(*saved)
    assert not official_memory.refresh_due(quota, env, now + timedelta(seconds=quota.poller.interval))  # fresh
    keyless = _source(home, base, env={})
    assert not official_memory.refresh_due(keyless, env, now + timedelta(days=1))  # nothing to poll with
