"""Webhooks' secrets sealed at rest (issue 19): each `partner_webhooks.secret` in clear is
sealed with AES-256-GCM under FEDELTA_NOTIFICATIONS_SECRETS_KEY (`shared.sealing`; the
partner's id is the associated data). The key comes from the migration's environment, the same
one the service runs with; with webhooks to seal and no key, the migration refuses. Values
already sealed with a previous key (FEDELTA_NOTIFICATIONS_SECRETS_KEY_PREVIOUS) are sealed with
the current one.

Revision ID: 0009
Revises: 0008
"""

import os
from collections.abc import Sequence

from alembic import op

from services.notifications.adapters.sealed_secrets import context
from shared.sealing import keyring_from_environment
from shared.storage.sealed_columns import migration_keyring, reseal, unseal_all

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREFIX = "FEDELTA_NOTIFICATIONS_"


def upgrade() -> None:
    bind = op.get_bind()
    keyring = migration_keyring(PREFIX, bind, "partner_webhooks", "secret")
    if keyring is not None:
        reseal(bind, "partner_webhooks", "partner_id", "secret", context, keyring)


def downgrade() -> None:
    keyring = keyring_from_environment(os.environ, PREFIX)
    unseal_all(op.get_bind(), "partner_webhooks", "partner_id", "secret", context, keyring)
