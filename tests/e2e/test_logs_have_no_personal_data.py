"""No personal data in the logs of the stack, whatever ran before (or will run after) this test.

It makes its own traffic with personal data through the pipeline: a customer enrolled with an
email address and a phone number (welcomed by mail), their profile changed to another address
and number, a purchase that takes them to silver (tier_up sent), and their erasure. It waits,
polling with a deadline, until every service has applied every event about the customer (each
consumer group committed past them, which it does after the transaction that applied them),
then searches every log of the stack (`<state>/logs/*.log`: the four services, Kafka,
PostgreSQL, the mail and SMS catchers) for:

- the addresses and numbers it used;
- every email address and phone number on the customers topic (the profiles of whatever other
  tests enrolled so far in the session);
- every email address and phone number written literally in the e2e test modules;
- anything shaped like an `@example.` address or an international phone number.
"""

from __future__ import annotations

import email
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest

from fedelta_client import StackClient
from shared.messaging import topics
from shared.messaging.kafka import KafkaConnection
from tests.e2e.conftest import Pipeline
from tests.support.kafka import consumed_everywhere, read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

E2E_TESTS = Path(__file__).parent
EMAIL_SHAPE = re.compile(r"[A-Za-z0-9._%+-]+@example\.[A-Za-z]{2,}")
PHONE_SHAPE = re.compile(r"(?<![\w+])\+[1-9]\d{7,14}\b")
SERVICE_LOGS = {"ingest.log", "points.log", "tiers.log", "notifications.log"}
# Generous: every service applies the customer's events, the dispatcher sends two messages.
WITHIN = 120.0


def literals_in_the_e2e_tests() -> set[str]:
    found: set[str] = set()
    for module in E2E_TESTS.glob("*.py"):
        text = module.read_text()
        found.update(m for m in EMAIL_SHAPE.findall(text) if "{" not in m)
        found.update(PHONE_SHAPE.findall(text))
    return found


async def published_contacts(
    bootstrap_servers: str | KafkaConnection, key: str | None = None
) -> set[str]:
    """The email addresses and phone numbers of every profile on the customers topic (of one
    customer's only, if `key` is given)."""
    contacts: set[str] = set()
    for record in await read_all(bootstrap_servers, topics.CUSTOMERS):
        if record.value is None or (key is not None and record.key != key.encode()):
            continue
        data = json.loads(record.value).get("data", {})
        for field in ("email", "phone"):
            if data.get(field):
                contacts.add(str(data[field]))
    return contacts


def mail_to(mail_dir: Path, address: str) -> bool:
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        if address in str(message["To"]):
            return True
    return False


def new_phone() -> str:
    return f"+3584{uuid.uuid4().int % 10**8:08d}"


async def body_when(
    call: Awaitable[httpx.Response], wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The answer's body once the call answers 200 with what is wanted, else None."""
    response = await call
    if response.status_code != 200:
        return None
    body: dict[str, Any] = response.json()
    return body if wanted(body) else None


def tier_up_sent(log: dict[str, Any]) -> bool:
    return any(i["template"] == "tier_up" and i["status"] == "sent" for i in log["items"])


async def drive_a_customer_with_personal_data(
    pipeline: Pipeline, pos: StackClient, customer: str, contacts: list[str]
) -> str:
    """Enrolment, welcome, profile change, purchase to silver, tier_up, erasure; answers the
    erasure's event id, the last event the test made."""
    first_email, first_phone, second_email, second_phone = contacts
    await pos.enrol(
        customer, first_email, consent=True, time_zone="UTC", phone=first_phone, sms_consent=True
    )
    await eventually(
        lambda: _async(mail_to(pipeline.stack.mail_dir, first_email)),
        within=WITHIN,
        what="the welcome mail",
    )
    await pos.update_customer(customer, {"email": second_email, "phone": second_phone})
    await pos.purchase(customer, "600.00")
    await eventually(
        lambda: body_when(pos.balance(customer), lambda b: b["lifetime_earned"] >= 600),
        within=WITHIN,
        what="the purchase's points",
    )
    await eventually(
        lambda: body_when(pos.tier(customer), lambda t: t["tier"] == "silver"),
        within=WITHIN,
        what="tier silver",
    )
    await eventually(
        lambda: body_when(pos.notifications(customer), tier_up_sent),
        within=WITHIN,
        what="the tier_up sent",
    )
    assert set(contacts) <= await published_contacts(
        pipeline.stack.kafka, customer
    )  # what the services were given is what the search below looks for
    erased = await pos.erase_customer(customer)
    return erased.event_id


async def test_no_log_holds_an_email_address_or_a_phone_number(
    pipeline: Pipeline, pos: StackClient
) -> None:
    customer = f"pii-{uuid.uuid4().hex[:12]}"
    contacts = [f"{customer}@example.com", new_phone(), f"{customer}-new@example.com", new_phone()]
    last_event = await drive_a_customer_with_personal_data(pipeline, pos, customer, contacts)
    bootstrap = pipeline.stack.kafka
    await eventually(
        lambda: consumed_everywhere(bootstrap, customer, marker_event_id=last_event),
        within=WITHIN,
        interval=0.5,
        what="every event about the customer applied by every service acting on it",
    )

    searched = set(contacts) | await published_contacts(bootstrap) | literals_in_the_e2e_tests()
    logs = sorted((pipeline.stack.state_dir / "logs").glob("*.log"))
    assert {log.name for log in logs} >= SERVICE_LOGS
    leaks: list[str] = []
    for log in logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            shaped = EMAIL_SHAPE.findall(line) + PHONE_SHAPE.findall(line)
            known = [contact for contact in searched if contact in line]
            if shaped or known:
                leaks.append(f"{log.name}:{number}: {sorted(set(shaped + known))}")
    assert not leaks, "personal data in the logs:\n" + "\n".join(leaks[:20])


async def _async(value: bool) -> bool:
    return value
