"""The ports of the ingest service: what its use cases need of storage.

Each is a Protocol; `adapters/repositories/` implements them on PostgreSQL (its factories are
annotated with these, so mypy checks the classes). Ingest consumes no events and its only job
is shared (`purge-idempotency-keys`) but for `purge-till-signatures`, so every port here
serves the use cases; one is not storage: `PointsGateway`, points' HTTP API, which the till
calls are relayed to."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from services.ingest.domain.model import Accepted, CustomerProfile, Partner
from services.ingest.domain.till import PointsAnswer
from services.ingest.domain.till_replays import SignedCall

PurchaseKey = tuple[str, str]  # (partner_id, purchase_id): purchase ids are the partner's own


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


class PartnerRepository(Protocol):
    """The partners: who may call, with which credentials (the admin's use cases)."""

    async def partner_by_key_hash(self, api_key_hash: str) -> Partner | None: ...

    async def add_partner(self, partner: Partner) -> bool:
        """False when a partner with this id already exists."""
        ...

    async def put_partner(self, partner: Partner) -> None:
        """Creates the partner or replaces its name and credentials."""
        ...

    async def partners(self) -> list[Partner]:
        """Every partner, active or not, by id."""
        ...

    async def replace_credentials(
        self, partner_id: str, api_key_hash: str, signing_secret: str
    ) -> Partner | None:
        """The partner with its new credentials (the old ones stop working); None when there
        is no such partner."""
        ...

    async def deactivate_partner(self, partner_id: str) -> Partner | None:
        """The partner, revoked: its key is refused from now on; None when there is none."""
        ...

    async def set_rate_limit(self, partner_id: str, per_second: float | None) -> Partner | None:
        """The partner with its calls-per-second limit set (None: the default); None when
        there is no such partner."""
        ...


class LookupsThrottled(Exception):
    """Too many lookups of unknown API keys right now: answered 429 without a lookup."""


class PartnerDirectory(Protocol):
    """How a POS call finds its partner: by the hash of the API key it carries."""

    async def by_key_hash(self, api_key_hash: str) -> Partner | None:
        """The partner, or None for an unknown key; LookupsThrottled when keys never found
        are being tried faster than the directory asks the database for them."""
        ...


class CustomerRepository(Protocol):
    """The customers' current profiles (enrolment, changes, erasure)."""

    async def add_customer(self, profile: CustomerProfile, accepted: Accepted) -> bool:
        """False when the customer id is already enrolled."""
        ...

    async def enrolment(self, customer_id: str) -> Accepted | None: ...

    async def profile_for_update(self, customer_id: str) -> CustomerProfile | None:
        """The profile, its row locked until the transaction ends."""
        ...

    async def save_profile(self, profile: CustomerProfile, updated_at: datetime) -> None:
        """Stores the profile with its version: call with the row locked."""
        ...

    async def erase_profile(self, profile: CustomerProfile) -> None:
        """Stores an erased profile (domain.erased) and when it was erased: call with the row
        locked."""
        ...

    async def known_customers(self, customer_ids: Collection[str]) -> set[str]:
        """Those of the ids that are enrolled."""
        ...


class PurchaseRepository(Protocol):
    """Purchases and refunds, by the partner's own ids."""

    async def purchase(
        self, partner_id: str, purchase_id: str, *, for_update: bool = False
    ) -> StoredPurchase | None: ...

    async def add_refund(self, refund: StoredRefund, refunded: Decimal) -> bool:
        """Records the refund and the purchase's new refunded amount; False when the partner
        already reported a refund with this id."""
        ...

    async def refund(self, partner_id: str, refund_id: str) -> StoredRefund | None: ...

    async def accepted_purchases(
        self, keys: Collection[PurchaseKey]
    ) -> dict[PurchaseKey, Accepted]:
        """What was accepted under those of the purchase ids that were already reported."""
        ...

    async def add_purchases(self, new: Sequence[StoredPurchase]) -> set[PurchaseKey]:
        """Inserts the purchases in one statement; returns those that were new (the others
        were committed concurrently under the same id)."""
        ...


@dataclass(frozen=True)
class TillCall:
    """One call to points on a partner's behalf: `path` is points' own, its ids already
    bounded; the partner (and the store, when the till named one) go as the
    `Fedelta-Partner-Id` and `Fedelta-Store-Id` headers, the key as `Idempotency-Key`."""

    method: Literal["GET", "POST"]
    path: str
    partner_id: str
    store_id: str | None = None
    idempotency_key: str | None = None
    body: Mapping[str, Any] | None = None

    @property
    def changes_state(self) -> bool:
        return self.method != "GET"


class PointsUnreachable(Exception):
    """Nothing reached points: refused, unknown host, connect timeout, no free connection.
    The message is the error's class, never a URL or a body."""


class PointsOutcomeUnknown(Exception):
    """The call was sent and no answer came back (a read timeout, a dropped connection)."""


class PointsGateway(Protocol):
    """Points' internal HTTP API, called with the till token."""

    async def call(self, call: TillCall) -> PointsAnswer:
        """Points' answer, whatever its status; PointsUnreachable or PointsOutcomeUnknown
        when there is none."""
        ...


class TillSignatures(Protocol):
    """The signed calls without an id of their own (a till's redemptions and holds, profile
    changes, erasures), per partner, with the key each first came with
    (`domain/till_replays.py`): shared by every ingest instance."""

    async def remember(self, call: SignedCall) -> bool:
        """True when the signature is new (now remembered with the call's key) or came before
        with this same key; False when it came before with another key or without one, or
        comes again without one. One statement."""
        ...


class MemberImports(Protocol):
    """Members brought over from another program (`usecases/imports.py`), a call's rows at
    a time."""

    async def partner(self, partner_id: str) -> Partner | None: ...

    async def add_members(self, members: Sequence[tuple[CustomerProfile, Accepted]]) -> set[str]:
        """Inserts the customers that are not enrolled yet, in one statement, and never
        changes one who is; returns the ids inserted."""
        ...
