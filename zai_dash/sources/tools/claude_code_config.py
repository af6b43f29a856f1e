"""Claude Code's settings and MCP config, read narrowly: model, base URL and MCP server targets only.

`settings.json` holds `ANTHROPIC_AUTH_TOKEN` and `~/.claude.json` holds OAuth data and MCP `headers`/`env`
(API keys). Each file is parsed, the few keys we need are copied out, and the parsed document is dropped
at once, so no secret outlives the parse. Files are re-read only when their stat signature changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zai_dash.domain.endpoints import classify_base_url
from zai_dash.domain.mcp import McpAliases
from zai_dash.domain.snapshot import ToolConfigInfo
from zai_dash.redact import redact_url
from zai_dash.sources.base import Skips
from zai_dash.sources.configfiles import CachedJson, mcp_targets
from zai_dash.sources.jsonutil import normalise_model

MODEL_KEYS = (
    "ANTHROPIC_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
)
"""Settings `env` keys that name a model, in the order they answer "which model is in use"."""
ENV_KEYS = (*MODEL_KEYS, "ANTHROPIC_BASE_URL")
"""The only `env` keys ever copied out of a settings file (never `ANTHROPIC_AUTH_TOKEN`)."""

_ALIASES = {
    "opus": "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "sonnet": "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "haiku": "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "opusplan": "ANTHROPIC_DEFAULT_OPUS_MODEL",
}
"""Claude Code's model aliases (top-level `model`) and the env key that remaps each one."""

_MCP_NAME_BAD = re.compile(r"[^a-zA-Z0-9_-]")
_BRACKET_SUFFIX = re.compile(r"\[[^\]]*\]$")


def mcp_server_name(name: str) -> str:
    """The server name as it appears inside `mcp__<server>__<tool>`.

    Claude Code's `normalizeNameForMCP` replaces every character outside `[a-zA-Z0-9_-]` with `_`
    before composing tool names, so a server configured as `web search` shows up as `web_search`.
    """
    return _MCP_NAME_BAD.sub("_", name)


def clean_model(model: object) -> str | None:
    """A normalised model id without a context-size suffix (`glm-5.3[1m]` → `glm-5.3`)."""
    text = normalise_model(model)
    if text is None:
        return None
    return _BRACKET_SUFFIX.sub("", text) or None


def display_path(path: Path, home: Path) -> str:
    """`path` with the home directory shown as `~` (for `doctor` and model provenance)."""
    try:
        return "~/" + str(path.relative_to(home))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class SettingsSubset:
    """What one settings file says, and nothing else.

    Attributes:
        env: the whitelisted `env` keys (`ENV_KEYS`) that are non-empty strings.
        model: the top-level `model`, if a string.
    """

    env: Mapping[str, str]
    model: str | None


EMPTY_SETTINGS = SettingsSubset({}, None)


def extract_settings(doc: Any) -> SettingsSubset:
    """Copy the model and base-URL keys out of a parsed settings document."""
    if not isinstance(doc, dict):
        return EMPTY_SETTINGS
    env = doc.get("env")
    picked: dict[str, str] = {}
    if isinstance(env, dict):
        for key in ENV_KEYS:
            value = env.get(key)
            if isinstance(value, str) and value.strip():
                picked[key] = value.strip()
    model = doc.get("model")
    return SettingsSubset(picked, model.strip() if isinstance(model, str) and model.strip() else None)


def extract_mcp_targets(doc: Any) -> dict[str, str]:
    """Server name (as it appears in tool names) → URL or launch command, from `mcpServers` and
    `projects[*].mcpServers`. `headers` and `env` (API keys) are never read (`configfiles.mcp_targets`).
    """
    targets: dict[str, str] = {}
    if not isinstance(doc, dict):
        return targets
    _add_servers(targets, doc.get("mcpServers"))
    projects = doc.get("projects")
    if isinstance(projects, dict):
        for project in projects.values():
            if isinstance(project, dict):
                _add_servers(targets, project.get("mcpServers"))
    return targets


def _add_servers(targets: dict[str, str], servers: object) -> None:
    for name, target in mcp_targets(servers).items():
        # Within one file, a project's (local-scope) entry overrides the user-scope one.
        targets[mcp_server_name(name)] = target


class ClaudeSettings:
    """The model and endpoint Claude Code is configured with, from its settings files.

    Args:
        files: settings files, highest precedence first (e.g. `settings.local.json` before
            `settings.json`, `~/.claude` before `~/.config/claude`).
        home: for `~` in provenance strings.
        env: the process environment: a lowest-precedence fallback for the model and base URL
            (Claude Code's settings `env` overrides the shell).
        skips: where broken files are counted.
    """

    def __init__(self, files: Iterable[Path], home: Path, env: Mapping[str, str], skips: Skips) -> None:
        self._files = [CachedJson(p, extract_settings, EMPTY_SETTINGS, skips) for p in files]
        self._home = home
        self._env = {k: env[k] for k in ENV_KEYS if isinstance(env.get(k), str) and env[k].strip()}

    def info(self) -> ToolConfigInfo:
        """Resolve the configured model (with where it came from) and classify the base URL."""
        env: dict[str, tuple[str, str]] = {}
        model: tuple[str, str] | None = None
        for cached in self._files:
            subset = cached.get()
            where = display_path(cached.path, self._home)
            for key, value in subset.env.items():
                env.setdefault(key, (value, f"{where} env.{key}"))
            if model is None and subset.model:
                model = (subset.model, f"{where} model")
        for key, value in self._env.items():
            env.setdefault(key, (value, f"environment {key}"))

        picked = _pick_model(env, model)
        base = env.get("ANTHROPIC_BASE_URL")
        base_url = redact_url(base[0]) if base else None
        return ToolConfigInfo(
            model=clean_model(picked[0]) if picked else None,
            model_detail=picked[1] if picked else None,
            base_url=base_url or None,
            endpoint=classify_base_url(base_url) if base_url else None,
        )


DEFAULT_ALIAS = "opus"
"""The alias Claude Code uses when nothing names a model: with only some `ANTHROPIC_DEFAULT_*_MODEL`
set (say sonnet), 2.1 still sends its default opus-class model (log-formats.md §11)."""


def _pick_model(env: Mapping[str, tuple[str, str]], model: tuple[str, str] | None) -> tuple[str, str] | None:
    """The model Claude Code sends, by its own rule: `ANTHROPIC_MODEL`; else the top-level `model`
    (an alias is remapped by its `ANTHROPIC_DEFAULT_*_MODEL`, a full id is sent as written); else the
    default alias (opus) remapped by `ANTHROPIC_DEFAULT_OPUS_MODEL`. An alias nothing remaps is what
    the client sends (a Claude name the server maps), shown as the alias."""
    if "ANTHROPIC_MODEL" in env:
        return env["ANTHROPIC_MODEL"]
    if model is None:
        alias, where = DEFAULT_ALIAS, f"Claude Code's default ({DEFAULT_ALIAS})"
    else:
        alias, where = _BRACKET_SUFFIX.sub("", model[0].strip().lower()), model[1]
        if alias not in _ALIASES:
            return model
    remap = _ALIASES[alias]
    if remap in env:
        return env[remap]
    if model is None and not env.keys() & set(MODEL_KEYS):
        return None  # nothing configured at all: say nothing rather than guess
    return alias, f"{where}; {remap} not set"


class McpConfig:
    """The alias map (server name → Z.ai service) from `~/.claude.json` and project `.mcp.json` files.

    Args:
        user_files: `~/.claude.json` (and `<CLAUDE_CONFIG_DIR>/.claude.json`).
        skips: where broken files are counted.
    """

    def __init__(self, user_files: Iterable[Path], skips: Skips) -> None:
        self._skips = skips
        empty: dict[str, str] = {}
        self._files: list[CachedJson[dict[str, str]]] = [
            CachedJson(p, extract_mcp_targets, empty, skips) for p in user_files
        ]
        self._projects: dict[str, CachedJson[dict[str, str]]] = {}
        self._sig: list[int] = []
        self._from_projects: dict[str, str] = {}
        self._from_user: dict[str, str] = {}
        self.aliases = McpAliases()

    def add_project(self, cwd: str) -> bool:
        """Also read `<cwd>/.mcp.json` (a working directory seen in the logs). True when `aliases` changed.

        Only the new file is read, and the map is rebuilt only when it names servers: a history with
        thousands of project directories costs one stat each, not a re-read of all per new one.
        """
        if cwd in self._projects:
            return False
        empty: dict[str, str] = {}
        cached = self._projects[cwd] = CachedJson(Path(cwd) / ".mcp.json", extract_mcp_targets, empty, self._skips)
        targets = cached.get()
        if len(self._sig) == len(self._files) + len(self._projects) - 1:
            self._sig.append(cached.version)  # still in step with `refresh`: no re-read needed there
        if not targets:
            return False
        # Later projects win over earlier ones, the user's files over all: as `_rebuild` merges.
        self._from_projects.update(targets)
        self.aliases = McpAliases.from_targets({**self._from_projects, **self._from_user})
        return True

    def refresh(self) -> McpAliases:
        """Re-read changed files and rebuild the alias map if anything changed."""
        cached = [*self._files, *self._projects.values()]
        values = [c.get() for c in cached]
        sig = [c.version for c in cached]
        if sig != self._sig:
            self._sig = sig
            self._rebuild(values)
        return self.aliases

    def _rebuild(self, values: list[dict[str, str]]) -> None:
        # Project `.mcp.json` files first so the user's own `~/.claude.json` wins on a clash.
        self._from_projects, self._from_user = {}, {}
        for targets in values[len(self._files) :]:
            self._from_projects.update(targets)
        for targets in values[: len(self._files)]:
            self._from_user.update(targets)
        self.aliases = McpAliases.from_targets({**self._from_projects, **self._from_user})
