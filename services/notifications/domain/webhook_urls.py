"""Where a partner's webhook may point (issue 19: no SSRF). Pure Python: no I/O.

This service calls the URL an admin registers, from inside the deployment: a URL at
127.0.0.1, [::1], 0.0.0.0, 10.x, 169.254.169.254 (a cloud's metadata) or any other address
that is not global would make it a proxy into the private network. So a webhook URL is
`https` (plain `http` only for a host on the operator's allow-list), and its host must be (or
resolve to) global unicast addresses only: checked at registration, and again at every call
after resolution (a name may resolve elsewhere by then: DNS rebinding), the call then going
to the address that was checked. The operator's allow-list
(`FEDELTA_NOTIFICATIONS_WEBHOOK_ALLOW_HOSTS`, empty by default) names hosts trusted as they
are, for the local stack's and tests' own receivers: plain http, and no address check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"https": 443, "http": 80}


class WebhookRefused(Exception):
    """A webhook URL this service must not call; `reason` says why, naming no address."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebhookTarget:
    """A webhook URL taken apart: `host` lowercase, without brackets; `address` when the host
    is an IP literal; `trusted` when the host is on the allow-list."""

    scheme: str
    host: str
    port: int
    address: IpAddress | None
    trusted: bool


def allow_hosts_of(setting: str) -> frozenset[str]:
    """The allow-list setting (hosts separated by commas) as lowercase hosts, IPv6 without
    brackets."""
    return frozenset(
        host.strip().lower().strip("[]") for host in setting.split(",") if host.strip()
    )


def webhook_target(url: str, allow_hosts: frozenset[str]) -> WebhookTarget:
    """The URL's scheme, host and port; WebhookRefused for a URL this service must not
    call whatever its host resolves to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRefused("the URL's host or port is malformed") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise WebhookRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("the URL must not carry credentials before its host")
    trusted = host in allow_hosts
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and trusted):
        raise WebhookRefused("the URL must be https (plain http only for an allow-listed host)")
    address = _literal(host)
    target = WebhookTarget(scheme, host, port or DEFAULT_PORTS[scheme], address, trusted)
    if address is not None and not trusted:
        check_addresses([address])
    return target


def refusal_of(address: IpAddress) -> str | None:
    """Why this service must not call `address`, or None for a global unicast address."""
    embedded = _embedded_ipv4(address)
    # ::ffff:127.0.0.1 is 127.0.0.1; NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach theirs.
    if embedded is not None and (reason := refusal_of(embedded)) is not None:
        return reason
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address (0.0.0.0, ::)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (169.254.0.0/16, fe80::/10: metadata services live there)"
    if address.is_private:
        return "a private address (RFC 1918, fc00::/7 and other non-public ranges)"
    if not address.is_global:
        return "an address that is not public"
    return None


def check_addresses(addresses: Iterable[IpAddress]) -> list[IpAddress]:
    """Every address, when each is global unicast; WebhookRefused otherwise (a name that
    resolves to one public and one private address is refused: the connection could take
    either). An empty list is refused too."""
    checked = list(addresses)
    if not checked:
        raise WebhookRefused("the URL's host resolves to no address")
    for address in checked:
        reason = refusal_of(address)
        if reason is not None:
            raise WebhookRefused(f"the URL's host is or resolves to {reason}")
    return checked


def parse_address(text: str) -> IpAddress:
    """An address as a resolver gives it (an IPv6 one may carry a `%zone`)."""
    return ipaddress.ip_address(text.partition("%")[0])


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None  # a name (or a form only a resolver reads, such as 127.1: resolved)
