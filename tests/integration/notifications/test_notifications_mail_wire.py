"""Emails as a receiver reads them: the raw bytes the SMTP catcher received through the real
SMTP conversation, parsed by a strict parser, with List-Unsubscribe a plain `<https://...>`
line however long the URL (never RFC 2047 encoded-words), and the other headers valid."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import httpx
import pytest

from services.notifications.settings import NotificationsSettings
from shared.messaging import events, topics
from tests.support import factories
from tests.support.notifications import new_customer, send, zone_at
from tests.support.polling import eventually
from tests.support.services import settings_for
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

# Long enough that the header line passes 78 characters, where the email library used to
# fold the URL into encoded-words.
PUBLIC_URL = "https://loyalty.fedelta.example.com/members/self-service"


@pytest.fixture(scope="module")
def settings(stack: Stack) -> NotificationsSettings:
    stack.migrate("notifications")
    return settings_for(
        NotificationsSettings,
        stack,
        "notifications",
        dispatch_interval_seconds="0.05",
        public_url=PUBLIC_URL,
    )


def raw_mails_to(stack: Stack, address: str) -> list[bytes]:
    """The files the catcher wrote for this address, as received (after its X-Envelope-*
    lines), in arrival order."""
    found = []
    for path in sorted(stack.mail_dir.glob("*.eml")):
        raw = path.read_bytes()
        if f"X-Envelope-To: {address}\r\n".encode() in raw.split(b"\r\n\r\n", 1)[0] + b"\r\n":
            found.append(raw.split(b"\r\n", 2)[2])  # the message itself, as sent
    return found


async def test_the_headers_on_the_wire_parse_strictly_and_list_unsubscribe_is_one_plain_line(
    stack: Stack, client: httpx.AsyncClient
) -> None:
    customer_id, email = new_customer()
    enrolment = factories.enrolment(
        customer_id,
        email=email,
        locale="pl",
        time_zone=zone_at(12).key,
        consent=events.Consent(email=True),
    )
    before = datetime.now(UTC).replace(microsecond=0)
    await send(stack, topics.CUSTOMERS, enrolment)

    async def received() -> bytes | None:
        found = raw_mails_to(stack, email)
        return found[0] if found else None

    raw = await eventually(received, within=60, what="the welcome in the SMTP catcher")
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    [unsubscribe] = [line for line in lines if line.startswith(b"List-Unsubscribe:")]
    assert re.fullmatch(
        rb"List-Unsubscribe: <" + re.escape(PUBLIC_URL.encode()) + rb"/v1/unsubscribe/[\w.-]+>",
        unsubscribe,
    ), unsubscribe
    assert len(unsubscribe) > 78  # the case that used to be folded into encoded-words
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    assert b"=?" not in b"".join(line for line in lines if line.startswith(b"List-"))
    assert b"MIME-Version: 1.0" in lines
    # Every line ASCII and within RFC 5322's 998; a continuation starts with whitespace.
    assert all(line.isascii() and len(line) <= 998 for line in lines)
    assert all(line[:1] in (b" ", b"\t") or b": " in line for line in lines)

    parsed = BytesParser(policy=policy.strict).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    for name in parsed:
        assert parsed[name].defects == (), name
    assert str(parsed["List-Unsubscribe"]).startswith(f"<{PUBLIC_URL}/v1/unsubscribe/")
    assert before - timedelta(seconds=1) <= parsed["Date"].datetime <= datetime.now(UTC)
    assert re.fullmatch(r"<[\w.-]+@fedelta\.localhost>", str(parsed["Message-ID"]))
    assert parsed["To"].addresses[0].addr_spec == email
    assert parsed["Subject"] == "Witamy w Fedelta"
    assert parsed["Content-Language"] == "pl"
