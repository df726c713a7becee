"""The one way a consumer's batch reads and writes a set of rows: whole arrays bound as one
parameter each and unnested by PostgreSQL.

Why (profiled in issue 24, bench/README.md "Statements"):

- A statement's text then stays the same whatever the batch's size, so SQLAlchemy's compiled
  cache, asyncpg's prepared statements and PostgreSQL's plans are made once. What defeats
  them: `insert().values(list_of_rows)` (multi-row VALUES: a new statement per batch size),
  `in_(keys)` (one placeholder per key: a new statement per count), literal values, a
  `select()` rebuilt with other shapes per call. Build a statement once, at import, with
  `sa.text` or Core, and bind lists.
- Look rows up by joining `unnest(:keys)`, not with `column = ANY(:keys)`: given the array's
  values, PostgreSQL estimates one row per key and, for a few hundred keys or more, plans a
  sequential scan of the whole table (20 ms for 1,000 keys against 145,000 purchases, growing
  with the table), where the join probes the index once per key (2 ms, whatever the table's
  size). `= ANY` stays right for a small partial index (e.g. a customer's reversals).
- Write rows with `INSERT … SELECT * FROM unnest(:col1, :col2, …)` (`ON CONFLICT … DO
  NOTHING / DO UPDATE … RETURNING` as needed; `WITH ORDINALITY … ORDER BY` where the order of
  insertion matters), one array per column, not multi-row VALUES nor an executemany.

- Bind a column of texts as one text (`texts`), split by PostgreSQL (`unpacked`), not as a
  text[]: asyncpg encodes an array element by element, checking each against
  `collections.abc` (0.35 µs of the consumer's CPU a text, against 0.05 µs joined; 0.8 against
  0.3 µs of the statement's time, measured with 1,000 texts). Other types stay arrays.

`by_keys` is the lookup as a Core statement, built once per table and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY


def by_keys(table: sa.Table, column: sa.Column[Any], *, parameter: str = "keys") -> sa.Select[Any]:
    """`SELECT table.* FROM unnest(:keys) AS wanted(key) JOIN table ON column = wanted.key`:
    the rows whose `column` is one of the list bound to `parameter` (a key given twice
    yields its rows twice; callers pass distinct keys). Build it once, at import."""
    wanted = (
        sa.func.unnest(sa.bindparam(parameter, type_=ARRAY(column.type)))
        .table_valued("key")
        .render_derived(name="wanted")
    )
    return sa.select(table).join_from(wanted, table, column == wanted.c.key)


# ASCII's record and group separators: no identifier, label or JSON text holds them raw
# (the edge refuses control characters; JSON escapes them).
TEXT_SEPARATOR = chr(30)
NULL_TEXT = chr(29)


def texts(values: Sequence[str | None]) -> str | None:
    """Texts (None: NULL) as the one parameter that `unpacked` turns back into a text[]: each
    followed by a separator (so that an empty text is one), no texts as NULL. Raises
    ValueError for a text that holds a separator."""
    if not values:
        return None
    joined = TEXT_SEPARATOR.join([NULL_TEXT if value is None else value for value in values])
    if joined.count(TEXT_SEPARATOR) != len(values) - 1 or joined.count(NULL_TEXT) != values.count(
        None
    ):
        raise ValueError("a text to bind holds a separator (ASCII 29 or 30)")
    return joined + TEXT_SEPARATOR


def unpacked(parameter: str) -> str:
    """SQL: the text[] bound as `:parameter` by `texts` (NULL for no texts)."""
    split = f"chr({ord(TEXT_SEPARATOR)}), chr({ord(NULL_TEXT)})"
    return f"trim_array(string_to_array(CAST(:{parameter} AS text), {split}), 1)"
