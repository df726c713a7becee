"""Notifications end to end, through ingest: what customers actually receive.

The pipeline runs without default quiet hours (tests/e2e/conftest.py), so the quiet-hours
story gives its customer quiet hours of their own, set before the enrolment, and replays
their end with an `as_of` job; the win-back story replays a date 91 days ahead the same way.
The stories run in this order: the jobs run as of later dates act on every customer, so the
stories after them check only what is theirs (one message of a kind, never a total)."""

from __future__ import annotations

import email
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from fedelta_client import StackClient
from tests.e2e.conftest import Pipeline
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


def new_customer() -> tuple[str, str]:
    customer = f"story-{uuid.uuid4().hex[:12]}"
    return customer, f"{customer}@example.com"


def mails_to(mail_dir: Path, address: str) -> list[EmailMessage]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            found.append(message)
    return found


def subjects(mail_dir: Path, address: str) -> list[str]:
    return [str(m["Subject"]) for m in mails_to(mail_dir, address)]


async def enrol(
    pos: StackClient, customer_id: str, address: str, *, consent: bool, locale: str = "en"
) -> None:
    response = await pos.post(
        "/v1/customers",
        {
            "customer_id": customer_id,
            "email": address,
            "locale": locale,
            "time_zone": "UTC",
            "consent": {"email": consent, "sms": False},
        },
    )
    assert response.status_code == 202, response.text


async def log_of(pos: StackClient, customer_id: str) -> list[dict[str, Any]]:
    response = await pos.notifications(customer_id)
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def run_job(pos: StackClient, name: str, as_of: datetime) -> dict[str, Any]:
    response = await pos.admin_post(
        f"{pos.env.notifications_url}/v1/admin/jobs/{name}", params={"as_of": as_of.isoformat()}
    )
    assert response.status_code == 200, response.text
    (summary,) = response.json()["jobs"]
    assert isinstance(summary, dict)
    return summary


async def test_an_italian_customer_with_consent_gets_welcome_and_tier_up_in_italian(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer_id, address = new_customer()
    await enrol(pos, customer_id, address, consent=True, locale="it")
    await pos.purchase(customer_id, "600.00")  # past silver's 500

    welcome, tier_up = "Benvenuto in Fedelta", "Hai raggiunto il livello Argento"

    async def both() -> list[str] | None:
        found = subjects(pipeline.env.mail_dir, address)
        return found if welcome in found and tier_up in found else None

    found = await eventually(both, within=90, what="the welcome and tier-up emails in Italian")
    assert found.count(welcome) == 1 and found.count(tier_up) == 1
    for mail in mails_to(pipeline.env.mail_dir, address):
        assert mail["Content-Language"] == "it"
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


async def test_a_customer_without_consent_gets_nothing(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer_id, address = new_customer()
    await enrol(pos, customer_id, address, consent=False, locale="it")
    await pos.purchase(customer_id, "600.00")

    async def decided() -> list[dict[str, Any]] | None:
        items = await log_of(pos, customer_id)
        kinds = {(i["template"], i["status"]) for i in items}
        return items if {("welcome", "suppressed"), ("tier_up", "suppressed")} <= kinds else None

    items = await eventually(decided, within=90, what="the welcome and tier-up suppressed")
    assert all(i["status"] != "sent" for i in items)
    assert {i["reason"] for i in items if i["status"] == "suppressed"} == {"no email consent"}
    assert mails_to(pipeline.env.mail_dir, address) == []


async def test_a_customer_enrolled_in_their_quiet_hours_gets_the_welcome_after_them(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer_id, address = new_customer()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    quiet_start, quiet_end = now - timedelta(hours=1), now + timedelta(hours=1)
    chosen = await pos.http.put(
        f"{pos.env.notifications_url}/v1/customers/{customer_id}/preferences",
        json={
            "channels": {"email": True, "sms": False},
            "quiet_hours": {"start": f"{quiet_start:%H:%M}", "end": f"{quiet_end:%H:%M}"},
            "time_zone": "UTC",
        },
        headers={"Authorization": f"Bearer {pos.env.token('notifications', 'admin')}"},
    )
    assert chosen.status_code == 200, chosen.text
    await enrol(pos, customer_id, address, consent=True)

    async def held() -> dict[str, Any] | None:
        # Scheduled as soon as the profile arrives, then put off until the quiet hours end.
        items = [i for i in await log_of(pos, customer_id) if i["template"] == "welcome"]
        waits_until = items[0]["next_attempt_at"] if items else None
        if waits_until and datetime.fromisoformat(waits_until) > now + timedelta(minutes=30):
            return items[0]
        return None

    welcome = await eventually(held, within=90, what="the welcome held by the quiet hours")
    assert welcome["status"] == "scheduled"
    assert datetime.fromisoformat(welcome["next_attempt_at"]) == quiet_end
    assert mails_to(pipeline.env.mail_dir, address) == []

    released = await run_job(pos, "release-quiet-hours", quiet_end + timedelta(minutes=1))
    assert released["released"] >= 1

    async def mailed() -> list[str] | None:
        # The digest of the welcome bonus, whose window the job's instant closed too, may
        # come with it.
        found = [s for s in subjects(pipeline.env.mail_dir, address) if s.startswith("Welcome")]
        return found or None

    assert await eventually(mailed, within=90, what="the welcome after the quiet hours") == [
        "Welcome to Fedelta"
    ]
    (sent,) = [i for i in await log_of(pos, customer_id) if i["template"] == "welcome"]
    assert (sent["status"], sent["attempts"]) == ("sent", 1)
    assert datetime.fromisoformat(sent["sent_at"]) < quiet_end  # sent now, replaying the end


async def test_a_customer_silent_for_90_days_gets_one_win_back_email(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer_id, address = new_customer()
    await enrol(pos, customer_id, address, consent=True)
    await pos.purchase(customer_id, "20.00")

    async def welcomed() -> bool:
        return "Welcome to Fedelta" in subjects(pipeline.env.mail_dir, address)

    await eventually(welcomed, within=90, what="the welcome")
    later = datetime.now(UTC) + timedelta(days=91)

    async def won_back() -> list[dict[str, Any]] | None:
        # The purchase reaches notifications on its own topic: the job finds the customer
        # lapsed once it has. A run that finds nothing new changes nothing.
        await run_job(pos, "win-back", later)
        items = [i for i in await log_of(pos, customer_id) if i["template"] == "win_back"]
        return items or None

    (scheduled,) = await eventually(won_back, within=90, what="the win-back message")

    async def mailed() -> list[str] | None:
        found = [s for s in subjects(pipeline.env.mail_dir, address) if s == "We miss you"]
        return found or None

    assert await eventually(mailed, within=90, what="the win-back email") == ["We miss you"]
    await run_job(pos, "win-back", later + timedelta(days=1))  # the same lapse: nothing new
    items = [i for i in await log_of(pos, customer_id) if i["template"] == "win_back"]
    assert [i["notification_id"] for i in items] == [scheduled["notification_id"]]
    assert [s for s in subjects(pipeline.env.mail_dir, address) if s == "We miss you"] == [
        "We miss you"
    ]


async def test_a_reward_redeemed_at_the_till_comes_by_email_with_its_code_and_qr_image(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer_id, address = new_customer()
    await enrol(pos, customer_id, address, consent=True)
    await pos.purchase(customer_id, "300.00")

    async def enough_points() -> bool:
        response = await pos.balance(customer_id)
        return response.status_code == 200 and response.json()["available"] >= 150

    await eventually(enough_points, within=60, what="the purchase's points")
    reward = await pos.admin.create_reward(
        {"name": f"Story cake {uuid.uuid4().hex[:6]}", "points_cost": 150, "kind": "item"}
    )
    redeemed = await pos.redeem(customer_id, reward_id=reward["id"], store_id="story-store")
    code = redeemed.body["coupon"]["code"]

    async def with_the_code() -> EmailMessage | None:
        for mail in mails_to(pipeline.env.mail_dir, address):
            text = mail.get_body(preferencelist=("plain",))
            if text is not None and code in text.get_content():
                return mail
        return None

    mail = await eventually(with_the_code, within=90, what="the coupon's email")
    assert code not in str(mail["Subject"])
    images = [part for part in mail.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1
    png = images[0].get_content()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IDAT" in png
    # A square image of a QR code's size (IHDR's width and height), not a placeholder: its
    # byte count says little (a code's PNG is about 200 bytes, some a few less).
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == height >= 100
    html = mail.get_body(preferencelist=("html",))
    assert (
        html is not None and f"cid:{str(images[0]['Content-ID']).strip('<>')}" in html.get_content()
    )
    # The code reached the member by email only: never an event, never a log line.
    logs = "".join(p.read_text(errors="replace") for p in pipeline.stack.state_dir.glob("**/*.log"))
    assert code not in logs
