"""The ports of the tiers service: what its handlers, use cases, jobs and replay need of storage
and of Kafka.

Each is a Protocol; `adapters/repositories/` implements the storage ones on PostgreSQL and
`adapters/replay_reader.py` the replay's reader on Kafka (their factories are annotated with
these, so mypy checks the classes), and the unit tests' fakes implement the same ones
(`tests/support/fakes/tiers.py`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol

from services.tiers.domain.buckets import ActivityBucket, BucketKey, Window
from services.tiers.domain.model import (
    CustomerTier,
    DowngradeWarning,
    QualifyingActivity,
    TierChange,
)

# -- the qualifying activity, summed per member and day ---------------------------------------


class CountedActivity(Protocol):
    """How the rules read a member's qualifying activity: its day buckets (a bounded number of
    rows per member, whatever their history), and the activity itself of the few buckets an
    instant looked at cuts (`domain/buckets.py`)."""

    async def buckets_since(
        self, windows: Mapping[str, Window], year_zone: str | None
    ) -> dict[str, list[ActivityBucket]]:
        """For each customer, `domain.buckets.merged`: their buckets holding activity from
        their window's `since` on, those no cut divides summed per stretch between cuts (and
        calendar year of `year_zone`), in one statement."""
        ...

    async def bucket_activities(
        self, keys: Sequence[BucketKey]
    ) -> dict[str, list[QualifyingActivity]]:
        """The activity these buckets hold, per customer (one statement)."""
        ...


# -- the consumer's batch ---------------------------------------------------------------------


class ConsumerRepository(CountedActivity, Protocol):
    """What `handlers.apply_batch` reads and writes: set-based, each method takes or returns
    the rows of a whole batch and costs one statement, whatever the batch's size."""

    async def add_customers(self, customers: Sequence[CustomerTier]) -> None:
        """Adds each customer unless already known (a known one is left as it is)."""
        ...

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        """The known ones of these customers, locked until the transaction ends, so one
        decision sees all their spend. Locked in customer_id order: two instances locking
        overlapping sets then never wait on each other in a cycle."""
        ...

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        """Records each purchase or refund unless already recorded; the activity ids that
        were new. A new purchase of a referred member earlier than the first one their
        pending referral knows becomes its first purchase (same statement)."""
        ...

    async def refunds_of(self, purchase_ids: Collection[str]) -> dict[str, RefundedPurchase]:
        """Each of these recorded purchases' total and the refunds recorded of it (unknown
        purchases are left out)."""
        ...

    async def add_referrals(self, referred_by: Mapping[str, str]) -> None:
        """Referred member -> referrer: a pending referral each, unless the member has one
        already, with their first purchase if one is recorded (after `record_activities`)."""
        ...

    async def purchase_times(self, activity_ids: Collection[str]) -> dict[str, datetime]:
        """When each of these recorded purchases occurred (unknown ones are left out)."""
        ...

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None:
        """Stores these (known, locked) customers' tier, since, review date and enrolment."""
        ...

    async def append_history(self, changes: Sequence[TierChange]) -> None:
        """Appends the changes, in order, to the customers' tier history."""
        ...


@dataclass(frozen=True)
class RefundedPurchase:
    total: Decimal
    refunds: dict[str, Decimal]  # refund activity id -> amount (positive)


# -- the jobs' chunks -------------------------------------------------------------------------


@dataclass(frozen=True)
class DueReferral:
    """A pending referral whose first purchase's return window has passed."""

    referred_id: str
    referrer_id: str
    first_purchase_at: datetime
    purchase_total: Decimal
    refunded_in_window: Decimal  # refunds of the first purchase up to the window's end


class JobRepository(CountedActivity, Protocol):
    """What the review and warning jobs need, a chunk of customers at a time."""

    async def lock_due_for_review(
        self, as_of: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        """Up to `limit` customers after `after` (by customer_id) whose review is due by
        `as_of`, locked like `ConsumerRepository.lock_customers`, in customer_id order."""
        ...

    async def lock_due_for_warning(
        self, as_of: datetime, warn_until: datetime, *, after: str, limit: int
    ) -> list[CustomerTier]:
        """Up to `limit` customers after `after` whose review falls in (as_of, warn_until]
        and who were not warned about that review yet, locked, in customer_id order."""
        ...

    async def record_warnings(self, warnings: Sequence[DowngradeWarning], at: datetime) -> None:
        """Remembers these warnings as given (once per customer and review)."""
        ...

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None: ...

    async def append_history(self, changes: Sequence[TierChange]) -> None: ...

    # The `qualify-referrals` job, a chunk of referrals at a time.

    async def due_referrals(
        self, as_of: datetime, window_days: int, *, after: str, limit: int
    ) -> dict[str, str]:
        """Up to `limit` referred members after `after` (in id order) whose pending
        referral's first purchase was made `window_days` or more before `as_of`, each with
        their referrer. Not locked."""
        ...

    async def lock_referrals(
        self, referred_ids: Collection[str], as_of: datetime, window_days: int
    ) -> list[DueReferral]:
        """Of these, the referrals still pending and due, locked, with what decides them.
        The caller has locked the customers (referred and referrers) first."""
        ...

    async def decide_referrals(
        self, qualified: Collection[str], disqualified: Collection[str], at: datetime
    ) -> None: ...

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        """Like `ConsumerRepository.lock_customers`."""
        ...

    async def record_activities(self, activities: Sequence[QualifyingActivity]) -> set[str]:
        """Like `ConsumerRepository.record_activities`."""
        ...


# -- the API's use cases ----------------------------------------------------------------------


class ApiRepository(CountedActivity, Protocol):
    """What the HTTP use cases read (a customer's standing and history) and write (a staff
    override)."""

    async def customer(self, customer_id: str) -> CustomerTier | None: ...

    async def history(self, customer_id: str) -> list[TierChange]:
        """The customer's tier changes, newest first."""
        ...

    async def last_change(self, customer_id: str) -> TierChange | None:
        """The customer's newest tier change, if any."""
        ...

    async def lock_customers(self, customer_ids: Collection[str]) -> dict[str, CustomerTier]:
        """Like `ConsumerRepository.lock_customers`."""
        ...

    async def save_customers(self, customers: Sequence[CustomerTier]) -> None: ...

    async def append_history(self, changes: Sequence[TierChange]) -> None: ...


# -- the program in force ---------------------------------------------------------------------


@dataclass(frozen=True)
class SwitchedProgram:
    """A replay's switch: its generation rises by one with each switch."""

    generation: int
    replay_id: str
    switched_at: datetime


class SwitchedPrograms(Protocol):
    async def latest(self) -> SwitchedProgram | None:
        """The newest switch, if any replay ever switched."""
        ...

    async def program_text(self, generation: int) -> str:
        """The program that switch made live, as `program_file.program_json` wrote it."""
        ...

    async def wait_for_switch(self) -> None:
        """Waits for a switch in progress to commit; once this returns, any switch has
        committed or waits for this transaction to end."""
        ...


# -- the replay after a rule change -----------------------------------------------------------


class Partition(NamedTuple):
    topic: str
    partition: int


@dataclass
class ReplayBatch:
    """What one poll's records mean to the replay."""

    activities: dict[str, QualifyingActivity] = field(default_factory=dict)
    refunded: dict[str, str] = field(default_factory=dict)  # refund id -> its purchase's id
    # None: a buyer, or an imported member, whose enrolment this poll did not carry.
    enrolments: dict[str, datetime | None] = field(default_factory=dict)
    events: int = 0
    skipped: int = 0  # unreadable, or refused like the live consumer refuses them


@dataclass(frozen=True)
class Polled:
    """One poll of the replay's reader: how many records it returned, what they mean, and
    the reader's position in every partition after it."""

    records: int
    batch: ReplayBatch
    positions: dict[Partition, int]


class ReplayReader(Protocol):
    """The topics read from their earliest offset by a reader of the replay's own (no consumer
    group: the live group's offsets are left alone)."""

    async def assign(self, topics: Sequence[str]) -> dict[Partition, int]:
        """Takes every partition of these topics; each one's beginning offset. A topic that
        does not exist has no partition in the answer."""
        ...

    def seek(self, positions: Mapping[Partition, int]) -> None:
        """Reads each of these partitions from its offset on."""
        ...

    async def end_offsets(self) -> dict[Partition, int]: ...

    async def positions(self) -> dict[Partition, int]: ...

    async def poll(self) -> Polled:
        """The next records (waiting a second at most), read as the live consumer would."""
        ...


@dataclass(frozen=True)
class RunningReplay:
    replay_id: str
    program: str  # the replayed program, as `program_file.program_json` wrote it
    events: int


@dataclass(frozen=True)
class ReplayCounts:
    events: int
    skipped: int
    changed: int  # 0 until switched


class ReplayRuns(Protocol):
    """The replays: which one is running, and each one's counts and outcome."""

    async def running(self) -> RunningReplay | None: ...

    async def abandon(self, replay_id: str) -> None: ...

    async def start(self, replay_id: str, program: str, at: datetime) -> None: ...

    async def clean_up(self) -> None:
        """Drops the working rows of replays that are over (switched or abandoned)."""
        ...

    async def counts(self, replay_id: str) -> ReplayCounts: ...

    async def mark_switched(self, replay_id: str, at: datetime, changed: int) -> None:
        """Records the switch, with the next generation: every tiers instance follows the
        newest generation's program from the moment this commits."""
        ...


class ReplayStore(Protocol):
    """One replay's working tables, on the caller's transaction; set-based."""

    async def save_batch(self, batch: ReplayBatch, positions: Mapping[Partition, int]) -> None:
        """Stores a poll's facts and the read positions after it, together."""
        ...

    async def offsets(self) -> dict[Partition, int]:
        """Where the replay stopped reading each partition."""
        ...

    async def lock_to_compute(
        self, as_of: datetime, *, after: str, limit: int
    ) -> dict[str, datetime | None]:
        """Up to `limit` customers after `after` with activity not yet in their tier or a
        review due by `as_of`: their enrolment instant, in customer_id order."""
        ...

    async def histories(
        self, customer_ids: Sequence[str]
    ) -> dict[str, tuple[list[QualifyingActivity], dict[str, str]]]:
        """Each customer's activity, and which of it are refunds (of which purchase)."""
        ...

    async def save_tiers(self, rebuilt: Sequence[CustomerTier], unknown: Sequence[str]) -> None:
        """Stores the rebuilt tiers; `unknown` customers had nothing to rebuild."""
        ...

    async def lock_live(self) -> None:
        """Locks the live tables against writers until the transaction ends (reads go on)."""
        ...

    async def mark_referrers_stale(self) -> None:
        """Marks for a rebuild the referrers whose referral the live service qualified
        since this replay began (their rebuilt tier may not count it yet)."""
        ...

    async def differing(self, at: datetime) -> list[tuple[CustomerTier, str | None]]:
        """The rebuilt customers whose live row differs (or is missing), with their live
        tier; customers under a staff override still in force are left out."""
        ...

    async def make_live(
        self, customers: Sequence[CustomerTier], changes: Sequence[TierChange]
    ) -> None:
        """Copies the activity the live consumer has not applied yet, writes these customers'
        rebuilt tiers over the live ones and appends the changes to the history."""
        ...
