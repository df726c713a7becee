"""What the shared library's integration tests share (the fixtures are in conftest.py beside
this file): a minimal effect for a consumer to apply, one row per enrolment in the points
database's `customers` table, so that what is proven is the consumer's own behaviour, whatever
the services' rules; and a partner's POS on an in-process ingest."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from shared.messaging import events
from shared.messaging.events import CloudEvent
from shared.storage.db import define_inbox, insert_many
from tests.integration.ingest.support import Pos, unique
from tests.support.services import ADMIN

metadata = sa.MetaData()
INBOX = define_inbox(metadata)
CUSTOMERS = sa.Table(  # as the points migrations made it
    "customers",
    metadata,
    sa.Column("customer_id", sa.Text, primary_key=True),
    sa.Column("partner_id", sa.Text, nullable=False),
    sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
)


def enrolled(batch: Sequence[CloudEvent]) -> list[events.CustomerEnrolled]:
    return [event.data_as(events.CustomerEnrolled) for event in batch]


async def insert_enrolments(
    conn: AsyncConnection, enrolments: list[events.CustomerEnrolled]
) -> None:
    """The effect: one row per enrolment, set-based."""
    await insert_many(
        conn,
        CUSTOMERS,
        [
            dict(customer_id=e.customer_id, partner_id=e.partner_id, enrolled_at=e.enrolled_at)
            for e in enrolments
        ],
    )


async def rows_for(engine: AsyncEngine, customer_ids: list[str]) -> dict[str, int]:
    """How many rows each customer has (customers without one are left out)."""
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(CUSTOMERS.c.customer_id, sa.func.count())
            .where(CUSTOMERS.c.customer_id.in_(customer_ids))
            .group_by(CUSTOMERS.c.customer_id)
        )
        return {customer_id: count for customer_id, count in found}


async def row_count(engine: AsyncEngine, customer_id: str) -> int:
    return (await rows_for(engine, [customer_id])).get(customer_id, 0)


async def new_pos(ingest: httpx.AsyncClient, name: str, id_prefix: str) -> Pos:
    """A new partner, created through ingest's admin API, and its signing POS."""
    body = {"name": name, "partner_id": unique(id_prefix)}
    response = await ingest.post("/v1/admin/partners", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created = response.json()
    return Pos(ingest, body["partner_id"], created["api_key"], created["signing_secret"])
