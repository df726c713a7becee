"""Email out over SMTP, behind a small protocol so the dispatcher can be tested without a server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Protocol

import aiosmtplib


@dataclass(frozen=True)
class OutgoingEmail:
    notification_id: str
    to: str
    subject: str
    body: str
    locale: str
    date: datetime
    html: str | None = None  # an alternative to the plain text, when there is one
    # One-click unsubscribe (RFC 8058): a POST to it turns the customer's emails off.
    unsubscribe_url: str | None = None


class EmailDeliveryError(Exception):
    """A send that did not go through. The message names the failure only, never an address
    or the body, since it ends up in logs and in the delivery log."""

    def __init__(self, reason: str, *, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class EmailSender(Protocol):
    async def send(self, email: OutgoingEmail) -> None:
        """Raises EmailDeliveryError when the message was not accepted."""
        ...


def message_id(notification_id: str, sender: str) -> str:
    """The same Message-ID for every attempt of one notification, so a message sent again after
    a crash between sending and recording it can be recognised as a duplicate downstream."""
    _, address = parseaddr(sender)
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        domain = "fedelta.localhost"
    return f"<{notification_id}@{domain}>"


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.date)
    message["Message-ID"] = message_id(email.notification_id, sender)
    message["Auto-Submitted"] = "auto-generated"
    if email.unsubscribe_url is not None:
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.body)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = email.locale
    return message


@dataclass(frozen=True)
class SmtpEmailSender:
    host: str
    port: int
    sender: str
    timeout_seconds: float = 10.0
    username: str | None = None
    password: str | None = None

    async def send(self, email: OutgoingEmail) -> None:
        message = build_message(email, self.sender)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                timeout=self.timeout_seconds,
                username=self.username,
                password=self.password,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refused.code for refused in error.recipients]
            raise EmailDeliveryError(
                f"SMTPRecipientsRefused {','.join(map(str, codes))}",
                permanent=all(500 <= code < 600 for code in codes),
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            # The server's text may quote the address, so only the code is kept.
            raise EmailDeliveryError(
                f"{type(error).__name__} {error.code}", permanent=500 <= error.code < 600
            ) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise EmailDeliveryError(type(error).__name__) from None
