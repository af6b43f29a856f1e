"""A quota source over a loopback server."""

from __future__ import annotations

import random
from pathlib import Path

from tests.support.env import FIXED_NOW
from tests.support.http import (
    FAKE_KEY,
    refused_port,
)
from zai_dash.clock import FixedClock
from zai_dash.sources.base import SourceContext
from zai_dash.sources.zai_quota import QuotaSettings, ZaiQuotaSource


def _ctx(home: Path, env: dict[str, str], clock: FixedClock | None = None) -> SourceContext:
    return SourceContext(home=home, env=env, clock=(clock or FixedClock(FIXED_NOW)).now)


def _source(
    home: Path,
    base: str,
    *,
    other: str | None = None,
    timeout: float = 5.0,
    clock: FixedClock | None = None,
    env: dict[str, str] | None = None,
    use_base_url: bool = False,
) -> ZaiQuotaSource:
    settings = QuotaSettings(
        enabled=True, timeout=timeout, interval=60, base_url=base if use_base_url else None, region="intl"
    )
    hosts = {"intl": base, "cn": other or f"http://127.0.0.1:{refused_port()}"}
    return ZaiQuotaSource(
        settings,
        _ctx(home, {"ZAI_API_KEY": FAKE_KEY} if env is None else env, clock),
        hosts=hosts,
        rng=random.Random(1),
    )
