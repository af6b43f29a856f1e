"""Official quota rows for wiring tests."""

from __future__ import annotations


def _five_hour(percent: int) -> dict[str, object]:
    import time

    from tests.support.http import envelope

    reset_ms = int((time.time() + 2 * 3600) * 1000)
    row = {"type": "TOKENS_LIMIT", "unit": 3, "number": 5, "percentage": percent, "nextResetTime": reset_ms}
    return envelope({"level": "pro", "limits": [row]})
