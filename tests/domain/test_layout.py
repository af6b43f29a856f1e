"""The test suite's own layout (issue 13 §6): tests by layer, no test importing another, helpers in one place."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.paths import TESTS

LAYERS = ("domain", "sources", "engine", "commands", "ui", "e2e")


def _test_imports(path: Path) -> set[str]:
    """The `tests.*` modules a file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tests":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "tests"}
    return found


def test_every_test_module_lives_in_a_layer_folder() -> None:
    stray = sorted(p.relative_to(TESTS).as_posix() for p in TESTS.rglob("test_*.py") if p.parent.name not in LAYERS)
    assert not stray, f"move these into one of {LAYERS}: {stray}"
    assert all(any((TESTS / layer).glob("test_*.py")) for layer in LAYERS)


def test_tests_import_only_the_support_package() -> None:
    """Shared builders, servers and layouts live in `tests/support`; a test never imports another test
    (or conftest), so moving or deleting one test cannot break another."""
    bad = {}
    for path in [*TESTS.rglob("test_*.py"), *(TESTS / "support").glob("*.py"), TESTS / "conftest.py"]:
        wrong = {m for m in _test_imports(path) if not m.startswith("tests.support")}
        if wrong:
            bad[path.relative_to(TESTS).as_posix()] = sorted(wrong)
    assert not bad


def test_the_layout_check_sees_a_cross_test_import(tmp_path: Path) -> None:
    """The checker itself: an import of another test module is found (so the test above can fail)."""
    sample = tmp_path / "test_x.py"
    sample.write_text("from tests.sources.test_tail import x\nimport tests.support.paths\n", encoding="utf-8")
    assert _test_imports(sample) == {"tests.sources.test_tail", "tests.support.paths"}
