"""The partners provisioned before partners were announced: one `fedelta.partner.provisioned.v1`
each in the outbox, so that the consumers, which now refuse events of partners they were never
told of (shared.messaging.partners), know them. A partner made from now on is announced in the
transaction that makes it (services/ingest/usecases/partners.py).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from shared.messaging import events, topics

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows = bind.execute(sa.text("SELECT partner_id, created_at FROM partners ORDER BY partner_id"))
    outbox = sa.table(
        "outbox",
        sa.column("event_id", sa.Text),
        sa.column("topic", sa.Text),
        sa.column("key", sa.Text),
        sa.column("payload", sa.dialects.postgresql.JSONB),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    announcements = [_announcement(row.partner_id, row.created_at, now) for row in rows]
    if announcements:
        op.bulk_insert(outbox, announcements)


def _announcement(partner_id: str, created_at: datetime, now: datetime) -> dict[str, object]:
    payload = events.PartnerProvisioned(partner_id=partner_id, provisioned_at=created_at)
    event = events.new_event(payload, source="ingest", subject=partner_id, time=now)
    return {
        "event_id": event.id,
        "topic": topics.PARTNERS,
        "key": partner_id,
        "payload": event.model_dump(mode="json"),
        "created_at": now,
    }


def downgrade() -> None:
    """Nothing to undo: the announcements were published (or are about to be); a partner once
    announced stays known."""
