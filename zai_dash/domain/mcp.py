"""Which Z.ai MCP service a tool call went to (search / reader / zread / vision).

Users name MCP servers anything, so names are matched loosely and each tool's MCP config supplies an
alias map (server name → URL or command) that is matched by URL or package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from zai_dash.domain.events import EventKind, McpService, UsageEvent

VISION_TOOLS = frozenset(
    {
        "analyze_image",
        "analyze_video",
        "ui_to_artifact",
        "extract_text_from_screenshot",
        "diagnose_error_screenshot",
        "understand_technical_diagram",
        "analyze_data_visualization",
        "ui_diff_check",
        "image_analysis",
        "video_analysis",
    }
)
"""Tool names of `@z_ai/mcp-server` (≥0.1.2 and older)."""


def _norm(text: str) -> str:
    return text.lower().replace("-", "_")


def service_for_target(target: str) -> McpService | None:
    """Classify an MCP server by its URL or launch command."""
    t = target.lower()
    if "/api/mcp/web_search_prime" in t:
        return McpService.SEARCH
    if "/api/mcp/web_reader" in t:
        return McpService.READER
    if "/api/mcp/zread" in t:
        return McpService.ZREAD
    if "@z_ai/mcp-server" in t:
        return McpService.VISION
    return None


@dataclass(frozen=True)
class McpAliases:
    """Server name → service, from a tool's MCP config. Names are stored normalised."""

    by_server: Mapping[str, McpService] = field(default_factory=dict)

    @classmethod
    def from_targets(cls, targets: Mapping[str, str]) -> McpAliases:
        """Build from server name → URL-or-command pairs (headers and env are never passed in)."""
        found = {}
        for name, target in targets.items():
            service = service_for_target(target)
            if service is not None:
                found[_norm(name)] = service
        return cls(found)

    @classmethod
    def from_servers(cls, servers: object) -> McpAliases:
        """Build from an `mcpServers`-style mapping (any shape `mcp_targets` reads; others are ignored).

        Only the URL, command and args of each entry are looked at; `headers` and `env` (API keys) never.
        """
        return cls.from_targets(mcp_targets(servers))

    def merged(self, other: McpAliases) -> McpAliases:
        """Both maps, `other` winning on a clash."""
        return McpAliases({**self.by_server, **other.by_server})


_URL_KEYS = ("url", "uri", "baseUrl", "serverUrl")
_COMMAND_KEYS = ("command", "cmd", "args")
MCP_TARGET_KEYS = (*_URL_KEYS, *_COMMAND_KEYS)
"""The only keys of an MCP server entry ever looked at (never `headers` or `env`)."""


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
        for key in _URL_KEYS:
            value = spec.get(key)
            if isinstance(value, str):
                parts.append(value)
        for key in _COMMAND_KEYS:
            value = spec.get(key)
            if isinstance(value, str):
                parts.append(value)
            elif isinstance(value, list):
                parts.extend(v for v in value if isinstance(v, str))
        if parts:
            out[name] = " ".join(parts)
    return out


def classify_mcp(server: str | None, tool: str, aliases: McpAliases | None = None) -> McpService | None:
    """Classify one MCP call from its server and tool names.

    Args:
        server: the MCP server name as configured (None when the tool only gives a composite name).
        tool: the MCP tool name, or the whole composite name (`mcp__server__tool`).
        aliases: the tool's alias map.

    Returns:
        The service, or None when the call is not to a Z.ai MCP server.
    """
    name = _norm(tool)
    srv = _norm(server) if server else ""
    if aliases is not None and srv and srv in aliases.by_server:
        return aliases.by_server[srv]
    if aliases is not None and not srv:
        # A composite name: find an aliased server inside it.
        for alias, service in aliases.by_server.items():
            if alias and alias in name:
                return service
    whole = f"{srv}__{name}" if srv else name
    if "websearchprime" in whole or "web_search_prime" in whole:
        return McpService.SEARCH
    if "webreader" in whole or "web_reader" in whole:
        return McpService.READER
    if "zread" in whole:
        return McpService.ZREAD
    if "zai_mcp_server" in whole:
        return McpService.VISION
    # Vision tools keep their plain names; only trust them under a Z.ai-looking server.
    leaf = name.rsplit("__", 1)[-1]
    if leaf in VISION_TOOLS and "zai" in whole.replace(leaf, ""):
        return McpService.VISION
    return None


def mcp_event(
    server: str | None,
    name: str,
    aliases: McpAliases | None,
    *,
    ts: datetime,
    tool: str,
    key: str,
    session: str | None,
    model: str | None = None,
) -> UsageEvent | None:
    """The MCP event of one tool call, or None when `classify_mcp` finds no Z.ai service behind it.

    Args:
        server: the MCP server name, or None when the tool gives only a composite name.
        name: the MCP tool name (or the composite name).
        aliases: the tool's alias map.
        ts: when the call was made.
        tool: the tool id.
        key: the event's dedup key (each adapter keeps its own key convention).
        session: the tool's session id.
        model: the model that made the call, when the tool names it.
    """
    service = classify_mcp(server, name, aliases)
    if service is None:
        return None
    return UsageEvent(kind=EventKind.MCP, ts=ts, tool=tool, key=key, session=session, model=model, service=service)
