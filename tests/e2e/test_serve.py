"""`zai-dash serve` in a real browser: headless Chromium loads the page and the numbers are read off it.

The server runs the real engine over a temp HOME holding a Claude Code log written relative to the wall
clock. Chromium is driven over the DevTools protocol (aiohttp's websocket client, already a dependency of
textual-serve). The page draws the terminal on a canvas, so the test switches on xterm.js's screen-reader
mode, which mirrors every row as text in the DOM, and reads that; a screenshot is kept next to it.
Skipped, with the reason, where Chromium is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import cli_env
from tests.support.paths import REPO
from tests.support.ui import write_claude_history
from zai_dash.ui.app import TERMINAL_CHECK_SECONDS

REPO = REPO
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"),
    pytest.mark.wall_clock,  # the served dashboard runs in its own process, on the real clock
]

CATCH_TERMINAL = """
// textual.js keeps its xterm.js Terminal in a closure; catch the object that assigns `webglAddon`
// (the page's terminal wrapper) so the test can turn on screen-reader mode: rows mirrored as DOM text.
Object.defineProperty(Object.prototype, "webglAddon", {
  configurable: true,
  set(value) {
    window.__zaiTerminal = this;
    Object.defineProperty(this, "webglAddon", {value, writable: true, configurable: true, enumerable: true});
  },
});
"""
READ_PAGE = """
(() => {
  const wrapper = window.__zaiTerminal;
  if (!wrapper || !wrapper.terminal) return "";
  wrapper.terminal.options.screenReaderMode = true;
  const tree = document.querySelector(".xterm-accessibility-tree");
  return tree ? tree.innerText : "";
})()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited: {proc.communicate()[1].decode(errors='replace')}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port} within {seconds} s")


@pytest.fixture
def server(home: Path) -> Iterator[str]:
    write_claude_history(home, datetime.now(timezone.utc).replace(microsecond=0), prompts=3)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zai_dash", "serve", "--port", str(port)],
        env=cli_env(home, {"PYTHONPATH": str(REPO)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its per-tab dashboards go with it
    )
    try:
        wait_port(port, proc)
        yield f"http://127.0.0.1:{port}/"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class DevTools:
    """A minimal DevTools-protocol client for one page."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            message = await self.ws.receive_json()
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return dict(message.get("result", {}))


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[int]:
    profile = tmp_path / "chromium-profile"
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
            "--window-size=1280,900", "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None, "Chromium did not start"
            time.sleep(0.05)
        yield int(port_file.read_text().split()[0])
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


async def page_text(debug_port: int, url: str, needles: tuple[str, ...], screenshot: Path) -> str:
    """Load `url`, wait until every needle is in the page's text (hang guard 30 s), screenshot it, return it."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{debug_port}/json/list") as response:
            pages = [t for t in await response.json() if t.get("type") == "page"]
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            tools = DevTools(ws)
            await tools.call("Page.enable")
            await tools.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
            await tools.call("Page.navigate", url=url)
            text = ""
            deadline = time.monotonic() + 30
            while not all(n in text for n in needles):
                assert time.monotonic() < deadline, f"{needles} not on the page:\n{text}"
                await asyncio.sleep(0.2)
                result = await tools.call("Runtime.evaluate", expression=READ_PAGE, returnByValue=True)
                text = str(result.get("result", {}).get("value") or "")
            # A browser session has pipes, not a TTY: the dashboard must not take that for a lost terminal.
            await asyncio.sleep(TERMINAL_CHECK_SECONDS + 1)
            closed = await tools.call(
                "Runtime.evaluate", expression="document.body.classList.contains('-closed')", returnByValue=True
            )
            assert closed["result"]["value"] is False, "the browser session ended"
            shot = await tools.call("Page.captureScreenshot", format="png")
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            return text


async def test_served_dashboard_shows_the_numbers_in_a_browser(server: str, chromium: int, tmp_path: Path) -> None:
    text = await page_text(
        chromium, server, ("prompts 3 ·", "assuming Pro, credits"), screenshot=tmp_path / "served.png"
    )
    assert "zai-dash" in text
    assert "Pro plan" in text
    assert (tmp_path / "served.png").read_bytes().startswith(b"\x89PNG")
