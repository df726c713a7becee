"""The Protocols the handlers, the dispatcher, the jobs and the use cases reach storage through,
one per path: the consumer's set-based writes, the dispatcher's batches, the
jobs' releases and win-backs, and what the API reads and writes. The SQL repositories in
`adapters/repositories/` implement them; the unit tests' fakes implement them too."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Protocol

from services.notifications.domain.model import (
    Contact,
    Delivery,
    PartnerWebhook,
    Preferences,
    PurchaseActivity,
    SentMessage,
)


class ReachabilityReads(Protocol):
    """Which channels a batch or a job reaches its customers on: their contacts, and which of
    their partners have a webhook."""

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        """The stored contacts of these customers (those that have one)."""
        ...

    async def partners_with_webhooks(self, partner_ids: Collection[str]) -> set[str]:
        """Those of these partners that have registered a webhook."""
        ...


class Scheduler(Protocol):
    async def schedule(self, deliveries: Collection[Delivery]) -> set[str]:
        """Stores the messages that do not exist yet (same id, or same cause, channel and
        template); returns the ids of those that were new."""
        ...


class ConsumerRepository(ReachabilityReads, Scheduler, Protocol):
    """The consumer's path (apply_batch): set-based, so that a whole batch costs a few
    statements."""

    async def upsert_contacts(self, contacts: Collection[Contact]) -> None:
        """Stores each profile that supersedes the stored one (Contact.supersedes: the higher
        version, by time only between unversioned profiles), so that a late or replayed older
        profile never overwrites a newer one. At most one profile per customer."""
        ...

    async def delete_contacts(self, customer_ids: Collection[str]) -> None:
        """Everything kept about these customers but the delivery log: the contact, the
        preferences and the purchase activity."""
        ...

    async def record_purchases(self, last_purchase_at: Mapping[str, datetime]) -> None:
        """Moves each customer's last purchase time forward to the given one; never back, so
        a late or replayed older purchase changes nothing."""
        ...

    async def suppress_scheduled(self, customer_ids: Collection[str], reason: str) -> int:
        """Suppresses every message still waiting for these customers; returns how many."""
        ...

    async def cover_lapses(self, offers: Mapping[str, datetime]) -> None:
        """Per customer told of a win-back offer starting at the given instant: marks the
        lapse it is for as won back (domain.covered_by_offer, after this batch's purchases),
        so that the win-back job sends no plain `win_back` for it, and suppresses their plain
        `win_back` messages still waiting (superseded by the offer's)."""
        ...

    async def open_digests(self, customer_ids: Collection[str], now: datetime) -> list[Delivery]:
        """The points digests of these customers still gathering earnings at `now` (not yet
        due, never attempted, not held), at most one per customer, locked for the current
        transaction so that no dispatcher takes one while an earning joins it."""
        ...

    async def update_digests(self, digests: Collection[Delivery]) -> None:
        """Rewrites the params of digests that earnings joined, if they are still waiting."""
        ...

    async def deliveries_by_id(self, notification_ids: Collection[str]) -> dict[str, Delivery]:
        """Those of these messages that exist, by id, locked for the current transaction so
        that no dispatcher sends one while the batch changes it (the merged expiry warnings)."""
        ...


class DispatchRepository(Protocol):
    """The dispatcher's path: a batch of due messages per transaction, and what deciding
    their fate needs in one statement each."""

    async def claim_due(self, now: datetime, limit: int) -> list[Delivery]:
        """Up to `limit` scheduled messages due by `now`, the transactional lane first
        (domain.lane_of), each lane in order of due time, locked for the current transaction;
        rows another transaction holds are skipped, so no two dispatchers take the same one."""
        ...

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        """The stored contacts of these customers (those that have one)."""
        ...

    async def preferences_of(self, customer_ids: Collection[str]) -> dict[str, Preferences]:
        """What these customers chose (those that chose anything)."""
        ...

    async def webhooks_of(self, partner_ids: Collection[str]) -> dict[str, PartnerWebhook]:
        """The webhooks these partners registered (those that did)."""
        ...

    async def sent_during(
        self, spans: Mapping[str, tuple[datetime, datetime]]
    ) -> dict[str, list[SentMessage]]:
        """Per customer, the messages sent to them in [start, end) over the channels they read
        (domain.PERSONAL_CHANNELS): what the daily cap counts."""
        ...

    async def save_all(self, deliveries: Collection[Delivery]) -> None:
        """Writes claimed messages' new status, attempts and timings, in one statement."""
        ...


class JobsRepository(ReachabilityReads, Scheduler, Protocol):
    """The time-driven jobs' path: releasing what waited, and the win-backs."""

    async def release(self, as_of: datetime, *, held: bool) -> int:
        """Makes due now the waiting messages whose wait ended by `as_of`, remembering that
        instant so the dispatcher judges them as of it: those held by quiet hours or the
        cap (`held`), or those waiting to retry a failed attempt. A message already released
        as of that instant or later is left alone, so a second run changes nothing."""
        ...

    async def lapsed(
        self,
        as_of: datetime,
        after: timedelta,
        *,
        after_key: tuple[datetime, str],
        limit: int,
    ) -> list[PurchaseActivity]:
        """The next `limit` customers, in (last purchase, customer id) order after
        `after_key`, without a purchase for `after` by `as_of` and no win-back for this lapse
        yet (domain.is_lapsed, in SQL), locked until the transaction ends. Only those with a
        contact."""
        ...

    async def mark_won_back(self, activities: Collection[PurchaseActivity]) -> None:
        """Remembers the lapse each customer's win-back was for."""
        ...


class ApiRepository(Scheduler, Protocol):
    """What the HTTP use cases read and write (and schedule: a sign-in link)."""

    async def customers_with_email(self, email: str, limit: int) -> list[str]:
        """The customers whose stored contact email is `email`, compared case-insensitively,
        in id order, at most `limit`."""
        ...

    async def contact(self, customer_id: str) -> Contact | None: ...

    async def preferences(self, customer_id: str) -> Preferences | None: ...

    async def save_preferences(self, chosen: Preferences) -> None: ...

    async def webhook(self, partner_id: str) -> PartnerWebhook | None: ...

    async def register_webhook(self, webhook: PartnerWebhook, now: datetime) -> bool:
        """Stores a partner's webhook; an existing one keeps its secret and takes the new URL.
        True when it was new."""
        ...

    async def remove_webhook(self, partner_id: str) -> bool:
        """True when there was one to remove."""
        ...

    async def deliveries_for(self, customer_id: str, limit: int) -> list[Delivery]:
        """The customer's messages, newest first."""
        ...

    async def is_known(self, customer_id: str) -> bool:
        """Whether the customer has a contact or any message in the delivery log."""
        ...
