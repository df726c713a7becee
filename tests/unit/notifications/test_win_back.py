"""Win-back: notifications remembers each customer's last purchase; a lapse of the configured
length yields one message, the next only after a new purchase and a new lapse."""

from collections.abc import Sequence
from datetime import datetime, timedelta

from services.notifications.domain.model import WIN_BACK, PurchaseActivity, is_lapsed
from services.notifications.handlers import Context, apply_batch
from services.notifications.jobs import win_back_message
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import CollectingSink
from tests.support import factories
from tests.support.fakes.notifications import NOW, FakeNotifications, erased_event

AFTER = timedelta(days=90)


def purchase(customer_id: str, occurred_at: datetime) -> CloudEvent:
    return factories.purchase(
        customer_id,
        "12.50",
        at=occurred_at,
        purchase_id=f"p-{customer_id}-{occurred_at.timestamp():.0f}",
        partner_id="partner-1",
    )


async def apply(batch: Sequence[CloudEvent], notifications: FakeNotifications) -> None:
    await apply_batch(batch, Context(notifications=notifications, sink=CollectingSink(), now=NOW))


async def test_the_latest_purchase_is_kept_whatever_the_order() -> None:
    notifications = FakeNotifications()
    earlier, later = NOW - timedelta(days=3), NOW - timedelta(days=1)
    await apply(
        [purchase("c1", later), purchase("c1", earlier), purchase("c2", earlier)], notifications
    )
    await apply([purchase("c1", earlier - timedelta(days=1))], notifications)  # late, older
    assert notifications.last_purchases == {"c1": later, "c2": earlier}
    assert not notifications.deliveries  # a purchase schedules nothing by itself


async def test_erasure_forgets_the_purchases_before_it_not_those_after() -> None:
    notifications = FakeNotifications()
    await apply([purchase("c1", NOW - timedelta(days=5))], notifications)
    await apply(
        [purchase("c2", NOW - timedelta(days=4)), erased_event("c2"), erased_event("c1")],
        notifications,
    )
    assert notifications.last_purchases == {}
    await apply([erased_event("c3"), purchase("c3", NOW)], notifications)
    assert notifications.last_purchases == {"c3": NOW}


def test_a_customer_lapses_after_the_window_once_per_last_purchase() -> None:
    bought = NOW - AFTER
    fresh = PurchaseActivity("c1", last_purchase_at=bought + timedelta(seconds=1))
    lapsed = PurchaseActivity("c1", last_purchase_at=bought)
    told = PurchaseActivity("c1", last_purchase_at=bought, win_back_for=bought)
    bought_again = PurchaseActivity(
        "c1", last_purchase_at=bought, win_back_for=bought - timedelta(days=200)
    )
    assert not is_lapsed(fresh, NOW, AFTER)
    assert is_lapsed(lapsed, NOW, AFTER)
    assert not is_lapsed(told, NOW, AFTER)
    assert is_lapsed(bought_again, NOW, AFTER)


def test_one_lapse_yields_one_message_id_a_new_lapse_another() -> None:
    lapse = PurchaseActivity("c1", last_purchase_at=NOW - AFTER)
    again = win_back_message(lapse, NOW + timedelta(hours=1))
    first = win_back_message(lapse, NOW)
    assert first.template == WIN_BACK
    assert first.customer_id == "c1"
    assert first.next_attempt_at == NOW  # due at once: the job runs when it is time
    assert (first.notification_id, first.cause_event_id) == (
        again.notification_id,
        again.cause_event_id,
    )
    later_lapse = PurchaseActivity("c1", last_purchase_at=NOW - AFTER + timedelta(days=1))
    assert win_back_message(later_lapse, NOW).notification_id != first.notification_id
    assert win_back_message(
        PurchaseActivity("c2", lapse.last_purchase_at), NOW
    ).notification_id != (first.notification_id)
