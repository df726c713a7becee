"""Every trigger on the real stack: events on Kafka become emails in the customer's language
in the real SMTP catcher, earnings close together become one digest, the template preview
answers over HTTP, and the one-click unsubscribe link in an email turns the emails off."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifications.domain.unsubscribe import unsubscribe_token
from services.notifications.settings import NotificationsSettings, unsubscribe_key
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent, new_event
from tests.support import factories
from tests.support.notifications import rows, send, zone_at
from tests.support.polling import eventually
from tests.support.services import READER, settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

# Six seconds: long enough for two earnings published together to meet in one digest.
DIGEST_WINDOW_MINUTES = "0.1"


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    stack.migrate("notifications")
    return settings_for(
        NotificationsSettings,
        stack,
        "notifications",
        dispatch_interval_seconds="0.05",
        points_digest_window_minutes=DIGEST_WINDOW_MINUTES,
    )


def event(payload: events.Payload, customer_id: str, source: str) -> CloudEvent:
    return new_event(payload, source=source, subject=customer_id, time=datetime.now(UTC))


async def enrol(stack: Stack, locale: str) -> tuple[str, str]:
    token = uuid.uuid4().hex
    customer_id, email = f"cust-{token}", f"{token}@example.com"
    profile = factories.enrolment(
        customer_id,
        email=email,
        locale=locale,
        time_zone=zone_at(12).key,
        consent=events.Consent(email=True),
    )
    await send(stack, topics.CUSTOMERS, profile)
    return customer_id, email


def mails_to(stack: Stack, address: str) -> dict[str, EmailMessage]:
    """By the template named in the Message-ID's notification: here, by subject."""
    found: dict[str, EmailMessage] = {}
    for path in sorted(stack.mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if message["To"] == address:
            found[str(message["Subject"])] = message
    return found


def text_and_html(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


async def test_every_trigger_sends_its_email_in_the_customers_language(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await enrol(stack, "it")
    now = datetime.now(UTC)
    triggers: list[tuple[str, events.Payload, str]] = [
        (
            topics.POINTS,
            events.PointsRedeemed(
                customer_id=customer_id, points=500, redemption_id="r-1", reward="Caffè"
            ),
            "points",
        ),
        (
            topics.POINTS,
            events.PointsExpiring(
                customer_id=customer_id,
                points=1250,
                expires_at=datetime(2027, 3, 31, 12, tzinfo=UTC),
            ),
            "points",
        ),
        (
            topics.TIERS,
            events.TierDowngradeWarning(
                customer_id=customer_id,
                tier="gold",
                would_become="silver",
                review_at=datetime(2027, 1, 31, 12, tzinfo=UTC),
                amount_to_keep_tier=Decimal("125.50"),
            ),
            "tiers",
        ),
        (
            topics.TIERS,
            events.TierChanged(
                customer_id=customer_id,
                from_tier="gold",
                to_tier="silver",
                direction="down",
                reason="annual review",
                effective_at=now,
                review_at=now + timedelta(days=365),
            ),
            "tiers",
        ),
    ]
    for topic, payload, source in triggers:
        cause = event(payload, customer_id, source)
        await send(stack, topic, cause)
        await send(stack, topic, cause)  # redelivered: still one message

    # The welcome and four triggers: the daily cap of 3 lets three out and holds two.
    found = await eventually(
        lambda: _settled(database, customer_id), within=60, what="five messages decided"
    )
    templates = {row.template for row in found}
    assert templates == {
        "welcome",
        "redemption_confirmed",
        "points_expiring",
        "tier_downgrade_warning",
        "tier_down",
    }
    sent = {row.template for row in found if row.status == "sent"}
    assert len(sent) == 3
    mails = mails_to(stack, email)
    assert len(mails) == 3
    expected_subjects = {
        "welcome": "Benvenuto in Fedelta",
        "redemption_confirmed": "Il tuo premio è confermato",
        "points_expiring": "1.250 punti scadono il 31 marzo 2027",
        "tier_downgrade_warning": "Mantieni il tuo livello Oro",
        "tier_down": "Il tuo livello ora è Argento",
    }
    assert set(mails) == {expected_subjects[t] for t in sent}
    for message in mails.values():
        assert message["Content-Language"] == "it"
        text, html = text_and_html(message)
        assert text.startswith("Ciao,")
        assert '<html lang="it">' in html


async def _settled(database: AsyncEngine, customer_id: str) -> list[sa.Row[Any]] | None:
    found = await rows(database, customer_id)
    decided = [r for r in found if r.status == "sent" or r.hold is not None]
    return found if len(found) == 5 and len(decided) == 5 else None


async def test_earnings_close_together_arrive_as_one_digest(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    customer_id, email = await enrol(stack, "pl")
    for points in (40, 15, 7):
        earned = events.PointsEarned(
            customer_id=customer_id,
            points=points,
            reason="purchase",
            available_at=datetime.now(UTC),
            expires_at=datetime.now(UTC) + timedelta(days=365),
        )
        await send(stack, topics.POINTS, event(earned, customer_id, "points"))

    async def digest_sent() -> sa.Row[Any] | None:
        found = [r for r in await rows(database, customer_id) if r.template == "points_earned"]
        return found[0] if len(found) == 1 and found[0].status == "sent" else None

    digest = await eventually(digest_sent, within=60, what="the points digest")
    assert digest.params["points"] == 62
    assert digest.params["earnings"] == 3
    assert len([r for r in await rows(database, customer_id) if r.template == "points_earned"]) == 1
    message = mails_to(stack, email)["Zdobyłeś 62 punkty"]
    text, _ = text_and_html(message)
    assert "za 3 zakupy" in text


async def test_the_preview_renders_a_template_in_the_locale_asked_for(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(
        "/v1/templates/points_expiring/preview", params={"locale": "fi"}, headers=READER
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["template"], body["locale"]) == ("points_expiring", "fi")
    assert body["subject"] == "1\u00a0250 pistettä vanhenee 31. maaliskuuta 2027"
    assert body["text"].startswith("Hei,")
    assert '<html lang="fi">' in body["html"]


async def test_the_preview_falls_back_to_english(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/templates/welcome/preview", params={"locale": "de-DE"}, headers=READER
    )
    assert response.status_code == 200, response.text
    assert (response.json()["locale"], response.json()["subject"]) == ("en", "Welcome to Fedelta")


async def test_an_unknown_template_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/templates/no_such_template/preview", headers=READER)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 404


async def test_the_preview_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/templates/welcome/preview")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_the_one_click_link_in_an_email_turns_the_emails_off(
    stack: Stack, client: httpx.AsyncClient, database: AsyncEngine, settings: NotificationsSettings
) -> None:
    customer_id, email = await enrol(stack, "en")

    async def welcomed() -> EmailMessage | None:
        return mails_to(stack, email).get("Welcome to Fedelta")

    welcome = await eventually(welcomed, within=60, what="the welcome")
    assert welcome["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = str(welcome["List-Unsubscribe"]).strip("<>")
    assert url.startswith(f"{settings.public_url}/v1/unsubscribe/")
    assert customer_id not in url  # never the bare, guessable id
    text, html = text_and_html(welcome)
    assert url in text
    assert f'href="{url}"' in html
    path = url.removeprefix(settings.public_url)

    page = await client.get(path)
    assert page.status_code == 200
    assert 'method="post"' in page.text
    # Opening the link changes nothing: mail scanners open links too.
    preferences = await client.get(f"/v1/customers/{customer_id}/preferences", headers=READER)
    assert preferences.json()["channels"]["email"] is True

    # As a mail client does it (RFC 8058): a form POST without any token of ours, twice.
    for _ in range(2):
        response = await client.post(
            path,
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"channel": "email", "subscribed": False}
    preferences = await client.get(f"/v1/customers/{customer_id}/preferences", headers=READER)
    assert preferences.json()["channels"] == {"email": False, "sms": True}

    redemption = events.PointsRedeemed(
        customer_id=customer_id, points=100, redemption_id="r-2", reward="Mug"
    )
    await send(stack, topics.POINTS, event(redemption, customer_id, "points"))

    async def suppressed() -> sa.Row[Any] | None:
        found = [r for r in await rows(database, customer_id) if r.template != "welcome"]
        return found[0] if found and found[0].status == "suppressed" else None

    row = await eventually(suppressed, within=60, what="the confirmation suppressed")
    assert row.last_error == "email turned off in the preferences"
    assert list(mails_to(stack, email)) == ["Welcome to Fedelta"]


@pytest.mark.parametrize(
    "token",
    [
        "Y3VzdC0x.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # cust-1 with a forged MAC
        "bm90LWEtdG9rZW4.eA",
    ],
)
async def test_a_forged_unsubscribe_token_is_a_404_problem(
    client: httpx.AsyncClient, token: str
) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, f"/v1/unsubscribe/{token}")
        assert response.status_code == 404
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_valid_token_for_an_unknown_customer_is_a_404_problem(
    client: httpx.AsyncClient, settings: NotificationsSettings
) -> None:
    token = unsubscribe_token(f"never-{uuid.uuid4().hex}", unsubscribe_key(settings))
    response = await client.post(f"/v1/unsubscribe/{token}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
