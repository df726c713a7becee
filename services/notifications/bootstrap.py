"""Wires the notifications service: the one place that builds engines, clients and workers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import time, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifications.adapters import tables
from services.notifications.adapters.coupons import HttpCouponReader
from services.notifications.adapters.http_channels import HttpSmsSender, HttpWebhookSender
from services.notifications.adapters.repositories.consumer import consumer_repository
from services.notifications.adapters.repositories.dispatcher import dispatch_repository
from services.notifications.adapters.sealed_secrets import use_keyring
from services.notifications.adapters.smtp import SmtpEmailSender
from services.notifications.adapters.webhook_addresses import WebhookGuard
from services.notifications.dispatcher import (
    DeliveryDispatcher,
    DispatchTransactions,
    DispatchUnit,
)
from services.notifications.domain.model import DeliveryPolicy, HarassmentPolicy, QuietHours
from services.notifications.domain.unsubscribe import unsubscribe_token
from services.notifications.domain.webhook_urls import allow_hosts_of
from services.notifications.handlers import (
    DEFAULT_DIGEST_WINDOW,
    DEFAULT_EXPIRY_HOLD,
    DEFAULT_EXPIRY_WINDOW_DAYS,
    DEFAULT_WELCOME_WINDOW,
    HANDLED_TYPES,
    Context,
    apply_batch,
)
from services.notifications.jobs import ReleaseHeld, RetryDeliveries, WinBack
from services.notifications.settings import NotificationsSettings, unsubscribe_key
from shared.clock import Clock, SystemClock
from shared.messaging import topics
from shared.messaging.consumer import Subscription
from shared.messaging.events import CloudEvent
from shared.messaging.outbox import EventSink, Outbox, with_outbox
from shared.runtime.process import Runtime, service_runtime
from shared.settings import ServiceSettings
from shared.storage.retention import purge_idempotency_keys
from shared.storage.transactions import in_transaction

SERVICE = "notifications"
CONSUMES = (topics.CUSTOMERS, topics.TIERS, topics.POINTS, topics.PURCHASES, topics.ENGAGEMENT)


def make_subscription(
    clock: Clock,
    digest_window: timedelta = DEFAULT_DIGEST_WINDOW,
    currency: str = "EUR",
    welcome_window: timedelta = DEFAULT_WELCOME_WINDOW,
    expiry_window_days: int = DEFAULT_EXPIRY_WINDOW_DAYS,
    expiry_hold: timedelta = DEFAULT_EXPIRY_HOLD,
    feedback_request_delay: timedelta | None = None,
) -> Subscription:
    async def apply(conn: AsyncConnection, batch: Sequence[CloudEvent], sink: EventSink) -> None:
        await apply_batch(
            batch,
            Context(
                notifications=consumer_repository(conn),
                sink=sink,
                now=clock.now(),
                digest_window=digest_window,
                currency=currency,
                welcome_window=welcome_window,
                expiry_window_days=expiry_window_days,
                expiry_hold=expiry_hold,
                feedback_request_delay=feedback_request_delay,
            ),
        )

    return Subscription(
        topics=CONSUMES,
        event_types=HANDLED_TYPES,
        handle=with_outbox(tables.outbox, clock, apply),
    )


T = TypeVar("T")


def make_dispatch_transactions(engine: AsyncEngine, clock: Clock) -> DispatchTransactions:
    async def transaction(work: Callable[[DispatchUnit], Awaitable[T]]) -> T:
        async def on(conn: AsyncConnection) -> T:
            unit = DispatchUnit(
                notifications=dispatch_repository(conn), outbox=Outbox(conn, tables.outbox, clock)
            )
            return await work(unit)

        return await in_transaction(engine, on)

    return transaction


def delivery_policy(settings: NotificationsSettings) -> DeliveryPolicy:
    return DeliveryPolicy(
        max_attempts=settings.max_delivery_attempts,
        retry_backoff=timedelta(seconds=settings.retry_backoff_seconds),
        retry_backoff_max=timedelta(seconds=settings.retry_backoff_max_seconds),
        contact_wait=timedelta(minutes=settings.contact_wait_minutes),
    )


def harassment_policy(settings: NotificationsSettings) -> HarassmentPolicy:
    return HarassmentPolicy(
        quiet_hours=QuietHours(
            start=time.fromisoformat(settings.quiet_hours_start),
            end=time.fromisoformat(settings.quiet_hours_end),
        ),
        daily_cap=settings.daily_cap,
    )


def sms_sender(settings: NotificationsSettings) -> HttpSmsSender | None:
    if settings.sms_url is None or settings.sms_token is None:
        return None
    return HttpSmsSender(
        url=settings.sms_url,
        token=settings.sms_token.get_secret_value(),
        timeout_seconds=settings.sms_timeout_seconds,
        connections=settings.dispatch_concurrency,
    )


def coupon_reader(settings: NotificationsSettings) -> HttpCouponReader | None:
    """Points, where coupons' codes are read; None while its token is not configured."""
    if settings.points_token is None:
        return None
    return HttpCouponReader(
        base_url=settings.points_url,
        token=settings.points_token.get_secret_value(),
        timeout_seconds=settings.points_timeout_seconds,
        connections=settings.dispatch_concurrency,
    )


def unsubscribe_links(settings: NotificationsSettings) -> Callable[[str], str]:
    key = unsubscribe_key(settings)
    base = settings.public_url.rstrip("/")

    def url(customer_id: str) -> str:
        return f"{base}/v1/unsubscribe/{unsubscribe_token(customer_id, key)}"

    return url


def webhook_guard(settings: NotificationsSettings) -> WebhookGuard:
    """Where webhooks may point: https to public addresses, and the allow-listed hosts."""
    return WebhookGuard(allow_hosts=allow_hosts_of(settings.webhook_allow_hosts))


def make_dispatcher(
    settings: NotificationsSettings,
    engine: AsyncEngine,
    clock: Clock,
    after_commit: Callable[[], None] | None = None,
) -> DeliveryDispatcher:
    """The dispatcher with its senders: a pool of `smtp_connections` SMTP connections, and
    HTTP clients for SMS, webhooks and points' coupons with `dispatch_concurrency`
    connections each."""
    use_keyring(settings.keyring())  # it opens the webhooks' sealed secrets
    return DeliveryDispatcher(
        transactions=make_dispatch_transactions(engine, clock),
        sender=SmtpEmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            timeout_seconds=settings.smtp_timeout_seconds,
            username=settings.smtp_username,
            password=(
                settings.smtp_password.get_secret_value() if settings.smtp_password else None
            ),
            connections=settings.smtp_connections,
        ),
        clock=clock,
        policy=delivery_policy(settings),
        harassment=harassment_policy(settings),
        interval=settings.dispatch_interval_seconds,
        batch_size=settings.dispatch_batch_size,
        concurrency=settings.dispatch_concurrency,
        after_commit=after_commit,
        unsubscribe_url=unsubscribe_links(settings),
        sms=sms_sender(settings),
        webhooks=HttpWebhookSender(
            clock,
            settings.webhook_timeout_seconds,
            connections=settings.dispatch_concurrency,
            guard=webhook_guard(settings),
        ),
        coupons=coupon_reader(settings),
    )


async def bootstrap(settings: ServiceSettings, clock: Clock | None = None) -> Runtime:
    assert isinstance(settings, NotificationsSettings)
    clock = clock or SystemClock()
    # httpx logs every request line at INFO: a partner's webhook URL may carry its own
    # credentials in the query, and logs carry ids and error classes only.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    use_keyring(settings.keyring())  # webhooks' secrets are stored sealed
    runtime = service_runtime(
        SERVICE,
        settings,
        clock,
        outbox=tables.outbox,
        inbox=tables.inbox,
        subscription=make_subscription(
            clock,
            timedelta(minutes=settings.points_digest_window_minutes),
            settings.currency,
            timedelta(days=settings.welcome_window_days),
            settings.expiry_warning_window_days,
            timedelta(minutes=settings.expiry_warning_hold_minutes),
            feedback_request_delay(settings),
        ),
        jobs=[
            ReleaseHeld(),
            RetryDeliveries(),
            WinBack(clock, timedelta(days=settings.win_back_days)),
            purge_idempotency_keys(
                tables.idempotency_keys, timedelta(days=settings.retention_days)
            ),
        ],
    )
    runtime.workers.append(
        make_dispatcher(settings, runtime.engine, clock, after_commit=runtime.relay.notify)
    )
    return runtime


def feedback_request_delay(settings: NotificationsSettings) -> timedelta | None:
    """How long after a purchase its member is invited to give feedback (None: 0, off)."""
    hours = settings.feedback_request_delay_hours
    return timedelta(hours=hours) if hours > 0 else None
