"""Members' feedback as ingest keeps it: the ids accepted per partner with
their member and request fingerprint, never the comment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters.tables import customers, feedback
from services.ingest.domain.model import Accepted

# What a request fingerprint becomes when the member is erased: it hashed the comment.
ERASED_HASH = ""


@dataclass(frozen=True)
class MemberState:
    known: bool
    erased: bool


class SqlFeedback:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def member_for_share(self, customer_id: str) -> MemberState:
        """Whether the customer is enrolled and erased, their row share-locked until the
        transaction ends: an erasure (which locks it for update) waits for this feedback to
        commit, so it sees it, and tombstones it."""
        row = (
            await self._conn.execute(
                sa.select(customers.c.erased_at)
                .where(customers.c.customer_id == customer_id)
                .with_for_update(read=True)
            )
        ).first()
        return MemberState(known=row is not None, erased=row is not None and row[0] is not None)

    async def add(
        self,
        partner_id: str,
        feedback_id: str,
        customer_id: str,
        accepted: Accepted,
        received_at: datetime,
    ) -> bool:
        """Stores the feedback's id unless it is there; whether it was new."""
        result = await self._conn.execute(
            insert(feedback)
            .values(
                partner_id=partner_id,
                feedback_id=feedback_id,
                customer_id=customer_id,
                request_hash=accepted.request_hash,
                event_id=accepted.event_id,
                received_at=received_at,
            )
            .on_conflict_do_nothing(index_elements=["partner_id", "feedback_id"])
            .returning(feedback.c.feedback_id)
        )
        return result.first() is not None

    async def accepted(self, partner_id: str, feedback_id: str) -> Accepted | None:
        row = (
            await self._conn.execute(
                sa.select(feedback.c.request_hash, feedback.c.event_id).where(
                    feedback.c.partner_id == partner_id, feedback.c.feedback_id == feedback_id
                )
            )
        ).first()
        return None if row is None else Accepted(row.request_hash, row.event_id)

    async def erase_member(self, customer_id: str) -> list[tuple[str, str]]:
        """Blanks the fingerprints of the member's feedback; their (partner_id, feedback_id),
        in a stable order."""
        rows = await self._conn.execute(
            sa.update(feedback)
            .where(feedback.c.customer_id == customer_id)
            .values(request_hash=ERASED_HASH)
            .returning(feedback.c.partner_id, feedback.c.feedback_id)
        )
        return sorted((row.partner_id, row.feedback_id) for row in rows)
