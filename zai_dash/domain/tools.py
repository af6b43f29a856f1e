"""What a tool is, as its adapter declares it: the registry collects these, nothing else lists tools."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ToolInfo:
    """One coding tool zai-dash reads.

    Each adapter module in `zai_dash/sources/tools/` declares `TOOLS: tuple[ToolInfo, ...]`; the
    registry in `zai_dash/sources/tools/__init__.py` collects them, so adding a tool is adding a file.

    Attributes:
        id: stable id used in config, reports and metrics (`claude-code`).
        name: human name (`Claude Code`).
        env_vars: environment variables the tool itself reads to find its data (tests clear them).
        order: display order in reports and the tools table (lower first; ties by id).
    """

    id: str
    name: str
    env_vars: tuple[str, ...] = ()
    order: int = 100
