"""Issue 19, webhook SSRF: a webhook URL is https (plain http only for an allow-listed host)
and its host is, or resolves to, public addresses only; refused at registration (a 422 naming
`url`) and again at every call after resolution, the call then going to the checked address
(DNS rebinding); a failed call is named by its class only."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifications.adapters.http_channels import (
    HttpDeliveryError,
    HttpWebhookSender,
    OutgoingWebhook,
)
from services.notifications.adapters.webhook_addresses import WebhookGuard, system_resolve
from services.notifications.api.schemas import WebhookIn
from services.notifications.domain.webhook_urls import (
    WebhookRefused,
    allow_hosts_of,
    refusal_of,
    webhook_target,
)
from services.notifications.usecases.partners import register_webhook
from shared.clock import FixedClock
from shared.web.auth import SIGNATURE_HEADER, verify_signature
from shared.web.problems import Problem
from tests.support.fakes.webhook_dns import PUBLIC, FakeResolver

NOW = datetime(2026, 11, 22, 10, 15, tzinfo=UTC)
NONE: frozenset[str] = frozenset()

REFUSED_HOSTS = [
    "127.0.0.1",
    "127.8.9.10",
    "[::1]",
    "0.0.0.0",  # noqa: S104 (a URL refused, nothing bound)
    "[::]",
    "169.254.169.254",  # a cloud's metadata service
    "[fe80::1]",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "[fc00::1]",
    "[fd12:3456::1]",
    "224.0.0.1",
    "[ff02::1]",
    "100.64.0.1",  # shared address space (carrier NAT)
    "[::ffff:127.0.0.1]",  # loopback, mapped
    "[64:ff9b::a9fe:a9fe]",  # 169.254.169.254 through NAT64
    "[2002:7f00:1::1]",  # 127.0.0.1 through 6to4
    "192.0.2.1",  # documentation
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_a_url_naming_a_non_public_address_is_refused(host: str) -> None:
    with pytest.raises(WebhookRefused, match="is or resolves to"):
        webhook_target(f"https://{host}:8443/hook", NONE)


@pytest.mark.parametrize(
    "url",
    [
        "http://partner.example.com/hook",  # plain http
        "ftp://partner.example.com/hook",
        "https://user:pw@partner.example.com/hook",
        "https:///hook",
        "https://partner.example.com:99999/hook",
    ],
)
def test_a_url_that_is_not_plain_https_to_a_host_is_refused(url: str) -> None:
    with pytest.raises(WebhookRefused):
        webhook_target(url, NONE)


def test_a_public_https_url_is_taken_apart() -> None:
    target = webhook_target("https://Partner.Example.com/hook?x=1", NONE)
    assert (target.scheme, target.host, target.port, target.address, target.trusted) == (
        "https",
        "partner.example.com",
        443,
        None,
        False,
    )
    assert webhook_target(f"https://{PUBLIC}/h", NONE).address == ipaddress.ip_address(PUBLIC)


def test_the_allow_list_lets_its_hosts_use_http_and_any_address() -> None:
    allowed = allow_hosts_of(" 127.0.0.1, LocalHost ,[::1],")
    assert allowed == frozenset({"127.0.0.1", "localhost", "::1"})
    assert webhook_target("http://127.0.0.1:9000/hook", allowed).trusted
    assert webhook_target("http://[::1]:9000/hook", allowed).trusted
    with pytest.raises(WebhookRefused):
        webhook_target("http://127.0.0.2:9000/hook", allowed)
    assert allow_hosts_of("") == frozenset()


@given(
    st.one_of(
        st.ip_addresses(network="127.0.0.0/8"),
        st.ip_addresses(network="10.0.0.0/8"),
        st.ip_addresses(network="172.16.0.0/12"),
        st.ip_addresses(network="192.168.0.0/16"),
        st.ip_addresses(network="169.254.0.0/16"),
        st.ip_addresses(network="224.0.0.0/4"),
        st.ip_addresses(network="fe80::/10"),
        st.ip_addresses(network="fc00::/7"),
        st.ip_addresses(network="ff00::/8"),
        st.ip_addresses(network="::ffff:0:0/96").filter(
            lambda a: not ipaddress.ip_address(int(a) & 0xFFFFFFFF).is_global
        ),
    )
)
def test_every_address_of_a_non_public_range_is_refused(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert refusal_of(address) is not None


# Registration and calls, with a resolver answering from a table


def guard(answers: dict[str, list[list[str]]], allow: str = "") -> WebhookGuard:
    return WebhookGuard(allow_hosts=allow_hosts_of(allow), resolve=FakeResolver(answers))


@pytest.mark.parametrize(
    "addresses",
    [["127.0.0.1"], ["169.254.169.254"], [PUBLIC, "10.0.0.5"], ["::1"], []],
)
async def test_a_name_resolving_to_any_non_public_address_is_refused_at_registration(
    addresses: list[str],
) -> None:
    checker = guard({"evil.example.com": [addresses]})
    with pytest.raises(WebhookRefused):
        await checker.check_registration("https://evil.example.com/hook")


async def test_a_name_that_does_not_resolve_yet_is_registered_and_checked_at_each_call() -> None:
    await guard({}).check_registration("https://not-live-yet.example.com/hook")
    await guard({"ok.example.com": [[PUBLIC]]}).check_registration("https://ok.example.com/h")


async def test_localhost_is_refused_through_the_systems_resolver() -> None:
    addresses = await system_resolve("localhost", 443)
    assert addresses
    with pytest.raises(WebhookRefused):
        await WebhookGuard().check_registration("https://localhost/hook")


async def test_registration_answers_422_naming_the_url_before_storing_anything() -> None:
    body = WebhookIn(url="https://169.254.169.254/latest/meta-data")
    with pytest.raises(Problem) as refused:
        # No engine: a refused URL never reaches the database.
        await register_webhook(None, "p-1", body, FixedClock(NOW), WebhookGuard())  # type: ignore[arg-type]
    assert refused.value.status == 422
    assert refused.value.detail.startswith("url: ")
    assert refused.value.extra["errors"][0]["loc"] == ["body", "url"]


class Receiver:
    def __init__(self, error: Exception | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.error = error

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return httpx.Response(204)


def call(url: str = "https://hooks.partner.example.com:8443/in?src=fedelta") -> OutgoingWebhook:
    return OutgoingWebhook(notification_id="n-1", url=url, secret="s" * 20, payload={"a": 1})


def sender(receiver: Receiver, checker: WebhookGuard) -> HttpWebhookSender:
    return HttpWebhookSender(
        FixedClock(NOW), transport=httpx.MockTransport(receiver), guard=checker
    )


async def test_the_call_goes_to_the_checked_address_with_the_host_for_http_and_tls() -> None:
    receiver = Receiver()
    resolver = FakeResolver({"hooks.partner.example.com": [[PUBLIC]]})
    await sender(receiver, WebhookGuard(resolve=resolver)).send(call())

    (request,) = receiver.requests
    assert (request.url.host, request.url.port) == (PUBLIC, 8443)
    assert request.headers["host"] == "hooks.partner.example.com:8443"
    assert request.extensions["sni_hostname"] == "hooks.partner.example.com"
    assert request.url.raw_path == b"/in?src=fedelta"
    verify_signature(
        "s" * 20, request.headers[SIGNATURE_HEADER], "POST", "/in?src=fedelta", request.content, NOW
    )
    assert json.loads(request.content) == {"a": 1}
    assert resolver.asked == [("hooks.partner.example.com", 8443)]


async def test_a_name_rebound_to_a_private_address_is_refused_at_the_call_for_good() -> None:
    receiver = Receiver()
    rebinding = guard({"hooks.partner.example.com": [[PUBLIC], ["169.254.169.254"]]})
    webhooks = sender(receiver, rebinding)
    await webhooks.send(call())
    with pytest.raises(HttpDeliveryError) as raised:
        await webhooks.send(call())
    assert (raised.value.reason, raised.value.permanent) == ("refused", True)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1/hook", "https://[::1]:8080/hook", "http://hooks.partner.example.com/"],
)
async def test_a_stored_url_that_must_not_be_called_is_refused_without_a_connection(
    url: str,
) -> None:
    receiver = Receiver()
    with pytest.raises(HttpDeliveryError) as raised:
        await sender(receiver, guard({"hooks.partner.example.com": [[PUBLIC]]})).send(call(url))
    assert (raised.value.reason, raised.value.permanent) == ("refused", True)
    assert receiver.requests == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "unreachable"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response"),
            "unreachable",
        ),
        (httpx.ReadError("connection reset"), "unreachable"),
        (httpx.ConnectTimeout("timed out"), "timeout"),
        (httpx.ReadTimeout("timed out"), "timeout"),
    ],
)
async def test_a_failed_call_is_named_by_its_class_only(error: Exception, reason: str) -> None:
    # A closed port (refused) and an open one that does not speak HTTP (a protocol error)
    # must look the same in the delivery log.
    checker = guard({"hooks.partner.example.com": [[PUBLIC]]})
    with pytest.raises(HttpDeliveryError) as raised:
        await sender(Receiver(error), checker).send(call())
    assert (raised.value.reason, raised.value.permanent) == (reason, False)


async def test_a_name_that_does_not_resolve_at_the_call_is_unreachable_and_retried() -> None:
    with pytest.raises(HttpDeliveryError) as raised:
        await sender(Receiver(), guard({})).send(call())
    assert (raised.value.reason, raised.value.permanent) == ("unreachable", False)


async def test_an_allow_listed_receiver_is_called_as_it_is() -> None:
    receiver = Receiver()
    local = guard({}, allow="127.0.0.1")
    await sender(receiver, local).send(call("http://127.0.0.1:9000/hooks/p?x=1"))
    (request,) = receiver.requests
    assert (request.url.host, request.url.port, request.headers["host"]) == (
        "127.0.0.1",
        9000,
        "127.0.0.1:9000",
    )
