"""The email addresses welcomed (`domain/welcomes.py`): one INSERT ... ON CONFLICT per
enrolment with an email, in the enrolment's transaction. The primary key makes it race-safe:
of two concurrent enrolments with one address the second waits for the first to commit, then
finds the address taken (or, when the first rolled back, takes it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters.tables import welcomed_emails
from shared.storage.db import insert_if_absent


async def claim_welcome(conn: AsyncConnection, email_key: str, at: datetime) -> bool:
    """True when the address had no welcome yet: it has one now (once the transaction
    commits)."""
    return await insert_if_absent(
        conn, welcomed_emails, {"email_hash": email_key, "welcomed_at": at}
    )
