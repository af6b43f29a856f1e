"""Tool adapters, one module per tool. Each module defines `create_sources(ctx) -> list[ToolSource]`.

Modules are discovered, not listed, so adding a tool is adding a file.
"""

from __future__ import annotations

import importlib
import pkgutil

from zai_dash.sources.base import SourceContext, ToolSource


def create_all_sources(ctx: SourceContext, enabled: frozenset[str] | None = None) -> list[ToolSource]:
    """Instantiate every tool adapter's sources, in module-name order.

    Args:
        ctx: where to look.
        enabled: tool ids to keep (None: all). A source is kept when any of its tools is enabled.
    """
    sources: list[ToolSource] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        create = getattr(module, "create_sources", None)
        if create is None:
            continue
        for source in create(ctx):
            if enabled is None or any(t in enabled for t in source.tools):
                sources.append(source)
    return sources
