"""A credits-plan snapshot with a known history, for the chart series and the charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.windows import call, ledger, snapshot
from zai_dash.domain.snapshot import Snapshot

# Thursday 2026-11-26: peak hours are 14:00–18:00 UTC+8, i.e. 06:00–10:00 UTC.
OPENED = datetime(2026, 11, 26, 8, 5, tzinfo=UTC)


AT = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)


def credit_snapshot() -> Snapshot:
    """A credits-plan window opened at 08:05 UTC with one GLM-5.3 call every 10 minutes up to 10:55."""
    return snapshot(ledger([call(OPENED + timedelta(minutes=10 * i), f"c{i}") for i in range(18)]), AT)
