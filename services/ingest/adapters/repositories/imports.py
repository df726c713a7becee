"""Members brought over from another program: a call's new customers in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest import ports
from services.ingest.adapters.sealed_secrets import unseal_signing_secret
from services.ingest.adapters.tables import customers, partners
from services.ingest.domain.model import Accepted, CustomerProfile, Partner


def member_imports(conn: AsyncConnection) -> ports.MemberImports:
    return SqlMemberImports(conn)


class SqlMemberImports:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def partner(self, partner_id: str) -> Partner | None:
        row = (
            await self._conn.execute(sa.select(partners).where(partners.c.partner_id == partner_id))
        ).first()
        if row is None:
            return None
        return Partner(
            partner_id=row.partner_id,
            name=row.name,
            api_key_hash=row.api_key_hash,
            signing_secret=unseal_signing_secret(row.partner_id, row.signing_secret),
            created_at=row.created_at,
            active=row.active,
        )

    async def add_members(self, members: Sequence[tuple[CustomerProfile, Accepted]]) -> set[str]:
        if not members:
            return set()
        profiles = [profile for profile, _ in members]
        inserted = await self._conn.execute(
            _ADD_MEMBERS,
            {
                "customer_ids": [p.customer_id for p in profiles],
                "partner_ids": [p.partner_id for p in profiles],
                "emails": [p.email for p in profiles],
                "phones": [p.phone for p in profiles],
                "locales": [p.locale for p in profiles],
                "time_zones": [p.time_zone for p in profiles],
                "consent_emails": [p.consent_email for p in profiles],
                "consent_smses": [p.consent_sms for p in profiles],
                "birthdays": [p.birthday for p in profiles],
                "enrolled_ats": [p.enrolled_at for p in profiles],
                "request_hashes": [accepted.request_hash for _, accepted in members],
                "event_ids": [accepted.event_id for _, accepted in members],
                "versions": [p.version for p in profiles],
            },
        )
        return set(inserted.scalars())


def _array(name: str, of: Any) -> sa.Cast[Any]:
    return sa.cast(sa.bindparam(name), ARRAY(of))


_TEXT = sa.Text
# (bind parameter, column, type): one array per column, unnested into rows. Arrays rather
# than a VALUES list: the statement's text is the same whatever the number of rows.
_COLUMNS = [
    ("customer_ids", "customer_id", _TEXT),
    ("partner_ids", "partner_id", _TEXT),
    ("emails", "email", _TEXT),
    ("phones", "phone", _TEXT),
    ("locales", "locale", _TEXT),
    ("time_zones", "time_zone", _TEXT),
    ("consent_emails", "consent_email", sa.Boolean),
    ("consent_smses", "consent_sms", sa.Boolean),
    ("birthdays", "birthday", sa.Date),
    ("enrolled_ats", "enrolled_at", sa.DateTime(timezone=True)),
    ("request_hashes", "request_hash", _TEXT),
    ("event_ids", "event_id", _TEXT),
    ("versions", "version", sa.BigInteger),
]
_NEW_MEMBERS = (
    sa.func.unnest(*(_array(param, of) for param, _, of in _COLUMNS))
    .table_valued(*(column for _, column, _ in _COLUMNS))
    .render_derived(name="new")
)
_ADD_MEMBERS = (
    insert(customers)
    .from_select(
        [column for _, column, _ in _COLUMNS] + ["updated_at"],
        sa.select(
            *(_NEW_MEMBERS.c[column] for _, column, _ in _COLUMNS),
            _NEW_MEMBERS.c.enrolled_at,
        ),
    )
    .on_conflict_do_nothing(index_elements=["customer_id"])
    .returning(customers.c.customer_id)
)
