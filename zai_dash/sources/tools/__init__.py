"""Tool adapters, one module per tool: the registry.

Each adapter module declares `TOOLS: tuple[ToolInfo, ...]` (the tools it reads) and defines
`create_sources(ctx) -> list[ToolSource]`. Modules are discovered, not listed: adding a tool is adding
a file here. Nothing else in zai-dash lists tools; config, the snapshot, the UI and the tests ask
`registered_tools()`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Collection, Iterator
from types import ModuleType

from zai_dash.domain.tools import ToolInfo
from zai_dash.sources.base import SourceContext, ToolSource


def adapter_modules() -> Iterator[ModuleType]:
    """Every adapter module in this package, in module-name order (private `_x` modules excluded)."""
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{__name__}.{info.name}")


def registered_tools() -> tuple[ToolInfo, ...]:
    """Every tool some adapter module declares, in display order (`order`, then id).

    Two modules may both read one tool (Cline's VS Code tasks and its CLI sessions); they must then
    declare it identically.

    Raises:
        ValueError: two modules declare one tool id differently (a programming error).
    """
    by_id: dict[str, ToolInfo] = {}
    for module in adapter_modules():
        for info in getattr(module, "TOOLS", ()):
            known = by_id.setdefault(info.id, info)
            if known != info:
                raise ValueError(f"tool {info.id!r} declared twice, differently: {known} vs {info}")
    return tuple(sorted(by_id.values(), key=lambda t: (t.order, t.id)))


def registered_tool_ids() -> tuple[str, ...]:
    """The ids of `registered_tools()`, in display order."""
    return tuple(t.id for t in registered_tools())


def create_all_sources(ctx: SourceContext, disabled: Collection[str] = ()) -> list[ToolSource]:
    """Instantiate every adapter module's sources, in module-name order.

    Args:
        ctx: where to look.
        disabled: tool ids switched off in config. A source is dropped when all its tools are.
    """
    sources: list[ToolSource] = []
    for module in adapter_modules():
        create = getattr(module, "create_sources", None)
        if create is None:
            continue
        for source in create(ctx):
            if not source.tools or any(t not in disabled for t in source.tools):
                sources.append(source)
    return sources
