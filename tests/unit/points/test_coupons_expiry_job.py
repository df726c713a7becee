"""The `expire-coupons` job takes the coupons expired unused a chunk at a time, one
transaction each: each is marked expired once, announced once, and (with refund_points) its
points go back only into lots not yet expired; with forfeit, none do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.points.domain.coupons import Coupon, CouponStatus
from services.points.domain.lots import Allocation
from services.points.domain.model import EntryKind, LedgerEntry, Program
from services.points.jobs import ExpireCoupons
from shared.clock import FixedClock
from shared.messaging.events import derived_event_id
from tests.support.fakes.engine import FakeJobEngine
from tests.support.fakes.points import FakeCouponJobs

AS_OF = datetime(2026, 3, 1, tzinfo=UTC)
CLOCK = FixedClock(AS_OF)


def lot(jobs: FakeCouponJobs, customer: str, name: str, expires_at: datetime) -> str:
    entry_id = f"{customer}/{name}"
    jobs.entries[entry_id] = LedgerEntry(
        entry_id=entry_id,
        customer_id=customer,
        kind=EntryKind.EARN,
        points=1000,
        reason="purchase",
        occurred_at=AS_OF - timedelta(days=200),
        available_at=AS_OF - timedelta(days=200),
        expires_at=expires_at,
    )
    return entry_id


def coupon(
    jobs: FakeCouponJobs, customer: str, n: int, expires_at: datetime, lots: dict[str, int]
) -> Coupon:
    """A coupon of a redemption that drew `lots` (lot id: points)."""
    redemption = f"{customer}:redeem{n}"
    jobs.entries[redemption] = LedgerEntry(
        entry_id=redemption,
        customer_id=customer,
        kind=EntryKind.REDEEM,
        points=-sum(lots.values()),
        reason="coffee",
        occurred_at=expires_at - timedelta(days=30),
        available_at=expires_at - timedelta(days=30),
        partner_id="p1",
        reward_id="r1",
    )
    for lot_id, points in lots.items():
        jobs.allocations.append((customer, Allocation(redemption, lot_id, points)))
    made = Coupon(
        coupon_id=f"{customer}:coupon{n}",
        code=f"CODE{customer}{n}".upper(),
        customer_id=customer,
        reward_id="r1",
        redemption_id=redemption,
        points=sum(lots.values()),
        issued_at=expires_at - timedelta(days=30),
        expires_at=expires_at,
    )
    jobs.coupons[made.coupon_id] = made
    return made


def job(jobs: FakeCouponJobs, chunk_size: int, policy: str = "refund_points") -> ExpireCoupons:
    program = Program(coupon_expiry="forfeit" if policy == "forfeit" else "refund_points")
    return ExpireCoupons(program, CLOCK, chunk_size=chunk_size, repository=lambda _: jobs)


async def test_more_coupons_than_a_chunk_are_each_expired_and_refunded_once() -> None:
    jobs = FakeCouponJobs()
    expired = []
    for n in range(7):
        customer = f"m{n}"
        young = lot(jobs, customer, "young", AS_OF + timedelta(days=90))
        expired.append(coupon(jobs, customer, 0, AS_OF - timedelta(hours=n), {young: 100}))
    fresh = coupon(jobs, "m0", 1, AS_OF + timedelta(days=1), {"m0/young": 50})
    engine = FakeJobEngine()

    summary = await job(jobs, 3).run(engine.as_engine(), AS_OF)

    assert (summary["expired_coupons"], summary["points_returned"]) == (7, 700)
    assert (jobs.reads, engine.transactions) == ([3, 3, 1], 3)
    assert [len(locked) for locked in jobs.locked] == [3, 3, 1]
    for made in expired:
        now = jobs.coupons[made.coupon_id]
        assert (now.status, now.points_returned, now.expired_at) == (
            CouponStatus.EXPIRED,
            100,
            made.expires_at,
        )
        release = jobs.entries[f"{made.redemption_id}:coupon-expired"]
        assert (release.kind, release.points, release.partner_id) == (EntryKind.RELEASE, 100, "p1")
    assert jobs.coupons[fresh.coupon_id].status is CouponStatus.ISSUED
    assert jobs.left("m1/young") == 1000
    assert sorted(engine.conn.outbox_ids) == sorted(
        derived_event_id(c.coupon_id, "coupon-expired") for c in expired
    )

    again = await job(jobs, 3).run(engine.as_engine(), AS_OF)
    assert again["expired_coupons"] == 0
    assert len(engine.conn.outbox_ids) == 7


async def test_points_of_an_expired_lot_are_never_given_back() -> None:
    jobs = FakeCouponJobs()
    old = lot(jobs, "m1", "old", AS_OF - timedelta(days=1))
    young = lot(jobs, "m1", "young", AS_OF + timedelta(days=1))
    made = coupon(jobs, "m1", 0, AS_OF - timedelta(days=2), {old: 70, young: 30})

    summary = await job(jobs, 10).run(FakeJobEngine().as_engine(), AS_OF)

    assert summary["points_returned"] == 30
    assert jobs.coupons[made.coupon_id].points_returned == 30
    assert (jobs.left(old), jobs.left(young)) == (930, 1000)


async def test_with_forfeit_the_coupons_expire_and_nothing_goes_back() -> None:
    jobs = FakeCouponJobs()
    young = lot(jobs, "m1", "young", AS_OF + timedelta(days=90))
    made = coupon(jobs, "m1", 0, AS_OF - timedelta(days=1), {young: 100})
    engine = FakeJobEngine()

    summary = await job(jobs, 10, "forfeit").run(engine.as_engine(), AS_OF)

    assert (summary["expired_coupons"], summary["points_returned"]) == (1, 0)
    assert jobs.coupons[made.coupon_id].status is CouponStatus.EXPIRED
    assert jobs.coupons[made.coupon_id].points_returned == 0
    assert not any(e.kind is EntryKind.RELEASE for e in jobs.entries.values())
    assert jobs.left(young) == 900
    assert engine.conn.outbox_ids == [derived_event_id(made.coupon_id, "coupon-expired")]
