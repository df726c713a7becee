"""Email out over SMTP, behind a small protocol so the dispatcher can be tested without a server."""

from __future__ import annotations

import asyncio
import email.policy
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, parseaddr
from typing import Protocol

import aiosmtplib
from aiosmtplib.email import flatten_message


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML part shows as `cid:<content_id>` (RFC 2392): a coupon's QR code."""

    content_id: str  # without its angle brackets
    data: bytes = field(repr=False)
    subtype: str = "png"
    filename: str = "image.png"


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
    # Images the HTML shows inline (multipart/related with it); none without an HTML part.
    images: tuple[InlineImage, ...] = ()


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


# RFC 5322 2.1.1: a line is at most 998 characters, CRLF excluded.
MAX_LINE_LENGTH = 998


class UnfoldedHeader(UnstructuredHeader, BaseHeader):
    """A header whose value is written on the wire exactly as given, on one line.

    The email library folds an unstructured value longer than 78 characters, and when the
    value has no whitespace to fold at (a URL), it turns it into RFC 2047 encoded-words
    (`=?utf-8?q?=3Chttps...`), which no receiver reads as a URL. RFC 2369 and RFC 8058 want
    `List-Unsubscribe: <https://...>` as plain ASCII; RFC 5322 allows folding only at
    whitespace, and there is none inside `<...>`, so the line stays whole. It fits: the value
    is refused unless it is printable ASCII and the line is at most 998 characters (the
    unsubscribe URL is bounded by construction, see `unsubscribe_header`)."""

    def fold(self, *, policy: Policy) -> str:
        line = f"{self.name}: {self}"
        if not (line.isascii() and line.isprintable()) or len(line) > MAX_LINE_LENGTH:
            raise ValueError(f"{self.name} must be printable ASCII within one line")
        return line + policy.linesep


_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("list-unsubscribe", UnfoldedHeader)
_HEADERS.map_to_type("list-unsubscribe-post", UnfoldedHeader)
# `<coupon-qr.<id>@fedelta>`: an id without whitespace, which must never become encoded-words.
_HEADERS.map_to_type("content-id", UnfoldedHeader)
# The default policy (RFC 5322 headers, folded at whitespace at 78 characters, non-ASCII
# text as encoded-words) except for the headers above; aiosmtplib writes the message with its
# SMTP twin (CRLF), which calls the same header objects' fold.
MESSAGE_POLICY = email.policy.default.clone(header_factory=_HEADERS)


def unsubscribe_header(url: str) -> str:
    """`<url>`, the List-Unsubscribe value (RFC 2369). The URL is the public URL (at most 200
    printable ASCII characters, checked by the settings), `/v1/unsubscribe/` and a token of at
    most 130 characters (a customer id of at most 64 ASCII characters in unpadded base64, a
    dot, an HMAC-SHA256 in unpadded base64): under 350 characters, far inside the 998 of a
    line, so no line needs folding."""
    return f"<{url}>"


def build_message(email: OutgoingEmail, sender: str) -> EmailMessage:
    """The message as RFC 5322 and the list headers' RFCs want it on the wire: Date in the
    RFC 5322 form, `Message-ID: <id@domain>`, `MIME-Version: 1.0`, a non-ASCII subject as
    encoded-words, long lines folded only at whitespace, and the one-click unsubscribe
    headers (RFC 8058) as plain ASCII lines. With inline images, the HTML alternative is a
    multipart/related of the HTML and its images (RFC 2387), each with its Content-ID:
    multipart/alternative [text/plain, multipart/related [text/html, image/png...]]."""
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.date)
    message["Message-ID"] = message_id(email.notification_id, sender)
    message["Auto-Submitted"] = "auto-generated"
    if email.unsubscribe_url is not None:
        message["List-Unsubscribe"] = unsubscribe_header(email.unsubscribe_url)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.body)
    if email.html is not None:
        message.add_alternative(email.html, subtype="html")
        if email.images:
            html_part = message.get_body(preferencelist=("html",))
            assert html_part is not None  # just added
            for image in email.images:
                html_part.add_related(
                    image.data,
                    maintype="image",
                    subtype=image.subtype,
                    cid=f"<{image.content_id}>",
                    disposition="inline",
                    filename=image.filename,
                )
            html_part.set_param("type", "text/html")  # RFC 2387: the root part's type
    # After set_content, which replaces every Content-* header.
    message["Content-Language"] = email.locale
    return message


def wire_bytes(email: OutgoingEmail, sender: str) -> bytes:
    """The bytes `SmtpEmailSender` sends for this email (after DATA): aiosmtplib's own
    flattening, with CRLF line ends."""
    return flatten_message(build_message(email, sender))


@dataclass
class SmtpEmailSender:
    """Sends over a small pool of SMTP connections kept open between messages (`connections`
    at most, each carrying one message at a time), so a batch goes out concurrently without
    a connection, EHLO and QUIT per message. A connection that failed is dropped; an idle one
    the server closed meanwhile is replaced once, before anything was accepted on it."""

    host: str
    port: int
    sender: str
    timeout_seconds: float = 10.0
    username: str | None = None
    password: str | None = None
    connections: int = 1
    _idle: list[aiosmtplib.SMTP] = field(default_factory=list, init=False, repr=False)
    _slots: asyncio.Semaphore | None = field(default=None, init=False, repr=False)

    async def send(self, email: OutgoingEmail) -> None:
        message = build_message(email, self.sender)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.connections)
        async with self._slots:
            try:
                await self._send_pooled(message)
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

    async def _send_pooled(self, message: EmailMessage) -> None:
        reused = self._idle.pop() if self._idle else None
        if reused is not None:
            try:
                await reused.send_message(message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                # Closed while idle: nothing was accepted, so a fresh connection sends it.
                reused.close()
            except BaseException:
                reused.close()
                raise
            else:
                self._idle.append(reused)
                return
        client = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            timeout=self.timeout_seconds,
            username=self.username,
            password=self.password,
        )
        await client.connect()
        try:
            await client.send_message(message)
        except BaseException:
            client.close()
            raise
        self._idle.append(client)

    async def aclose(self) -> None:
        """Says goodbye on the idle connections (QUIT), dropping any that do not answer."""
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()
