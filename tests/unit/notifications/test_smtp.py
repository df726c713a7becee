"""The SMTP adapter's message: headers, a stable Message-ID, and failures without PII."""

import socket
from dataclasses import replace
from email import message_from_bytes, policy
from email.parser import BytesParser

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.notifications.adapters.smtp import (
    EmailDeliveryError,
    OutgoingEmail,
    SmtpEmailSender,
    build_message,
    message_id,
    wire_bytes,
)
from services.notifications.domain.unsubscribe import unsubscribe_token
from services.notifications.settings import NotificationsSettings
from tests.support.fakes.notifications import NOW
from tests.support.stack import sha256_hex

SENDER = "Fedelta <no-reply@fedelta.localhost>"


def outgoing(notification_id: str = "n-1") -> OutgoingEmail:
    return OutgoingEmail(
        notification_id=notification_id,
        to="ada@example.com",
        subject="Osiągnąłeś poziom Złoty",
        body="Dzień dobry,\n\ngratulacje.\n",
        locale="pl",
        date=NOW,
    )


def test_the_message_id_follows_from_the_notification_and_the_sender_domain() -> None:
    assert message_id("n-1", SENDER) == "<n-1@fedelta.localhost>"
    assert message_id("n-1", SENDER) == message_id("n-1", SENDER)
    assert message_id("n-2", SENDER) != message_id("n-1", SENDER)
    assert message_id("n-1", "no address") == "<n-1@fedelta.localhost>"


def test_the_message_round_trips_with_non_ascii_text() -> None:
    raw = build_message(outgoing(), SENDER).as_bytes()
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["To"] == "ada@example.com"
    assert parsed["From"] == SENDER
    assert parsed["Subject"] == "Osiągnąłeś poziom Złoty"
    assert parsed["Message-ID"] == "<n-1@fedelta.localhost>"
    assert parsed["Content-Language"] == "pl"
    assert parsed.get_content() == "Dzień dobry,\n\ngratulacje.\n"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_server_is_a_retryable_error_without_the_address() -> None:
    sender = SmtpEmailSender(
        host="127.0.0.1", port=_closed_port(), sender=SENDER, timeout_seconds=2
    )
    with pytest.raises(EmailDeliveryError) as raised:
        await sender.send(outgoing())
    assert raised.value.permanent is False
    assert "ada@example.com" not in str(raised.value)


UNSUBSCRIBE = "https://loyalty.example.com/v1/unsubscribe/" + "Y3VzdG9tZXItNDI." + "A" * 43


def with_unsubscribe(subject: str = "Hai guadagnato 1.250 punti: è un bel traguardo") -> bytes:
    email = OutgoingEmail(
        notification_id="0b6c3f1e-1234-5678-9abc-def012345678",
        to="ada@example.com",
        subject=subject,
        body="Ciao,\n\nè fatta.\n",
        locale="it",
        date=NOW,
        html="<p>Ciao, è fatta.</p>",
        unsubscribe_url=UNSUBSCRIBE,
    )
    return wire_bytes(email, SENDER)


def header_lines(raw: bytes) -> list[bytes]:
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "no blank line after the headers"
    return head.split(b"\r\n")


def test_the_list_unsubscribe_headers_are_plain_ascii_lines_on_the_wire() -> None:
    lines = header_lines(with_unsubscribe())
    assert b"List-Unsubscribe: <" + UNSUBSCRIBE.encode() + b">" in lines
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in lines
    assert not any(line.startswith(b"List-Unsubscribe") and b"=?" in line for line in lines)


def test_every_header_parses_strictly_from_the_raw_bytes() -> None:
    raw = with_unsubscribe()
    parsed = BytesParser(policy=policy.strict).parsebytes(raw)
    for name in parsed:
        assert parsed[name].defects == (), name
    assert str(parsed["List-Unsubscribe"]) == f"<{UNSUBSCRIBE}>"
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert parsed["Date"].datetime == NOW
    assert parsed["Message-ID"] == "<0b6c3f1e-1234-5678-9abc-def012345678@fedelta.localhost>"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["From"].addresses[0].addr_spec == "no-reply@fedelta.localhost"
    assert parsed["To"].addresses[0].addr_spec == "ada@example.com"
    assert parsed["Subject"] == "Hai guadagnato 1.250 punti: è un bel traguardo"
    assert parsed["Content-Language"] == "it"
    assert all(line.isascii() and len(line) <= 998 for line in header_lines(raw))
    plain = parsed.get_body(("plain",))
    assert plain is not None
    assert plain.get_content().replace("\r\n", "\n") == "Ciao,\n\nè fatta.\n"


@settings(max_examples=50, deadline=None)
@given(subject=st.text(min_size=1, max_size=300).filter(lambda s: s.strip() == s))
def test_a_long_subject_is_folded_at_whitespace_and_reads_back_the_same(subject: str) -> None:
    assume(all(c.isprintable() for c in subject))
    raw = with_unsubscribe(subject)
    lines = header_lines(raw)
    assert all(line.isascii() and len(line) <= 998 for line in lines)
    # A continuation line starts with the whitespace it was folded at.
    assert all(line[:1] in (b" ", b"\t") or b":" in line for line in lines)
    parsed = BytesParser(policy=policy.strict).parsebytes(raw)
    assert parsed["Subject"] == subject
    assert str(parsed["List-Unsubscribe"]) == f"<{UNSUBSCRIBE}>"


def test_a_header_value_that_cannot_stay_on_one_ascii_line_is_refused() -> None:
    email = OutgoingEmail(
        notification_id="n-1",
        to="ada@example.com",
        subject="s",
        body="b\n",
        locale="en",
        date=NOW,
        unsubscribe_url="https://example.com/" + "a" * 1000,
    )
    with pytest.raises(ValueError, match="List-Unsubscribe"):
        wire_bytes(email, SENDER)


REQUIRED = {
    "database_url": "postgresql+asyncpg://n@localhost/n",
    "kafka_bootstrap_servers": "localhost:9092",
    "admin_token_sha256": sha256_hex("a" * 16),
}


@pytest.mark.parametrize(
    "url",
    [
        "https://loyalty.example.com/" + "a" * 200,  # too long for a bounded header line
        "https://loyalty.example.com/ünsubscribe",  # not ASCII
        "https://loyalty.example.com/with space",
        "https:///no-host",
    ],
)
def test_a_public_url_that_could_not_stay_one_plain_header_line_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        NotificationsSettings(**REQUIRED, public_url=url)  # type: ignore[arg-type]


def test_the_longest_public_url_and_customer_id_stay_far_inside_a_line() -> None:
    settings = NotificationsSettings(**REQUIRED, public_url="https://" + "a" * 192)  # type: ignore[arg-type]
    token = unsubscribe_token("x" * 64, b"k" * 32)
    email = replace(outgoing(), unsubscribe_url=f"{settings.public_url}/v1/unsubscribe/{token}")
    [line] = [
        line
        for line in header_lines(wire_bytes(email, SENDER))
        if line.startswith(b"List-Unsubscribe:")
    ]
    assert len(token) <= 130
    assert len(line) < 400
