"""Start a zai-dash child that outlives its caller: no pipes, its own session.

`status` starts two such children after its line is out (the official reading's refresh and the lingering
publisher). A status bar reads `status`'s stdout to its end and may kill its process group on a timeout,
so the child holds no pipe of the caller's and is in a session of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


def start_detached(module: str, args: Sequence[str], *, pass_fds: Sequence[int] = (), what: str) -> bool:
    """Run `python -m module args…` detached; False (logged, with `what` failed) when it cannot start.

    The child inherits the environment: a key stays there, never on a command line.
    """
    import subprocess
    import sys

    try:
        subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=tuple(pass_fds),
            start_new_session=True,  # not in the caller's process group: a status bar's timeout kills only it
        )
    except OSError as exc:
        log.info("%s: %s", what, exc)
        return False
    return True
