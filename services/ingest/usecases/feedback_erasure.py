"""What an erasure does to the member's feedback: their comments travel on
the compacted feedback topic keyed by each feedback (`events.feedback_key`), so the erasure
writes a tombstone of every one of their keys there and on its dead-letter topic, in the
erasure's own transaction, after `customer.erased` (docs/operations.md, *Erasure on Kafka*)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters.repositories.feedback import SqlFeedback
from shared.messaging import events, topics
from shared.messaging.events import derived_event_id
from shared.messaging.outbox import Outbox


async def erase_feedback(
    conn: AsyncConnection, outbox: Outbox, customer_id: str, erasure_id: str
) -> int:
    """In the erasure's transaction, after `customer.erased`: a tombstone of each of the
    member's feedback keys on the feedback topic and its dead-letter topic (a dead-lettered
    copy keeps its key), so compaction removes every comment within the erasure deadline;
    the stored fingerprints are blanked. Returns how many feedback the member had."""
    given = await SqlFeedback(conn).erase_member(customer_id)
    for partner_id, feedback_id in given:
        key = events.feedback_key(partner_id, feedback_id)
        for topic, cause in erasure_records(key):
            await outbox.add_tombstone(
                row_id=derived_event_id(erasure_id, cause), key=key, topic=topic
            )
    return len(given)


def erasure_records(key: str) -> list[tuple[str, str]]:
    """(topic, cause of the outbox row's id) of each tombstone of one feedback key."""
    return [
        (topics.FEEDBACK, f"feedback-tombstone:{key}"),
        (topics.dead_letter_topic(topics.FEEDBACK), f"feedback-dlq-tombstone:{key}"),
    ]
