"""Webhooks' secrets are stored sealed (`shared.sealing`, AES-256-GCM) under
FEDELTA_NOTIFICATIONS_SECRETS_KEY, a key kept outside the database; the partner's id (the
webhook row's key) is the associated data, so a sealed secret copied to another partner's row
does not open.

The keyring is the process's own: bootstrap installs it from the settings (`use_keyring`)
before any webhook is read or written."""

from __future__ import annotations

import asyncio

from services.notifications.settings import NotificationsSettings
from shared.sealing import Keyring, SealingError
from shared.storage.sealed_columns import reseal_table

SETTING = "FEDELTA_NOTIFICATIONS_SECRETS_KEY"

_keyring: Keyring | None = None


def use_keyring(keyring: Keyring | None) -> None:
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise SealingError(f"{SETTING} is not set: webhooks' secrets cannot be read")
    return _keyring


def context(partner_id: str) -> str:
    return f"notifications.partner_webhooks.secret/{partner_id}"


def seal_webhook_secret(partner_id: str, secret: str) -> str:
    return keyring().seal(secret, context(partner_id))


def unseal_webhook_secret(partner_id: str, sealed: str) -> str:
    return keyring().unseal(sealed, context(partner_id))


async def reseal_stored(settings: NotificationsSettings) -> int:
    """Seals again with the current key every webhook secret sealed with a previous key
    (and any stored in clear); returns how many. Run after a key rotation, before the previous
    key is dropped: `python -m services.notifications.adapters.sealed_secrets` (SECURITY.md)."""
    keys = settings.keyring()
    if keys is None:
        raise SealingError(f"{SETTING} is not set")
    return await reseal_table(
        settings.database_url, "partner_webhooks", "partner_id", "secret", context, keys
    )


def main() -> None:
    settings = NotificationsSettings()  # from the environment
    changed = asyncio.run(reseal_stored(settings))
    print(f"sealed {changed} value(s) with the current key")


if __name__ == "__main__":
    main()
