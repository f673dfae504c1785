"""Fast bulk writes for the large tables (golden contacts, source ids, consent audit).

A first run over a million contacts writes millions of rows: row-by-row ORM or dict-based
executemany takes minutes. Here PostgreSQL gets `COPY ... FROM STDIN` and SQLite a plain
DB-API `executemany` of tuples, both inside the caller's transaction; upserts stage the rows
in a temporary table and merge them with one `INSERT ... SELECT ... ON CONFLICT DO UPDATE`.
Values are written exactly as SQLAlchemy would bind them (UTC timestamps, booleans), so the
ORM reads them back unchanged.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
import sqlalchemy as sa

from tasks.ledger.db import _json_dumps as json_dumps
from tasks.ledger.models import UtcDateTime

_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's storage format for DateTime on SQLite
_CHUNK = 200_000


def _column_values(frame: pd.DataFrame, table: sa.Table, name: str, dialect: str) -> list:
    values = frame[name]
    kind = table.c[name].type
    if isinstance(kind, UtcDateTime):
        stamps = pd.to_datetime(values, utc=True)
        if dialect == "sqlite":
            text = stamps.dt.tz_localize(None).dt.strftime(_SQLITE_TIME)
        else:
            text = stamps.dt.strftime("%Y-%m-%d %H:%M:%S.%f+00:00")
        return text.astype(object).where(stamps.notna(), None).tolist()
    if isinstance(kind, sa.Boolean):
        flags = values.astype("boolean")
        as_int = flags.astype("Int64")
        return as_int.astype(object).where(flags.notna(), None).tolist()
    if isinstance(kind, sa.JSON):
        return [json_dumps(v) if isinstance(v, dict | list) else None for v in values]
    if isinstance(kind, sa.Integer):
        numbers = pd.to_numeric(values, errors="coerce").astype("Int64")
        return numbers.astype(object).where(numbers.notna(), None).tolist()
    return values.astype(object).where(values.notna(), None).tolist()


def bulk_insert(
    conn: sa.Connection,
    table: sa.Table | str,
    frame: pd.DataFrame,
    columns: list[str],
    model: sa.Table | None = None,
) -> int:
    """Append `frame[columns]` to `table` in the connection's transaction; returns rows."""
    if frame.empty:
        return 0
    model = model if model is not None else table
    name = table if isinstance(table, str) else table.name
    dialect = conn.dialect.name
    cols = ", ".join(f'"{c}"' for c in columns)
    raw = conn.connection.dbapi_connection
    if dialect == "sqlite":
        # A bigger page cache for this connection: bulk loads touch many index pages.
        raw.execute("PRAGMA cache_size = -262144")
    for start in range(0, len(frame), _CHUNK):
        part = frame.iloc[start : start + _CHUNK]
        data = [_column_values(part, model, c, dialect) for c in columns]
        if dialect == "postgresql":
            buffer = io.StringIO()
            # Object columns: a nullable integer must not turn into a float ("1.0") on the way.
            columns_data = {
                c: pd.Series(d, dtype=object) for c, d in zip(columns, data, strict=True)
            }
            pd.DataFrame(columns_data).to_csv(buffer, header=False, index=False)
            with (
                raw.cursor() as cursor,
                cursor.copy(f"COPY {name} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy,
            ):
                copy.write(buffer.getvalue())
        else:
            marks = ", ".join("?" for _ in columns)
            cursor = raw.cursor()
            cursor.executemany(
                f"INSERT INTO {name} ({cols}) VALUES ({marks})", zip(*data, strict=True)
            )
            cursor.close()
    return len(frame)


@contextmanager
def _staged(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, columns: list[str]
) -> Iterator[str]:
    """`frame[columns]` loaded into a temporary copy of `table`'s columns; yields its name."""
    stage = f"stage_{table.name}_{uuid.uuid4().hex[:8]}"
    cols = ", ".join(f'"{c}"' for c in columns)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {stage} AS SELECT {cols} FROM {table.name} WHERE 1 = 0"
    )
    try:
        bulk_insert(conn, stage, frame, columns, model=table)
        yield stage
    finally:
        conn.exec_driver_sql(f"DROP TABLE {stage}")


def bulk_upsert(
    conn: sa.Connection,
    table: sa.Table,
    frame: pd.DataFrame,
    columns: list[str],
    key: list[str],
    insert_only: Sequence[str] = (),
) -> int:
    """Insert or update on `key`: stage in a temporary table, merge with one statement.
    Columns in `insert_only` are written when the row is new and never changed after."""
    if frame.empty:
        return 0
    cols = ", ".join(f'"{c}"' for c in columns)
    updates = ", ".join(
        f'"{c}" = excluded."{c}"' for c in columns if c not in key and c not in insert_only
    )
    conflict = ", ".join(f'"{c}"' for c in key)
    with _staged(conn, table, frame, columns) as stage:
        # "WHERE true" lets SQLite parse ON CONFLICT after a SELECT.
        conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} WHERE true "
            f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
        )
    return len(frame)


def insert_new(
    conn: sa.Connection, table: sa.Table, frame: pd.DataFrame, columns: list[str], key: list[str]
) -> int:
    """Insert the rows whose `key` is not in `table` yet; returns how many went in.

    The exactly-once primitive: a row that collides with an existing key is left alone."""
    if frame.empty:
        return 0
    cols = ", ".join(f'"{c}"' for c in columns)
    conflict = ", ".join(f'"{c}"' for c in key)
    with _staged(conn, table, frame, columns) as stage:
        result = conn.exec_driver_sql(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} WHERE true "
            f"ON CONFLICT ({conflict}) DO NOTHING"
        )
    return int(result.rowcount or 0)
