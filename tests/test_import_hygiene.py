"""Layering: domain, sources, engine and the status path never import textual."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
