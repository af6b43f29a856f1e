"""Z.ai usage-limit refusals, read from whatever error text a tool kept: the code → `LimitHit` rule.

Z.ai refuses a request over the plan's quota with HTTP 429 and a business code (1308 for the 5-hour
window, 1310 for the weekly one, …) whose message names the reset time as UTC+8 wall-clock time
without a zone: `{"error":{"code":"1308","message":"Usage limit reached for 5 hour. Your limit will
reset at 2026-12-02 13:00:00"}}` (zai-quota-api.md §11). Tools keep that body, or parts of it, in
different places (Claude Code's `api_error` records, OpenCode's assistant `error`, Droid's error
message, Pi's `errorMessage`, …); each adapter hands the text it found to `limit_hit`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from zai_dash.domain.events import LimitHit

LIMIT_CODES = frozenset({1308, 1310, 1316, 1317, 1318, 1319, 1320, 1321})
"""Z.ai business codes for "usage limit reached, resets at …" (zai-quota-api.md §11)."""
# A code only counts inside `"code":"1308"`, `"type":"1308"` (Anthropic-style envelope) or `[1308]`,
# never as bare digits, which also occur inside request ids.
_CODE_RE = re.compile(r'(?:"(?:code|type)"\s*:\s*"?|\[)(13\d\d)(?!\d)')
_RESET_RE = re.compile(r"(?:reset at|将在)\s*(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})")
ZAI_ZONE = timezone(timedelta(hours=8))
"""Z.ai writes the reset time as UTC+8 wall-clock time without a zone."""

DEFAULT_TOOL = "claude-code"
"""The tool id `limit_hit` stamps when none is given: it was Claude Code's rule first, and the adapters that
still take it from there replace the id themselves."""


def limit_hit(text: str, ts: datetime, tool: str = DEFAULT_TOOL) -> LimitHit | None:
    """A LimitHit from an API-error entry's text, or None when it is not a Z.ai usage-limit error.

    Recognised: a limit code (`LIMIT_CODES`) in `"code":"1308"`, `"type":"1308"` or `[1308]` form, and/or
    "reset at YYYY-MM-DD HH:MM:SS" (or the Chinese "将在 … 重置"), read as UTC+8. JSON escaped once
    inside a string (`\\"code\\":\\"1308\\"`, a response body kept as text) is read as well.

    Args:
        text: the error's text as the tool kept it (a message, or a JSON document of the error).
        ts: when the tool logged the error.
        tool: the tool id the hit is for.
    """
    if not text:
        return None
    flat = text.replace('\\"', '"')
    code: int | None = None
    for match in _CODE_RE.finditer(flat):
        value = int(match.group(1))
        if value in LIMIT_CODES:
            code = value
            break
    reset = _RESET_RE.search(flat)
    if code is None and reset is None:
        return None
    reset_at: datetime | None = None
    if reset is not None:
        try:
            reset_at = datetime.fromisoformat(f"{reset.group(1)}T{reset.group(2)}").replace(tzinfo=ZAI_ZONE)
            reset_at = reset_at.astimezone(timezone.utc)
        except ValueError:
            reset_at = None
    return LimitHit(ts=ts, tool=tool, code=code, reset_at=reset_at)


__all__ = ["LIMIT_CODES", "ZAI_ZONE", "limit_hit"]
