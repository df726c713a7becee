"""Every dependency the notifications routers take, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends

from services.notifications.adapters.repository import SqlNotificationRepository
from shared.http import AdminScope, ClockDep, ConnectionDep, ReadScope

__all__ = ["AdminScope", "ClockDep", "NotificationsDep", "ReadScope"]


def get_notifications(conn: ConnectionDep) -> SqlNotificationRepository:
    return SqlNotificationRepository(conn)


NotificationsDep = Annotated[SqlNotificationRepository, Depends(get_notifications)]
