"""Where zai-dash keeps its own files: one module, every path from the injected environment."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from zai_dash import paths

linux_only = pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="XDG defaults apply on Linux/BSD")


@linux_only
def test_defaults_under_the_injected_home(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert paths.config_file(env) == tmp_path / ".config/zai-dash/config.toml"
    assert paths.dashboard_state_file(env) == tmp_path / ".cache/zai-dash/state.json"
    assert paths.ui_memory_file(env) == tmp_path / ".local/state/zai-dash/state.json"


def test_xdg_variables_win(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    assert paths.config_file(env) == tmp_path / "cfg/zai-dash/config.toml"
    assert paths.cache_dir(env) == tmp_path / "cache/zai-dash"
    assert paths.dashboard_state_file(env) == tmp_path / "cache/zai-dash/state.json"
    assert paths.ui_memory_file(env) == tmp_path / "state/zai-dash/state.json"


def test_the_two_state_files_are_different_files(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    assert paths.dashboard_state_file(env) != paths.ui_memory_file(env)


@linux_only
def test_a_relative_xdg_value_is_ignored(tmp_path: Path) -> None:
    # The XDG spec: relative paths are invalid and must be ignored.
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": "relative/cache"}
    assert paths.cache_dir(env) == tmp_path / ".cache/zai-dash"


def test_zai_dash_config_names_the_file(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "ZAI_DASH_CONFIG": str(tmp_path / "elsewhere.toml")}
    assert paths.config_file(env) == tmp_path / "elsewhere.toml"
