"""One module per subcommand; each declares a `Command` (its word, its options, how it runs).

`zai_dash.cli` builds the parser from `SUBCOMMANDS` and runs `DASHBOARD` when no command is named. A new
subcommand is one module here and one entry below. The modules import only what their options need at
module level (the engine, textual and HTTP clients inside `run`), because `status` imports them all to
parse its command line.
"""

from __future__ import annotations

from zai_dash.commands.base import Command
from zai_dash.commands.dashboard import DashboardCommand
from zai_dash.commands.doctor import DoctorCommand
from zai_dash.commands.export import ExportCommand
from zai_dash.commands.report import ReportCommand
from zai_dash.commands.serve import ServeCommand
from zai_dash.commands.status import StatusCommand

DASHBOARD: Command = DashboardCommand()
"""What `zai-dash` runs without a command word."""

SUBCOMMANDS: tuple[Command, ...] = (
    ReportCommand(),
    StatusCommand(),
    DoctorCommand(),
    ExportCommand(),
    ServeCommand(),
)
"""In the order `zai-dash --help` lists them."""
