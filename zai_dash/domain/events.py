"""Usage events: the one vocabulary every source translates its tool's records into."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class EventKind(str, enum.Enum):
    """What happened."""

    PROMPT = "prompt"
    """A human turn in a top-level session."""
    CALL = "call"
    """One model API request/response."""
    MCP = "mcp"
    """One call to a Z.ai MCP server (search, reader, zread, vision)."""


class CallRole(str, enum.Enum):
    """Who made a model call: the main conversation, a sub-agent, or the tool itself."""

    MAIN = "main"
    SUBAGENT = "subagent"
    AUXILIARY = "auxiliary"


class McpService(str, enum.Enum):
    """The Z.ai MCP services. Search, reader and zread share the monthly pool; vision the prompt pool."""

    SEARCH = "search"
    READER = "reader"
    ZREAD = "zread"
    VISION = "vision"


MONTHLY_MCP_SERVICES = frozenset({McpService.SEARCH, McpService.READER, McpService.ZREAD})
"""Services drawn from the monthly MCP quota (Z.ai's TIME_LIMIT row)."""


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One thing that happened in one tool.

    Attributes:
        kind: prompt, model call or MCP call.
        ts: when, timezone-aware (UTC by convention).
        tool: tool id, as its adapter declares it (`zai_dash.domain.tools.ToolInfo.id`).
        key: dedup key, unique within the tool (e.g. Claude Code `message.id:requestId`).
        session: the tool's session id, if known.
        model: normalised model id (`glm-4.6`), if known.
        role: for calls, main / sub-agent / auxiliary.
        service: for MCP calls, which Z.ai service.
        tokens: total tokens of a call (input + output + cache), used to keep the largest duplicate.
        input_tokens: prompt-side tokens of a call, cached ones included (cache writes count as input).
        output_tokens: completion tokens of a call.
        cached_tokens: the part of `input_tokens` read from the prompt cache (billed at the cached rate).
            Adapters normalise: a tool whose input count excludes cached tokens (Claude Code's
            `input_tokens`) adds them in; one whose count includes them (OpenAI `prompt_tokens`) does not.
        origin: where the event came from when not this machine (a proxy or exporter name).
    """

    kind: EventKind
    ts: datetime
    tool: str
    key: str
    session: str | None = None
    model: str | None = None
    role: CallRole = CallRole.MAIN
    service: McpService | None = None
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    origin: str | None = None
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class LimitHit:
    """A rate-limit error seen in a log (Z.ai codes 1308/1310/1316) and the reset time it names.

    Attributes:
        ts: when the error was logged.
        tool: tool id.
        code: the Z.ai business code, if given.
        reset_at: the reset time the message names (aware), if any.
    """

    ts: datetime
    tool: str
    code: int | None
    reset_at: datetime | None
