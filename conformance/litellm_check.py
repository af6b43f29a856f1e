"""Conformance: a real LiteLLM proxy (from PyPI) in front of a fake model backend, read by zai-dash.

Ground truth is what the driver sent and the backend answered. The check installs LiteLLM into a venv
outside the repo (`/var/tmp/zai-dash-conformance/litellm`), serves a fake OpenAI-compatible model on
127.0.0.1, starts `litellm --config …` on 127.0.0.1 with Prometheus metrics on, sends N chat requests
through it, and compares with what zai-dash reports for the proxy: the `PrometheusSource` the engine
uses (a baseline scrape, then the increase), and `zai-dash report --json` from the CLI. It also records
what the real proxy does that the reference did not say: `/metrics` answers 307 to `/metrics/`, the
deprecated `litellm_requests_metric_total` is emitted beside its replacement, and a refused scrape is
counted as a request on route `/metrics`.

`run(report_dir)` returns the result (and writes `litellm.json` there); `python conformance/litellm_check.py
[REPORT_DIR]` does the same from the shell (exit 0 when passed or skipped, 1 when failed). An install
that needs more than PyPI is reported as skipped, not failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # run as a script from anywhere

from zai_dash.sources.base import SourceContext  # noqa: E402
from zai_dash.sources.prometheus import PrometheusSource, ProxySettings  # noqa: E402

LITELLM_VERSION = "1.110.2"
"""The version the proxy-metrics reference was checked against."""
VENV = Path("/var/tmp/zai-dash-conformance/litellm")
PROXY_REQUIREMENTS = (
    "uvicorn>=0.33,<1", "fastapi>=0.136.3,<1", "starlette>=1.0.1,<2", "backoff>=2.2.1,<3", "pyyaml>=6.0.3,<7",
    "orjson>=3.11.6,<4", "apscheduler>=3.11.2,<4", "pyjwt>=2.13,<3", "python-multipart>=0.0.27,<1",
    "cryptography>=49,<51", "prometheus-client>=0.20,<1", "websockets>=15.0.1,<16", "email-validator", "rq>=2.7,<3",
    "fastapi-sso>=0.19,<1", "pynacl>=1.6.2,<2", "rich>=13.9.4,<14", "semver>=3.0.4,<4", "litellm-enterprise",
    "expression>=5.6,<6", "tomlkit>=0.13.3,<1", "inquirerpy>=0.3.4,<1", "restrictedpython>=8.5,<9", "mcp>=2.3,<3",
    "backports-zstd>=1,<2", "gunicorn>=23,<24", "uvloop>=0.22.1,<1", "soundfile>=0.12.1,<1", "polars>=1.38.1,<2",
    "pyroscope-io>=0.8.16,<1", "boto3>=1.43.117,<2", "azure-identity>=1.25.2,<2", "azure-storage-blob>=12.28,<13",
    "httpx2>=2.10,<3", "hiredis>=3,<4", "granian>=2.7.4,<3", "pydantic>=2.12,<3",
)  # fmt: skip
"""`litellm[proxy]`'s requirements less `litellm-proxy` and `litellm-proxy-extras` (their pinned versions are
not on the registry; the proxy code itself ships in `litellm`, and the extras hold only database migrations)."""
REQUESTS = 5
MODEL = "glm-4.6"
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 3
MASTER_KEY = "sk-zai-dash-conformance-0000"
START_TIMEOUT = 240.0
"""Hang guard for the proxy to come up (it imports a lot; the machine may be busy)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pip(python: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1800)


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.splitlines() if line.strip() and "is ignored" not in line]
    return " | ".join(kept[-lines:])


def install(venv: Path = VENV, version: str = LITELLM_VERSION) -> tuple[Path | None, str]:
    """Install LiteLLM with its proxy requirements into `venv` (once per version).

    Returns:
        The `litellm` executable (None when the install failed) and a note on how it was installed.
    """
    marker = venv / f".installed-{version}"
    litellm = venv / "bin" / "litellm"
    if marker.exists() and litellm.exists():
        return litellm, marker.read_text(encoding="utf-8")
    if not (venv / "bin" / "python").exists():
        made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
        if made.returncode:
            return None, f"venv failed: {_tail(made.stderr)}"
    python = venv / "bin" / "python"
    full = _pip(python, f"litellm[proxy]=={version}")
    if full.returncode == 0:
        note = f"litellm[proxy]=={version}"
    else:
        bare = _pip(python, f"litellm=={version}", *PROXY_REQUIREMENTS)
        if bare.returncode:
            return None, f"pip: {_tail(bare.stderr)}"
        note = (
            f"litellm=={version} and its proxy requirements; litellm[proxy] itself would not install "
            f"({_tail(full.stderr, 1)})"
        )
    marker.write_text(note, encoding="utf-8")
    return litellm, note


class FakeModel:
    """An OpenAI-compatible chat backend on 127.0.0.1 that counts the requests it answered."""

    def __init__(self) -> None:
        self.answered = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = json.loads(self.rfile.read(length) or b"{}")
                outer.answered += 1
                body = json.dumps(
                    {
                        "id": f"chatcmpl-{outer.answered}",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": request.get("model", MODEL),
                        "choices": [
                            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
                        ],
                        "usage": {
                            "prompt_tokens": PROMPT_TOKENS,
                            "completion_tokens": COMPLETION_TOKENS,
                            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                        },
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        port = self.server.server_address[1]
        return f"http://127.0.0.1:{port}/v1"

    def __enter__(self) -> FakeModel:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


PROXY_CONFIG = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {api_base}
      api_key: fake-upstream-key
litellm_settings:
  callbacks: ["prometheus"]
general_settings:
  master_key: {master_key}
"""


@contextmanager
def litellm_proxy(litellm: Path, work: Path, api_base: str) -> Iterator[str]:
    """Run `litellm --config` on 127.0.0.1 until the block ends; yields its base URL."""
    port = _free_port()
    config = work / "litellm.yaml"
    config.write_text(PROXY_CONFIG.format(model=MODEL, api_base=api_base, master_key=MASTER_KEY), encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no fetch of the price list at start
        "NO_PROXY": "127.0.0.1,localhost",
    }
    log = (work / "litellm.log").open("w", encoding="utf-8")
    cmd = [str(litellm), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _up(base + "/health/liveliness"):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                tail = _tail((work / "litellm.log").read_text(encoding="utf-8", errors="replace"))
                raise RuntimeError(f"litellm did not come up: {tail}")
            time.sleep(0.5)
        yield base
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the session this check started, by its id
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _http(url: str, *, data: dict[str, Any] | None = None, auth: bool = True) -> tuple[int, dict[str, str], bytes]:
    """One request that follows no redirect: status, headers, body."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = f"Bearer {MASTER_KEY}"
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers=headers)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _proxy_source(base: str, work: Path) -> PrometheusSource:
    settings = ProxySettings(
        name="litellm",
        url=base + "/metrics",
        headers={"Authorization": "Bearer ${LITELLM_MASTER_KEY}"},
        preset="litellm",
    )
    ctx = SourceContext(home=work, env={"LITELLM_MASTER_KEY": MASTER_KEY}, clock=lambda: datetime.now(timezone.utc))
    return PrometheusSource(settings, ctx)


def _wait_for_counts(base: str, expected: int) -> None:
    """LiteLLM updates its counters after answering: wait (hang guard 30 s) until the chat route shows them."""
    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, _, body = _http(base + "/metrics/")
        if status == 200:
            seen = sum(
                s.value
                for family in text_string_to_metric_families(body.decode())
                for s in family.samples
                if s.name == "litellm_proxy_total_requests_metric_total"
                and s.labels.get("route") == "/v1/chat/completions"
            )
            if seen >= expected:
                return
        time.sleep(0.5)


def _report_json(base: str, work: Path) -> dict[str, Any]:
    """`zai-dash report --json` with this proxy configured, in a HOME of its own."""
    home = work / "home"
    home.mkdir(exist_ok=True)
    config = work / "zai-dash.toml"
    config.write_text(
        f'[[proxy]]\nname = "litellm"\nurl = "{base}/metrics"\npreset = "litellm"\n'
        'headers = { Authorization = "Bearer ${LITELLM_MASTER_KEY}" }\n',
        encoding="utf-8",
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "ZAI_DASH_TIMEZONE": "UTC",
        "PYTHONPATH": str(REPO),
    }
    cmd = [sys.executable, "-m", "zai_dash", "report", "--json", "--config", str(config)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=work)
    if out.returncode:
        raise RuntimeError(f"zai-dash report failed: {_tail(out.stderr)}")
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


def _check(checks: list[dict[str, Any]], name: str, expected: object, actual: object) -> None:
    checks.append({"name": name, "expected": expected, "actual": actual, "ok": expected == actual})


def drive(litellm: Path, work: Path) -> dict[str, Any]:
    """Run the scenario against an installed LiteLLM; returns the checks and what was observed."""
    checks: list[dict[str, Any]] = []
    findings: list[str] = []
    with FakeModel() as backend, litellm_proxy(litellm, work, backend.base) as base:
        source = _proxy_source(base, work)
        baseline = asyncio.run(source.refresh())
        if not baseline.ok:
            raise RuntimeError(f"first scrape failed: {baseline.message}")
        watch_start = datetime.now(timezone.utc) - timedelta(seconds=1)
        refused, _, _ = _http(base + "/metrics/", auth=False)  # a scrape without the key, counted by LiteLLM
        for i in range(REQUESTS):
            status, _, _ = _http(
                base + "/v1/chat/completions",
                data={"model": MODEL, "messages": [{"role": "user", "content": f"prompt {i}"}]},
            )
            if status != 200:
                raise RuntimeError(f"request {i} through the proxy answered HTTP {status}")
        _wait_for_counts(base, REQUESTS)
        second = asyncio.run(source.refresh())
        row = source.row(datetime.now(timezone.utc), watch_start)
        doc = _report_json(base, work)
        bare_status, bare_headers, _ = _http(base + "/metrics")
        _, _, exposition = _http(base + "/metrics/")
    text = exposition.decode("utf-8", "replace")
    if bare_status in (301, 302, 307, 308):
        findings.append(
            f"/metrics answers {bare_status} to {bare_headers.get('location') or bare_headers.get('Location')}"
        )
    if "litellm_requests_metric_total" in text and "litellm_proxy_total_requests_metric_total" in text:
        findings.append("the deprecated litellm_requests_metric_total is emitted beside its replacement")
    if refused == 401 and 'route="/metrics' in text:
        findings.append("a refused scrape is counted as a 401 request on route /metrics")
    tokens = REQUESTS * (PROMPT_TOKENS + COMPLETION_TOKENS)
    since = row["since_cycle"]
    proxies = doc.get("proxies") or [{}]
    totals = proxies[0].get("totals", {})
    _check(checks, "backend answered", REQUESTS, backend.answered)
    _check(checks, "second scrape ok", True, second.ok)
    _check(checks, "requests since watching (PrometheusSource)", {MODEL: REQUESTS}, since.get("requests_total"))
    _check(checks, "tokens since watching", {MODEL: tokens}, since.get("tokens_total"))
    _check(checks, "input tokens since watching", {MODEL: REQUESTS * PROMPT_TOKENS}, since.get("tokens_input_total"))
    _check(checks, "failed requests since watching", {}, since.get("requests_failed_total"))
    _check(checks, "report --json proxy status", "ok", proxies[0].get("status"))
    _check(checks, "report --json requests (since the proxy started)", {MODEL: REQUESTS}, totals.get("requests_total"))
    _check(checks, "report --json tokens", {MODEL: tokens}, totals.get("tokens_total"))
    return {"checks": checks, "findings": findings}


def run(report_dir: Path | str) -> dict[str, Any]:
    """Install, drive and compare; write `litellm.json` into `report_dir`.

    Returns:
        `client`, `version`, `status` (`pass` / `fail` / `skipped`), `reason`, `install`, `requests`,
        `checks` (name, expected, actual, ok) and `findings` (what the real proxy does).
    """
    out_dir = Path(report_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "client": "litellm",
        "version": LITELLM_VERSION,
        "status": "skipped",
        "reason": "",
        "install": "",
        "requests": REQUESTS,
        "checks": [],
        "findings": [],
    }
    started = time.monotonic()
    litellm, note = install()
    result["install"] = note
    if litellm is None:
        result["reason"] = f"install needs more than this machine's registries allow: {note}"
    else:
        with tempfile.TemporaryDirectory(prefix="zai-dash-litellm-") as tmp:
            try:
                result.update(drive(litellm, Path(tmp)))
                ok = all(c["ok"] for c in result["checks"])
                result["status"] = "pass" if ok else "fail"
                failed = [c["name"] for c in result["checks"] if not c["ok"]]
                result["reason"] = "" if ok else "mismatch: " + ", ".join(failed)
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError) as exc:
                result["status"] = "fail"
                result["reason"] = str(exc)
    result["seconds"] = round(time.monotonic() - started, 1)
    (out_dir / "litellm.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: list[str]) -> int:
    """`python conformance/litellm_check.py [REPORT_DIR]` (default: a temp dir)."""
    report_dir = Path(argv[0]) if argv else Path(tempfile.mkdtemp(prefix="zai-dash-conformance-"))
    result = run(report_dir)
    print(json.dumps(result, indent=2))
    return 1 if result["status"] == "fail" else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
