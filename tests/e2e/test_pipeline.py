"""End to end over HTTP: a POS enrols and buys; points, tiers and mail follow."""

from __future__ import annotations

import email
import json
import time
import uuid
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from fedelta_client import StackClient
from shared.messaging import topics
from shared.messaging.kafka import KafkaConnection
from shared.web.auth import SIGNATURE_HEADER, sign
from tests.e2e.conftest import Pipeline
from tests.support.kafka import events_for, publish
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


def new_customer() -> tuple[str, str]:
    customer = f"e2e-{uuid.uuid4().hex[:12]}"
    return customer, f"{customer}@example.com"


async def json_when(pos_call: Any, predicate: Any) -> dict[str, Any] | None:
    response = await pos_call
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if predicate(body) else None


def mails_to(mail_dir: Path, address: str) -> list[Message]:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes())
        if address in str(message["To"]):
            found.append(message)
    return found


async def test_enrolment_and_two_purchases_give_points_tier_and_two_emails(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer, address = new_customer()
    await pos.enrol(customer, address, consent=True)
    await pos.purchase(customer, "300.00")
    await pos.purchase(customer, "250.00")

    balance = await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == 650),
        within=60,
        what="a balance of 650 points",
    )
    assert balance["lifetime_earned"] == 650
    tier = await eventually(
        lambda: json_when(pos.tier(customer), lambda t: t["tier"] == "silver"),
        within=60,
        what="tier silver",
    )
    assert tier["next_tier"] == "gold"

    async def two_mails() -> list[Message] | None:
        found = mails_to(pipeline.env.mail_dir, address)
        return found if len(found) >= 2 else None

    mails = await eventually(two_mails, within=60, what="a welcome and a tier-up email")
    subjects = " | ".join(str(m["Subject"]) for m in mails)
    assert len(mails) == 2, subjects
    assert "welcome" in subjects.lower()
    assert "silver" in subjects.lower() or any(
        "silver" in m.get_payload(decode=True).decode().lower()  # type: ignore[union-attr]
        for m in mails
    )
    log = await eventually(
        lambda: json_when(
            pos.notifications(customer),
            lambda n: sum(i["status"] == "sent" for i in n["items"]) == 2,
        ),
        within=30,
        what="two sent notifications in the delivery log",
    )
    sent = {item["template"] for item in log["items"] if item["status"] == "sent"}
    assert sent == {"welcome", "tier_up"}
    # The points earned wait together, as one digest, for the end of its 10-minute window.
    waiting = [item["template"] for item in log["items"] if item["status"] == "scheduled"]
    assert waiting == ["points_earned"]


async def test_the_same_purchase_twice_and_a_redelivered_event_change_nothing(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer, address = new_customer()
    await pos.enrol(customer, address)
    purchase_id, occurred_at = f"p-{uuid.uuid4()}", datetime.now(UTC)
    first = await pos.purchase(customer, "40.00", purchase_id, occurred_at)
    again = await pos.purchase(customer, "40.00", purchase_id, occurred_at)
    assert again.event_id == first.event_id

    bootstrap = pipeline.stack.kafka
    published = await eventually(
        lambda: _events(bootstrap, topics.PURCHASES, customer, 1), what="the purchase on Kafka"
    )
    assert len(published) == 1
    # Kafka redelivers: the very same event again must not earn again anywhere.
    await publish(bootstrap, topics.PURCHASES, customer, published[0])
    await pos.purchase(customer, "2.00")

    await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == 142),
        within=60,
        what="100 + 40 + 2 points",
    )
    tier = await eventually(
        lambda: json_when(pos.tier(customer), lambda t: t["qualifying_spend"] == "42.00"),
        within=60,
        what="qualifying spend 42.00",
    )
    assert tier["tier"] == "bronze"


@pytest.mark.parametrize("kind", ["tampered", "stale", "unknown-key"])
async def test_bad_signatures_are_refused_with_401(
    pipeline: Pipeline, pos: StackClient, kind: str
) -> None:
    customer, _ = new_customer()
    body = {
        "customer_id": customer,
        "locale": "en",
        "time_zone": "UTC",
        "consent": {"email": False, "sms": False},
    }
    if kind == "tampered":
        # Signed for one body, sent with another: a customer id changed in transit.
        signed_body = json.dumps(body).encode()
        sent_body = json.dumps({**body, "customer_id": f"{customer}-x"}).encode()
        response = await pos.http.post(
            f"{pipeline.env.ingest_url}/v1/customers",
            content=sent_body,
            headers={
                "Authorization": f"Bearer {pipeline.env.partner_key}",
                SIGNATURE_HEADER: sign(
                    pipeline.env.partner_secret,
                    int(time.time()),
                    "POST",
                    "/v1/customers",
                    signed_body,
                ),
                "Content-Type": "application/json",
            },
        )
    elif kind == "stale":
        response = await pos.post("/v1/customers", body, signed_at=int(time.time()) - 301)
    else:
        response = await pos.http.post(
            f"{pipeline.env.ingest_url}/v1/customers",
            json=body,
            headers={"Authorization": "Bearer fk_not-a-key", "Fedelta-Signature": "t=1,v1=00"},
        )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]
    # Refused means not enrolled: a purchase for either id is refused as an unknown customer.
    for refused in (customer, f"{customer}-x"):
        purchase = await pos.post(
            "/v1/purchases",
            {
                "purchase_id": f"p-{uuid.uuid4()}",
                "customer_id": refused,
                "currency": "EUR",
                "total": "1.00",
                "occurred_at": datetime.now(UTC).isoformat(),
            },
        )
        assert purchase.status_code == 422, purchase.text


async def test_a_malformed_body_is_a_problem_and_changes_nothing(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer, address = new_customer()
    await pos.enrol(customer, address)
    await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == 100),
        within=60,
        what="the welcome bonus",
    )
    bad_bodies: list[dict[str, Any] | bytes] = [
        b'{"purchase_id": "p1", "customer_id": ',  # not JSON
        {"purchase_id": "p-bad-1", "customer_id": customer, "currency": "EUR", "total": "12.00"},
        {
            "purchase_id": "p-bad-2",
            "customer_id": customer,
            "currency": "EUR",
            "total": "-5",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
        {
            "purchase_id": "p-bad-3",
            "customer_id": customer,
            "currency": "USD",
            "total": "5.00",
            "occurred_at": datetime.now(UTC).isoformat(),
        },
    ]
    for body in bad_bodies:
        response = await pos.post("/v1/purchases", body)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"]
    # A good purchase after them is the only one that counts.
    await pos.purchase(customer, "7.00")
    await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == 107),
        within=60,
        what="only the good purchase",
    )
    purchases = await events_for(pipeline.stack.kafka, topics.PURCHASES, customer)
    assert [e.data["total"] for e in purchases] == ["7.00"]


async def test_a_purchase_accepted_while_the_broker_is_down_is_processed_when_it_is_back(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer, address = new_customer()
    await pos.enrol(customer, address)
    await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == 100),
        within=60,
        what="the welcome bonus",
    )
    pipeline.run("kafka.sh", "stop")
    try:
        event_id = (await pos.purchase(customer, "99.00")).event_id
        assert event_id
    finally:
        pipeline.run("kafka.sh", "start")
    balance = await eventually(
        lambda: json_when(pos.balance(customer), lambda b: b["available"] == 199),
        within=120,
        interval=0.5,
        what="the purchase made while Kafka was down",
    )
    assert balance["lifetime_earned"] == 199


async def _events(
    bootstrap: str | KafkaConnection, topic: str, customer: str, count: int
) -> list[Any] | None:
    found = await events_for(bootstrap, topic, customer)
    return found if len(found) >= count else None


async def test_the_signature_binds_the_path_and_query_as_the_real_server_receives_them(
    pipeline: Pipeline, pos: StackClient
) -> None:
    """Over uvicorn (httptools), not an in-process transport: the raw path and query ingest
    checks are the bytes on the request line, so a percent-encoded path and a query verify,
    and a signature captured for one customer does not work on another's path."""
    customer, address = new_customer()
    other, _ = new_customer()
    await pos.enrol(customer, address, consent=True)
    await pos.enrol(other, None, consent=False)
    spelt_out = "".join(f"%{byte:02X}" for byte in customer.encode())  # /v1/customers/%65%32...
    changed = await pos.patch(f"/v1/customers/{spelt_out}?source=e2e&b=%41", {"locale": "it"})
    assert changed.status_code == 202, changed.text

    body = json.dumps({"consent": {"email": True}}).encode()
    captured = sign(
        pipeline.env.partner_secret, int(time.time()), "PATCH", f"/v1/customers/{customer}", body
    )
    replayed = await pos.http.patch(
        f"{pipeline.env.ingest_url}/v1/customers/{other}",
        content=body,
        headers={
            "Authorization": f"Bearer {pipeline.env.partner_key}",
            SIGNATURE_HEADER: captured,
            "Content-Type": "application/json",
        },
    )
    assert replayed.status_code == 401, replayed.text
