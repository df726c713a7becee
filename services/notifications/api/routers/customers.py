"""A customer's delivery log."""

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.notifications.api.deps import ReadScope, RuntimeDep
from services.notifications.api.schemas import NotificationLogOut
from services.notifications.usecases import customers
from shared.bounds import Identifier

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.get("/{customer_id}/notifications")
async def get_notifications(
    customer_id: Annotated[Identifier, Path()],
    runtime: RuntimeDep,
    _: ReadScope,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> NotificationLogOut:
    """The messages for one customer, newest first, with their delivery status."""
    return await customers.delivery_log(runtime.engine, customer_id, limit)
