"""Contacts fixtures: input frames shaped like ingestion's accepted contacts, and ledgers.

`contact_frame(system, rows)` builds what `tasks.sources.ingest` accepts for a contacts export
(source, system, source_row, then every field of KINDS["contacts"] with its parsed dtype) from
plain dicts, so tests only spell out the fields they care about.

`ledger_url` / `ledger` mirror tests/ledger/conftest.py (SQLite and PostgreSQL; PostgreSQL is
skipped when unreachable locally, and fails when the CI variable is set).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from tasks.ledger.db import dispose_engines, engine_for, migrate
from tasks.sources.schemas import KINDS

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CONTACT_FIELDS = KINDS["contacts"].fields
BASE_TIME = pd.Timestamp("2025-06-01 09:00", tz="UTC")


def make_contact_frame(system: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """An accepted contacts frame for `system` ('salesforce', 'hubspot') from dicts.

    Missing fields are empty; `last_modified` defaults to BASE_TIME and may be a Timestamp, a
    string, or an int (hours after BASE_TIME)."""
    n = len(rows)
    frame = pd.DataFrame(
        {
            "source": pd.Series([f"{system}_contacts"] * n, dtype="str"),
            "system": pd.Series([system] * n, dtype="str"),
            "source_row": pd.Series(range(2, n + 2), dtype="int64"),
        }
    )
    unknown = {k for row in rows for k in row} - set(CONTACT_FIELDS)
    if unknown:
        raise KeyError(f"not a contacts field: {sorted(unknown)}")
    for name, spec in CONTACT_FIELDS.items():
        values = [row.get(name) for row in rows]
        if spec.type == "bool":
            frame[name] = pd.Series(values, dtype="boolean")
        elif spec.type == "datetime":
            stamps = [_stamp(v) for v in values]
            frame[name] = pd.Series(pd.DatetimeIndex(stamps, dtype="datetime64[us, UTC]"))
        else:
            frame[name] = pd.Series([None if v is None else str(v) for v in values], dtype="str")
    return frame


def _stamp(value: Any) -> pd.Timestamp:
    if value is None:
        return BASE_TIME
    if isinstance(value, int):
        return BASE_TIME + pd.Timedelta(hours=value)
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


@pytest.fixture(scope="session")
def contact_frame() -> Callable[[str, list[dict[str, Any]]], pd.DataFrame]:
    return make_contact_frame


# --- ledgers (as in tests/ledger/conftest.py) ---------------------------------------------


def _admin_engine() -> sa.Engine:
    url = os.environ.get("CADENCIA_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    return sa.create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        poolclass=sa.pool.NullPool,
        connect_args={"connect_timeout": 5},
    )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """URL of a fresh database on the test server, dropped at the end of the session."""
    admin = _admin_engine()
    name = f"cadencia_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except sa.exc.OperationalError as exc:
        reason = (
            f"PostgreSQL at {admin.url.render_as_string(hide_password=True)} is unreachable "
            f"(set CADENCIA_TEST_POSTGRES_URL): {exc.orig}"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _empty_postgres(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty ledger database (no tables yet)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state' / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        dispose_engines()
        _empty_postgres(url)
    try:
        yield url
    finally:
        dispose_engines()


@pytest.fixture
def ledger(ledger_url: str) -> sa.Engine:
    """An engine on a ledger migrated to head."""
    migrate(ledger_url)
    return engine_for(ledger_url)
