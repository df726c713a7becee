"""The wallet's sign-in link by email (issue 22, product §10): the `sign_in` template in the
four languages, the members behind an address, the link sealed while it waits and removed once
the message is settled, and a message the member asked for that neither quiet hours, the daily
cap nor marketing consent hold back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters import sealed_secrets
from services.notifications.adapters.sealed_secrets import (
    WEBHOOK_SECRETS,
    seal_sign_in_link,
    unseal_sign_in_link,
)
from services.notifications.adapters.smtp import EmailDeliveryError
from services.notifications.api.app import create_app
from services.notifications.api.schemas import SignInLinkIn
from services.notifications.dispatcher import DeliveryDispatcher, webhook_payload
from services.notifications.domain import templates
from services.notifications.domain.model import (
    MAX_SIGN_IN_VALIDITY,
    REQUESTED_TEMPLATES,
    SIGN_IN,
    Channel,
    Contact,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    HarassmentPolicy,
    Lane,
    Preferences,
    QuietHours,
    Send,
    Suppress,
    counts_against_cap,
    decide,
    guard_secrets,
    lane_of,
    schedule,
    sign_in_id,
    sign_in_message,
    sign_in_refusal,
)
from services.notifications.settings import NotificationsSettings
from services.notifications.usecases import contacts as contacts_usecases
from services.notifications.usecases import customers as customers_usecases
from shared.clock import FixedClock
from shared.messaging.outbox import CollectingSink
from shared.sealing import Keyring, SealingError, SealingKey
from tests.support.fakes.notifications import NOW, FakeNotifications, FakeSender, FakeUnits
from tests.support.stack import sha256_hex

URL = "https://wallet.example.com/wallet/sign-in/tok-3q2-7wEjdD0Ih0YlYZtfrg"
EXPIRES = NOW + timedelta(minutes=15)
ADMIN_TOKEN = "sign-in-tests-admin-token-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# 22:15 local in Rome: inside the default quiet hours (21:00-08:00).
LATE_EVENING = datetime(2026, 11, 22, 21, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Keyring]:
    """The process's keyring, as bootstrap installs it from FEDELTA_NOTIFICATIONS_SECRETS_KEY."""
    ring = Keyring(SealingKey.generate())
    monkeypatch.setattr(WEBHOOK_SECRETS, "_keyring", ring)
    yield ring


def member(
    customer_id: str = "c1",
    *,
    email: str | None = "ada@example.com",
    consent: bool = False,
    locale: str = "it",
    zone: str = "Europe/Rome",
) -> Contact:
    return Contact(
        customer_id=customer_id,
        locale=locale,
        time_zone=zone,
        updated_at=NOW,
        email=email,
        consent_email=consent,
    )


def sign_in(
    customer_id: str = "c1", *, expires_at: datetime = EXPIRES, now: datetime = NOW, url: str = URL
) -> Delivery:
    notification_id = sign_in_id(customer_id, url)
    return sign_in_message(
        notification_id,
        customer_id,
        seal_sign_in_link(notification_id, url),
        expires_at,
        ZoneInfo("Europe/Rome"),
        now,
    )


# --- the template ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "zone", "subject", "until", "once"),
    [
        (
            "en",
            "America/New_York",
            "Your sign-in link",
            "November 22, 2026, 5:30\u202fAM",
            "used once",
        ),
        (
            "it",
            "Europe/Rome",
            "Il tuo link di accesso",
            "22 novembre 2026, 11:30",
            "una sola volta",
        ),
        ("fi", "Europe/Helsinki", "Kirjautumislinkkisi", "22. marraskuuta 2026 12.30", "kerran"),
        ("pl", "Europe/Warsaw", "Twój link do logowania", "22 listopada 2026, 11:30", "tylko raz"),
    ],
)
def test_the_message_says_the_link_and_until_when_on_the_members_clock(
    locale: str, zone: str, subject: str, until: str, once: str
) -> None:
    params = {"url": URL, "expires_at": "2026-11-22T10:30:00+00:00", "time_zone": zone}
    message = templates.render(SIGN_IN, locale, params)
    assert (message.locale, message.subject) == (locale, subject)
    for part in (message.body, message.html):
        assert URL in part and until in part and once in part
    assert "nsubscribe" not in message.body + message.html


def test_an_unknown_time_zone_tells_the_end_in_utc() -> None:
    params = {"url": URL, "expires_at": "2026-11-22T10:30:00+00:00", "time_zone": "Mars/Base"}
    assert "10:30\u202fAM" in templates.render(SIGN_IN, "en", params).body  # CLDR's narrow space


def test_the_message_cannot_go_without_its_link() -> None:
    params = {"expires_at": "2026-11-22T10:30:00+00:00", "time_zone": "UTC"}
    with pytest.raises(templates.MissingParam):
        templates.render(SIGN_IN, "en", params)


# --- transactional, and asked for: never held, no marketing consent ---------------------------


def test_a_sign_in_link_is_in_the_transactional_lane_and_not_counted_by_the_cap() -> None:
    assert SIGN_IN in REQUESTED_TEMPLATES
    assert lane_of(SIGN_IN) is Lane.TRANSACTIONAL
    assert not counts_against_cap(SIGN_IN)
    assert counts_against_cap("welcome") and counts_against_cap("win_back")


def test_it_goes_in_quiet_hours_over_the_cap_without_consent_and_email_turned_off() -> None:
    opted_out = Preferences(customer_id="c1", updated_at=NOW, email=False, locale="pl")
    decision = decide(
        sign_in(now=LATE_EVENING, expires_at=LATE_EVENING + timedelta(minutes=15)),
        member(consent=False),
        LATE_EVENING,
        DeliveryPolicy(),
        preferences=opted_out,
        harassment=HarassmentPolicy(quiet_hours=QuietHours(time(21), time(8)), daily_cap=1),
        sent_today=5,
    )
    assert decision == Send(address="ada@example.com", locale="pl")


def test_a_welcome_in_the_same_situation_waits() -> None:
    welcome = schedule(
        notification_id="w1",
        customer_id="c1",
        channel=Channel.EMAIL,
        template="welcome",
        cause_event_id="e1",
        now=LATE_EVENING,
    )
    decision = decide(
        welcome,
        member(consent=True),
        LATE_EVENING,
        DeliveryPolicy(),
        harassment=HarassmentPolicy(quiet_hours=QuietHours(time(21), time(8))),
    )
    assert not isinstance(decision, Send)


def test_an_expired_link_or_a_member_without_email_is_not_sent() -> None:
    expired = decide(sign_in(), member(), EXPIRES, DeliveryPolicy())
    assert isinstance(expired, Suppress) and "expired" in expired.reason
    no_email = decide(sign_in(), member(email=None), NOW, DeliveryPolicy())
    assert no_email == Suppress("no email address")


def test_a_link_never_goes_by_sms() -> None:
    message = schedule(
        notification_id="s1",
        customer_id="c1",
        channel=Channel.SMS,
        template=SIGN_IN,
        cause_event_id="s1",
        now=NOW,
        params={"expires_at": EXPIRES.isoformat()},
    )
    assert isinstance(decide(message, member(), NOW, DeliveryPolicy()), Suppress)


@pytest.mark.parametrize(
    ("expires_at", "refused"),
    [
        (NOW + timedelta(minutes=15), False),
        (NOW + MAX_SIGN_IN_VALIDITY, False),
        (NOW, True),
        (NOW - timedelta(seconds=1), True),
        (NOW + MAX_SIGN_IN_VALIDITY + timedelta(seconds=1), True),
    ],
)
def test_a_link_is_accepted_only_valid_for_a_while(expires_at: datetime, refused: bool) -> None:
    assert (sign_in_refusal(expires_at, NOW) is not None) is refused


# --- the secret: sealed while it waits, removed once settled ----------------------------------


def test_the_link_is_stored_sealed_under_the_messages_id() -> None:
    message = sign_in()
    stored = json.dumps(message.params)
    assert URL not in stored and "tok-3q2" not in stored
    assert message.params["link"].startswith("v1:")
    assert unseal_sign_in_link(message.notification_id, message.params["link"]) == URL
    with pytest.raises(SealingError):  # copied to another message, it does not open
        unseal_sign_in_link("another-id", message.params["link"])
    assert message.params["expires_at"] == EXPIRES.isoformat()
    assert message.params["time_zone"] == "Europe/Rome"


def test_the_same_link_is_the_same_message_and_another_link_another() -> None:
    assert sign_in_id("c1", URL) == sign_in_id("c1", URL)
    assert sign_in_id("c1", URL) != sign_in_id("c1", URL + "x")
    assert sign_in_id("c1", URL) != sign_in_id("c2", URL)
    assert "tok-3q2" not in sign_in_id("c1", URL)


def test_without_a_key_nothing_is_sealed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(WEBHOOK_SECRETS, "_keyring", None)
    with pytest.raises(SealingError):
        sealed_secrets.seal_sign_in_link("n1", URL)


def test_a_settled_message_keeps_no_secret_and_a_waiting_one_waits_no_longer_than_it_lives() -> (
    None
):
    waiting = sign_in()
    assert guard_secrets(waiting) == waiting
    for status in (DeliveryStatus.SENT, DeliveryStatus.SUPPRESSED, DeliveryStatus.FAILED):
        settled = guard_secrets(replace(waiting, status=status))
        assert "link" not in settled.params
        assert settled.params["expires_at"] == EXPIRES.isoformat()
    retry = replace(waiting, next_attempt_at=EXPIRES + timedelta(minutes=30))
    assert guard_secrets(retry).next_attempt_at == EXPIRES


def test_a_partner_webhook_never_carries_a_secret_param() -> None:
    payload = webhook_payload(sign_in(), "demo", NOW)
    assert "link" not in cast(dict[str, Any], payload["data"])


# --- the dispatcher ---------------------------------------------------------------------------


class Harness:
    def __init__(self, *, daily_cap: int = 1, at: datetime = LATE_EVENING) -> None:
        self.notifications = FakeNotifications()
        self.sink = CollectingSink()
        self.sender = FakeSender()
        self.clock = FixedClock(at)
        self.dispatcher = DeliveryDispatcher(
            transactions=FakeUnits(self.notifications, self.sink),
            sender=self.sender,
            clock=self.clock,
            policy=DeliveryPolicy(max_attempts=3),
            harassment=HarassmentPolicy(quiet_hours=QuietHours(time(21), time(8)), daily_cap=1),
            unsubscribe_url=lambda customer_id: f"https://x.example/u/{customer_id}",
        )
        self.notifications.contacts["c1"] = member(consent=False)


async def test_the_link_goes_at_once_and_is_then_removed_from_the_stored_message() -> None:
    harness = Harness()
    message = sign_in(now=LATE_EVENING, expires_at=LATE_EVENING + timedelta(minutes=15))
    await harness.notifications.schedule([message])

    assert await harness.dispatcher.dispatch_due() == 1

    (email,) = harness.sender.sent
    assert email.to == "ada@example.com" and email.locale == "it"
    assert email.subject == "Il tuo link di accesso"
    assert URL in email.body and email.html is not None and URL in email.html
    assert "22 novembre 2026, 22:30" in email.body  # 21:30 UTC on Rome's clock
    assert email.unsubscribe_url is None  # asked for, not a mailing to leave
    stored = harness.notifications.deliveries[message.notification_id]
    assert stored.status is DeliveryStatus.SENT
    assert "link" not in stored.params
    assert URL not in json.dumps(stored.params)
    # The outcome event names ids and the template, never the link.
    (event,) = harness.sink.events
    assert "tok-3q2" not in repr(event) and "link" not in json.dumps(event[2].data)


async def test_a_sign_in_does_not_use_up_the_days_cap() -> None:
    harness = Harness(at=NOW)  # 11:15 in Rome: no quiet hours, a cap of one a day
    await harness.notifications.schedule([sign_in()])
    await harness.dispatcher.dispatch_due()
    tier_up = schedule(
        notification_id="t1",
        customer_id="c1",
        channel=Channel.EMAIL,
        template="tier_up",
        cause_event_id="e-tier",
        now=NOW,
        params={"tier": "gold"},
    )
    harness.notifications.contacts["c1"] = member(consent=True)
    await harness.notifications.schedule([tier_up])

    await harness.dispatcher.dispatch_due()

    assert [e.subject for e in harness.sender.sent] == [
        "Il tuo link di accesso",
        "Hai raggiunto il livello Oro",
    ]
    assert harness.notifications.deliveries["t1"].status is DeliveryStatus.SENT


async def test_a_link_expired_before_it_goes_is_dropped_with_its_secret() -> None:
    harness = Harness(at=NOW)
    message = sign_in()
    await harness.notifications.schedule([message])
    harness.clock.set(EXPIRES)

    await harness.dispatcher.dispatch_due()

    assert harness.sender.sent == []
    stored = harness.notifications.deliveries[message.notification_id]
    assert stored.status is DeliveryStatus.SUPPRESSED
    assert stored.last_error is not None and "expired" in stored.last_error
    assert "link" not in stored.params


async def test_a_failed_send_keeps_it_sealed_and_retries_no_later_than_its_expiry() -> None:
    harness = Harness(at=NOW)
    message = sign_in(expires_at=NOW + timedelta(seconds=20))
    await harness.notifications.schedule([message])
    harness.dispatcher.policy = DeliveryPolicy(max_attempts=3, retry_backoff=timedelta(hours=1))
    harness.sender.failure = EmailDeliveryError("SMTPConnectError")

    await harness.dispatcher.dispatch_due()

    waiting = harness.notifications.deliveries[message.notification_id]
    assert waiting.status is DeliveryStatus.SCHEDULED
    assert waiting.params["link"] == message.params["link"]
    assert waiting.next_attempt_at == NOW + timedelta(seconds=20)
    harness.sender.failure = None
    harness.clock.set(waiting.next_attempt_at)
    await harness.dispatcher.dispatch_due()
    settled = harness.notifications.deliveries[message.notification_id]
    assert settled.status is DeliveryStatus.SUPPRESSED and "link" not in settled.params


async def test_a_link_sealed_under_a_key_no_longer_configured_fails_for_good(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = Harness(at=NOW)
    message = sign_in()
    await harness.notifications.schedule([message])
    monkeypatch.setattr(WEBHOOK_SECRETS, "_keyring", Keyring(SealingKey.generate()))

    await harness.dispatcher.dispatch_due()

    stored = harness.notifications.deliveries[message.notification_id]
    assert (stored.status, stored.last_error) == (
        DeliveryStatus.FAILED,
        "sealed param does not open",
    )
    assert "link" not in stored.params and harness.sender.sent == []


async def test_erasing_the_member_drops_a_waiting_link() -> None:
    notifications = FakeNotifications()
    message = sign_in()
    await notifications.schedule([message])
    await notifications.suppress_scheduled({"c1"}, "customer erased")
    assert "link" not in notifications.deliveries[message.notification_id].params


# --- the HTTP interface, on the fakes ---------------------------------------------------------


class _Connection:
    async def execution_options(self, **_: Any) -> _Connection:
        return self


class _Engine:
    """What the use cases open: a transaction or a read snapshot; the fake does the rest."""

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[_Connection]:
        yield _Connection()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[_Connection]:
        yield _Connection()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeNotifications:
    notifications = FakeNotifications()
    for module in (customers_usecases, contacts_usecases):
        monkeypatch.setattr(module, "api_repository", lambda conn: notifications)
    notifications.contacts["c1"] = member("c1", email="Ada@Example.com")
    notifications.contacts["c2"] = member("c2", email="ada@example.com", zone="Europe/Helsinki")
    notifications.contacts["c3"] = member("c3", email="bob@example.com")
    notifications.contacts["c4"] = member("c4", email=None)
    return notifications


@asynccontextmanager
async def api() -> AsyncIterator[httpx.AsyncClient]:
    settings = NotificationsSettings(
        database_url="postgresql+asyncpg://u:p@localhost:5432/notifications",
        kafka_bootstrap_servers="localhost:9092",
        admin_token_sha256=sha256_hex(ADMIN_TOKEN),
    )
    app = create_app(settings)
    app.state.runtime = SimpleNamespace(engine=cast(AsyncEngine, _Engine()), clock=FixedClock(NOW))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc:8083") as client:
        yield client


async def test_the_members_behind_an_address_whatever_its_case(fake: FakeNotifications) -> None:
    async with api() as client:
        found = await client.get("/v1/contacts", params={"email": "ADA@example.COM"}, headers=ADMIN)
        nobody = await client.get(
            "/v1/contacts", params={"email": "eve@example.com"}, headers=ADMIN
        )
    assert (found.status_code, found.json()) == (200, {"customer_ids": ["c1", "c2"]})
    assert (nobody.status_code, nobody.json()) == (200, {"customer_ids": []})


@pytest.mark.parametrize(
    "email",
    ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "a" * 250 + "@x.io"],
)
async def test_a_malformed_address_is_refused(fake: FakeNotifications, email: str) -> None:
    async with api() as client:
        response = await client.get("/v1/contacts", params={"email": email}, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert email not in response.text or not email


async def test_the_lookup_needs_the_admin_role(fake: FakeNotifications) -> None:
    async with api() as client:
        response = await client.get("/v1/contacts", params={"email": "ada@example.com"})
    assert response.status_code == 401


async def test_posting_a_link_schedules_the_sealed_message_once(fake: FakeNotifications) -> None:
    body = {"url": URL, "expires_at": "2026-11-22T11:30:00+01:00"}
    async with api() as client:
        first = await client.post("/v1/customers/c2/sign-in-link", json=body, headers=ADMIN)
        again = await client.post("/v1/customers/c2/sign-in-link", json=body, headers=ADMIN)
    assert first.status_code == 202, first.text
    assert first.json() == {"notification_id": sign_in_id("c2", URL)} == again.json()
    stored = fake.only()
    assert (stored.customer_id, stored.template, stored.channel) == ("c2", SIGN_IN, Channel.EMAIL)
    assert stored.next_attempt_at == NOW
    assert stored.params["expires_at"] == "2026-11-22T10:30:00+00:00"
    assert stored.params["time_zone"] == "Europe/Helsinki"
    assert URL not in json.dumps(stored.params)
    assert unseal_sign_in_link(stored.notification_id, stored.params["link"]) == URL


@pytest.mark.parametrize(
    ("customer_id", "body", "status"),
    [
        ("nobody", {"url": URL, "expires_at": "2026-11-22T10:30:00Z"}, 404),
        ("c4", {"url": URL, "expires_at": "2026-11-22T10:30:00Z"}, 422),  # no email
        ("c1", {"url": URL, "expires_at": "2026-11-22T10:15:00Z"}, 422),  # expired
        ("c1", {"url": URL, "expires_at": "2026-11-24T10:15:00Z"}, 422),  # too long
        ("c1", {"url": URL, "expires_at": "2026-11-22 10:30"}, 422),
        ("c1", {"url": "javascript:alert(1)", "expires_at": "2026-11-22T10:30:00Z"}, 422),
        ("c1", {"url": URL + "x" * 500, "expires_at": "2026-11-22T10:30:00Z"}, 422),
        ("c1", {"url": URL + " x", "expires_at": "2026-11-22T10:30:00Z"}, 422),
        ("c1", {"url": URL, "expires_at": "2026-11-22T10:30:00Z", "extra": 1}, 422),
    ],
)
async def test_a_link_that_cannot_go_is_refused_and_nothing_is_stored(
    fake: FakeNotifications, customer_id: str, body: dict[str, Any], status: int
) -> None:
    async with api() as client:
        response = await client.post(
            f"/v1/customers/{customer_id}/sign-in-link", json=body, headers=ADMIN
        )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fake.deliveries == {}


async def test_without_a_secrets_key_no_link_is_stored(
    fake: FakeNotifications, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WEBHOOK_SECRETS, "_keyring", None)
    body = {"url": URL, "expires_at": "2026-11-22T10:30:00Z"}
    async with api() as client:
        response = await client.post("/v1/customers/c1/sign-in-link", json=body, headers=ADMIN)
    assert response.status_code == 503, response.text
    assert fake.deliveries == {}


async def test_nothing_logs_the_link_or_the_address(
    fake: FakeNotifications, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with api() as client:
        await client.get("/v1/contacts", params={"email": "ada@example.com"}, headers=ADMIN)
        await client.post(
            "/v1/customers/c1/sign-in-link",
            json={"url": URL, "expires_at": "2026-11-22T10:30:00Z"},
            headers=ADMIN,
        )
    harness = Harness(at=NOW)
    harness.notifications.deliveries.update(fake.deliveries)
    await harness.dispatcher.dispatch_due()
    assert len(harness.sender.sent) == 1
    # The service's records (not the test client's own, which name the URL it calls).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "httpx")
    assert "sign-in link for customer c1" in logged
    assert "tok-3q2" not in logged and "example.com" not in logged.lower()


def test_the_request_model_is_strict() -> None:
    parsed = SignInLinkIn.model_validate({"url": URL, "expires_at": "2026-11-22T11:30:00+01:00"})
    assert parsed.expires_at == datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
