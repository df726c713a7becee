"""The web's own database: staff accounts, sessions, sign-in tokens and login throttling. No
member data: every page reads it from the services that own it. The schema itself is made by
the alembic migrations."""

import sqlalchemy as sa

from shared.storage.db import define_outbox
from shared.web.idempotency import define_idempotency_keys

metadata = sa.MetaData()
outbox = define_outbox(metadata)
idempotency_keys = define_idempotency_keys(metadata)


def _instant(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# Passwords hashed with argon2id (adapters/passwords.py); a disabled account cannot sign in.
staff_accounts = sa.Table(
    "staff_accounts",
    metadata,
    sa.Column("username", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),  # viewer, manager, admin
    _instant("created_at"),
    _instant("disabled_at", nullable=True),
)
# A signed-in person: the cookie holds a random token, the table its SHA-256 only.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),  # staff or member
    sa.Column("subject", sa.Text, nullable=False),  # the username or the customer id
    sa.Column("role", sa.Text),  # a staff session's role
    sa.Column("csrf_token", sa.Text, nullable=False),
    _instant("created_at"),
    _instant("last_seen_at"),
    _instant("expires_at"),
    sa.Index("ix_sessions_expires_at", "expires_at"),
)
# The one-time links a member signs in with: the token's SHA-256, single use, short-lived.
sign_in_tokens = sa.Table(
    "sign_in_tokens",
    metadata,
    sa.Column("token_hash", sa.Text, primary_key=True),
    sa.Column("customer_id", sa.Text, nullable=False),
    _instant("created_at"),
    _instant("expires_at"),
    _instant("used_at", nullable=True),
    sa.Index("ix_sign_in_tokens_expires_at", "expires_at"),
)
# Failed sign-ins by username and by client address: a key locked out for a while.
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    _instant("first_at"),
    _instant("locked_until", nullable=True),
)
