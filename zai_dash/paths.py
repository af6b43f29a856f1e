"""Where zai-dash keeps its own files: the one place that resolves them.

Every path is resolved from an environment mapping (the process's by default), so tests and benchmarks
point `HOME` and `XDG_*` at a temp dir and never touch the real home. On Linux and the BSDs the XDG base
directories apply (`$XDG_CONFIG_HOME`, `$XDG_CACHE_HOME`, `$XDG_STATE_HOME`, else their defaults under
`$HOME`); on macOS and Windows an explicit `XDG_*` variable still wins, else platformdirs gives the
platform's own folder.

Other tools' folders (`~/.claude`, `$XDG_DATA_HOME/crush`, …) are not ours: their adapters resolve them
through `SourceContext.xdg`, which follows the same XDG rule.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP = "zai-dash"

_XDG_DEFAULTS = {
    "XDG_CONFIG_HOME": ".config",
    "XDG_CACHE_HOME": ".cache",
    "XDG_STATE_HOME": ".local/state",
    "XDG_DATA_HOME": ".local/share",
}
_PLATFORM_DIRS = {
    "XDG_CONFIG_HOME": "user_config_dir",
    "XDG_CACHE_HOME": "user_cache_dir",
    "XDG_STATE_HOME": "user_state_dir",
    "XDG_DATA_HOME": "user_data_dir",
}


def home(env: Mapping[str, str] | None = None) -> Path:
    """`$HOME` from `env`, else the user's home directory."""
    env = os.environ if env is None else env
    return Path(env["HOME"]) if env.get("HOME") else Path.home()


def xdg_home(var: str, env: Mapping[str, str] | None = None) -> Path:
    """An XDG base directory (`XDG_CONFIG_HOME`, …): the variable if set, else its default under home.

    Args:
        var: one of `XDG_CONFIG_HOME`, `XDG_CACHE_HOME`, `XDG_STATE_HOME`, `XDG_DATA_HOME`.
        env: the environment (the process's by default).
    """
    env = os.environ if env is None else env
    value = env.get(var)
    # The spec says a relative value is invalid and must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return home(env) / _XDG_DEFAULTS[var]


def _own_dir(var: str, env: Mapping[str, str] | None) -> Path:
    env = os.environ if env is None else env
    if sys.platform in ("darwin", "win32") and not env.get(var):
        import platformdirs  # only here: most commands on Linux never need it

        return Path(getattr(platformdirs, _PLATFORM_DIRS[var])(APP, appauthor=False))
    return xdg_home(var, env) / APP


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/zai-dash`."""
    return _own_dir("XDG_CONFIG_HOME", env)


def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CACHE_HOME/zai-dash`: the scan cache, the published dashboard state, the last official reading."""
    return _own_dir("XDG_CACHE_HOME", env)


def state_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$XDG_STATE_HOME/zai-dash`: what the UI remembers between runs."""
    return _own_dir("XDG_STATE_HOME", env)


def config_file(env: Mapping[str, str] | None = None) -> Path:
    """The config file unless `--config` says otherwise: `$ZAI_DASH_CONFIG`, else `config_dir()/config.toml`."""
    env = os.environ if env is None else env
    if env.get("ZAI_DASH_CONFIG"):
        return Path(env["ZAI_DASH_CONFIG"])
    return config_dir(env) / "config.toml"


def dashboard_state_file(env: Mapping[str, str] | None = None) -> Path:
    """The snapshot a running dashboard publishes for `zai-dash status` (`cache_dir()/state.json`)."""
    return cache_dir(env) / "state.json"


def ui_memory_file(env: Mapping[str, str] | None = None) -> Path:
    """What the UI remembers between runs, such as the chosen theme (`state_dir()/state.json`)."""
    return state_dir(env) / "state.json"
