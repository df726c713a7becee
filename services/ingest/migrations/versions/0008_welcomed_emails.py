"""One welcome per email address (issue 19): the SHA-256 of each normalised address an
enrolment was welcomed with, no link to the member. The addresses of members enrolled before
it are listed too (lower-cased: `str.casefold` and PostgreSQL's `lower` agree on ordinary
addresses).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# domain/welcomes.py's welcome_key in SQL, of the column or parameter `email`: the prefix
# ends with a zero byte (tests/integration/ingest/test_welcome_once.py compares the two).
HASHED_EMAIL = (
    "encode(sha256(convert_to('fedelta/welcome-email/v1', 'UTF8') || '\\x00'::bytea "
    "|| convert_to(lower(btrim({email})), 'UTF8')), 'hex')"
)


def upgrade() -> None:
    op.create_table(
        "welcomed_emails",
        sa.Column("email_hash", sa.Text, primary_key=True),
        sa.Column("welcomed_at", sa.DateTime(timezone=True), nullable=False),
    )
    hashed = HASHED_EMAIL.format(email="email")  # constants only: nothing from outside
    op.execute(
        "INSERT INTO welcomed_emails (email_hash, welcomed_at) "  # noqa: S608
        f"SELECT {hashed}, min(enrolled_at) FROM customers WHERE email IS NOT NULL "
        "GROUP BY 1 ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_table("welcomed_emails")
