"""Test-wide settings: every test gets its own state directory, never the user's."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_STATE = Path(tempfile.mkdtemp(prefix="cadencia-test-"))
os.environ["CADENCIA_STATE_DIR"] = str(_STATE)
os.environ.setdefault("CADENCIA_TIMEZONE", "Europe/Madrid")
os.environ.pop("CADENCIA_DATABASE_URL", None)

# --- the holdout: cadence tests run without a control group -----------------------------------
# The shipped policy keeps 5% of cases out of every cadence (config/outreach.yaml, holdout).
# Scenario tests assert what a cadence does to *a* case, so they run with the share at 0;
# tests/decide/test_holdout.py checks the shipped share itself.
import config.outreach_policy as _outreach_policy  # noqa: E402

_shipped = _outreach_policy.load_outreach_policy


def _without_holdout(*args: object, **kwargs: object) -> _outreach_policy.OutreachPolicy:
    policy = _shipped(*args, **kwargs)  # type: ignore[arg-type]
    return policy.model_copy(update={"holdout": _outreach_policy.Holdout(share=0.0)})


_outreach_policy.load_outreach_policy = _without_holdout  # type: ignore[assignment]

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "data" / "samples"

# --- ledgers: every ledger test runs against SQLite and PostgreSQL ----------------------------
# PostgreSQL gets one throwaway database per session, emptied before each test, so migrations
# are always exercised from scratch without paying for CREATE DATABASE every time.

import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tasks.ledger.db import dispose_engines, engine_for, migrate  # noqa: E402

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


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
        # A subfolder that does not exist yet: engine_for has to create it.
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
