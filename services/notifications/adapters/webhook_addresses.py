"""The addresses a webhook call may go to (`domain/webhook_urls.py`): the URL's host resolved
and every address checked, then the connection made to a checked address, the host kept for
the Host header and for TLS (SNI and the certificate's name), so that a name which resolves
elsewhere between the check and the connection (DNS rebinding) cannot reach it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from services.notifications.domain.webhook_urls import (
    DEFAULT_PORTS,
    IpAddress,
    WebhookRefused,
    WebhookTarget,
    check_addresses,
    parse_address,
    webhook_target,
)

# How long a resolution may take, at registration and before each call.
RESOLVE_TIMEOUT_SECONDS = 5.0

Resolve = Callable[[str, int], Awaitable[list[IpAddress]]]


class WebhookUnresolved(Exception):
    """The host does not resolve now (a transient failure of the call)."""


async def system_resolve(host: str, port: int) -> list[IpAddress]:
    """The host's addresses as this machine's resolver gives them; WebhookUnresolved when it
    gives none in time."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError, UnicodeError):
        raise WebhookUnresolved(host) from None
    return [parse_address(str(info[4][0])) for info in found]


@dataclass(frozen=True)
class Destination:
    """Where one call goes: `url` with the checked address in place of the host, and the
    host for the Host header and TLS (None when the URL names an address or is trusted)."""

    url: str
    host_header: str | None = None
    tls_name: str | None = None

    def headers(self) -> dict[str, str]:
        return {} if self.host_header is None else {"Host": self.host_header}

    def extensions(self) -> dict[str, str]:
        return {} if self.tls_name is None else {"sni_hostname": self.tls_name}


@dataclass(frozen=True)
class WebhookGuard:
    """`allow_hosts`: the operator's trusted hosts (plain http, no address check)."""

    allow_hosts: frozenset[str] = frozenset()
    resolve: Resolve = field(default=system_resolve, repr=False)

    async def check_registration(self, url: str) -> None:
        """WebhookRefused for a URL that must not be registered: one that is not https, or
        whose host is or resolves to an address that is not public. A name that does not
        resolve now is accepted (partners register before their DNS is live): each call
        resolves and checks it again."""
        target = webhook_target(url, self.allow_hosts)
        if target.trusted or target.address is not None:
            return
        try:
            check_addresses(await self.resolve(target.host, target.port))
        except WebhookUnresolved:
            return

    async def destination(self, url: str) -> Destination:
        """Where a call to `url` goes now; WebhookRefused (permanent) or WebhookUnresolved
        (transient) instead."""
        target = webhook_target(url, self.allow_hosts)
        if target.trusted or target.address is not None:
            return Destination(url)
        (address, *_) = check_addresses(await self.resolve(target.host, target.port))
        return _to_address(url, target, address)


def _to_address(url: str, target: WebhookTarget, address: IpAddress) -> Destination:
    literal = f"[{address}]" if address.version == 6 else str(address)
    default = target.port == DEFAULT_PORTS[target.scheme]
    host_header = target.host if default else f"{target.host}:{target.port}"
    # httpx keeps the path and query as they were (the signature covers them).
    connect = httpx.URL(url).copy_with(host=literal.strip("[]"), port=target.port)
    tls_name = target.host if target.scheme == "https" else None
    return Destination(str(connect), host_header, tls_name)


__all__ = [
    "Destination",
    "Resolve",
    "WebhookGuard",
    "WebhookRefused",
    "WebhookUnresolved",
    "system_resolve",
]
