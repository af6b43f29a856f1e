"""The help screen: what the keys do and what the numbers mean."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# zai-dash

| Key | Does |
|---|---|
| `q` / `Ctrl+C` | quit |
| `r` | rescan every log now, and poll the quota endpoint and proxies (when configured) |
| `p` | preview another plan (Lite → Pro → Max → configured); config is not touched |
| `c` | choose your plan and billing: writes the config file (an existing one only after a second Save) |
| `t` | show / hide the tools table |
| `?` | this help (`Esc` closes it) |
| `Ctrl+P` | command palette: the same actions, plus themes |

**Prompts left** counts *prompt-equivalents*: the larger of your prompts and model calls ÷ calls per
prompt, plus Vision MCP calls (they share the pool). Raw prompts and calls are shown beside it.

**The cycle** opens at your first request after the previous one ended and refreshes all at once
5 hours later. The badge says where the numbers come from: `local` (your tools' logs), `official`
(Z.ai's quota endpoint) or `estimate`.

**Searches** (Web Search, Web Reader, ZRead MCP) have a monthly pool that resets on your renewal day.

Tools with a pay-as-you-go base URL are flagged: those calls are billed per token, not from the plan.
"""


class HelpScreen(ModalScreen[None]):
    """Keys and a short glossary, over the dashboard."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
        #help-body {
            width: 90%;
            max-width: 96;
            height: 90%;
            border: round $primary;
            background: $surface;
            padding: 0 1;
        }
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss_help", "Close", show=True),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body"):
            yield Markdown(HELP)

    def action_dismiss_help(self) -> None:
        """Close the help screen."""
        self.dismiss(None)
