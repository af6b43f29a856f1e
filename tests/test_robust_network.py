"""`status` never waits; `report`/`doctor` bound each endpoint by a total deadline; bodies capped (issue 15 §6).

Endpoints are real servers on 127.0.0.1: refused, slow (answers after 10 s), trickling (one byte every
0.2 s, so no single read ever times out) and oversized. Waits here are hang guards, not timings: the
figures are in `bench/RESULTS.md`.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.http_fixtures import FAKE_KEY, LoopbackServer, Reply, fixed, refused_port
from tests.test_cli import run_cli, write_known_fixture
from tests.test_official_wiring import _five_hour
from tests.test_zai_quota import _source
from zai_dash import official_memory

pytestmark = [pytest.mark.timeout(90), pytest.mark.wall_clock]


class TricklingServer:
    """Sends a valid status line and headers, then the body one byte at a time, forever."""

    def __init__(self, gap: float = 0.2) -> None:
        self.gap = gap
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
            while not self._stop.is_set():
                conn.sendall(b" ")
                time.sleep(self.gap)
        except OSError:
            pass
        finally:
            conn.close()

    def __enter__(self) -> TricklingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@pytest.fixture(params=["dead", "slow", "trickling"])
def bad_endpoint(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "dead":
        yield f"http://127.0.0.1:{refused_port()}"
    elif request.param == "slow":
        with LoopbackServer(fixed(Reply(200, _five_hour(42), delay=10))) as server:
            yield server.base
    else:
        with TricklingServer() as server:
            yield server.base


def unglyphed(line: str) -> str:
    """The status line without its level glyph (`GLM✓ 42% …` → `GLM 42% …`)."""
    return re.sub(r"^GLM[✓!‼✗+X]+", "GLM", line)


def config_for(tmp_path: Path, base: str, timeout: float = 10) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[api]\nenabled = true\nbase_url = "{base}"\ntimeout = {timeout}\n')
    return path


def test_status_does_not_wait_for_a_bad_endpoint(home: Path, tmp_path: Path, bad_endpoint: str) -> None:
    write_known_fixture(home)
    config = config_for(tmp_path, bad_endpoint)
    started = time.monotonic()
    out = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
    took = time.monotonic() - started
    assert out.returncode in (0, 3), out.stderr
    assert out.stdout.startswith("GLM")
    assert took < 9, "status waited for the endpoint"  # hang guard: the slow endpoint answers after 10 s


def test_status_shows_the_saved_official_figure_and_its_age(home: Path, tmp_path: Path) -> None:
    """A reading saved 2 minutes ago by another zai-dash process, the endpoint dead now: shown, aged."""
    write_known_fixture(home)
    base = f"http://127.0.0.1:{refused_port()}"
    config = config_for(tmp_path, base)
    path = official_memory.memory_path({"XDG_CACHE_HOME": str(home / ".cache")})
    fetched = datetime.now(timezone.utc) - timedelta(minutes=2)
    official_memory.save(path, official_memory.identity(FAKE_KEY, base), _five_hour(42)["data"], fetched)
    out = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
    assert unglyphed(out.stdout).startswith("GLM 42% "), out.stdout
    assert "(2m old)" in out.stdout
    other = run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY + "x"})
    assert not unglyphed(other.stdout).startswith("GLM 42%")  # another key: not this account's figure


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


def test_status_leaves_a_failing_endpoint_alone_for_an_interval(home: Path, tmp_path: Path) -> None:
    """An abandoned (slow) poll is remembered: the next `status` calls do not try again within the interval."""
    write_known_fixture(home)
    with LoopbackServer(fixed(Reply(200, _five_hour(42), delay=10))) as server:
        config = config_for(tmp_path, server.base)
        for _ in range(3):
            run_cli(home, "status", config=config, extra_env={"ZAI_API_KEY": FAKE_KEY})
        assert len(server.requests) == 1
