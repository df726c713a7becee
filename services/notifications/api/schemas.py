"""What the notifications API answers; separate from the domain so either can change alone.

The delivery log shows no address and no message text: it is readable with the read scope.
"""

from datetime import datetime

from pydantic import BaseModel


class NotificationOut(BaseModel):
    notification_id: str
    channel: str
    template: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None


class NotificationLogOut(BaseModel):
    items: list[NotificationOut]
