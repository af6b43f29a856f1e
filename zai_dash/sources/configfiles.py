"""Reading other tools' config files: JSON, JSONC and a flat YAML subset, keeping no secrets.

Only what zai-dash needs is returned (model ids, base URLs, MCP server URLs and commands). MCP
`headers` and `env`, API keys and tokens are never copied out of the parsed document, and the raw text is
dropped as soon as it is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zai_dash.sources.jsonutil import loads
from zai_dash.sources.safeio import CONFIG_MAX_BYTES, read_capped

MAX_CONFIG_BYTES = CONFIG_MAX_BYTES
"""Config files larger than this are not read."""


def _read_text(path: Path) -> str | None:
    try:
        return read_capped(path, MAX_CONFIG_BYTES).decode("utf-8", errors="replace")
    except OSError:  # missing, unreadable, or not a regular file of a sane size (safeio)
        return None


_JSONC_TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/|,(?=\s*[}\]])', re.S)


def strip_jsonc(text: str) -> str:
    """Remove `//` and `/* */` comments and trailing commas, leaving strings intact."""

    def keep(match: re.Match[str]) -> str:
        token = match.group(0)
        return token if token.startswith('"') else ""

    return _JSONC_TOKEN.sub(keep, text)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON or JSONC object from `path`, or None when missing, unreadable, invalid or not an object."""
    text = _read_text(path)
    if text is None:
        return None
    for candidate in (text, strip_jsonc(text)):
        try:
            data = loads(candidate)
        except ValueError:
            continue
        return data if isinstance(data, dict) else None
    return None


def first_existing(paths: list[Path]) -> Path | None:
    """The first path that is a file."""
    for path in paths:
        if path.is_file():
            return path
    return None


def mcp_targets(servers: object) -> dict[str, str]:
    """Server name → URL or launch command, from an MCP config mapping; headers and env are never read.

    Accepts the shapes the tools use: `{"url": …}` (remote), `{"command": "npx", "args": [...]}` (Crush,
    Claude-style) and `{"command": ["npx", "-y", "@z_ai/mcp-server"]}` (OpenCode local servers), plus
    Goose's `uri` / `cmd` + `args`.
    """
    out: dict[str, str] = {}
    if not isinstance(servers, Mapping):
        return out
    for name, spec in servers.items():
        if not isinstance(name, str) or not isinstance(spec, Mapping):
            continue
        parts: list[str] = []
        for key in ("url", "uri", "baseUrl", "serverUrl"):
            value = spec.get(key)
            if isinstance(value, str):
                parts.append(value)
        for key in ("command", "cmd", "args"):
            value = spec.get(key)
            if isinstance(value, str):
                parts.append(value)
            elif isinstance(value, list):
                parts.extend(v for v in value if isinstance(v, str))
        if parts:
            out[name] = " ".join(parts)
    return out


_YAML_KEY = re.compile(r"^(?P<indent> *)(?P<key>\"[^\"]*\"|'[^']*'|[^\s:#'\"][^:#]*?)\s*:(?:\s+(?P<value>.*))?$")


def _yaml_scalar(raw: str) -> str | list[str] | None:
    text = raw.strip()
    if not text or text.startswith(("|", ">", "&", "*")):
        return None
    if text.startswith("[") and text.endswith("]"):
        return [str(s) for s in (_yaml_scalar(p) for p in text[1:-1].split(",")) if isinstance(s, str)]
    if text[0] in "\"'":
        quote = text[0]
        end = text.find(quote, 1)
        return text[1:end] if end > 0 else text[1:]
    # An unquoted scalar ends at a comment.
    return re.split(r"\s+#", text, maxsplit=1)[0].strip() or None


def read_yaml_lite(path: Path, max_depth: int = 3) -> dict[str, Any] | None:
    """A small YAML subset: nested block mappings of scalars, flow lists and `- item` lists.

    Enough for Goose's `config.yaml` (`GOOSE_PROVIDER`, `GOOSE_MODEL`, `extensions: {key: {uri|cmd, args}}`)
    without a PyYAML dependency. Anything it does not understand is skipped, never raised.

    Returns:
        The mapping, or None when the file is missing or unreadable.
    """
    text = _read_text(path)
    if text is None:
        return None
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    last_key: tuple[int, dict[str, Any], str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or stripped in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if stripped.startswith("- "):
            # A block list item under the last key that had no inline value.
            if last_key is not None and indent >= last_key[0]:
                _, parent, key = last_key
                item = _yaml_scalar(stripped[2:])
                existing = parent.get(key)
                if not isinstance(existing, list):
                    existing = parent[key] = []
                if isinstance(item, str):
                    existing.append(item)
            continue
        match = _YAML_KEY.match(line)
        if match is None:
            continue
        key = match.group("key").strip("\"'")
        while stack and indent <= stack[-1][0]:
            stack.pop()
        if not stack:
            stack = [(-1, root)]
        parent = stack[-1][1]
        value = match.group("value")
        if value is None or not value.strip() or value.strip().startswith("#"):
            if len(stack) <= max_depth:
                child: dict[str, Any] = {}
                parent[key] = child
                stack.append((indent, child))
                last_key = (indent, parent, key)
            continue
        scalar = _yaml_scalar(value)
        if scalar is not None:
            parent[key] = scalar
        last_key = None
    return root
