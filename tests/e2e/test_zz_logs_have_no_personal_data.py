"""No personal data in the logs of a whole end-to-end run.

Named to run last in the e2e session, after every other e2e test has driven its customers
through the pipeline. It enrols one more customer with an email address and a phone number and
waits for their welcome mail (so their profile went through every service), then searches
every log of the stack (`<state>/logs/*.log`: the four services, Kafka, PostgreSQL, the mail
and SMS catchers) for:

- every email address and phone number enrolled during the run (read back from the customers
  topic, where each enrolment and profile change is published);
- every email address and phone number written literally in the e2e test modules;
- anything shaped like an `@example.` address or an international phone number.
"""

from __future__ import annotations

import email
import json
import re
import uuid
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from fedelta_cli.pos import PosClient
from shared.messaging import topics
from tests.e2e.conftest import Pipeline
from tests.support.kafka import read_all
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

E2E_TESTS = Path(__file__).parent
EMAIL_SHAPE = re.compile(r"[A-Za-z0-9._%+-]+@example\.[A-Za-z]{2,}")
PHONE_SHAPE = re.compile(r"(?<![\w+])\+[1-9]\d{7,14}\b")


def literals_in_the_e2e_tests() -> set[str]:
    found: set[str] = set()
    for module in E2E_TESTS.glob("*.py"):
        text = module.read_text()
        found.update(m for m in EMAIL_SHAPE.findall(text) if "{" not in m)
        found.update(PHONE_SHAPE.findall(text))
    return found


async def enrolled_contacts(bootstrap_servers: str) -> set[str]:
    """The email addresses and phone numbers of every profile published during the run."""
    contacts: set[str] = set()
    for record in await read_all(bootstrap_servers, topics.CUSTOMERS):
        if record.value is None:
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


async def test_no_log_of_the_run_holds_an_email_address_or_a_phone_number(
    pipeline: Pipeline, pos: PosClient
) -> None:
    customer = f"pii-{uuid.uuid4().hex[:12]}"
    address, phone = f"{customer}@example.com", f"+3584{uuid.uuid4().int % 10**8:08d}"
    enrolled = await pos.post(
        "/v1/customers",
        {
            "customer_id": customer,
            "email": address,
            "phone": phone,
            "locale": "en",
            "time_zone": "UTC",
            "consent": {"email": True, "sms": True},
        },
    )
    assert enrolled.status_code == 202, enrolled.text

    async def welcomed() -> bool:
        return mail_to(pipeline.stack.mail_dir, address)

    await eventually(welcomed, within=120, what="the welcome mail")

    contacts = await enrolled_contacts(pipeline.stack.kafka_bootstrap_servers)
    assert {address, phone} <= contacts  # the search below looks for what it should
    contacts |= literals_in_the_e2e_tests()

    logs = sorted((pipeline.stack.state_dir / "logs").glob("*.log"))
    assert {"ingest.log", "points.log", "tiers.log", "notifications.log"} <= {
        log.name for log in logs
    }
    leaks: list[str] = []
    for log in logs:
        for number, line in enumerate(log.read_text(errors="replace").splitlines(), 1):
            shaped = EMAIL_SHAPE.findall(line) + PHONE_SHAPE.findall(line)
            known = [contact for contact in contacts if contact in line]
            if shaped or known:
                leaks.append(f"{log.name}:{number}: {sorted(set(shaped + known))}")
    assert not leaks, "personal data in the logs:\n" + "\n".join(leaks[:20])
