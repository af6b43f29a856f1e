"""First run: choose the plan and billing (`c`) and write them to the config file.

Without a config every view assumes Pro on credits. The chooser writes a small, valid TOML file; an
existing file is changed only after a second confirmation, and then only its top-level `plan` and
`billing` lines (everything else is kept). The result is checked by the real config loader before it
replaces anything.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, RadioButton, RadioSet

from zai_dash.config import ConfigError, load_config
from zai_dash.domain.tariff import BILLINGS

PLANS = ("lite", "pro", "max")
"""The plans sold; a custom plan is set in the config file by hand."""

NEW_FILE_HEADER = "# zai-dash config, written by the dashboard's plan chooser (`c`). Every setting: see the README.\n"

_TOP_KEY = re.compile(r"^\s*(plan|billing)\s*=")
_TABLE = re.compile(r"^\s*\[")


def config_text(existing: str | None, plan: str, billing: str) -> str:
    """The config file's new text: a fresh file, or `existing` with its top-level plan and billing replaced.

    Args:
        existing: the file's current text, None when there is no file.
        plan: the chosen plan (`lite`, `pro`, `max`).
        billing: the chosen billing generation (`credits`, `legacy-v2`, `legacy-v1`).
    """
    chosen = f'plan = "{plan}"\nbilling = "{billing}"\n'
    if existing is None:
        return NEW_FILE_HEADER + chosen
    lines = existing.splitlines(keepends=True)
    kept: list[str] = []
    in_table = False
    for line in lines:
        in_table = in_table or bool(_TABLE.match(line))
        if not in_table and _TOP_KEY.match(line):
            continue  # replaced by the chosen lines (top-level keys only: a table's `plan` is another thing)
        kept.append(line)
    # Top-level keys must come before the first table, so the chosen lines go first.
    return chosen + "".join(kept)


def write_choice(path: Path, plan: str, billing: str, *, replace_existing: bool) -> Path:
    """Write the chosen plan and billing to `path`, checked by the config loader first.

    Raises:
        FileExistsError: `path` exists and `replace_existing` is False (ask the user first).
        ConfigError: the result would not load (e.g. a plan not sold on that billing).
    """
    existing = path.read_text(encoding="utf-8") if path.exists() else None
    if existing is not None and not replace_existing:
        raise FileExistsError(str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(config_text(existing, plan, billing))
        try:
            load_config(tmp, env={})
        except ConfigError as exc:
            raise ConfigError(str(exc).replace(str(tmp), str(path))) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class PlanChooser(ModalScreen[Path | None]):
    """Plan × billing, then Save: writes the config file and dismisses with its path (None = cancelled)."""

    DEFAULT_CSS = """
    PlanChooser { align: center middle; }
    PlanChooser > Vertical { width: auto; max-width: 100%; height: auto; border: round $accent; padding: 0 1; }
    PlanChooser Horizontal { height: auto; width: auto; }
    PlanChooser RadioSet { width: auto; margin-right: 1; }
    PlanChooser #chooser-note { color: $warning; }
    PlanChooser Button { margin-right: 1; min-width: 10; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: Path, plan: str, billing: str) -> None:
        """Args: path: the config file to write; plan, billing: what is in effect now (preselected)."""
        super().__init__()
        self.path = path
        self.plan = plan if plan in PLANS else "pro"
        self.billing = billing if billing in BILLINGS else BILLINGS[0]
        self.confirming = False
        """True once the user was told the file exists: the next Save replaces its plan and billing."""

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Your GLM Coding Plan[/b] — saved to " + str(self.path), id="chooser-path")
            with Horizontal():
                with RadioSet(id="chooser-plan"):
                    for name in PLANS:
                        yield RadioButton(name.title(), value=name == self.plan, name=name, id=f"plan-{name}")
                with RadioSet(id="chooser-billing"):
                    for name in BILLINGS:
                        yield RadioButton(name, value=name == self.billing, name=name, id=f"billing-{name}")
            yield Label("credits: plans sold since 2026-07-30; legacy-v1/v2: older prompt plans", id="chooser-help")
            yield Label("", id="chooser-note")
            with Horizontal():
                yield Button("Save", variant="primary", id="chooser-save")
                yield Button("Cancel", id="chooser-cancel")

    def on_radio_set_changed(self, event: RadioSet.Changed) -> None:
        name = event.pressed.name or ""
        if event.radio_set.id == "chooser-plan":
            self.plan = name
        else:
            self.billing = name
        self.confirming = False
        self.query_one("#chooser-note", Label).update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "chooser-cancel":
            self.dismiss(None)
        else:
            self.save()

    def save(self) -> None:
        """Write the file (an existing one only on the second Save), or say why not."""
        note = self.query_one("#chooser-note", Label)
        try:
            write_choice(self.path, self.plan, self.billing, replace_existing=self.confirming)
        except FileExistsError:
            self.confirming = True
            note.update("This file exists. Save again to replace its plan and billing lines (the rest is kept).")
            return
        except (ConfigError, OSError) as exc:
            note.update(f"Not saved: {exc}")
            return
        self.dismiss(self.path)

    def action_cancel(self) -> None:
        """Close without writing."""
        self.dismiss(None)
