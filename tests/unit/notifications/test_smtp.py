"""The SMTP adapter's message: headers, a stable Message-ID, and failures without PII."""

import socket
from email import message_from_bytes, policy

import pytest

from services.notifications.adapters.smtp import (
    EmailDeliveryError,
    OutgoingEmail,
    SmtpEmailSender,
    build_message,
    message_id,
)
from tests.support.fakes.notifications import NOW

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
