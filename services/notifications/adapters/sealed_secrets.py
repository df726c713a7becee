"""Webhooks' secrets are stored sealed (`shared.sealing`, AES-256-GCM) under
FEDELTA_NOTIFICATIONS_SECRETS_KEY, a key kept outside the database; the partner's id (the
webhook row's key) is the associated data, so a sealed secret copied to another partner's row
does not open.

The keyring is the process's own: bootstrap installs it from the settings (`use_keyring`)
before any webhook is read or written."""

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


def main() -> None:
    """`python -m services.notifications.adapters.sealed_secrets`: reseals after a key
    rotation."""
    settings = NotificationsSettings()  # from the environment
    changed = asyncio.run(WEBHOOK_SECRETS.reseal_stored(settings.database_url, settings.keyring()))
    print(f"sealed {changed} value(s) with the current key")


if __name__ == "__main__":
    main()
