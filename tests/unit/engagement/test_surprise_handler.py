"""Surprise rewards in the engagement handler (`apply_batch`), on the fake repository: a win
granted once per rule and purchase whatever is redelivered, the daily budget and the cooldown
holding, the draw keyed by the program's secret, a whole refund taking the win back, and an
erased member's wins gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.engagement.bootstrap import surprise_key
from services.engagement.domain.model import Reward, Scope, Window, purchase_key
from services.engagement.domain.surprises import SurpriseRule, draw, surprise_grant_id
from services.engagement.handlers import Context, apply_batch
from services.engagement.settings import EngagementSettings
from shared.messaging import events, topics
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.engagement import FakeEngagement

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(hours=1)
KEY = b"the-unit-tests-surprise-secret-32-bytes"
PARTNER = factories.PARTNER
REWARDED = events.ENGAGEMENT_REWARDED
REVOKED = events.ENGAGEMENT_REWARD_REVOKED


def surprise(**changes: object) -> SurpriseRule:
    fields: dict[str, object] = {
        "surprise_id": "lucky",
        "name": "A coffee on us",
        "chance": Decimal(1),
        "reward": Reward(points=40),
        "scope": Scope(),
        "window": Window(NOW - timedelta(days=30), NOW + timedelta(days=30)),
    }
    fields.update(changes)
    return SurpriseRule(**fields)  # type: ignore[arg-type]


def bought(purchase_id: str, customer_id: str = "c1", at: datetime = AT) -> CloudEvent:
    return factories.purchase(customer_id, "10.00", at=at, purchase_id=purchase_id)


async def apply(
    repository: FakeEngagement, *batch: CloudEvent, key: bytes | None = KEY
) -> list[CloudEvent]:
    sink = CollectingSink()
    await apply_batch(list(batch), Context(repository, sink, NOW, surprise_key=key))
    for topic, subject, event in sink.events:
        assert (topic, subject) == (topics.ENGAGEMENT, event.subject)
    return [event for _, _, event in sink.events]


def of_type(emitted: list[CloudEvent], event_type: str) -> list[CloudEvent]:
    return [event for event in emitted if event.type == event_type]


async def test_a_win_is_granted_once_with_a_grant_id_of_the_rule_and_the_purchase() -> None:
    repository = FakeEngagement(surprise_rules=[surprise()])
    [rewarded] = of_type(await apply(repository, bought("p1")), REWARDED)
    grant = events.EngagementRewarded.model_validate(rewarded.data)
    key = purchase_key(PARTNER, "p1")
    assert (grant.reason, grant.rule_id, grant.points, grant.purchase_id) == (
        "surprise",
        "lucky",
        40,
        "p1",
    )
    assert grant.grant_id == surprise_grant_id("lucky", key)
    assert grant.granted_at == AT
    # Redelivered, alone or in a batch with its copy: nothing more.
    assert await apply(repository, bought("p1")) == []
    assert await apply(repository, bought("p1"), bought("p1")) == []
    assert list(repository.surprise_wins) == [("lucky", key)]


async def test_the_daily_budget_stops_wins_once_spent_and_a_redelivery_spends_nothing() -> None:
    repository = FakeEngagement(surprise_rules=[surprise(daily_budget=100)])
    emitted = await apply(repository, *(bought(f"p{n}", f"c{n}") for n in range(4)))
    assert [e.data["customer_id"] for e in of_type(emitted, REWARDED)] == ["c0", "c1"]
    assert list(repository.budgets.values()) == [80]
    assert await apply(repository, bought("p0", "c0"), bought("p5", "c5")) == []
    assert list(repository.budgets.values()) == [80]
    # The next UTC day of the purchases has its own budget.
    tomorrow = of_type(
        await apply(repository, bought("p6", "c6", AT + timedelta(days=1))), REWARDED
    )
    assert len(tomorrow) == 1 and sorted(repository.budgets.values()) == [40, 80]


async def test_a_cooldown_holds_the_member_within_the_batch_and_across_batches() -> None:
    repository = FakeEngagement(surprise_rules=[surprise(cooldown_days=7)])
    first = await apply(repository, bought("p1"), bought("p2", at=AT + timedelta(days=1)))
    assert [e.data["purchase_id"] for e in of_type(first, REWARDED)] == ["p1"]
    assert await apply(repository, bought("p3", at=AT + timedelta(days=6))) == []
    assert await apply(repository, bought("p4", at=AT - timedelta(days=2))) == []  # late
    later = await apply(repository, bought("p5", at=AT + timedelta(days=7)))
    assert [e.data["purchase_id"] for e in of_type(later, REWARDED)] == ["p5"]
    other = await apply(repository, bought("p6", "c2", at=AT + timedelta(days=1)))
    assert len(of_type(other, REWARDED)) == 1


async def test_the_draw_decides_under_the_programs_secret() -> None:
    """Of 200 purchases, a chance of 0.3 grants exactly those whose draw is below it."""
    rule = surprise(chance=Decimal("0.3"))
    repository = FakeEngagement(surprise_rules=[rule])
    emitted = await apply(repository, *(bought(f"p{n}", f"c{n}") for n in range(200)))
    won = {e.data["purchase_id"] for e in of_type(emitted, REWARDED)}
    expected = {
        f"p{n}"
        for n in range(200)
        if draw(KEY, "lucky", purchase_key(PARTNER, f"p{n}")).wins(Decimal("0.3"))
    }
    assert won == expected and 30 < len(won) < 90
    # Another secret draws otherwise.
    elsewhere = FakeEngagement(surprise_rules=[rule])
    emitted = await apply(elsewhere, *(bought(f"p{n}", f"c{n}") for n in range(200)), key=KEY[::-1])
    assert {e.data["purchase_id"] for e in of_type(emitted, REWARDED)} != won


async def test_a_tiny_chance_wins_nothing_and_an_unqualified_purchase_draws_nothing() -> None:
    repository = FakeEngagement(
        surprise_rules=[
            surprise(surprise_id="rare", chance=Decimal("0.000001")),
            surprise(surprise_id="elsewhere", scope=Scope(partner_id="another-partner")),
            surprise(surprise_id="golden", min_tier="gold"),
        ]
    )
    assert await apply(repository, *(bought(f"p{n}", f"c{n}") for n in range(20))) == []
    assert "surprise_wins_of" not in repository.calls  # nothing drawn a win: no lock taken


async def test_without_a_secret_a_surprise_rule_fails_the_batch() -> None:
    repository = FakeEngagement(surprise_rules=[surprise()])
    with pytest.raises(RuntimeError, match="surprise secret"):
        await apply(repository, bought("p1"), key=None)
    assert await apply(FakeEngagement(), bought("p1"), key=None) == []


async def test_a_batch_locks_and_records_in_one_call_each() -> None:
    repository = FakeEngagement(surprise_rules=[surprise(daily_budget=10_000, cooldown_days=1)])
    await apply(repository, *(bought(f"p{n}", f"c{n % 5}") for n in range(30)))
    for call in ("surprise_wins_of", "lock_budgets", "record_surprise_wins", "save_budgets"):
        assert repository.calls.count(call) == 1
    assert repository.locked == {("lucky", f"c{n}") for n in range(5)}
    assert len(repository.surprise_wins) == 5


async def test_a_whole_refund_takes_the_win_back_once_and_a_partial_one_keeps_it() -> None:
    repository = FakeEngagement(surprise_rules=[surprise()])
    [rewarded] = await apply(repository, bought("p1"))
    refund = factories.refund("c1", "p1", "4.00", refund_id="r1", at=AT)
    assert await apply(repository, refund) == []
    assert await apply(repository, refund) == []  # redelivered: read once
    rest = factories.refund("c1", "p1", "6.00", refund_id="r2", at=AT)
    [revoked] = await apply(repository, rest)
    assert revoked.type == REVOKED
    assert revoked.data["grant_id"] == rewarded.data["grant_id"]
    assert revoked.data["refund_id"] == "r2"
    assert await apply(repository, factories.refund("c1", "p1", "1.00", refund_id="r3")) == []
    # A win taken back still counts: the purchase does not win again.
    assert await apply(repository, bought("p1")) == []


async def test_an_erased_member_has_no_wins_left() -> None:
    repository = FakeEngagement(surprise_rules=[surprise()])
    await apply(repository, bought("p1"), bought("p2", "c2"))
    await apply(repository, factories.erasure("c1"))
    assert [w.win.customer_id for w in repository.surprise_wins.values()] == ["c2"]


REQUIRED = {
    "database_url": "postgresql+asyncpg://u:p@127.0.0.1:5432/x",
    "kafka_bootstrap_servers": "127.0.0.1:9092",
    "admin_token_sha256": "a" * 64,
}


def test_the_service_needs_a_secret_of_32_bytes_and_never_shows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FEDELTA_ENGAGEMENT_SURPRISE_SECRET", raising=False)
    with pytest.raises(ValidationError, match="surprise_secret"):
        EngagementSettings(**REQUIRED)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="surprise_secret"):
        EngagementSettings(**REQUIRED, surprise_secret="s" * 31)  # type: ignore[arg-type]
    secret = "s" * 32
    settings = EngagementSettings(**REQUIRED, surprise_secret=secret)  # type: ignore[arg-type]
    assert surprise_key(settings) == secret.encode()
    assert secret not in repr(settings) and secret not in str(settings.model_dump())
