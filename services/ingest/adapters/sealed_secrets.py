"""Partners' signing secrets are stored sealed (`shared.sealing`, AES-256-GCM) under
FEDELTA_INGEST_SECRETS_KEY, a key kept outside the database; the partner's id is the associated
data, so a sealed secret copied to another partner's row does not open. Unsealed once per
partner into the partner cache (`partner_directory.py`), never per request.

The keyring is the process's own: bootstrap and the command line install it from the settings
(`use_keyring`) before any partner is read or written."""

from __future__ import annotations

import asyncio

from services.ingest.settings import IngestSettings
from shared.sealing import Keyring, SealingError
from shared.storage.sealed_columns import reseal_table

SETTING = "FEDELTA_INGEST_SECRETS_KEY"

_keyring: Keyring | None = None


def use_keyring(keyring: Keyring | None) -> None:
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    if _keyring is None:
        raise SealingError(f"{SETTING} is not set: partners' signing secrets cannot be read")
    return _keyring


def context(partner_id: str) -> str:
    return f"ingest.partners.signing_secret/{partner_id}"


def seal_signing_secret(partner_id: str, secret: str) -> str:
    return keyring().seal(secret, context(partner_id))


def unseal_signing_secret(partner_id: str, sealed: str) -> str:
    return keyring().unseal(sealed, context(partner_id))


async def reseal_stored(settings: IngestSettings) -> int:
    """Seals again with the current key every partner's signing secret sealed with a previous key
    (and any stored in clear); returns how many. Run after a key rotation, before the previous
    key is dropped: `python -m services.ingest.adapters.sealed_secrets` (SECURITY.md)."""
    keys = settings.keyring()
    if keys is None:
        raise SealingError(f"{SETTING} is not set")
    return await reseal_table(
        settings.database_url, "partners", "partner_id", "signing_secret", context, keys
    )


def main() -> None:
    settings = IngestSettings()  # from the environment
    changed = asyncio.run(reseal_stored(settings))
    print(f"sealed {changed} value(s) with the current key")


if __name__ == "__main__":
    main()
