"""Steady under load (issue 15 §7): the exporter's pool is bounded, idle and slowloris clients are reaped."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from zai_dash import exporter as exporter_module
from zai_dash.domain.events import McpService
from zai_dash.exporter import Exporter
from zai_dash.sources.base import Skips
from zai_dash.sources.tools.claude_code_config import McpConfig

pytestmark = pytest.mark.timeout(60)


def wait_for(condition: object, limit: float = 20.0) -> bool:
    """Poll `condition()` until true (a hang guard, not a timing assertion)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def scrape(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(response.status)


def test_idle_and_slowloris_connections_cost_bounded_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporter_module, "CONNECTION_DEADLINE", 1.0)
    monkeypatch.setattr(exporter_module, "QUEUE_WAIT", 0.2)
    threads_before = threading.active_count()
    with Exporter("127.0.0.1:0", provider=lambda: None) as exp:
        idle = []
        for i in range(200):
            sock = socket.create_connection((exp.host, exp.port))
            if i % 2:
                sock.sendall(b"GET /metr")  # a slowloris: never finishes its request line
            idle.append(sock)
        assert wait_for(lambda: exp.active >= 1)
        assert exp.active <= exporter_module.MAX_CONNECTIONS
        assert threading.active_count() - threads_before <= exporter_module.MAX_CONNECTIONS + 4
        # Overdue connections are closed by the reaper, and scrapes get through again.
        assert wait_for(lambda: exp.active == 0 and scrape(exp.url) == 200)
        for sock in idle:
            sock.close()
    assert wait_for(lambda: threading.active_count() <= threads_before + 1)


def test_a_timed_out_client_is_closed_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # Every read has a timeout (prometheus_client's own handler has none); hitting it must stay quiet.
    monkeypatch.setattr(exporter_module._Handler, "timeout", 0.2)
    with Exporter("127.0.0.1:0", provider=lambda: None) as exp:
        with socket.create_connection((exp.host, exp.port)) as sock:
            sock.sendall(b"GET /metr")
            sock.settimeout(20)  # a hang guard: the server closes first
            assert sock.recv(1024) == b""
        assert scrape(exp.url) == 200
    assert "Traceback" not in capfd.readouterr().err


def test_mcp_config_lookup_is_linear_in_projects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """4,000 project directories: each new one costs one stat, not a re-read of all before it."""
    stats = {"n": 0}
    original = os.stat

    def counting_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).endswith(".mcp.json"):
            stats["n"] += 1
        return original(path, *args, **kwargs)  # type: ignore[call-overload,no-any-return]

    config = McpConfig([], Skips())
    (tmp_path / "p7").mkdir()
    (tmp_path / "p7" / ".mcp.json").write_text(
        '{"mcpServers": {"zs": {"url": "https://api.z.ai/api/mcp/web_search_prime/mcp"}}}'
    )
    monkeypatch.setattr(os, "stat", counting_stat)
    changed = [config.add_project(str(tmp_path / f"p{i}")) for i in range(4000)]
    monkeypatch.undo()
    assert stats["n"] == 4000
    assert changed.count(True) == 1 and changed[7]
    assert config.aliases.by_server == {"zs": McpService.SEARCH}
    assert config.refresh().by_server == {"zs": McpService.SEARCH}
