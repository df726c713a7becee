"""The program in force follows a replay's switch: each switch gets the next generation, which
every tiers instance checks (one indexed lookup) to pick the switched program up without a
restart.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A sequence, not max + 1: a generation is never given twice, even once rows are gone,
    # so an instance can never take a new switch for the one it already follows.
    op.execute("CREATE SEQUENCE tier_program_generation AS bigint")
    op.add_column("tier_replays", sa.Column("generation", sa.BigInteger))
    # The switches made before this revision, in the order they were made.
    op.execute(
        "UPDATE tier_replays AS r SET generation = s.generation "
        "FROM (SELECT replay_id, row_number() OVER (ORDER BY switched_at, replay_id) "
        "AS generation FROM tier_replays WHERE status = 'switched') AS s "
        "WHERE r.replay_id = s.replay_id"
    )
    op.execute(
        "SELECT setval('tier_program_generation', "
        "COALESCE((SELECT max(generation) FROM tier_replays), 0) + 1, false)"
    )
    op.create_index(
        "ux_tier_replays_generation",
        "tier_replays",
        ["generation"],
        unique=True,
        postgresql_where=sa.text("generation IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_tier_replays_generation", table_name="tier_replays")
    op.drop_column("tier_replays", "generation")
    op.execute("DROP SEQUENCE tier_program_generation")
