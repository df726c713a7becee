"""SMS and partner webhooks: who gets what on which channel, stale messages over the cap,
the HTTP adapters against a stand-in server, and the dispatcher sending on each channel."""

import json
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from services.notifications.adapters.http_channels import (
    DELIVERY_ID_HEADER,
    HttpDeliveryError,
    HttpSmsSender,
    HttpWebhookSender,
    OutgoingSms,
    OutgoingWebhook,
)
from services.notifications.dispatcher import DeliveryDispatcher
from services.notifications.domain import templates
from services.notifications.domain.model import (
    NO_PARTNER,
    NO_PHONE,
    NO_SMS_CONSENT,
    NO_WEBHOOK,
    SMS_OPTED_OUT,
    Channel,
    Contact,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    HarassmentPolicy,
    Hold,
    PartnerWebhook,
    Preferences,
    QuietHours,
    Send,
    Suppress,
    Wait,
    channels_for,
    decide,
    schedule,
    stale_reason,
)
from services.notifications.handlers import Context, apply_batch
from shared.clock import FixedClock
from shared.messaging import events
from shared.messaging.events import CloudEvent, new_event
from shared.messaging.outbox import CollectingSink
from shared.web.auth import SIGNATURE_HEADER, verify_signature
from tests.support import factories
from tests.support.fakes.notifications import NOW, FakeNotifications, FakeSender, FakeUnits
from tests.support.fakes.webhook_dns import public_guard

POLICY = DeliveryPolicy()
HARASSMENT = HarassmentPolicy(quiet_hours=QuietHours(time(21, 0), time(8, 0)), daily_cap=3)
DAYTIME = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # noon in Rome
NIGHT = datetime(2026, 6, 10, 22, 0, tzinfo=UTC)  # midnight in Rome
HOOK = PartnerWebhook(
    partner_id="demo",
    url="https://partner.example.com/hooks/fedelta?v=1",
    secret="s3cret-s3cret-s3cret",
    created_at=NOW,
)


def contact(**changes: Any) -> Contact:
    base = Contact(
        customer_id="c1",
        locale="it",
        time_zone="Europe/Rome",
        updated_at=NOW,
        email="ada@example.com",
        phone="+393331234567",
        consent_email=True,
        consent_sms=True,
        partner_id="demo",
    )
    return replace(base, **changes)


def message(
    channel: Channel,
    template: str = "tier_up",
    params: dict[str, Any] | None = None,
    now: datetime = DAYTIME,
    cause: str = "cause-1",
) -> Delivery:
    return schedule(
        notification_id=f"{cause}.{template}.{channel.value}",
        customer_id="c1",
        channel=channel,
        template=template,
        cause_event_id=cause,
        now=now,
        params={"tier": "gold", "from_tier": "silver"} if params is None else params,
    )


def judge(delivery: Delivery, now: datetime = DAYTIME, **kwargs: Any) -> object:
    return decide(
        delivery,
        kwargs.pop("who", contact()),
        now,
        POLICY,
        harassment=HARASSMENT,
        **kwargs,
    )


# Who gets what, on which channel


def test_sms_goes_to_the_phone_in_the_customers_locale() -> None:
    assert judge(message(Channel.SMS)) == Send("+393331234567", "it")


@pytest.mark.parametrize(
    ("who", "preferences", "reason"),
    [
        (contact(phone=None), None, NO_PHONE),
        (contact(consent_sms=False), None, NO_SMS_CONSENT),
        (contact(), Preferences(customer_id="c1", updated_at=NOW, sms=False), SMS_OPTED_OUT),
    ],
)
def test_sms_needs_a_phone_the_consent_and_the_preference(
    who: Contact, preferences: Preferences | None, reason: str
) -> None:
    assert judge(message(Channel.SMS), who=who, preferences=preferences) == Suppress(reason)


def test_sms_waits_for_the_end_of_quiet_hours_like_email() -> None:
    decision = judge(message(Channel.SMS), NIGHT)
    assert isinstance(decision, Wait) and decision.hold is Hold.QUIET_HOURS


def test_the_webhook_goes_to_the_enrolling_partner_whatever_the_email_and_sms_consent() -> None:
    who = contact(consent_email=False, consent_sms=False, email=None, phone=None)
    decision = judge(message(Channel.WEBHOOK), NIGHT, who=who, webhook=HOOK, sent_today=10)
    assert decision == Send(HOOK.url, "it")  # a machine: neither quiet hours nor the cap


@pytest.mark.parametrize(
    ("who", "webhook", "reason"),
    [
        (contact(partner_id=None), HOOK, NO_PARTNER),
        (contact(), None, NO_WEBHOOK),
        (contact(partner_id="other"), HOOK, NO_WEBHOOK),
    ],
)
def test_no_webhook_call_without_the_customers_own_partners_webhook(
    who: Contact, webhook: PartnerWebhook | None, reason: str
) -> None:
    assert judge(message(Channel.WEBHOOK), who=who, webhook=webhook) == Suppress(reason)


def test_channels_are_email_then_sms_with_consent_then_the_partners_webhook() -> None:
    assert channels_for(contact(), {"demo"}) == [Channel.EMAIL, Channel.SMS, Channel.WEBHOOK]
    assert channels_for(contact(consent_sms=False), set()) == [Channel.EMAIL]
    assert channels_for(contact(phone=None), {"other"}) == [Channel.EMAIL]
    assert channels_for(None, {"demo"}) == [Channel.EMAIL]


# Over the cap: wait for the next day, or drop what would be stale by then


def expiring(expires_at: datetime) -> Delivery:
    return message(
        Channel.EMAIL, "points_expiring", {"points": 40, "expires_at": expires_at.isoformat()}
    )


def test_over_the_cap_a_warning_still_true_tomorrow_waits_for_tomorrow() -> None:
    decision = judge(expiring(DAYTIME + timedelta(days=3)), sent_today=3)
    assert decision == Wait(datetime(2026, 6, 10, 22, 0, tzinfo=UTC), Hold.FREQUENCY_CAP)


def test_over_the_cap_an_expiry_warning_stale_by_tomorrow_is_dropped_with_the_reason() -> None:
    decision = judge(expiring(DAYTIME + timedelta(hours=5)), sent_today=3)
    assert isinstance(decision, Suppress)
    assert decision.reason.startswith("over the daily cap and stale by the next day")
    assert "expired" in decision.reason


def test_over_the_cap_a_downgrade_warning_after_its_review_is_dropped() -> None:
    warning = message(
        Channel.SMS,
        "tier_downgrade_warning",
        {
            "tier": "gold",
            "would_become": "silver",
            "review_at": (DAYTIME + timedelta(hours=2)).isoformat(),
            "amount_to_keep_tier": "10.00",
        },
    )
    decision = judge(warning, sent_today=3)
    assert isinstance(decision, Suppress) and "review" in decision.reason


def test_a_digest_is_stale_two_days_after_its_first_earning() -> None:
    digest = message(Channel.EMAIL, "points_earned", {"points": 5, "earnings": 1}, now=DAYTIME)
    assert stale_reason(digest, DAYTIME + timedelta(days=1, hours=23)) is None
    assert stale_reason(digest, DAYTIME + timedelta(days=2)) is not None


def test_messages_that_stay_true_are_never_stale() -> None:
    for template in ("welcome", "tier_up", "tier_down", "redemption_confirmed", "win_back"):
        assert stale_reason(message(Channel.EMAIL, template), DAYTIME + timedelta(days=400)) is None


def test_a_warning_already_stale_when_due_is_dropped_even_under_the_cap() -> None:
    decision = judge(expiring(DAYTIME - timedelta(minutes=1)))
    assert isinstance(decision, Suppress) and decision.reason.startswith("stale:")


# The SMS text


@pytest.mark.parametrize("locale", ["en", "it", "fi", "pl"])
def test_every_template_has_a_short_sms_in_every_locale(locale: str) -> None:
    for name in templates.TEMPLATES:
        sms = templates.render_sms(name, locale, templates.SAMPLE_PARAMS)
        assert sms.locale == locale
        assert sms.body.startswith("Fedelta: ") and len(sms.body) <= 160
        assert "{{" not in sms.body and "\n" not in sms.body


def test_the_sms_is_written_in_the_customers_language_with_their_number_format() -> None:
    it = templates.render_sms("points_expiring", "it", templates.SAMPLE_PARAMS).body
    en = templates.render_sms("points_expiring", "en", templates.SAMPLE_PARAMS).body
    assert "1.250 punti" in it and "scadono" in it and "marzo" in it
    assert "1,250 points" in en and "March" in en


# The HTTP adapters, against a stand-in server


class StandIn:
    """Answers the calls with the statuses given, in order; then 200."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


async def test_an_sms_is_posted_as_json_with_the_token_and_the_idempotency_key() -> None:
    server = StandIn(202)
    sender = HttpSmsSender("https://sms.example.com/v1/messages", "tok", transport=server.transport)
    await sender.send(OutgoingSms(notification_id="n-1", to="+39333", text="Fedelta: ciao"))

    (request,) = server.requests
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Idempotency-Key"] == "n-1"
    assert json.loads(request.content) == {
        "to": "+39333",
        "text": "Fedelta: ciao",
        "reference": "n-1",
    }


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(503, False), (500, False), (429, False), (408, False), (400, True), (401, True), (302, True)],
)
async def test_a_refused_sms_says_its_status_and_whether_a_retry_could_help(
    status: int, permanent: bool
) -> None:
    sender = HttpSmsSender(
        "https://sms.example.com/v1/messages", "tok", transport=StandIn(status).transport
    )
    with pytest.raises(HttpDeliveryError) as raised:
        await sender.send(OutgoingSms(notification_id="n-1", to="+39333", text="x"))
    assert (raised.value.reason, raised.value.permanent) == (f"HTTP {status}", permanent)


async def test_an_unreachable_provider_is_a_transient_failure_named_by_its_class() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to +39333", request=request)

    sender = HttpSmsSender(
        "https://sms.example.com/v1/messages", "tok", transport=httpx.MockTransport(refuse)
    )
    with pytest.raises(HttpDeliveryError) as raised:
        await sender.send(OutgoingSms(notification_id="n-1", to="+39333", text="x"))
    assert (raised.value.reason, raised.value.permanent) == ("ConnectError", False)


async def test_a_webhook_call_is_signed_the_way_ingest_verifies_partner_calls() -> None:
    server = StandIn(204)
    sender = HttpWebhookSender(
        FixedClock(NOW), transport=server.transport, guard=public_guard("partner.example.com")
    )
    await sender.send(
        OutgoingWebhook(notification_id="n-1", url=HOOK.url, secret=HOOK.secret, payload={"a": 1})
    )

    (request,) = server.requests
    assert request.headers[DELIVERY_ID_HEADER] == "n-1"
    verify_signature(
        HOOK.secret,
        request.headers[SIGNATURE_HEADER],
        "POST",
        "/hooks/fedelta?v=1",
        request.content,
        NOW,
    )
    with pytest.raises(Exception, match="does not match"):
        verify_signature(
            "another-secret",
            request.headers[SIGNATURE_HEADER],
            "POST",
            "/hooks/fedelta?v=1",
            request.content,
            NOW,
        )


# The dispatcher on each channel


class FakeChannel:
    """Records what it is given; fails with `failures` first."""

    def __init__(self, *failures: HttpDeliveryError) -> None:
        self.failures = list(failures)
        self.sent: list[Any] = []

    async def send(self, outgoing: Any) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(outgoing)


class Harness:
    def __init__(self, *, sms: FakeChannel | None = None, now: datetime = DAYTIME) -> None:
        self.clock = FixedClock(now)
        self.notifications = FakeNotifications()
        self.notifications.contacts["c1"] = contact()
        self.notifications.webhooks["demo"] = HOOK
        self.email = FakeSender()
        self.sms = sms
        self.webhooks = FakeChannel()
        self.sink = CollectingSink()
        self.dispatcher = DeliveryDispatcher(
            transactions=FakeUnits(self.notifications, self.sink),
            sender=self.email,
            clock=self.clock,
            policy=DeliveryPolicy(retry_backoff=timedelta(seconds=10)),
            harassment=HARASSMENT,
            sms=sms,
            webhooks=self.webhooks,
        )

    def add(self, *deliveries: Delivery) -> None:
        for delivery in deliveries:
            self.notifications.deliveries[delivery.notification_id] = delivery


async def test_the_dispatcher_sends_an_sms_with_its_short_text() -> None:
    harness = Harness(sms=FakeChannel())
    harness.add(message(Channel.SMS))

    await harness.dispatcher.dispatch_due()

    (sms,) = harness.sms.sent  # type: ignore[union-attr]
    assert (sms.to, sms.text) == ("+393331234567", "Fedelta: Hai raggiunto il livello Oro")
    assert harness.notifications.only().status is DeliveryStatus.SENT
    ((_, _, outcome),) = harness.sink.events
    assert outcome.data["channel"] == "sms"


async def test_without_an_sms_provider_an_sms_is_suppressed_saying_so() -> None:
    harness = Harness(sms=None)
    harness.add(message(Channel.SMS))

    await harness.dispatcher.dispatch_due()

    stored = harness.notifications.only()
    assert (stored.status, stored.last_error) == (
        DeliveryStatus.SUPPRESSED,
        "no sms provider configured",
    )


async def test_an_sms_refused_twice_then_accepted_goes_out_once_after_backoff() -> None:
    harness = Harness(sms=FakeChannel(HttpDeliveryError("HTTP 503"), HttpDeliveryError("HTTP 503")))
    harness.add(message(Channel.SMS))

    await harness.dispatcher.dispatch_due()
    first = harness.notifications.only()
    assert (first.status, first.attempts, first.last_error) == (
        DeliveryStatus.SCHEDULED,
        1,
        "HTTP 503",
    )
    harness.clock.set(first.next_attempt_at)
    await harness.dispatcher.dispatch_due()
    second = harness.notifications.only()
    assert second.next_attempt_at - DAYTIME > first.next_attempt_at - DAYTIME  # backing off
    harness.clock.set(second.next_attempt_at)
    await harness.dispatcher.dispatch_due()

    assert len(harness.sms.sent) == 1  # type: ignore[union-attr]
    sent = harness.notifications.only()
    assert (sent.status, sent.attempts) == (DeliveryStatus.SENT, 3)


async def test_the_webhook_payload_carries_ids_and_params_but_no_contact_data() -> None:
    harness = Harness()
    harness.add(message(Channel.WEBHOOK))

    await harness.dispatcher.dispatch_due()

    (call,) = harness.webhooks.sent
    assert (call.url, call.secret) == (HOOK.url, HOOK.secret)
    assert call.payload["type"] == "tier_up" and call.payload["customer_id"] == "c1"
    assert call.payload["data"] == {"tier": "gold", "from_tier": "silver"}
    flat = json.dumps(call.payload)
    assert "ada@example.com" not in flat and "+39333" not in flat


async def test_a_deleted_webhook_suppresses_the_calls_still_waiting() -> None:
    harness = Harness()
    harness.add(message(Channel.WEBHOOK))
    del harness.notifications.webhooks["demo"]

    await harness.dispatcher.dispatch_due()

    assert harness.webhooks.sent == []
    assert harness.notifications.only().last_error == NO_WEBHOOK


async def test_the_cap_counts_one_message_per_event_whatever_its_channels() -> None:
    harness = Harness(sms=FakeChannel())
    for n in range(3):
        harness.add(message(Channel.EMAIL, cause=f"e{n}"), message(Channel.SMS, cause=f"e{n}"))
    harness.add(message(Channel.WEBHOOK, cause="e0"), message(Channel.EMAIL, cause="e3"))

    await harness.dispatcher.dispatch_due()

    assert len(harness.email.sent) == 3 and len(harness.sms.sent) == 3  # type: ignore[union-attr]
    assert len(harness.webhooks.sent) == 1
    fourth = harness.notifications.deliveries["e3.tier_up.email"]
    assert fourth.hold is Hold.FREQUENCY_CAP


async def test_a_stale_message_over_the_cap_is_dropped_and_logged_with_its_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = Harness()
    for n in range(3):
        harness.add(message(Channel.EMAIL, cause=f"e{n}", now=DAYTIME - timedelta(seconds=10 - n)))
    harness.add(expiring(DAYTIME + timedelta(hours=3)))

    with caplog.at_level("INFO", logger="services.notifications.dispatcher"):
        await harness.dispatcher.dispatch_due()

    warning = harness.notifications.deliveries["cause-1.points_expiring.email"]
    assert warning.status is DeliveryStatus.SUPPRESSED
    assert warning.last_error is not None and "stale by the next day" in warning.last_error
    assert any("stale by the next day" in r.getMessage() for r in caplog.records)


# The handlers: which channels a trigger is scheduled on


def enrolment(*, phone: str | None, consent_sms: bool, partner_id: str = "demo") -> CloudEvent:
    return factories.enrolment(
        "c1",
        at=NOW,
        partner_id=partner_id,
        email="ada@example.com",
        phone=phone,
        consent=events.Consent(email=True, sms=consent_sms),
    )


def earning(points: int) -> CloudEvent:
    return new_event(
        events.PointsEarned(
            customer_id="c1",
            points=points,
            reason="purchase",
            available_at=NOW,
            expires_at=NOW + timedelta(days=365),
        ),
        source="points",
        subject="c1",
        time=NOW,
    )


async def apply(notifications: FakeNotifications, *batch: CloudEvent) -> None:
    await apply_batch(batch, Context(notifications=notifications, sink=CollectingSink(), now=NOW))


async def test_an_enrolment_with_sms_consent_and_a_webhook_schedules_all_three() -> None:
    notifications = FakeNotifications()
    notifications.webhooks["demo"] = HOOK

    await apply(notifications, enrolment(phone="+39333", consent_sms=True))

    assert sorted(d.channel.value for d in notifications.deliveries.values()) == [
        "email",
        "sms",
        "webhook",
    ]


async def test_without_sms_consent_or_webhook_only_the_email_is_scheduled() -> None:
    notifications = FakeNotifications()
    notifications.webhooks["other"] = HOOK

    await apply(notifications, enrolment(phone="+39333", consent_sms=False))

    assert [d.channel for d in notifications.deliveries.values()] == [Channel.EMAIL]


async def test_a_later_trigger_uses_the_stored_contact_for_its_channels() -> None:
    notifications = FakeNotifications()
    notifications.contacts["c1"] = contact()
    notifications.webhooks["demo"] = HOOK
    tier_change = new_event(
        events.TierChanged(
            customer_id="c1",
            from_tier="silver",
            to_tier="gold",
            direction="up",
            reason="qualifying spend",
            effective_at=NOW,
            review_at=NOW + timedelta(days=365),
        ),
        source="tiers",
        subject="c1",
        time=NOW,
    )

    await apply(notifications, tier_change)

    assert {d.channel for d in notifications.deliveries.values()} == set(Channel)


async def test_points_earned_go_out_as_an_email_digest_only_held_by_its_window() -> None:
    notifications = FakeNotifications()
    notifications.contacts["c1"] = contact()
    notifications.webhooks["demo"] = HOOK

    await apply(notifications, earning(5))
    await apply(notifications, earning(7))

    digest = notifications.only()
    assert (digest.channel, digest.hold, digest.params["points"]) == (
        Channel.EMAIL,
        Hold.DIGEST_WINDOW,
        12,
    )
