"""Sign-in from a receipt's QR code: the link ingest signed for a purchase (shared with web:
the receipt secret) opens a member session for that purchase's customer, until it expires."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from services.web.domain.model import SessionPolicy
from services.web.usecases.members import sign_in_member
from services.web.usecases.sessions import SignedIn
from shared.clock import Clock
from shared.web.receipt_links import ReceiptLinkError, verify_receipt_link

log = logging.getLogger(__name__)


async def sign_in_with_receipt(
    engine: AsyncEngine,
    clock: Clock,
    policy: SessionPolicy,
    secret: str,
    params: Mapping[str, str],
) -> SignedIn | None:
    """A session for the customer of a valid, unexpired receipt link; None for any other."""
    try:
        customer_id, purchase_id = verify_receipt_link(secret, params, clock.now())
    except ReceiptLinkError as error:
        log.info("receipt link refused", extra={"error": type(error).__name__})
        return None
    signed_in = await sign_in_member(engine, clock, policy, customer_id)
    log.info(
        "member signed in by a receipt",
        extra={"customer_id": customer_id, "purchase_id": purchase_id},
    )
    return signed_in
