"""The lingering publisher: with no dashboard running, `status` keeps a headless engine publishing for itself.

A status bar runs `zai-dash status` every few seconds; with no dashboard each call would pay for the
whole scan path (the config, the engine, every adapter, the cache). So the first such call, once its
line is printed, starts `python -m zai_dash.publisher` detached (its own session, no terminal, no pipe
the caller waits on): the engine watching and publishing the state file as `zai-dash export` does,
without the HTTP exporter. The next calls find its fresh state file and answer from it
(`statusline.fast_status`).

At most one runs per state file: the lock file beside it (`statefile.PUBLISHER_LOCK`) is `flock`ed by the
`status` that starts it and handed to the child, so two status calls at once cannot start two (the
second finds the lock taken), and the kernel releases it however the publisher ends. It exits on its
own (checked every `CHECK_EVERY` seconds) when:

- no `status` read its state file for `linger` seconds (each fast `status` touches the lock file's
  mtime; default `LINGER` = 10 min, `$ZAI_DASH_PUBLISHER_LINGER` sets seconds);
- its raw inputs changed (`statefile.inputs_digest`: the config file edited, ...): the next `status`
  starts one with the new config;
- its state directory or its lock file is gone (a temp home removed after a test);
- another live process publishes the state file (a dashboard or `export` started meanwhile).

`[status] publisher = false` in the config, or `ZAI_DASH_PUBLISHER=0` in the environment, keeps `status`
from starting one (the test suite sets the variable).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from zai_dash import statefile
from zai_dash.detached import start_detached

log = logging.getLogger(__name__)

MODULE = "zai_dash.publisher"
"""What `start_in_background` runs with `python -m` (this module's `main`)."""
SWITCH_ENV = "ZAI_DASH_PUBLISHER"
"""`0` (or `off`, `false`, `no`): `status` starts no publisher, whatever the config says."""
LINGER_ENV = "ZAI_DASH_PUBLISHER_LINGER"
"""Seconds the publisher waits for the next `status` before it exits (tests set a short one)."""
LINGER = 600.0
"""Default linger: 10 minutes without a `status` reading the state file."""
CHECK_EVERY = 2.0
"""Seconds between the publisher's checks of its exit conditions (each a few stats and a small read)."""


def switched_off(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment turns the publisher off (`ZAI_DASH_PUBLISHER=0`)."""
    env = os.environ if env is None else env
    return env.get(SWITCH_ENV, "").strip().lower() in ("0", "off", "false", "no")


def linger_seconds(env: Mapping[str, str] | None = None) -> float:
    """`$ZAI_DASH_PUBLISHER_LINGER` (seconds, > 0), else `LINGER`."""
    env = os.environ if env is None else env
    try:
        value = float(env.get(LINGER_ENV, ""))
    except ValueError:
        return LINGER
    return value if value > 0 else LINGER


def _open_lock(lock: str) -> int | None:
    """The lock file, opened and `flock`ed exclusively, or None when another process holds it."""
    os.makedirs(os.path.dirname(lock), exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The lock file is never removed by us; one removed (and made again) between our open and our
        # flock would be a lock nobody else sees, so the path must still name the file we hold.
        if os.stat(lock).st_ino != os.fstat(fd).st_ino:
            raise BlockingIOError
    except OSError:
        os.close(fd)
        return None
    return fd


def start_in_background(state_path: Path, config_arg: Path | None, plan: str | None) -> bool:
    """Start one detached publisher for `state_path` unless one runs; return at once.

    The lock is taken here and handed to the child (`pass_fds`), so there is no moment where a second
    `status` could start another. The child inherits the environment and has no pipe the caller waits on.

    Args:
        state_path: the state file it is to publish (the lock file sits beside it).
        config_arg: `--config` as given to `status` (made absolute: the child's cwd may differ).
        plan: `--plan` as given.

    Returns:
        Whether a publisher was started.
    """
    try:
        fd = _open_lock(statefile.publisher_lock(state_path))
    except OSError as exc:
        log.info("no publisher: %s", exc)
        return False
    if fd is None:
        return False  # one runs already (or another status is starting it)
    args = ["--lock-fd", str(fd)]
    if config_arg is not None:
        args += ["--config", os.path.abspath(config_arg)]
    if plan:
        args += ["--plan", plan]
    try:
        return start_detached(MODULE, args, pass_fds=(fd,), what="no publisher")
    finally:
        os.close(fd)  # the child holds the lock now (or nobody does, if it did not start)


def info(state_path: Path | None = None) -> dict[str, Any] | None:
    """The running publisher of `state_path`: `pid`, `started` and `last_read` (epoch seconds), else None.

    For `doctor`. Whether one runs is the lock's answer (a shared lock cannot be had while it is held),
    not a pid that may have been reused.
    """
    lock = statefile.publisher_lock(state_path)
    try:
        fd = os.open(lock, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # held: a publisher runs
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        raw = os.pread(fd, 4096, 0)
        mtime = os.fstat(fd).st_mtime
    finally:
        os.close(fd)
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return {"pid": doc.get("pid"), "started": doc.get("started"), "last_read": mtime}


class _Watchdog:
    """The publisher's exit conditions, checked every `CHECK_EVERY` seconds."""

    def __init__(self, fd: int, lock: str, state_path: Path, digest: str, inputs: tuple[str | None, str | None]):
        self.fd, self.lock, self.state_path = fd, lock, state_path
        self.digest, self.inputs = digest, inputs
        self.linger = linger_seconds()
        self.reason: str | None = None

    def should_stop(self) -> str | None:
        """Why to stop now, or None."""
        from zai_dash.clock import seconds_since_mtime

        try:
            held = os.fstat(self.fd)
            if not os.path.isdir(os.path.dirname(self.lock)) or os.stat(self.lock).st_ino != held.st_ino:
                return "its state directory or lock file is gone"
        except OSError:
            return "its state directory or lock file is gone"
        if seconds_since_mtime(held.st_mtime) > self.linger:
            return f"no status read its state file for {self.linger:g} s"
        if statefile.inputs_digest(*self.inputs) != self.digest:
            return "its inputs changed (the config file, the environment)"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            from zai_dash.safeio import STATE_MAX_BYTES, read_capped

            pid = int(json.loads(read_capped(self.state_path, STATE_MAX_BYTES))["pid"])
            if pid != os.getpid() and statefile._alive(pid):
                return f"another process (pid {pid}) publishes the state file"
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zai_dash.publisher [--config PATH] [--plan NAME] [--lock-fd N]`: publish until idle.

    With `--lock-fd` it holds the lock its starter took; without, it takes the lock itself (and exits
    at once when a publisher already runs).
    """
    import argparse
    import asyncio
    import signal
    from dataclasses import replace

    from zai_dash.config import ConfigError, load_config
    from zai_dash.paths import dashboard_state_file
    from zai_dash.sources.tools import registered_tool_ids

    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}", description=main.__doc__)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--plan")
    parser.add_argument("--lock-fd", type=int)
    args = parser.parse_args(argv)
    state_path = dashboard_state_file()
    lock = statefile.publisher_lock(state_path)
    fd = args.lock_fd if args.lock_fd is not None else _open_lock(lock)
    if fd is None:
        return 0  # another publisher runs
    inputs = (None if args.config is None else str(args.config), args.plan)
    digest = statefile.inputs_digest(*inputs)  # before the file is read, as the CLI does
    try:
        config = load_config(args.config, known_tools=registered_tool_ids)
        if args.plan:
            if args.plan.lower() not in config.plans:
                return 2
            config = replace(config, plan=config.plans[args.plan.lower()], plan_explicit=True)
    except ConfigError:
        return 2
    if digest is None or not config.status.publisher or switched_off():
        return 0
    statefile.note_inputs(digest, config)
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps({"pid": os.getpid(), "started": _now_epoch()}).encode(), 0)  # also: read just now
    watchdog = _Watchdog(fd, lock, state_path, digest, inputs)

    from zai_dash.engine import Engine

    engine = Engine(config, use_cache=True)
    engine.scan()

    async def follow() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, stop.set)

        async def guard() -> None:
            while not stop.is_set():
                await asyncio.sleep(CHECK_EVERY)
                watchdog.reason = watchdog.should_stop()
                if watchdog.reason:
                    stop.set()

        task = asyncio.ensure_future(guard())
        try:
            async for _snap in engine.watch(stop):
                pass
        finally:
            task.cancel()

    asyncio.run(follow())
    log.info("publisher %d exits: %s", os.getpid(), watchdog.reason or "signalled")
    return 0


def _now_epoch() -> float:
    from zai_dash.clock import SYSTEM_CLOCK

    return SYSTEM_CLOCK.now().timestamp()


if __name__ == "__main__":
    raise SystemExit(main())
