"""`python -m zai_dash.ui.screenshots DIR`: README screenshots from the demo data at a fixed clock.

Writes `dashboard-120x36.svg`, `dashboard-80x24.svg`, `dashboard-50x15.svg` (a tmux pane) and
`dashboard-40x12.svg` into DIR, with the demo's credits plan.
The demo history is written into a temp HOME, read by the real engine, and rendered by the real app,
all at one fixed instant and in UTC, so the SVGs only change when the code does.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from zai_dash.clock import FixedClock

AT = datetime(2026, 11, 26, 14, 13, 0, tzinfo=timezone.utc)
"""The instant every screenshot shows."""
SIZES: tuple[tuple[int, int], ...] = ((120, 36), (80, 24), (50, 15), (40, 12))
THEME = "textual-dark"


async def _shoot(out: Path, home: Path, size: tuple[int, int]) -> Path:
    from zai_dash.config import Config
    from zai_dash.engine import Engine
    from zai_dash.sources.base import SourceContext
    from zai_dash.ui.app import DashApp

    clock = FixedClock(AT)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
    }
    ctx = SourceContext(home=home, env=env, clock=clock.now)
    engine = Engine(Config(timezone="UTC"), ctx=ctx, clock=clock, demo=True)
    engine.publish_state = False
    engine.scan()
    app = DashApp(
        clock=clock,
        demo=True,
        theme=THEME,
        tz=timezone.utc,
        state_file=home / "state.json",
        tariff=engine.config.tariff,
        ascii_only=False,  # the README shows the Unicode charts whatever the locale they are made in
    )
    name = f"dashboard-{size[0]}x{size[1]}.svg"
    async with app.run_test(size=size) as pilot:
        app.show(engine.snapshot())
        await pilot.pause()
        app.save_screenshot(filename=name, path=str(out))
    return out / name


def write_screenshots(out: Path) -> list[Path]:
    """Render every size into `out`; returns the files written."""
    from zai_dash.demo.history import write_demo_history

    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="zai-dash-shots-"))
    try:
        write_demo_history(home, AT)
        return [asyncio.run(_shoot(out, home, size)) for size in SIZES]
    finally:
        shutil.rmtree(home, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: one argument, the output directory (default `screenshots`)."""
    args = sys.argv[1:] if argv is None else argv
    for path in write_screenshots(Path(args[0] if args else "screenshots")):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
