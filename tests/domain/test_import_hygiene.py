"""Layering: domain, sources, engine and the status path never import textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import zai_dash


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_core_packages_do_not_import_textual() -> None:
    mods = _loaded_after(
        "import zai_dash.domain.snapshot, zai_dash.sources.tools, zai_dash.engine, zai_dash.cli\n"
        "import pkgutil, importlib, zai_dash.sources as s\n"
        "for m in pkgutil.walk_packages(s.__path__, 'zai_dash.sources.'): importlib.import_module(m.name)\n"
        "from zai_dash.sources.tools import create_all_sources"
    )
    assert "textual" not in mods
    assert "zai_dash.ui" not in mods


def test_domain_imports_only_stdlib_and_itself() -> None:
    domain = Path(zai_dash.__file__).parent / "domain"
    allowed_roots = set(sys.stdlib_module_names) | {"zai_dash"}
    for path in domain.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                assert root in allowed_roots, f"{path.name} imports {name}"
                if root == "zai_dash":
                    assert name.startswith("zai_dash.domain"), f"{path.name} imports {name}"


def test_domain_does_no_io_or_clock_reads() -> None:
    domain = Path(zai_dash.__file__).parent / "domain"
    banned = ("open(", ".now(", "time.time(", "datetime.today(", "os.", "pathlib", "read_text", "utcnow")
    for path in domain.glob("*.py"):
        text = path.read_text()
        for word in banned:
            assert word not in text, f"{path.name} contains {word!r}"


NOT_FOR_STATUS = (
    "httpx",
    "httpcore",
    "anyio",
    "asyncio",
    "ssl",
    "textual",
    "rich",
    "plotext",
    "prometheus_client",
    "opentelemetry",
    "watchfiles",
)
"""What other commands need and `status` must not pay for: it runs on every status-bar refresh."""

STATUS_IN_PROCESS = """
import sys
from zai_dash.cli import main
code = main(sys.argv[1:])
print("MODULES", " ".join(sorted(sys.modules)))
"""

VALIDATOR_BUILT = """
import zai_dash.config
print("VALIDATOR", zai_dash.config._struct.cache_info().currsize)
"""


@pytest.mark.wall_clock  # the saved reading's age is measured against the child's real clock
@pytest.mark.timeout(60)  # a status that polled the dead endpoint would still end; one that hung fails here
@pytest.mark.parametrize(
    "reading_age", [None, timedelta(minutes=2), timedelta(hours=1)], ids=["none", "fresh", "stale"]
)
def test_status_imports_nothing_of_the_network_or_the_ui(
    home: Path, tmp_path: Path, reading_age: timedelta | None
) -> None:
    """`status` with `[api]`, a `[[proxy]]` and `[fleet]` configured (a dead port) and no dashboard running.

    Whether the saved official reading is missing, fresh or stale (a refresh then runs in a detached child,
    with its own imports), the `status` process itself never loads an HTTP client or the UI.
    """
    from tests.support.cli import cli_env, write_known_fixture
    from tests.support.http import FAKE_KEY, refused_port
    from tests.support.official import _five_hour
    from zai_dash import official_memory

    write_known_fixture(home)
    base = f"http://127.0.0.1:{refused_port()}"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[api]\nenabled = true\nbase_url = "{base}"\n\n[[proxy]]\nname = "litellm"\nurl = "{base}/metrics"\n\n'
        f'[fleet]\nprometheus = "{base}"\n'
    )
    if reading_age is not None:
        path = official_memory.memory_path({"XDG_CACHE_HOME": str(home / ".cache")})
        fetched = datetime.now(timezone.utc) - reading_age
        official_memory.save(path, official_memory.identity(FAKE_KEY, base), _five_hour(42)["data"], fetched)
    out = subprocess.run(
        [sys.executable, "-c", STATUS_IN_PROCESS, "status", "--config", str(config)],
        capture_output=True,
        text=True,
        env=cli_env(home, {"ZAI_API_KEY": FAKE_KEY}),
        timeout=60,
    )
    line, _, modules = out.stdout.partition("MODULES ")
    assert line.startswith("GLM"), out.stdout + out.stderr
    if reading_age == timedelta(minutes=2):
        assert "42% (2m old)" in line
    loaded = set(modules.split())
    assert "zai_dash.sources.zai_quota" in loaded  # the quota source was built (to show the saved reading)
    assert not {m for m in loaded if m.split(".")[0] in NOT_FOR_STATUS}


@pytest.mark.timeout(60)
def test_status_without_a_config_file_imports_no_validator_ui_or_network(home: Path) -> None:
    """The common status bar: no config file. Config validation is for a file that says something.

    msgspec itself may load (Claude Code's lines are decoded with it); the validator's Structs are never built.
    """
    from tests.support.cli import cli_env, write_known_fixture

    write_known_fixture(home)
    out = subprocess.run(
        [sys.executable, "-c", STATUS_IN_PROCESS + VALIDATOR_BUILT, "status"],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=60,
    )
    head, _, built = out.stdout.rpartition("VALIDATOR ")
    line, _, modules = head.partition("MODULES ")
    assert line.startswith("GLM"), out.stdout + out.stderr
    loaded = {m.split(".")[0] for m in modules.split()}
    assert not loaded & set(NOT_FOR_STATUS)
    assert built.strip() == "0"  # no config Struct was derived: validation never ran
    assert "sqlite3" not in loaded  # the fixture has no tool database: sqlite3 loads only to open one
    assert "zai_dash.engine" in modules.split()  # it did scan (no dashboard's state file to read)


NOT_FOR_THE_STATE_FILE = ("zai_dash.engine", "zai_dash.cache", "zai_dash.scan", "zai_dash.sources", "msgspec")
"""What `status` must not load when a running dashboard's fresh state file is the answer: no scan, no adapter."""


@pytest.mark.wall_clock  # the state file is fresh by the child's real clock
@pytest.mark.timeout(60)
def test_status_with_a_dashboard_running_imports_no_engine_or_adapter(home: Path) -> None:
    """A status bar beside a running dashboard reads its state file and formats it: nothing of the scan loads.

    The document is the known fixture's report, published as a live dashboard (this test's pid) would.
    """
    from tests.support.cli import cli_env, publish_running_dashboard

    publish_running_dashboard(home)
    out = subprocess.run(
        [sys.executable, "-c", STATUS_IN_PROCESS, "status"],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=60,
    )
    line, _, modules = out.stdout.partition("MODULES ")
    assert line.startswith("GLM✓ 123/12k cr ⟳1h0"), out.stdout + out.stderr  # the state file's figure, not a scan's
    loaded = set(modules.split())
    assert not {m for m in loaded if m.startswith(NOT_FOR_THE_STATE_FILE) or m.split(".")[0] in NOT_FOR_STATUS}
    assert not {m for m in loaded if m.startswith("zai_dash.domain.")} - {
        "zai_dash.domain.events",
        "zai_dash.domain.tariff",
        "zai_dash.domain.plans",
        "zai_dash.domain.bounds",
        "zai_dash.domain.endpoints",
    }  # the config's own (plans and tariff); the snapshot, ledger and windows are the dashboard's work
    assert "tempfile" not in loaded  # status only reads the state file


NOT_FOR_THE_FAST_PATH = (
    "zai_dash.config",
    "zai_dash.commands",
    "zai_dash.domain",
    "zai_dash.engine",
    "zai_dash.sources",
    "tomllib",
    "tomli",
    "msgspec",
    "argparse",
    "hashlib",
    "dataclasses",
    "subprocess",
)
"""What `status` must not load when a live publisher's state file was made from the same raw inputs."""


@pytest.mark.wall_clock  # the state file is fresh by the child's real clock
@pytest.mark.timeout(60)
def test_status_with_a_matching_state_file_loads_no_config_domain_or_parser(home: Path) -> None:
    """The fast path (`statusline.fast_status`): the raw-inputs digest matches, so nothing parses the config."""
    from tests.support.cli import cli_env, publish_running_dashboard

    publish_running_dashboard(home, inputs=True)
    out = subprocess.run(
        [sys.executable, "-c", STATUS_IN_PROCESS, "status"],
        capture_output=True,
        text=True,
        env=cli_env(home),
        timeout=60,
    )
    line, _, modules = out.stdout.partition("MODULES ")
    assert line.startswith("GLM✓ 123/12k cr ⟳1h0"), out.stdout + out.stderr
    loaded = set(modules.split())
    assert not {m for m in loaded if m.startswith(NOT_FOR_THE_FAST_PATH) or m.split(".")[0] in NOT_FOR_STATUS}
