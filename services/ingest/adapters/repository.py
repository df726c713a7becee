"""The domain's view of the ingest database: partners, customers, purchases and refunds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest.adapters.tables import customers, partners, purchases, refunds
from services.ingest.domain.model import Accepted, CustomerProfile, Partner
from shared.db import insert_if_absent


@dataclass(frozen=True)
class StoredPurchase:
    partner_id: str
    purchase_id: str
    customer_id: str
    currency: str
    total: Decimal
    refunded: Decimal
    occurred_at: datetime
    accepted: Accepted


@dataclass(frozen=True)
class StoredRefund:
    partner_id: str
    refund_id: str
    purchase_id: str
    customer_id: str
    amount: Decimal
    occurred_at: datetime
    accepted: Accepted


class IngestRepository(Protocol):
    async def partner_by_key_hash(self, api_key_hash: str) -> Partner | None: ...

    async def add_partner(self, partner: Partner) -> bool:
        """False when a partner with this id already exists."""
        ...

    async def put_partner(self, partner: Partner) -> None:
        """Creates the partner or replaces its name and credentials."""
        ...

    async def add_customer(self, profile: CustomerProfile, accepted: Accepted) -> bool:
        """False when the customer id is already enrolled."""
        ...

    async def enrolment(self, customer_id: str) -> Accepted | None: ...

    async def customer_exists(self, customer_id: str) -> bool: ...

    async def profile_for_update(self, customer_id: str) -> CustomerProfile | None: ...

    async def save_profile(self, profile: CustomerProfile, updated_at: datetime) -> None: ...

    async def add_purchase(self, purchase: StoredPurchase) -> bool:
        """False when the partner already reported a purchase with this id."""
        ...

    async def purchase(
        self, partner_id: str, purchase_id: str, *, for_update: bool = False
    ) -> StoredPurchase | None: ...

    async def add_refund(self, refund: StoredRefund, refunded: Decimal) -> bool:
        """Records the refund and the purchase's new refunded amount; False when the partner
        already reported a refund with this id."""
        ...

    async def refund(self, partner_id: str, refund_id: str) -> StoredRefund | None: ...


class SqlIngestRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def partner_by_key_hash(self, api_key_hash: str) -> Partner | None:
        row = (
            await self._conn.execute(
                sa.select(partners).where(partners.c.api_key_hash == api_key_hash)
            )
        ).first()
        if row is None:
            return None
        return Partner(
            partner_id=row.partner_id,
            name=row.name,
            api_key_hash=row.api_key_hash,
            signing_secret=row.signing_secret,
            created_at=row.created_at,
            active=row.active,
        )

    async def add_partner(self, partner: Partner) -> bool:
        return await insert_if_absent(self._conn, partners, _partner_values(partner))

    async def put_partner(self, partner: Partner) -> None:
        statement = insert(partners).values(**_partner_values(partner))
        await self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=["partner_id"],
                set_={
                    "name": statement.excluded.name,
                    "api_key_hash": statement.excluded.api_key_hash,
                    "signing_secret": statement.excluded.signing_secret,
                    "active": statement.excluded.active,
                },
            )
        )

    async def add_customer(self, profile: CustomerProfile, accepted: Accepted) -> bool:
        return await insert_if_absent(
            self._conn,
            customers,
            dict(
                **_profile_values(profile),
                partner_id=profile.partner_id,
                enrolled_at=profile.enrolled_at,
                referred_by=profile.referred_by,
                updated_at=profile.enrolled_at,
                request_hash=accepted.request_hash,
                event_id=accepted.event_id,
            ),
        )

    async def enrolment(self, customer_id: str) -> Accepted | None:
        row = (
            await self._conn.execute(
                sa.select(customers.c.request_hash, customers.c.event_id).where(
                    customers.c.customer_id == customer_id
                )
            )
        ).first()
        return None if row is None else Accepted(row.request_hash, row.event_id)

    async def customer_exists(self, customer_id: str) -> bool:
        return bool(
            await self._conn.scalar(
                sa.select(sa.exists().where(customers.c.customer_id == customer_id))
            )
        )

    async def profile_for_update(self, customer_id: str) -> CustomerProfile | None:
        row = (
            await self._conn.execute(
                sa.select(customers).where(customers.c.customer_id == customer_id).with_for_update()
            )
        ).first()
        if row is None:
            return None
        return CustomerProfile(
            customer_id=row.customer_id,
            partner_id=row.partner_id,
            enrolled_at=row.enrolled_at,
            locale=row.locale,
            time_zone=row.time_zone,
            email=row.email,
            phone=row.phone,
            consent_email=row.consent_email,
            consent_sms=row.consent_sms,
            referred_by=row.referred_by,
        )

    async def save_profile(self, profile: CustomerProfile, updated_at: datetime) -> None:
        values = _profile_values(profile)
        del values["customer_id"]
        await self._conn.execute(
            customers.update()
            .where(customers.c.customer_id == profile.customer_id)
            .values(**values, updated_at=updated_at)
        )

    async def add_purchase(self, purchase: StoredPurchase) -> bool:
        return await insert_if_absent(
            self._conn,
            purchases,
            dict(
                partner_id=purchase.partner_id,
                purchase_id=purchase.purchase_id,
                customer_id=purchase.customer_id,
                currency=purchase.currency,
                total=purchase.total,
                refunded=purchase.refunded,
                occurred_at=purchase.occurred_at,
                request_hash=purchase.accepted.request_hash,
                event_id=purchase.accepted.event_id,
            ),
        )

    async def purchase(
        self, partner_id: str, purchase_id: str, *, for_update: bool = False
    ) -> StoredPurchase | None:
        query = sa.select(purchases).where(
            purchases.c.partner_id == partner_id, purchases.c.purchase_id == purchase_id
        )
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        return StoredPurchase(
            partner_id=row.partner_id,
            purchase_id=row.purchase_id,
            customer_id=row.customer_id,
            currency=row.currency,
            total=row.total,
            refunded=row.refunded,
            occurred_at=row.occurred_at,
            accepted=Accepted(row.request_hash, row.event_id),
        )

    async def add_refund(self, refund: StoredRefund, refunded: Decimal) -> bool:
        if not await insert_if_absent(
            self._conn,
            refunds,
            dict(
                partner_id=refund.partner_id,
                refund_id=refund.refund_id,
                purchase_id=refund.purchase_id,
                customer_id=refund.customer_id,
                amount=refund.amount,
                occurred_at=refund.occurred_at,
                request_hash=refund.accepted.request_hash,
                event_id=refund.accepted.event_id,
            ),
        ):
            return False
        await self._conn.execute(
            purchases.update()
            .where(
                purchases.c.partner_id == refund.partner_id,
                purchases.c.purchase_id == refund.purchase_id,
            )
            .values(refunded=refunded)
        )
        return True

    async def refund(self, partner_id: str, refund_id: str) -> StoredRefund | None:
        row = (
            await self._conn.execute(
                sa.select(refunds).where(
                    refunds.c.partner_id == partner_id, refunds.c.refund_id == refund_id
                )
            )
        ).first()
        if row is None:
            return None
        return StoredRefund(
            partner_id=row.partner_id,
            refund_id=row.refund_id,
            purchase_id=row.purchase_id,
            customer_id=row.customer_id,
            amount=row.amount,
            occurred_at=row.occurred_at,
            accepted=Accepted(row.request_hash, row.event_id),
        )


def _partner_values(partner: Partner) -> dict[str, object]:
    return {
        "partner_id": partner.partner_id,
        "name": partner.name,
        "api_key_hash": partner.api_key_hash,
        "signing_secret": partner.signing_secret,
        "created_at": partner.created_at,
        "active": partner.active,
    }


def _profile_values(profile: CustomerProfile) -> dict[str, object]:
    """The columns a PATCH may change, plus the key."""
    return {
        "customer_id": profile.customer_id,
        "email": profile.email,
        "phone": profile.phone,
        "locale": profile.locale,
        "time_zone": profile.time_zone,
        "consent_email": profile.consent_email,
        "consent_sms": profile.consent_sms,
    }
