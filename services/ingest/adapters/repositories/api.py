"""What ingest's use cases read and write: partners, customers, purchases and refunds.

One class per port (`services.ingest.ports`); the factories below are annotated with the
ports, so mypy checks each class against its Protocol. The outbox and the kept idempotency
answers are written through `shared` (Outbox, run_keyed, remember_all), not here."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.ingest import ports
from services.ingest.adapters.sealed_secrets import seal_signing_secret, unseal_signing_secret
from services.ingest.adapters.tables import customers, partners, purchases, refunds
from services.ingest.domain.model import Accepted, CustomerProfile, Partner
from services.ingest.ports import PurchaseKey, StoredPurchase, StoredRefund
from shared.storage.db import insert_if_absent


def partner_repository(conn: AsyncConnection) -> ports.PartnerRepository:
    return SqlPartnerRepository(conn)


def customer_repository(conn: AsyncConnection) -> ports.CustomerRepository:
    return SqlCustomerRepository(conn)


def purchase_repository(conn: AsyncConnection) -> ports.PurchaseRepository:
    return SqlPurchaseRepository(conn)


# No request hashes to it (those are hex digests): nothing matches an erased enrolment.
ERASED_REQUEST_HASH = "erased"


def _text_array(name: str) -> sa.Cast[Any]:
    return sa.cast(sa.bindparam(name), ARRAY(sa.Text))


class SqlPartnerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def partner_by_key_hash(self, api_key_hash: str) -> Partner | None:
        row = (
            await self._conn.execute(
                sa.select(partners).where(partners.c.api_key_hash == api_key_hash)
            )
        ).first()
        return None if row is None else _partner(row)

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

    async def partners(self) -> list[Partner]:
        rows = await self._conn.execute(sa.select(partners).order_by(partners.c.partner_id))
        return [_partner(row) for row in rows]

    async def replace_credentials(
        self, partner_id: str, api_key_hash: str, signing_secret: str
    ) -> Partner | None:
        row = (
            await self._conn.execute(
                sa.update(partners)
                .where(partners.c.partner_id == partner_id)
                .values(
                    api_key_hash=api_key_hash,
                    signing_secret=seal_signing_secret(partner_id, signing_secret),
                )
                .returning(*partners.c)
            )
        ).first()
        return None if row is None else _partner(row)

    async def deactivate_partner(self, partner_id: str) -> Partner | None:
        row = (
            await self._conn.execute(
                sa.update(partners)
                .where(partners.c.partner_id == partner_id)
                .values(active=False)
                .returning(*partners.c)
            )
        ).first()
        return None if row is None else _partner(row)

    async def set_rate_limit(self, partner_id: str, per_second: float | None) -> Partner | None:
        row = (
            await self._conn.execute(
                sa.update(partners)
                .where(partners.c.partner_id == partner_id)
                .values(rate_limit_per_second=per_second)
                .returning(*partners.c)
            )
        ).first()
        return None if row is None else _partner(row)


class SqlCustomerRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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
                version=profile.version,
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
            version=row.version,
            erased_at=row.erased_at,
            birthday=row.birthday,
        )

    async def save_profile(self, profile: CustomerProfile, updated_at: datetime) -> None:
        values = _profile_values(profile)
        del values["customer_id"]
        await self._conn.execute(
            customers.update()
            .where(customers.c.customer_id == profile.customer_id)
            .values(**values, version=profile.version, updated_at=updated_at)
        )

    async def erase_profile(self, profile: CustomerProfile) -> None:
        assert profile.erased_at is not None, "erase the profile first: domain.erased"
        values = _profile_values(profile)
        del values["customer_id"]
        await self._conn.execute(
            customers.update()
            .where(customers.c.customer_id == profile.customer_id)
            .values(
                **values,
                referred_by=profile.referred_by,  # domain.erased drops it with the contact
                erased_at=profile.erased_at,
                updated_at=profile.erased_at,
                # The enrolment's fingerprint hashes its body, email and phone included: it
                # goes too, so a retried enrolment of an erased id is refused as taken.
                request_hash=ERASED_REQUEST_HASH,
            )
        )

    async def known_customers(self, customer_ids: Collection[str]) -> set[str]:
        if not customer_ids:
            return set()
        rows = await self._conn.execute(_KNOWN_CUSTOMERS, {"ids": list(customer_ids)})
        return set(rows.scalars())


class SqlPurchaseRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

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

    async def accepted_purchases(
        self, keys: Collection[PurchaseKey]
    ) -> dict[PurchaseKey, Accepted]:
        if not keys:
            return {}
        rows = await self._conn.execute(
            _ACCEPTED_PURCHASES,
            {
                "partner_ids": [partner_id for partner_id, _ in keys],
                "purchase_ids": [purchase_id for _, purchase_id in keys],
            },
        )
        return {
            (row.partner_id, row.purchase_id): Accepted(row.request_hash, row.event_id)
            for row in rows
        }

    async def add_purchases(self, new: Sequence[StoredPurchase]) -> set[PurchaseKey]:
        if not new:
            return set()
        inserted = await self._conn.execute(
            _ADD_PURCHASES,
            {
                "partner_ids": [p.partner_id for p in new],
                "purchase_ids": [p.purchase_id for p in new],
                "customer_ids": [p.customer_id for p in new],
                "currencies": [p.currency for p in new],
                "totals": [p.total for p in new],
                "occurred_ats": [p.occurred_at for p in new],
                "request_hashes": [p.accepted.request_hash for p in new],
                "event_ids": [p.accepted.event_id for p in new],
            },
        )
        return {(row.partner_id, row.purchase_id) for row in inserted}


def _partner(row: sa.Row[Any]) -> Partner:
    return Partner(
        partner_id=row.partner_id,
        name=row.name,
        api_key_hash=row.api_key_hash,
        signing_secret=unseal_signing_secret(row.partner_id, row.signing_secret),
        created_at=row.created_at,
        active=row.active,
        rate_limit_per_second=row.rate_limit_per_second,
    )


def _partner_values(partner: Partner) -> dict[str, object]:
    return {
        "partner_id": partner.partner_id,
        "name": partner.name,
        "api_key_hash": partner.api_key_hash,
        # Sealed: the partner's id is its associated data (adapters/sealed_secrets.py).
        "signing_secret": seal_signing_secret(partner.partner_id, partner.signing_secret),
        "created_at": partner.created_at,
        "active": partner.active,
        "rate_limit_per_second": partner.rate_limit_per_second,
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
        "birthday": profile.birthday,
    }


# The group commit's statements (purchase_groups, the hot path), built once: building a
# statement and its cache key on every call cost more than running it did. Arrays rather
# than IN lists: the text stays the same whatever the number of ids, so PostgreSQL plans each
# once per connection.
_KNOWN_CUSTOMERS = sa.select(customers.c.customer_id).where(
    customers.c.customer_id == sa.any_(_text_array("ids"))
)
_WANTED_PURCHASES = (
    sa.func.unnest(_text_array("partner_ids"), _text_array("purchase_ids"))
    .table_valued("partner_id", "purchase_id")
    .render_derived(name="wanted")
)
_ACCEPTED_PURCHASES = sa.select(
    purchases.c.partner_id,
    purchases.c.purchase_id,
    purchases.c.request_hash,
    purchases.c.event_id,
).where(
    sa.tuple_(purchases.c.partner_id, purchases.c.purchase_id).in_(
        sa.select(_WANTED_PURCHASES.c.partner_id, _WANTED_PURCHASES.c.purchase_id)
    )
)
_PURCHASE_COLUMNS = [
    "partner_id",
    "purchase_id",
    "customer_id",
    "currency",
    "total",
    "occurred_at",
    "request_hash",
    "event_id",
]
_NEW_PURCHASES = (
    sa.func.unnest(
        _text_array("partner_ids"),
        _text_array("purchase_ids"),
        _text_array("customer_ids"),
        _text_array("currencies"),
        sa.cast(sa.bindparam("totals"), ARRAY(sa.Numeric(14, 2))),
        sa.cast(sa.bindparam("occurred_ats"), ARRAY(sa.DateTime(timezone=True))),
        _text_array("request_hashes"),
        _text_array("event_ids"),
    )
    .table_valued(*_PURCHASE_COLUMNS)
    .render_derived(name="new")
)
_ADD_PURCHASES = (
    insert(purchases)
    .from_select(
        _PURCHASE_COLUMNS, sa.select(*(_NEW_PURCHASES.c[name] for name in _PURCHASE_COLUMNS))
    )
    .on_conflict_do_nothing(index_elements=["partner_id", "purchase_id"])
    .returning(purchases.c.partner_id, purchases.c.purchase_id)
)
