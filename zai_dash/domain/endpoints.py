"""Classify a tool's configured base URL: does it draw on the Coding Plan or on pay-as-you-go?"""

from __future__ import annotations

import enum
import ipaddress
from urllib.parse import urlsplit

ZAI_HOSTS = ("api.z.ai", "open.bigmodel.cn")
"""Z.ai's international and mainland-China API hosts."""


class EndpointKind(str, enum.Enum):
    """Where a base URL sends requests."""

    CODING = "coding-plan"
    """`/api/coding/paas/v4` or `/api/anthropic`: counts against the 5-hour quota."""
    PAYG = "pay-as-you-go"
    """`/api/paas/v4`: Z.ai's general API, billed per token, not drawn from the plan."""
    OTHER = "other"
    """Not a Z.ai URL (a proxy, another vendor)."""


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address) reaches only this machine: `localhost`, 127.0.0.0/8, `::1`."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def classify_base_url(url: str) -> EndpointKind:
    """Classify a base URL by host and path (docs.z.ai devpack quick-start)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return EndpointKind.OTHER
    host = (parts.hostname or "").lower()
    path = parts.path.rstrip("/").lower()
    if host not in ZAI_HOSTS:
        return EndpointKind.OTHER
    if path.startswith("/api/coding/paas") or path.startswith("/api/anthropic"):
        return EndpointKind.CODING
    if path.startswith("/api/paas"):
        return EndpointKind.PAYG
    return EndpointKind.OTHER


def endpoint_warning(kind: EndpointKind | None) -> str | None:
    """The one-line warning a view shows for an endpoint, or None."""
    if kind is EndpointKind.PAYG:
        return "pay-as-you-go endpoint: these calls do not draw on the Coding Plan"
    return None
