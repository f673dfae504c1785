"""The ledger writes the ingestion needs: a run, the files it read, and what it quarantined.

Plain Core statements on an engine (no ORM session), each in its own short transaction, so the
callers (Prefect tasks, possibly in threads) need not share any state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tasks.ledger.models import RUN_STATUSES, Quarantine, Run, SourceFile, utcnow

QUARANTINE_COLUMNS = ("source", "file", "row", "column", "value", "reason")
_CHUNK_ROWS = 10_000

_runs = Run.__table__
_source_files = SourceFile.__table__
_quarantine = Quarantine.__table__


def start_run(engine: sa.Engine, *, flow: str, as_of: dt.date, flow_run_id: str | None) -> int:
    """Open a run in status 'running' and return its id."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.insert(_runs).values(
                flow=flow,
                as_of=as_of,
                flow_run_id=flow_run_id,
                status="running",
                started_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


def finish_run(
    engine: sa.Engine, run_id: int, *, status: str, summary: dict[str, Any] | None = None
) -> None:
    """Close a run; an unknown run id is an error rather than a silent no-op."""
    if status not in RUN_STATUSES or status == "running":
        raise ValueError(f"status must be 'completed' or 'failed', not {status!r}")
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(_runs)
            .where(_runs.c.id == run_id)
            .values(status=status, summary=summary, finished_at=utcnow())
        )
        if result.rowcount != 1:
            raise LookupError(f"no run with id {run_id}")


def record_source_file(
    engine: sa.Engine,
    run_id: int,
    *,
    source: str,
    kind: str,
    path: str,
    digest: str,
    file_format: str,
    encoding: str | None,
    delimiter: str | None,
    rows_read: int,
    rows_accepted: int,
    rows_quarantined: int,
) -> None:
    """Record the file read for `source` in this run (one per source and run).

    The counts must add up (a CHECK constraint enforces it), so a row lost between reading
    and validating fails loudly here instead of vanishing.
    """
    with engine.begin() as conn:
        conn.execute(
            sa.insert(_source_files).values(
                run_id=run_id,
                source=source,
                kind=kind,
                path=str(path),
                digest=digest,
                file_format=file_format,
                encoding=encoding,
                delimiter=delimiter,
                # int(): pandas counts are numpy integers, which sqlite3 cannot bind.
                rows_read=int(rows_read),
                rows_accepted=int(rows_accepted),
                rows_quarantined=int(rows_quarantined),
            )
        )


def _text(value: Any, missing: bool, limit: int | None) -> str | None:
    if missing:
        return None
    text = value if isinstance(value, str) else str(value)
    # PostgreSQL text cannot hold NUL (broken exports do); SQLite ignores lengths, PostgreSQL
    # rejects overlong values, so cut to the column size on both.
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _limit(column: str) -> int | None:
    return getattr(_quarantine.c[column].type, "length", None)


def _quarantine_rows(run_id: int, frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    rows = pd.to_numeric(frame["row"], errors="coerce")
    # Python ints: sqlite3 cannot bind numpy integers.
    row_values = [
        None if gone else int(v)
        for v, gone in zip(rows.to_numpy(dtype=object), rows.isna().to_numpy(), strict=True)
    ]
    limits = {
        "source": _limit("source"),
        "file": _limit("file"),
        "column": _limit("column_name"),
        "value": None,
        "reason": _limit("reason"),
    }
    texts = {
        name: [
            _text(v, gone, limit)
            for v, gone in zip(
                frame[name].to_numpy(dtype=object), frame[name].isna().to_numpy(), strict=True
            )
        ]
        for name, limit in limits.items()
    }
    for i, row in enumerate(row_values):
        yield {
            "run_id": run_id,
            "source": texts["source"][i] or "",
            "file": texts["file"][i] or "",
            "row": row,
            "column_name": texts["column"][i],
            "value": texts["value"][i],
            "reason": texts["reason"][i] or "",
        }


def record_quarantine(engine: sa.Engine, run_id: int, quarantine: pd.DataFrame) -> int:
    """Store a run's quarantined cells (columns source, file, row, column, value, reason).

    One transaction, so a rerun never sees half a quarantine; executemany in chunks (COPY on
    PostgreSQL) keeps 100k rows to about a second.
    """
    missing = [name for name in QUARANTINE_COLUMNS if name not in quarantine.columns]
    if missing:
        raise ValueError(f"quarantine frame lacks columns {missing}")
    if quarantine.empty:
        return 0
    rows = list(_quarantine_rows(run_id, quarantine))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg":
            _copy_rows(conn, rows)
        else:
            statement = sa.insert(_quarantine)
            for start in range(0, len(rows), _CHUNK_ROWS):
                conn.execute(statement, rows[start : start + _CHUNK_ROWS])
    return len(rows)


def _copy_rows(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    # COPY is several times faster than executemany on PostgreSQL; it runs on the same
    # connection, inside the same transaction.
    names = [c.name for c in _quarantine.c if c.name != "id"]
    preparer = conn.dialect.identifier_preparer
    sql = "COPY {} ({}) FROM STDIN".format(
        preparer.format_table(_quarantine), ", ".join(preparer.quote(n) for n in names)
    )
    cursor = conn.connection.driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row([row[n] for n in names])
    finally:
        cursor.close()


def run_counts(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    """The run's source_files rows, one per source, ordered by source."""
    columns = [c for c in _source_files.c if c.name != "id"]
    with engine.connect() as conn:
        result = conn.execute(
            sa.select(*columns)
            .where(_source_files.c.run_id == run_id)
            .order_by(_source_files.c.source)
        )
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def completed_days(engine: sa.Engine, flow: str, start: dt.date, end: dt.date) -> set[dt.date]:
    """Business days in [start, end] that already have a completed run of `flow`."""
    runs = Run.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.as_of).where(
                runs.c.flow == flow,
                runs.c.status == "completed",
                runs.c.as_of >= start,
                runs.c.as_of <= end,
            )
        ).all()
    return {row[0] for row in rows}


def runs_of(engine: sa.Engine, flow: str, as_of: dt.date) -> list[sa.Row]:
    """Every run of `flow` for `as_of` (id, status, summary), oldest first."""
    runs = Run.__table__
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(runs.c.id, runs.c.status, runs.c.summary)
                .where(runs.c.flow == flow, runs.c.as_of == as_of)
                .order_by(runs.c.id)
            ).all()
        )
