"""Partners' signing secrets are stored sealed (`shared.sealing`, AES-256-GCM) under
FEDELTA_INGEST_SECRETS_KEY, a key kept outside the database; the partner's id is the associated
data, so a sealed secret copied to another partner's row does not open. Unsealed once per
partner into the partner cache (`partner_directory.py`), never per request.

The keyring is the process's own: bootstrap and the command line install it from the settings
(`use_keyring`) before any partner is read or written."""

from __future__ import annotations

import asyncio

from services.ingest.settings import IngestSettings
from shared.storage.sealed_columns import SealedColumn

SIGNING_SECRETS = SealedColumn(
    "ingest", "partners' signing secrets", "partners", "partner_id", "signing_secret"
)
SETTING = SIGNING_SECRETS.setting
use_keyring = SIGNING_SECRETS.use_keyring
keyring = SIGNING_SECRETS.keyring
context = SIGNING_SECRETS.context
seal_signing_secret = SIGNING_SECRETS.seal
unseal_signing_secret = SIGNING_SECRETS.unseal


def main() -> None:
    """`python -m services.ingest.adapters.sealed_secrets`: reseals after a key rotation."""
    settings = IngestSettings()  # from the environment
    changed = asyncio.run(SIGNING_SECRETS.reseal_stored(settings.database_url, settings.keyring()))
    print(f"sealed {changed} value(s) with the current key")


if __name__ == "__main__":
    main()
