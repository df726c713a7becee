"""Send-time decisions (contact, address, consent) and the retry schedule."""

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from services.notifications.domain.model import (
    NO_ADDRESS,
    NO_CONSENT,
    NO_CONTACT,
    Channel,
    Contact,
    Delivery,
    DeliveryPolicy,
    DeliveryStatus,
    Send,
    Suppress,
    Wait,
    decide,
    mark_attempt_failed,
    mark_sent,
    retry_delay,
    schedule,
)
from tests.support.fakes.notifications import NOW

POLICY = DeliveryPolicy(
    max_attempts=5,
    retry_backoff=timedelta(seconds=30),
    retry_backoff_max=timedelta(minutes=5),
    contact_wait=timedelta(minutes=10),
    contact_recheck=timedelta(seconds=15),
)


def welcome() -> Delivery:
    return schedule(
        notification_id="n1",
        customer_id="c1",
        channel=Channel.EMAIL,
        template="welcome",
        cause_event_id="e1",
        now=NOW,
    )


def contact(**changes: object) -> Contact:
    base = Contact(
        customer_id="c1",
        locale="it-IT",
        time_zone="Europe/Rome",
        updated_at=NOW,
        email="ada@example.com",
        consent_email=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_contact_with_an_address_and_consent_is_sent_to() -> None:
    assert decide(welcome(), contact(), NOW, POLICY) == Send("ada@example.com", "it-IT")


def test_no_email_consent_suppresses() -> None:
    assert decide(welcome(), contact(consent_email=False), NOW, POLICY) == Suppress(NO_CONSENT)


@pytest.mark.parametrize("address", [None, ""])
def test_no_email_address_suppresses_even_with_consent(address: str | None) -> None:
    assert decide(welcome(), contact(email=address), NOW, POLICY) == Suppress(NO_ADDRESS)


def test_sms_consent_alone_does_not_allow_email() -> None:
    decision = decide(welcome(), contact(consent_email=False, consent_sms=True), NOW, POLICY)
    assert decision == Suppress(NO_CONSENT)


def test_a_missing_contact_is_waited_for_and_looked_for_again_soon() -> None:
    decision = decide(welcome(), None, NOW + timedelta(minutes=1), POLICY)
    assert decision == Wait(until=NOW + timedelta(minutes=1, seconds=15))


def test_the_wait_for_a_contact_never_passes_its_deadline() -> None:
    decision = decide(welcome(), None, NOW + timedelta(minutes=9, seconds=55), POLICY)
    assert decision == Wait(until=NOW + timedelta(minutes=10))


def test_a_contact_that_never_came_suppresses_after_the_wait() -> None:
    assert decide(welcome(), None, NOW + timedelta(minutes=10), POLICY) == Suppress(NO_CONTACT)


def test_backoff_doubles_from_the_base_and_is_capped() -> None:
    delays = [retry_delay(failures, POLICY).total_seconds() for failures in range(1, 7)]
    assert delays == [30, 60, 120, 240, 300, 300]


def test_backoff_survives_absurd_attempt_counts() -> None:
    assert retry_delay(10_000, POLICY) == POLICY.retry_backoff_max


def test_backoff_needs_a_failure() -> None:
    with pytest.raises(ValueError):
        retry_delay(0, POLICY)


def test_a_failed_attempt_is_retried_later_until_the_last() -> None:
    delivery = welcome()
    now = NOW
    for attempt in range(1, POLICY.max_attempts):
        delivery = mark_attempt_failed(delivery, "SMTPConnectError", now, POLICY, permanent=False)
        assert delivery.status is DeliveryStatus.SCHEDULED
        assert delivery.attempts == attempt
        assert delivery.next_attempt_at == now + retry_delay(attempt, POLICY)
        now = delivery.next_attempt_at
    delivery = mark_attempt_failed(delivery, "SMTPConnectError", now, POLICY, permanent=False)
    assert delivery.status is DeliveryStatus.FAILED
    assert delivery.attempts == POLICY.max_attempts
    assert delivery.last_error == "SMTPConnectError"


def test_a_permanent_refusal_fails_at_once() -> None:
    failed = mark_attempt_failed(welcome(), "SMTPDataError 550", NOW, POLICY, permanent=True)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.attempts == 1


def test_sent_counts_the_attempt_and_clears_the_last_error() -> None:
    retried = mark_attempt_failed(welcome(), "SMTPConnectError", NOW, POLICY, permanent=False)
    sent = mark_sent(retried, NOW + timedelta(minutes=1))
    assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == (
        DeliveryStatus.SENT,
        2,
        NOW + timedelta(minutes=1),
        None,
    )


# -- which profile is kept ---------------------------------------------------------------------

EARLIER, LATER = NOW - timedelta(minutes=1), NOW + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("candidate", "stored", "replaces"),
    [
        # Versions decide, whatever the (skewed) times say.
        ((3, EARLIER), (2, LATER), True),
        ((2, LATER), (3, EARLIER), False),
        ((2, LATER), (2, NOW), False),  # the same version again: a redelivery, nothing new
        # A versioned profile beats one from before versions existed, and never the reverse.
        ((1, EARLIER), (None, LATER), True),
        ((None, LATER), (1, EARLIER), False),
        # Between two unversioned profiles, the time rule of before: the later or the same.
        ((None, LATER), (None, NOW), True),
        ((None, NOW), (None, NOW), True),
        ((None, EARLIER), (None, NOW), False),
    ],
)
def test_a_profile_replaces_the_stored_one_only_when_newer(
    candidate: tuple[int | None, datetime],
    stored: tuple[int | None, datetime],
    replaces: bool,
) -> None:
    new = contact(profile_version=candidate[0], updated_at=candidate[1])
    old = contact(profile_version=stored[0], updated_at=stored[1])
    assert new.supersedes(old) is replaces
