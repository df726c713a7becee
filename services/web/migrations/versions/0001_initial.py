"""Initial web schema: staff accounts, sessions, sign-in tokens, login throttling, and the
event core (outbox, idempotency keys).

Revision ID: 0001
Revises:
"""

from collections.abc import Sequence

from alembic import op

from shared.storage.migrations import create_idempotency_keys_v1, create_outbox_v1, event_core_v2

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_TABLES = (
    "CREATE TABLE login_failures ( key TEXT NOT NULL, failures INTEGER NOT NULL, "
    "first_at TIMESTAMP WITH TIME ZONE NOT NULL, locked_until TIMESTAMP WITH TIME "
    "ZONE, PRIMARY KEY (key) )",
    "CREATE TABLE sessions ( token_hash TEXT NOT NULL, kind TEXT NOT NULL, subject "
    "TEXT NOT NULL, role TEXT, csrf_token TEXT NOT NULL, created_at TIMESTAMP WITH "
    "TIME ZONE NOT NULL, last_seen_at TIMESTAMP WITH TIME ZONE NOT NULL, expires_at "
    "TIMESTAMP WITH TIME ZONE NOT NULL, PRIMARY KEY (token_hash) )",
    "CREATE INDEX ix_sessions_expires_at ON sessions (expires_at)",
    "CREATE TABLE sign_in_tokens ( token_hash TEXT NOT NULL, customer_id TEXT NOT "
    "NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, expires_at TIMESTAMP WITH "
    "TIME ZONE NOT NULL, used_at TIMESTAMP WITH TIME ZONE, PRIMARY KEY (token_hash) )",
    "CREATE INDEX ix_sign_in_tokens_expires_at ON sign_in_tokens (expires_at)",
    "CREATE TABLE staff_accounts ( username TEXT NOT NULL, password_hash TEXT NOT "
    "NULL, role TEXT NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, "
    "disabled_at TIMESTAMP WITH TIME ZONE, PRIMARY KEY (username) )",
)


def upgrade() -> None:
    create_outbox_v1()
    create_idempotency_keys_v1()
    event_core_v2(inbox=False)
    for statement in _TABLES:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("staff_accounts")
    op.drop_table("sign_in_tokens")
    op.drop_table("sessions")
    op.drop_table("login_failures")
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION fedelta_outbox_notify()")
    op.drop_table("idempotency_keys")
    op.drop_table("outbox")
