"""Every dependency the notifications routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends

from services.notifications.adapters.webhook_addresses import WebhookGuard
from services.notifications.bootstrap import harassment_policy, webhook_guard
from services.notifications.domain.model import HarassmentPolicy
from services.notifications.settings import NotificationsSettings, unsubscribe_key
from shared.web.deps import AdminScope, ClockDep, ReadScope, RuntimeDep, SettingsDep
from shared.web.idempotency import IdempotencyDep

__all__ = [
    "AdminScope",
    "ClockDep",
    "HarassmentDep",
    "IdempotencyDep",
    "ReadScope",
    "RuntimeDep",
    "UnsubscribeKeyDep",
    "WebhookGuardDep",
]


def get_harassment_policy(settings: SettingsDep) -> HarassmentPolicy:
    assert isinstance(settings, NotificationsSettings)
    return harassment_policy(settings)


HarassmentDep = Annotated[HarassmentPolicy, Depends(get_harassment_policy)]


def get_unsubscribe_key(settings: SettingsDep) -> bytes:
    assert isinstance(settings, NotificationsSettings)
    return unsubscribe_key(settings)


UnsubscribeKeyDep = Annotated[bytes, Depends(get_unsubscribe_key)]


def get_webhook_guard(settings: SettingsDep) -> WebhookGuard:
    assert isinstance(settings, NotificationsSettings)
    return webhook_guard(settings)


WebhookGuardDep = Annotated[WebhookGuard, Depends(get_webhook_guard)]
