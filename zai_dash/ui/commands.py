"""Command palette entries: the dashboard's actions and every theme, by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from zai_dash.ui.app import DashApp


class DashCommands(Provider):
    """Rescan, plan preview, toggle tools, help and themes."""

    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app: DashApp = self.app  # type: ignore[assignment]
        out: list[tuple[str, str, Callable[[], object]]] = [
            ("Rescan now", "Read every tool's logs again at once (r)", app.action_rescan),
            ("Toggle tools table", "Show or hide the per-tool table (t)", app.action_toggle_tools),
            ("Cycle plan preview", "Lite → Pro → Max → configured (p)", app.action_preview_plan),
            ("Help", "Keys and what the numbers mean (?)", app.action_help),
        ]
        for name in app.plan_names:
            title = f"Preview plan: {name.title()}"
            out.append((title, f"Show the numbers as if on {name}", partial(app.preview, name)))
        out.append(("Preview plan: configured", "Back to your configured plan", partial(app.preview, None)))
        for theme in sorted(app.available_themes):
            switch = partial(setattr, app, "theme", theme)
            out.append((f"Theme: {theme}", "Switch theme (remembered)", switch))
        return out

    async def discover(self) -> Hits:
        """Shown before anything is typed: the dashboard's own actions."""
        for title, help_text, callback in self._commands()[:4]:
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        """Fuzzy-match every command."""
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
