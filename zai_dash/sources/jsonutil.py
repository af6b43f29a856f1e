"""Small shared helpers for turning JSON records into domain values."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from zai_dash.domain.bounds import MAX_TOKENS, epoch_in_range, instant_in_range

loads: Callable[[bytes | str], Any] = orjson.loads
"""The fast JSON parser; raises `orjson.JSONDecodeError` (a `ValueError`)."""

_Z_PARSES = sys.version_info >= (3, 11)
"""Whether `datetime.fromisoformat` reads a trailing `Z` (3.11+)."""

FUTURE_SLACK = timedelta(days=1)
"""Timestamps further than this past the wall clock are rejected as bogus."""


class BadTimestamp(ValueError):
    """A timestamp that cannot be placed in time; the message is the skip reason."""


def parse_iso(value: object, wall_now: datetime | None = None) -> datetime:
    """Parse an ISO 8601 timestamp that carries a zone (`Z` or an offset) into aware UTC.

    Raises:
        BadTimestamp: not a string, not ISO 8601, no zone, or far in the future.
    """
    if not isinstance(value, str):
        raise BadTimestamp("timestamp missing or not a string")
    if _Z_PARSES and value[-1:] == "Z":
        # The hot path of a history scan (`…T12:34:56.789Z`): Python 3.11+ reads the `Z` itself as UTC,
        # the same instant and zone the general path below arrives at, without its string copies.
        try:
            ts = datetime.fromisoformat(value)
        except ValueError:
            pass  # spaces around it, or not ISO at all: the general path decides
        else:
            if ts.tzinfo is timezone.utc:
                return _check_future(ts, wall_now)
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise BadTimestamp("timestamp not ISO 8601") from None
    if ts.tzinfo is None:
        raise BadTimestamp("timestamp without timezone")
    try:
        ts = ts.astimezone(timezone.utc)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is past datetime.max in UTC
        raise BadTimestamp("timestamp out of range") from None
    return _check_future(ts, wall_now)


def record_time(
    rec: dict[str, Any],
    where: str,
    skip: Callable[[str, str], None],
    wall_now: datetime | None,
    since: datetime | None,
) -> datetime | None:
    """A record's `timestamp` (aware UTC), or None when it is bad (counted through `skip`) or before `since`."""
    try:
        ts = parse_iso(rec.get("timestamp"), wall_now)
    except BadTimestamp as exc:
        skip(str(exc), where)
        return None
    if since is not None and ts < since:
        return None
    return ts


def from_epoch(value: object, wall_now: datetime | None = None, unit: float = 1.0) -> datetime:
    """Parse an epoch number (seconds × `unit`, e.g. `unit=1000` for milliseconds) into aware UTC.

    Raises:
        BadTimestamp: not a number, or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadTimestamp("timestamp missing or not a number")
    try:
        seconds = value / unit
    except OverflowError:  # an int too large for a float
        raise BadTimestamp("timestamp out of range") from None
    if not epoch_in_range(seconds):  # NaN, infinities, year 1 or 9999
        raise BadTimestamp("timestamp out of range")
    try:
        ts = datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadTimestamp("timestamp out of range") from None
    return _check_future(ts, wall_now)


def _check_future(ts: datetime, wall_now: datetime | None) -> datetime:
    if not instant_in_range(ts):
        raise BadTimestamp("timestamp out of range")
    if wall_now is not None and ts > wall_now + FUTURE_SLACK:
        raise BadTimestamp("timestamp far in the future")
    return ts


_MODEL_PREFIXES = ("zai-coding-plan/", "zai/", "z-ai/", "zhipuai/", "custom:", "openai/", "anthropic/")


def normalise_model(model: object) -> str | None:
    """Lower-case a model id and strip provider prefixes, so `zai/GLM-4.6` = `glm-4.6`."""
    if not isinstance(model, str):
        return None
    text = model.strip().lower()
    changed = True
    while changed:
        changed = False
        for prefix in _MODEL_PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix) :]
                changed = True
    return text or None


def int_field(value: object) -> int:
    """An integer token count, or 0 for anything that is not a number in `[0, MAX_TOKENS)`.

    NaN, infinities and counts at or above `domain.bounds.MAX_TOKENS` (`1e20`) are 0, never a number
    that overflows the cache encoder or the sums.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if not 0 <= value < MAX_TOKENS:  # False for NaN too
        return 0
    return int(value)
