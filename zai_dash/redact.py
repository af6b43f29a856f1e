"""Keep secrets out of everything zai-dash shows or writes.

API keys and proxy header values are needed to make requests and nowhere else. Anything that becomes
text a user or a file can see (error lines, `doctor`, snapshots, logs) goes through `Redactor` or
`scrub` first. At most the last four characters of a key are ever shown (`…ab12`), and only for keys
long enough that four characters give nothing away.

A server may echo the key back cut short, in the middle of a message, URL-encoded or base64-encoded,
and a message may be cut to a length after that: so any run of `MIN_FRAGMENT` or more characters of a
known secret (or of its URL-encoded or base64 forms) is masked, wherever it starts. Callers scrub
before they cut text, never after.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus, urlsplit, urlunsplit

HINT_MIN_LENGTH = 16
"""Keys shorter than this are shown as a bare `…`: four characters of a short secret are too many."""

MASK = "…"
MIN_FRAGMENT = 8
"""Any run of this many characters of a secret is masked (shorter runs say nothing about the key)."""

# Shapes of secrets worth scrubbing even when we were not told about them: a Z.ai key
# (32 hex, a dot, the secret), a bearer token, and OpenAI/LiteLLM style `sk-` keys.
_PATTERNS = (
    re.compile(r"\b[0-9a-fA-F]{32}\.[A-Za-z0-9]{8,}\b"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{8,}\b"),
    # The password of any URL in the text (`http://user:pass@proxy:3128` in a network error).
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
)


def key_hint(key: str | None) -> str:
    """The most of a key zai-dash ever shows: `…` plus its last four characters.

    Args:
        key: the secret, or None.

    Returns:
        `…last4` for a key of at least `HINT_MIN_LENGTH` characters, `…` for a shorter one, and the
        empty string when there is no key.
    """
    if not key:
        return ""
    key = key.strip()
    if len(key) < HINT_MIN_LENGTH:
        return MASK
    return MASK + key[-4:]


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Replace every known secret, and anything shaped like a key, in `text`.

    Args:
        text: any text that may be shown or stored.
        secrets: secrets known to be in play (keys, header values); each is replaced by its hint.

    Returns:
        The text with no secret left in it.
    """
    # Longest first, so a secret that contains another is replaced whole.
    for secret in sorted({s.strip() for s in secrets if s and s.strip()}, key=len, reverse=True):
        text = text.replace(secret, key_hint(secret))
        # A `Bearer <key>` header value may be quoted without its prefix, and vice versa.
        if secret.lower().startswith("bearer "):
            bare = secret[7:].strip()
            if bare:
                text = text.replace(bare, key_hint(bare))
    for secret in {s.strip() for s in secrets if s and s.strip()}:
        for variant in _variants(secret):
            text = _mask_fragments(text, variant)
    for pattern in _PATTERNS:
        text = pattern.sub(_pattern_mask, text)
    return text


def _variants(secret: str) -> set[str]:
    """The secret and the forms it may be echoed in: URL-encoded, and base64 at each byte alignment.

    A base64 encoding of text that contains the key holds, as a substring, the encoding of the key
    from one of its first three bytes on (whichever starts a 3-byte group); the last group is left
    out because it mixes in the bytes that follow.
    """
    found = {secret, quote(secret, safe=""), quote_plus(secret)}
    raw = secret.encode()
    for start in range(3):
        part = raw[start:]
        whole = part[: len(part) - len(part) % 3]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            found.add(encode(whole).decode())
    return {v for v in found if len(v) >= MIN_FRAGMENT}


def _mask_fragments(text: str, secret: str) -> str:
    """Mask every run of `MIN_FRAGMENT`+ characters of `text` that is also a run of `secret`."""
    if len(text) < MIN_FRAGMENT:
        return text
    grams = {secret[i : i + MIN_FRAGMENT] for i in range(len(secret) - MIN_FRAGMENT + 1)}
    covered = [False] * len(text)
    hit = False
    for i in range(len(text) - MIN_FRAGMENT + 1):
        if text[i : i + MIN_FRAGMENT] in grams:
            covered[i : i + MIN_FRAGMENT] = [True] * MIN_FRAGMENT
            hit = True
    if not hit:
        return text
    out: list[str] = []
    for i, ch in enumerate(text):
        if not covered[i]:
            out.append(ch)
        elif i == 0 or not covered[i - 1]:
            out.append(MASK)
    return "".join(out)


def _pattern_mask(match: re.Match[str]) -> str:
    if match.lastindex:  # the bearer pattern keeps its scheme word
        return f"{match.group(1)} {MASK}"
    return MASK


class Redactor:
    """Remembers the secrets in play and scrubs them from any text.

    A source registers its key and header values once; every message it produces passes through
    the redactor, so an exception string that echoes a header cannot leak it.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: set[str] = set()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Remember a secret (ignored when empty)."""
        if secret and secret.strip():
            self._secrets.add(secret.strip())

    def __call__(self, text: str) -> str:
        """Scrub `text`."""
        return scrub(text, self._secrets)


def redact_url(url: str) -> str:
    """A URL safe to show: user info and query string removed (either may carry a token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names with every value masked: what `doctor` may print about configured headers."""
    return dict.fromkeys(headers, MASK)
