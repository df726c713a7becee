"""Webhooks' secrets are stored sealed (`shared.sealing`, AES-256-GCM) under
FEDELTA_NOTIFICATIONS_SECRETS_KEY, a key kept outside the database; the partner's id (the
webhook row's key) is the associated data, so a sealed secret copied to another partner's row
does not open.

Sign-in links (product §10) wait in the delivery log's params sealed under the same key, the
message's id as the associated data, and are removed from the row once the message is settled
(domain.guard_secrets): a copy of the database opens none, and holds none once it went out.
They live minutes, so a key rotation needs no resealing of them: the previous key kept for
the links' validity (15 minutes) still opens those sealed before it.

The keyring is the process's own: bootstrap installs it from the settings (`use_keyring`)
before any webhook or link is read or written."""

from __future__ import annotations

import asyncio

from services.notifications.settings import NotificationsSettings
from shared.storage.sealed_columns import SealedColumn

WEBHOOK_SECRETS = SealedColumn(
    "notifications", "webhooks' secrets", "partner_webhooks", "partner_id", "secret"
)
SETTING = WEBHOOK_SECRETS.setting
use_keyring = WEBHOOK_SECRETS.use_keyring
keyring = WEBHOOK_SECRETS.keyring
context = WEBHOOK_SECRETS.context
seal_webhook_secret = WEBHOOK_SECRETS.seal
unseal_webhook_secret = WEBHOOK_SECRETS.unseal


def _link_context(notification_id: str) -> str:
    return f"notifications.deliveries.params.link/{notification_id}"


def seal_sign_in_link(notification_id: str, url: str) -> str:
    """Raises SealingError when no key is configured: a link is never stored in clear."""
    return keyring().seal(url, _link_context(notification_id))


def unseal_sign_in_link(notification_id: str, sealed: str) -> str:
    return keyring().unseal(sealed, _link_context(notification_id))


def main() -> None:
    """`python -m services.notifications.adapters.sealed_secrets`: reseals after a key
    rotation."""
    settings = NotificationsSettings()  # from the environment
    changed = asyncio.run(WEBHOOK_SECRETS.reseal_stored(settings.database_url, settings.keyring()))
    print(f"sealed {changed} value(s) with the current key")


if __name__ == "__main__":
    main()
