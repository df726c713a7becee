"""Qualifying activity summed per member and day (issue 24): deciding a purchase reads the
member's buckets of the window instead of every activity in it, so its cost no longer grows
with their history (`services/tiers/domain/buckets.py`).

`qualifying_buckets` holds, per member, UTC day the activity occurred on and UTC day its spend
was made (a refund's purchase's day), the sums of amount, visits and referrals, and the first
and last instants; `qualifying_months` the same per UTC calendar month (a read takes a month
whole where no instant it looks at falls in it, and its days elsewhere). Statement-level
triggers on `qualifying_activity` keep both, set-based (one multi-row statement per table and
per statement that writes activity, whatever its size): an insert adds the rows it inserted
(its transition table: `ON CONFLICT DO NOTHING` skips are left out), a delete or an update
recounts the buckets it touched from the activity left. Every writer (the consumer, the jobs,
a replay's switch, a bench or a test inserting rows) keeps them right. The existing activity
is summed here (a stack that upgrades keeps its answers), and the member's activity of a day
is read through an index on (customer_id, occurred_at), which replaces the one on
customer_id alone.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# ruff: noqa: S608 - the statements are built from the fixed fragments below, no input.


# The bucket an activity row `a` falls in (its UTC day, or month: `unit`), and its sums.
def _key(unit: str) -> str:
    return (
        f"a.customer_id, CAST(date_trunc('{unit}', timezone('UTC', a.occurred_at)) AS date), "
        f"CAST(date_trunc('{unit}', timezone('UTC', COALESCE(a.attributed_at, a.occurred_at))) "
        "AS date)"
    )


_SUMS = (
    "sum(a.amount), sum(a.visits), sum(a.referrals), count(*), min(a.occurred_at), "
    "max(a.occurred_at), min(COALESCE(a.attributed_at, a.occurred_at)), "
    "max(COALESCE(a.attributed_at, a.occurred_at))"
)
_COLUMNS = (
    "customer_id, day, spent_day, amount, visits, referrals, activities, first_at, last_at, "
    "first_spent_at, last_spent_at"
)
# Day buckets, and month buckets: the same sums per calendar month (UTC), which a read takes
# whole where no instant it looks at falls in the month.
_TABLES = {"qualifying_buckets": "day", "qualifying_months": "month"}


def _add(table: str, unit: str) -> str:
    return f"""
    INSERT INTO {table} AS b ({_COLUMNS})
    SELECT {_key(unit)}, {_SUMS} FROM added AS a GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (customer_id, day, spent_day) DO UPDATE SET
        amount = b.amount + EXCLUDED.amount,
        visits = b.visits + EXCLUDED.visits,
        referrals = b.referrals + EXCLUDED.referrals,
        activities = b.activities + EXCLUDED.activities,
        first_at = LEAST(b.first_at, EXCLUDED.first_at),
        last_at = GREATEST(b.last_at, EXCLUDED.last_at),
        first_spent_at = LEAST(b.first_spent_at, EXCLUDED.first_spent_at),
        last_spent_at = GREATEST(b.last_spent_at, EXCLUDED.last_spent_at);"""


_ADD = f"""
CREATE FUNCTION qualifying_buckets_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{"".join(_add(table, unit) for table, unit in _TABLES.items())}
    RETURN NULL;
END $$
"""


def _recount_one(table: str, unit: str, changed: str) -> str:
    touched = (
        f"SELECT DISTINCT a.customer_id, "
        f"CAST(date_trunc('{unit}', timezone('UTC', a.occurred_at)) AS date) AS day, "
        f"CAST(date_trunc('{unit}', timezone('UTC', COALESCE(a.attributed_at, a.occurred_at))) "
        f"AS date) AS spent_day FROM ({changed}) AS a"
    )
    return f"""
    DELETE FROM {table} AS b USING ({touched}) AS t
    WHERE b.customer_id = t.customer_id AND b.day = t.day AND b.spent_day = t.spent_day;
    INSERT INTO {table} ({_COLUMNS})
    SELECT {_key(unit)}, {_SUMS} FROM ({touched}) AS t
    JOIN qualifying_activity AS a ON a.customer_id = t.customer_id
    AND a.occurred_at >= timezone('UTC', CAST(t.day AS timestamp))
    AND a.occurred_at < timezone('UTC', t.day + interval '1 {unit}')
    AND CAST(date_trunc('{unit}', timezone('UTC', COALESCE(a.attributed_at, a.occurred_at)))
        AS date) = t.spent_day
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;"""


def _recount(name: str, changed: str) -> str:
    """A function recounting, from the activity left, the buckets of the rows in `changed`."""
    body = "".join(_recount_one(table, unit, changed) for table, unit in _TABLES.items())
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{body}
    RETURN NULL;
END $$
"""


def _create_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("spent_day", sa.Date, primary_key=True),
        sa.Column("amount", sa.Numeric, nullable=False),
        sa.Column("visits", sa.Integer, nullable=False),
        sa.Column("referrals", sa.Integer, nullable=False),
        sa.Column("activities", sa.Integer, nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_spent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_spent_at", sa.DateTime(timezone=True), nullable=False),
    )


def upgrade() -> None:
    for table in _TABLES:
        _create_table(table)
    op.create_index(
        "ix_qualifying_activity_customer_occurred",
        "qualifying_activity",
        ["customer_id", "occurred_at"],
    )
    op.drop_index("ix_qualifying_activity_customer_id", table_name="qualifying_activity")
    # The activity recorded so far, summed (writers wait: the table is locked meanwhile).
    op.execute("LOCK TABLE qualifying_activity IN SHARE MODE")
    for table, unit in _TABLES.items():
        op.execute(
            f"INSERT INTO {table} ({_COLUMNS}) "
            f"SELECT {_key(unit)}, {_SUMS} FROM qualifying_activity AS a GROUP BY 1, 2, 3"
        )
    op.execute(_ADD)
    op.execute(_recount("qualifying_buckets_remove", "SELECT * FROM removed"))
    op.execute(
        _recount(
            "qualifying_buckets_replace", "SELECT * FROM removed UNION ALL SELECT * FROM added"
        )
    )
    op.execute(
        "CREATE TRIGGER qualifying_buckets_add AFTER INSERT ON qualifying_activity "
        "REFERENCING NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION qualifying_buckets_add()"
    )
    op.execute(
        "CREATE TRIGGER qualifying_buckets_remove AFTER DELETE ON qualifying_activity "
        "REFERENCING OLD TABLE AS removed FOR EACH STATEMENT "
        "EXECUTE FUNCTION qualifying_buckets_remove()"
    )
    op.execute(
        "CREATE TRIGGER qualifying_buckets_replace AFTER UPDATE ON qualifying_activity "
        "REFERENCING OLD TABLE AS removed NEW TABLE AS added FOR EACH STATEMENT "
        "EXECUTE FUNCTION qualifying_buckets_replace()"
    )


def downgrade() -> None:
    for name in (
        "qualifying_buckets_add",
        "qualifying_buckets_remove",
        "qualifying_buckets_replace",
    ):
        op.execute(f"DROP TRIGGER {name} ON qualifying_activity")
        op.execute(f"DROP FUNCTION {name}()")
    op.create_index("ix_qualifying_activity_customer_id", "qualifying_activity", ["customer_id"])
    op.drop_index("ix_qualifying_activity_customer_occurred", table_name="qualifying_activity")
    for table in _TABLES:
        op.drop_table(table)
