"""The win-back job takes the lapsed customers a chunk at a time, one transaction each, in
(last purchase, customer id) order from where the last chunk ended: over more customers than
a chunk holds, each lapse gets one message, and a second run as of the same instant does
nothing."""

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from services.notifications.domain.model import (
    WIN_BACK,
    Contact,
    Delivery,
    PurchaseActivity,
    is_lapsed,
)
from services.notifications.jobs import WinBack
from shared.clock import FixedClock
from tests.support.fakes.engine import FakeJobEngine

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
AFTER = timedelta(days=90)


class FakeWinBacks:
    """ports.JobsRepository's win-back side in memory, and what each chunk read."""

    def __init__(self) -> None:
        self.activity: dict[str, PurchaseActivity] = {}
        self.contacts: dict[str, Contact] = {}
        self.deliveries: dict[str, Delivery] = {}
        self.reads: list[int] = []

    def customer(self, customer_id: str, last_purchase_at: datetime, contact: bool = True) -> None:
        self.activity[customer_id] = PurchaseActivity(customer_id, last_purchase_at)
        if contact:
            self.contacts[customer_id] = Contact(
                customer_id=customer_id,
                email=f"{customer_id}@example.com",
                phone=None,
                locale="en",
                time_zone="UTC",
                consent_email=True,
                consent_sms=False,
                updated_at=last_purchase_at,
            )

    async def release(self, as_of: datetime, *, held: bool) -> int:
        return 0

    async def lapsed(
        self,
        as_of: datetime,
        after: timedelta,
        *,
        after_key: tuple[datetime, str],
        limit: int,
    ) -> list[PurchaseActivity]:
        taken = sorted(
            (
                a
                for a in self.activity.values()
                if is_lapsed(a, as_of, after)
                and (a.last_purchase_at, a.customer_id) > after_key
                and a.customer_id in self.contacts
            ),
            key=lambda a: (a.last_purchase_at, a.customer_id),
        )[:limit]
        self.reads.append(len(taken))
        return taken

    async def mark_won_back(self, activities: Collection[PurchaseActivity]) -> None:
        for a in activities:
            self.activity[a.customer_id] = PurchaseActivity(
                a.customer_id, a.last_purchase_at, win_back_for=a.last_purchase_at
            )

    async def contacts_of(self, customer_ids: Collection[str]) -> dict[str, Contact]:
        return {c: self.contacts[c] for c in customer_ids if c in self.contacts}

    async def partners_with_webhooks(self, partner_ids: Collection[str]) -> set[str]:
        return set()

    async def schedule(self, deliveries: Collection[Delivery]) -> set[str]:
        new = {d.notification_id for d in deliveries if d.notification_id not in self.deliveries}
        for delivery in deliveries:
            self.deliveries.setdefault(delivery.notification_id, delivery)
        return new


def job(fake: FakeWinBacks, chunk_size: int) -> WinBack:
    return WinBack(FixedClock(AS_OF), AFTER, chunk_size=chunk_size, repository=lambda _: fake)


async def test_more_customers_than_a_chunk_each_get_one_win_back_a_chunk_a_transaction() -> None:
    fake = FakeWinBacks()
    lapsed_at = AS_OF - AFTER - timedelta(days=1)
    for n in range(10):
        fake.customer(f"c{n:02d}", lapsed_at - timedelta(hours=n % 4))
    fake.customer("recent", AS_OF - timedelta(days=3))
    fake.customer("no-contact", lapsed_at, contact=False)
    engine = FakeJobEngine()

    summary = await job(fake, 3).run(engine.as_engine(), AS_OF)

    assert (summary["lapsed"], summary["scheduled"]) == (10, 10)
    assert (fake.reads, engine.transactions) == ([3, 3, 3, 1], 4)
    assert sorted(d.customer_id for d in fake.deliveries.values()) == [
        f"c{n:02d}" for n in range(10)
    ]
    assert {d.template for d in fake.deliveries.values()} == {WIN_BACK}

    again = await job(fake, 3).run(engine.as_engine(), AS_OF)
    assert (again["lapsed"], again["scheduled"]) == (0, 0)
    assert fake.reads[4:] == [0]
    assert len(fake.deliveries) == 10


async def test_a_full_last_chunk_is_followed_by_one_empty_read() -> None:
    fake = FakeWinBacks()
    for n in range(6):
        fake.customer(f"c{n}", AS_OF - AFTER)
    summary = await job(fake, 3).run(FakeJobEngine().as_engine(), AS_OF)
    assert summary["lapsed"] == 6
    assert fake.reads == [3, 3, 0]
