"""Local SMTP sink for the dev/test stack: every accepted message becomes one ``.eml`` file.

Listens on 127.0.0.1:$FEDELTA_SMTP_PORT (default 10025) and writes each message, as received (the
raw RFC 5322 bytes, CRLF line endings) preceded by ``X-Envelope-From`` / ``X-Envelope-To``
headers, to ``$FEDELTA_MAIL_DIR/<UTC timestamp>-<sequence>-<uuid>.eml``. Names sort by arrival.
Files are written under a dot-prefixed temporary name and renamed into place, so a reader that
globs ``*.eml`` never sees a partial message. Any AUTH credentials are accepted; no TLS.

Run: ``.venv/bin/python deploy/local/mailcatcher.py [--host H] [--port P] [--mail-dir D]``
(normally through deploy/local/mailcatcher.sh). Stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import signal
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

LOG = logging.getLogger("mailcatcher")
REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_HOSTNAME = "mailcatcher.fedelta.local"  # fixed: avoids a DNS lookup of our own name


class MailDirHandler:
    """aiosmtpd handler that stores each message as an ``.eml`` file in ``mail_dir``."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self._sequence = itertools.count(1)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = content.encode("utf-8", "surrogateescape") if isinstance(content, str) else b""
        # Stored synchronously, in arrival order: local files of a few KiB.
        path = self.store(envelope.mail_from or "", list(envelope.rcpt_tos), raw)
        # The file name only: addresses are personal data, and the message file has them.
        LOG.info("stored %s (%d recipient(s))", path.name, len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def store(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> Path:
        newline = b"\r\n" if b"\r\n" in raw else b"\n"
        envelope_headers = (
            b"X-Envelope-From: <" + _header_value(mail_from) + b">" + newline
            + b"X-Envelope-To: " + b", ".join(_header_value(r) for r in rcpt_tos) + newline
        )  # fmt: skip
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{next(self._sequence):06d}-{uuid.uuid4().hex}.eml"
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        final = self.mail_dir / name
        tmp = self.mail_dir / f".{name}.tmp"
        try:
            # Owner-only whatever the umask: a message holds an address and personal data.
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(envelope_headers)
                f.write(raw)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return final


def _header_value(address: str) -> bytes:
    """An envelope address as a header value: UTF-8, no line breaks."""
    return address.replace("\r", "").replace("\n", "").encode("utf-8", "surrogateescape")


def accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept every AUTH attempt, so services configured with SMTP credentials work locally."""
    return AuthResult(success=True)


async def serve(host: str, port: int, mail_dir: Path) -> None:
    loop = asyncio.get_running_loop()
    handler = MailDirHandler(mail_dir)

    def new_session() -> SMTP:
        return SMTP(
            handler,
            hostname=SERVER_HOSTNAME,
            enable_SMTPUTF8=True,
            authenticator=accept_any_login,
            auth_require_tls=False,
        )

    server = await loop.create_server(new_session, host=host, port=port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    LOG.info("listening on %s:%d, storing messages in %s", host, port, mail_dir)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
        LOG.info("stopped")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    state_dir = Path(os.environ.get("FEDELTA_STATE_DIR") or REPO_ROOT / ".fedelta")
    parser = argparse.ArgumentParser(description="Local SMTP sink writing .eml files.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("FEDELTA_SMTP_PORT", "10025"))
    )
    parser.add_argument(
        "--mail-dir",
        type=Path,
        default=Path(os.environ.get("FEDELTA_MAIL_DIR") or state_dir / "mail"),
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # aiosmtpd logs every connection and command at INFO.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    os.umask(0o077)  # whatever this process creates is for its owner only
    mail_dir: Path = args.mail_dir.resolve()
    mail_dir.mkdir(parents=True, exist_ok=True)
    mail_dir.chmod(0o700)
    asyncio.run(serve(args.host, args.port, mail_dir))


if __name__ == "__main__":
    main()
