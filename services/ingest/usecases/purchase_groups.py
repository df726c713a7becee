"""Group commit for `POST /v1/purchases`, the hot path of a busy POS network.

Purchases that arrive while the previous group is committing wait, and then share one
transaction: the checks are set-based (kept answers of their Idempotency-Keys, purchases
already reported under their ids, customers enrolled), the new purchases, their events and
their kept answers go in with one statement each, and the group commits once. Only then is
each caller answered, with its own answer: a 202 is still "stored with its event in the
outbox". Within a group the calls are decided in arrival order, as if one after the other,
so the second of two calls with one purchase_id is a retry (the same answer) or a 409.

The use case's machinery (`purchases.report_purchase` submits to it): the group takes its
Idempotency-Keys in the group form (`kept_answers` first, `remember_all` last), writes the
outbox with one `Outbox.add_all`, and opens its transaction with `in_transaction`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.adapters import tables
from services.ingest.adapters.repositories.api import customer_repository, purchase_repository
from services.ingest.api.schemas import AcceptedOut, PurchaseAcceptedOut
from services.ingest.domain.model import Accepted, RuleViolation, UnknownCustomer
from services.ingest.ports import PurchaseKey, StoredPurchase
from services.ingest.usecases.answers import ACCEPTED, Answer, replay_or_conflict
from shared.clock import Clock
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import Outbox
from shared.storage.transactions import in_transaction
from shared.web.idempotency import IdempotentCall, KeptAnswer, KeyId, kept_answers, remember_all
from shared.web.problems import Problem

log = logging.getLogger(__name__)

Outcome = Answer | Exception  # an exception is raised to the caller, as if it were alone


@dataclass
class PurchaseCall:
    """One reported purchase, ready to be stored: what the rules said of it is kept aside,
    because a retry of an accepted purchase gets its first answer whatever they say today;
    `wallet_url`, its receipt's link, goes into its answer when ingest makes one."""

    purchase: StoredPurchase
    event: CloudEvent
    idempotency: IdempotentCall
    refusal: RuleViolation | None = None
    wallet_url: str | None = None
    answered: asyncio.Future[Answer] = field(init=False)

    @property
    def key(self) -> PurchaseKey:
        return (self.purchase.partner_id, self.purchase.purchase_id)


class _LostRace(Exception):
    """Another process committed one of the group's purchase ids after the group read them."""


@dataclass
class _Decisions:
    """What the group knows, updated call by call so that later calls see earlier ones."""

    kept: dict[KeyId, KeptAnswer]
    accepted: dict[PurchaseKey, Accepted]
    enrolled: set[str]
    outcomes: list[Outcome] = field(default_factory=list)
    new: list[PurchaseCall] = field(default_factory=list)


class PurchaseGroups:
    def __init__(
        self,
        engine: AsyncEngine,
        clock: Clock,
        *,
        max_size: int,
        after_commit: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._max_size = max_size
        self._after_commit = after_commit
        self._waiting: list[PurchaseCall] = []
        self._committer: asyncio.Task[None] | None = None

    async def submit(self, call: PurchaseCall) -> Answer:
        """The call's answer, once its group has committed."""
        call.answered = asyncio.get_running_loop().create_future()
        self._waiting.append(call)
        if self._committer is None:
            self._committer = asyncio.create_task(self._commit_until_empty())
        return await call.answered

    async def _commit_until_empty(self) -> None:
        try:
            while self._waiting:
                if len(self._waiting) < self._max_size:
                    # One turn of the event loop first: the calls it already holds (read,
                    # being checked) join this group instead of paying for one of their own
                    # (on a busy worker, groups of ~30 instead of ~8: bench/README.md).
                    await asyncio.sleep(0)
                group = self._waiting[: self._max_size]
                del self._waiting[: self._max_size]
                await self._commit(group)
        finally:
            self._committer = None
            for call in self._waiting:  # only when cancelled: nobody would answer them
                call.answered.cancel()
            self._waiting.clear()

    async def _commit(self, group: list[PurchaseCall]) -> None:
        try:
            while True:
                try:
                    decisions = await in_transaction(
                        self._engine, lambda conn: self._decide_and_store(conn, group)
                    )
                    break
                except _LostRace:
                    # Decide again: the ids taken meanwhile are now visible, and each lost
                    # race makes one more id visible, so this ends.
                    log.info(
                        "purchase group of %d lost a race on an id; deciding again", len(group)
                    )
        except Exception as error:
            for call in group:
                if not call.answered.done():
                    call.answered.set_exception(error)
            return
        except BaseException:
            for call in group:
                call.answered.cancel()
            raise
        if decisions.new:
            self._after_commit()
        for call, outcome in zip(group, decisions.outcomes, strict=True):
            if call.answered.done():
                continue
            if isinstance(outcome, Exception):
                call.answered.set_exception(outcome)
            else:
                call.answered.set_result(outcome)

    async def _decide_and_store(
        self, conn: AsyncConnection, group: list[PurchaseCall]
    ) -> _Decisions:
        purchases = purchase_repository(conn)
        decisions = _Decisions(
            kept=await kept_answers(
                conn, tables.idempotency_keys, (call.idempotency for call in group)
            ),
            accepted=await purchases.accepted_purchases({call.key for call in group}),
            enrolled=await customer_repository(conn).known_customers(
                {call.purchase.customer_id for call in group if call.refusal is None}
            ),
        )
        for call in group:
            decisions.outcomes.append(_decide(call, decisions))
        new = decisions.new
        stored = await purchases.add_purchases([call.purchase for call in new])
        if len(stored) < len(new):
            raise _LostRace
        await Outbox(conn, tables.outbox, self._clock).add_all(
            [(c.event.topic, c.purchase.customer_id, c.event) for c in new]
        )
        await remember_all(
            conn,
            tables.idempotency_keys,
            [(c.idempotency, decisions.kept[key]) for c in new if (key := c.idempotency.key_id)],
            self._clock.now(),
        )
        return decisions


def _decide(call: PurchaseCall, decisions: _Decisions) -> Outcome:
    """The call's outcome given what is stored and what the group accepted before it: the
    same order of checks as for a call on its own."""
    purchase = call.purchase
    key_id = call.idempotency.key_id
    try:
        if key_id is not None and (kept := decisions.kept.get(key_id)) is not None:
            return call.idempotency.replay_of(kept)
        if (previous := decisions.accepted.get(call.key)) is not None:
            replayed = replay_or_conflict(
                previous,
                purchase.accepted.request_hash,
                what=f"purchase {purchase.purchase_id!r}",
                hint="report a different purchase under a new purchase_id",
            )
            return _with_link(replayed, call.wallet_url)
        if call.refusal is not None:
            raise call.refusal
        if purchase.customer_id not in decisions.enrolled:
            raise UnknownCustomer(
                f"customer {purchase.customer_id!r} is not enrolled: enrol with POST /v1/customers"
            )
    except (Problem, RuleViolation) as refusal:
        return refusal
    answer = _with_link(AcceptedOut(event_id=call.event.id), call.wallet_url)
    decisions.accepted[call.key] = purchase.accepted
    if key_id is not None:
        decisions.kept[key_id] = call.idempotency.kept(ACCEPTED, answer)
    decisions.new.append(call)
    return answer


def _with_link(answer: AcceptedOut, wallet_url: str | None) -> AcceptedOut:
    """The answer with the receipt's link when there is one; as it was otherwise, so that the
    link is absent from it rather than null."""
    if wallet_url is None:
        return answer
    return PurchaseAcceptedOut(event_id=answer.event_id, wallet_url=wallet_url)
