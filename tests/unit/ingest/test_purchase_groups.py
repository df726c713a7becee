"""How a purchase group decides each of its calls (`usecases.purchase_groups`): in arrival
order, as if one came after the other, each seeing what the calls before it were answered.
What the group then stores in one transaction is tested on PostgreSQL (integration)."""

from __future__ import annotations

import json

from fastapi.responses import JSONResponse

from services.ingest.api.schemas import AcceptedOut
from services.ingest.domain.model import RuleViolation, UnknownCustomer
from services.ingest.usecases.purchase_groups import PurchaseCall, _decide, _Decisions
from shared.web.problems import Problem
from tests.support.fakes.ingest import purchase_call


def _decisions(*, enrolled: set[str] | None = None) -> _Decisions:
    return _Decisions(kept={}, accepted={}, enrolled={"c1"} if enrolled is None else enrolled)


def _decide_all(calls: list[PurchaseCall], decisions: _Decisions) -> list[object]:
    return [_decide(call, decisions) for call in calls]


def test_a_new_purchase_of_an_enrolled_customer_is_accepted_and_stored() -> None:
    call = purchase_call("demo", "c1", "p1", key="k1")
    decisions = _decisions()

    (outcome,) = _decide_all([call], decisions)

    assert outcome == AcceptedOut(event_id=call.event.id)
    assert decisions.new == [call]
    assert ("scope-demo", "k1") in decisions.kept


def test_the_same_purchase_id_later_in_the_group_is_a_retry_or_a_conflict() -> None:
    first = purchase_call("demo", "c1", "p1")
    retry = purchase_call("demo", "c1", "p1")
    other = purchase_call("demo", "c1", "p1", total="99.00")
    decisions = _decisions()

    accepted, retried, conflict = _decide_all([first, retry, other], decisions)

    assert accepted == retried == AcceptedOut(event_id=first.event.id)
    assert isinstance(conflict, Problem) and conflict.status == 409
    assert conflict.slug == "idempotency-conflict"
    assert decisions.new == [first]


def test_a_key_kept_earlier_in_the_group_replays_or_refuses_another_request() -> None:
    first = purchase_call("demo", "c1", "p1", key="k1")
    again = purchase_call("demo", "c1", "p1", key="k1")
    reused = purchase_call("demo", "c1", "p2", key="k1")
    decisions = _decisions()

    accepted, replayed, conflict = _decide_all([first, again, reused], decisions)

    assert isinstance(accepted, AcceptedOut)
    assert isinstance(replayed, JSONResponse)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert json.loads(bytes(replayed.body)) == {"event_id": accepted.event_id}
    assert isinstance(conflict, Problem) and conflict.slug == "idempotency-key-reused"
    assert decisions.new == [first]


def test_a_retry_of_an_accepted_purchase_gets_its_answer_whatever_the_rules_say_today() -> None:
    first = purchase_call("demo", "c1", "p1")
    late = purchase_call("demo", "c1", "p1", refusal=RuleViolation("too late now"))
    decisions = _decisions()

    accepted, retried = _decide_all([first, late], decisions)

    assert accepted == retried == AcceptedOut(event_id=first.event.id)


def test_a_refused_or_unknown_customers_purchase_is_answered_alone_and_not_stored() -> None:
    refused = purchase_call("demo", "c1", "p1", refusal=RuleViolation("wrong currency"))
    stranger = purchase_call("demo", "nobody", "p2")
    good = purchase_call("demo", "c1", "p3")
    decisions = _decisions()

    refusal, unknown, accepted = _decide_all([refused, stranger, good], decisions)

    assert refusal is refused.refusal
    assert isinstance(unknown, UnknownCustomer)
    assert isinstance(accepted, AcceptedOut)
    assert decisions.new == [good]
