"""Never harass on the real stack: quiet hours and the daily cap, with the real SMTP catcher,
the dispatcher on the system clock and the jobs replaying a later instant with `as_of`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.adapters.repositories.consumer import SqlConsumerRepository
from services.notifications.adapters.tables import preferences
from services.notifications.domain.model import OPTED_OUT, Channel, schedule
from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from tests.support import factories
from tests.support.notifications import (
    mails_to,
    new_customer,
    rows,
    run_job,
    send,
    tier_up,
    zone_at,
)
from tests.support.polling import eventually
from tests.support.services import ADMIN, READER, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    stack.migrate("notifications")
    # The defaults of the contract: quiet hours 21:00-08:00, at most 3 messages a day.
    return settings_for(
        NotificationsSettings,
        stack,
        "notifications",
        dispatch_interval_seconds="0.05",
        # An expiry warning waits for its day's other lots: seconds, for the lot below.
        expiry_warning_hold_minutes="0.05",
    )


def enrolment(customer_id: str, email: str, zone: ZoneInfo) -> CloudEvent:
    return factories.enrolment(
        customer_id, email=email, time_zone=zone.key, consent=events.Consent(email=True)
    )


async def test_a_customer_enrolled_in_their_quiet_hours_gets_the_welcome_after_them(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    zone = zone_at(2)  # 02:xx for them: quiet until 08:00
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, zone))

    async def held() -> sa.Row[Any] | None:
        found = await rows(database, customer_id)
        return found[0] if found and found[0].hold == "quiet hours" else None

    welcome = await eventually(held, within=60, what="the welcome held by quiet hours")
    morning = datetime.combine(datetime.now(zone).date(), time(8, 0), tzinfo=zone)
    assert (welcome.status, welcome.attempts, welcome.next_attempt_at) == ("scheduled", 0, morning)
    assert mails_to(stack, email) == []

    await run_job(client, "release-quiet-hours", morning - timedelta(minutes=1))
    assert (await rows(database, customer_id))[0].hold == "quiet hours"  # not over yet

    after = morning + timedelta(minutes=1)
    first = await run_job(client, "release-quiet-hours", after)
    assert first["released"] >= 1

    async def mailed() -> list[EmailMessage] | None:
        return mails_to(stack, email) or None

    (mail,) = await eventually(mailed, within=60, what="the welcome after the quiet hours")
    assert mail["Subject"] == "Welcome to Fedelta"
    # Run again for the same instant: this customer's welcome is not sent a second time
    # (the count may include other tests' customers, whose events are still arriving).
    await run_job(client, "release-quiet-hours", after)
    (sent,) = await rows(database, customer_id)
    assert (sent.status, sent.attempts, sent.hold) == ("sent", 1, None)
    assert len(mails_to(stack, email)) == 1


async def test_the_cap_holds_the_fourth_message_of_a_day_until_the_next_day(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = new_customer()
    zone = zone_at(12)  # noon for them: far from quiet hours and from midnight
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, zone))

    async def welcomed() -> bool:
        return any(row.status == "sent" for row in await rows(database, customer_id))

    await eventually(welcomed, within=60, what="the welcome")
    for tier in ("silver", "gold", "platinum"):
        await send(stack, topics.TIERS, tier_up(customer_id, tier))

    async def settled() -> list[sa.Row[Any]] | None:
        found = await rows(database, customer_id)
        decided = [r for r in found if r.status == "sent" or r.hold is not None]
        return found if len(found) == 4 and len(decided) == 4 else None

    found = await eventually(settled, within=60, what="three sent and one held")
    sent = [row for row in found if row.status == "sent"]
    (held,) = [row for row in found if row.status == "scheduled"]
    midnight = datetime.combine(datetime.now(zone).date() + timedelta(days=1), time(0), zone)
    assert len(sent) == 3
    assert (held.hold, held.next_attempt_at, held.attempts) == ("frequency cap", midnight, 0)
    assert len(mails_to(stack, email)) == 3

    log = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
    assert sorted(item["status"] for item in log.json()["items"]) == [
        "scheduled",
        "sent",
        "sent",
        "sent",
    ]

    # Replaying the next morning, after its quiet hours: the fourth goes out.
    next_morning = midnight + timedelta(hours=9)
    assert (await run_job(client, "release-quiet-hours", next_morning))["released"] >= 1

    async def four_mails() -> list[EmailMessage] | None:
        found = mails_to(stack, email)
        return found if len(found) == 4 else None

    await eventually(four_mails, within=60, what="the fourth message the next day")
    assert (await run_job(client, "release-quiet-hours", next_morning))["released"] == 0


PREFERENCES = {
    "channels": {"email": False, "sms": True},
    "quiet_hours": {"start": "22:30", "end": "07:15"},
    "time_zone": "Europe/Rome",
    "locale": "it",
}


async def known_customer(stack: Stack, database: AsyncEngine) -> tuple[str, str]:
    customer_id, email = new_customer()
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, zone_at(12)))

    async def mailed() -> bool:
        return any(row.status == "sent" for row in await rows(database, customer_id))

    await eventually(mailed, within=60, what="the welcome")
    return customer_id, email


async def test_preferences_default_until_chosen_then_replace_them(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await known_customer(stack, database)
    path = f"/v1/customers/{customer_id}/preferences"

    defaults = await client.get(path, headers=READER)
    assert defaults.status_code == 200, defaults.text
    assert defaults.json() == {
        "customer_id": customer_id,
        "channels": {"email": True, "sms": True},
        "quiet_hours": {"start": "21:00", "end": "08:00"},
        "time_zone": None,
        "locale": None,
        "updated_at": None,
    }

    forbidden = await client.put(path, json=PREFERENCES, headers=READER)
    assert forbidden.status_code == 403
    key = {"Idempotency-Key": uuid.uuid4().hex}
    chosen = await client.put(path, json=PREFERENCES, headers=ADMIN | key)
    assert chosen.status_code == 200, chosen.text
    body = chosen.json()
    assert {name: body[name] for name in PREFERENCES} == PREFERENCES
    assert (await client.get(path, headers=READER)).json() == body

    replayed = await client.put(path, json=PREFERENCES, headers=ADMIN | key)
    assert (replayed.status_code, replayed.json()) == (200, body)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    other = PREFERENCES | {"locale": "fi"}
    reused = await client.put(path, json=other, headers=ADMIN | key)
    assert reused.status_code == 409
    assert reused.headers["content-type"].startswith("application/problem+json")

    # Email turned off: the next message is suppressed although the consent stands.
    await send(stack, topics.TIERS, tier_up(customer_id, "gold"))

    async def suppressed() -> bool:
        return any(row.status == "suppressed" for row in await rows(database, customer_id))

    await eventually(suppressed, within=60, what="the tier-up suppressed")
    assert len(mails_to(stack, email)) == 1  # the welcome only

    # The preferences are personal data: erased with the contact.
    erased_at = datetime.now(UTC)
    await send(
        stack,
        topics.CUSTOMERS,
        new_event(
            events.CustomerErased(customer_id=customer_id),
            source="ingest/demo",
            subject=customer_id,
            time=erased_at,
        ),
    )

    async def gone() -> bool:
        return (await client.get(path, headers=READER)).status_code == 404

    await eventually(gone, within=60, what="the preferences erased")
    async with database.connect() as conn:
        left = await conn.scalar(
            sa.select(sa.func.count())
            .select_from(preferences)
            .where(preferences.c.customer_id == customer_id)
        )
    assert left == 0


@pytest.mark.parametrize(
    "body",
    [
        PREFERENCES | {"channels": {"email": "yes", "sms": True}},
        PREFERENCES | {"quiet_hours": {"start": "24:00", "end": "08:00"}},
        PREFERENCES | {"time_zone": "Mars/Olympus"},
        PREFERENCES | {"colour": "blue"},
        {"channels": {"email": True, "sms": True}},
    ],
)
async def test_bad_preferences_are_refused_and_change_nothing(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine, body: dict[str, Any]
) -> None:
    customer_id, _ = await known_customer(stack, database)
    path = f"/v1/customers/{customer_id}/preferences"
    refused = await client.put(path, json=body, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(path, headers=READER)).json()["updated_at"] is None


async def test_preferences_of_an_unknown_customer_are_a_404(client: httpx.AsyncClient) -> None:
    path = "/v1/customers/nobody-here/preferences"
    response = await client.get(path, headers=READER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(path)).status_code == 401


async def test_preferences_may_come_before_the_profile_and_the_welcome_follows_them(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id = f"cust-{uuid.uuid4().hex}"
    path = f"/v1/customers/{customer_id}/preferences"
    set_ahead = await client.put(
        path, json=PREFERENCES | {"channels": {"email": False, "sms": False}}, headers=ADMIN
    )
    assert set_ahead.status_code == 200, set_ahead.text
    assert (await client.get(path, headers=READER)).json()["channels"]["email"] is False

    await send(
        stack,
        topics.CUSTOMERS,
        enrolment(customer_id, f"{customer_id}@example.com", ZoneInfo("UTC")),
    )

    async def decided() -> list[Any] | None:
        found = await rows(database, customer_id)
        return found if found and found[0].status != "scheduled" else None

    (welcome,) = await eventually(decided, within=60, what="the welcome to be decided")
    assert (welcome.status, welcome.last_error) == ("suppressed", OPTED_OUT)


async def test_retry_deliveries_makes_a_backed_off_retry_due_once(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await known_customer(stack, database)
    now = datetime.now(UTC)
    backoff_ends = now + timedelta(hours=1)
    failed_once = replace(
        schedule(
            notification_id=str(uuid.uuid4()),
            customer_id=customer_id,
            channel=Channel.EMAIL,
            template="tier_up",
            cause_event_id=str(uuid.uuid4()),
            now=now,
            params={"tier": "gold"},
        ),
        attempts=1,
        last_error="timeout",
        next_attempt_at=backoff_ends,
    )
    async with database.begin() as conn:
        await SqlConsumerRepository(conn).schedule([failed_once])

    await run_job(client, "retry-deliveries", backoff_ends - timedelta(minutes=1))
    (waiting,) = [r for r in await rows(database, customer_id) if r.template == "tier_up"]
    assert (waiting.status, waiting.next_attempt_at) == ("scheduled", backoff_ends)

    as_of = backoff_ends + timedelta(seconds=1)
    assert (await run_job(client, "retry-deliveries", as_of))["retried"] >= 1

    async def retried() -> sa.Row[Any] | None:
        found = [r for r in await rows(database, customer_id) if r.template == "tier_up"]
        return found[0] if found and found[0].status == "sent" else None

    sent = await eventually(retried, within=60, what="the retry sent")
    assert (sent.attempts, sent.released_as_of) == (2, as_of)
    assert (await run_job(client, "retry-deliveries", as_of))["retried"] == 0
    assert len(mails_to(stack, email)) == 2


def points_event(payload: events.Payload, customer_id: str) -> CloudEvent:
    return new_event(payload, source="points", subject=customer_id, time=datetime.now(UTC))


async def welcomed_at_noon(stack: Stack, database: AsyncEngine) -> tuple[str, str, ZoneInfo]:
    customer_id, email = new_customer()
    zone = zone_at(12)  # noon for them: far from quiet hours and from midnight
    await send(stack, topics.CUSTOMERS, enrolment(customer_id, email, zone))

    async def welcomed() -> bool:
        return any(row.status == "sent" for row in await rows(database, customer_id))

    await eventually(welcomed, within=60, what="the welcome")
    return customer_id, email, zone


async def test_a_points_digest_goes_out_when_a_job_runs_as_of_after_its_window(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email, _ = await welcomed_at_noon(stack, database)
    now = datetime.now(UTC)
    await send(
        stack,
        topics.POINTS,
        points_event(
            events.PointsEarned(
                customer_id=customer_id,
                points=42,
                reason="purchase",
                available_at=now,
                expires_at=now + timedelta(days=365),
            ),
            customer_id,
        ),
    )

    async def gathering() -> sa.Row[Any] | None:
        found = [r for r in await rows(database, customer_id) if r.template == "points_earned"]
        return found[0] if found and found[0].hold == "digest window" else None

    digest = await eventually(gathering, within=60, what="the digest gathering earnings")
    window_end = digest.next_attempt_at
    assert window_end >= now + timedelta(minutes=9)  # the default window: 10 minutes

    await run_job(client, "release-quiet-hours", window_end - timedelta(minutes=1))
    assert [r.hold for r in await rows(database, customer_id) if r.template == "points_earned"] == [
        "digest window"
    ]

    await run_job(client, "release-quiet-hours", window_end + timedelta(minutes=1))

    async def digest_mail() -> list[EmailMessage] | None:
        found = [m for m in mails_to(stack, email) if "42" in str(m["Subject"])]
        return found or None

    # The dispatcher of the shared test stack may first have a bulk of other tests' expiry
    # warnings to send (jobs run a year ahead warn every member with lots): the digest is
    # bulk too, so it can wait its turn behind them.
    (mail,) = await eventually(digest_mail, within=300, what="the digest after its window")
    assert mail["Subject"] == "You have earned 42 points"


async def test_over_the_cap_an_expiry_warning_stale_by_the_next_day_is_dropped_with_the_reason(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email, zone = await welcomed_at_noon(stack, database)
    for tier in ("silver", "gold"):
        await send(stack, topics.TIERS, tier_up(customer_id, tier))

    async def three_sent() -> bool:
        return len([r for r in await rows(database, customer_id) if r.status == "sent"]) == 3

    await eventually(three_sent, within=60, what="the welcome and two tier-up messages")
    # Seconds before the customer's midnight: the warning waits that long for the other lots
    # of the day, and would be stale by the next day, when the cap lets it out.
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    expires_at = datetime.combine(tomorrow, time(0), tzinfo=zone) - timedelta(seconds=5)
    await send(
        stack,
        topics.POINTS,
        points_event(
            events.PointsExpiring(customer_id=customer_id, points=30, expires_at=expires_at),
            customer_id,
        ),
    )

    async def decided() -> dict[str, Any] | None:
        log = await client.get(f"/v1/customers/{customer_id}/notifications", headers=READER)
        items: list[dict[str, Any]] = log.json()["items"]
        found = [i for i in items if i["template"] == "points_expiring"]
        return found[0] if found and found[0]["status"] != "scheduled" else None

    warning = await eventually(decided, within=60, what="the stale warning to be dropped")
    assert warning["status"] == "suppressed"
    assert warning["reason"].startswith("over the daily cap and stale by the next day")
    assert len(mails_to(stack, email)) == 3
