"""The "Fleet" panel: every machine's exporter read back from Prometheus, and the account's totals.

The same lines as `zai-dash report` (`zai_dash.domain.fleet.report_lines`); hidden until `[fleet]` is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from textual.widgets import Static

from zai_dash.domain.fleet import report_lines


class FleetPanel(Static):
    """Per-machine rows and account totals, each with its source; a red border while Prometheus is stale."""

    SCOPED_CSS = False
    DEFAULT_CSS = """
    FleetPanel { height: auto; max-height: 14; overflow-y: auto; display: none;
                 border: round $panel-lighten-2; border-title-color: $text-muted; padding: 0 1; }
    FleetPanel.-shown { display: block; }
    FleetPanel.-stale { border: round $warning; }
    Screen.-tiny FleetPanel, Screen.-short FleetPanel { display: none; }
    Screen.-narrow FleetPanel { border: none; border-top: solid $panel-lighten-2; padding: 0; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)  # machine names are the user's text, not markup
        self.text = ""
        """The text last shown."""

    def set_fleet(self, fleet: Mapping[str, Any] | None) -> None:
        """Take a snapshot's fleet view (None: no `[fleet]`, the panel stays hidden)."""
        self.set_class(fleet is not None, "-shown")
        if fleet is None:
            return
        self.set_class(bool(fleet.get("stale")), "-stale")
        text = "\n".join(line.removeprefix("fleet     ") for line in report_lines(fleet))
        if text != self.text:
            self.text = text
            self.update(text)
