"""Connecting to the ledger and keeping its schema current.

Every flow run calls `migrate(url)` first, so it has to be cheap at head and safe when two runs
(or two workers) start at once.
"""

from __future__ import annotations

import datetime as dt
import json
import numbers
import sqlite3
import threading
import time
from decimal import Decimal
from functools import cache
from pathlib import Path, PurePath
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Any fixed 64-bit number works; advisory locks are per database, so this cannot collide with
# another Cadencia ledger on the same server.
_PG_MIGRATE_LOCK = 0x43_61_64_65_6E_63_69_61  # "Cadencia"

_engines: dict[str, sa.Engine] = {}
_engines_lock = threading.Lock()
# Alembic keeps the running migration in module globals (`alembic.context`, `alembic.op`), so
# two upgrades in one process must not overlap, even on different databases.
_alembic_lock = threading.Lock()


def normalize_url(url: str | sa.URL) -> sa.URL:
    """Parse a ledger URL; a bare `postgresql://` means psycopg 3, the driver we ship."""
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _json_default(value: Any) -> Any:
    # Run summaries and event payloads are built from pandas and parsed files: let the
    # obvious scalar types through instead of failing the run at the very end.
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | PurePath):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "item"):  # numpy.bool_ and friends
        return value.item()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, ensure_ascii=False)


def _sqlite_file(url: sa.URL) -> Path | None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _ensure_wal(cursor: Any) -> None:
    """WAL is a property of the database file: set it once. The switch can fail at once with
    "database is locked" (SQLite does not wait for it) while another process, e.g. a second
    run starting at the same time, holds a write lock: wait and try again."""
    for attempt in range(120):
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
            return
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 119:
                raise
            time.sleep(0.25)


def _sqlite_on_connect(*, foreign_keys: bool) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another connection may hold.
            cursor.execute("PRAGMA busy_timeout=30000")
            _ensure_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    return on_connect


def _create_engine(url: sa.URL, **kwargs: Any) -> sa.Engine:
    if url.get_backend_name() == "sqlite":
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, json_serializer=_json_dumps, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_on_connect(foreign_keys=True))
        return engine
    return sa.create_engine(url, json_serializer=_json_dumps, pool_pre_ping=True, **kwargs)


def engine_for(url: str | sa.URL) -> sa.Engine:
    """The process-wide engine for a ledger URL (created once, then reused)."""
    parsed = normalize_url(url)
    key = parsed.render_as_string(hide_password=False)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create_engine(parsed)
        return engine


def dispose_engines() -> None:
    """Close every cached engine's connections (tests, or before forking workers)."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def alembic_config() -> Config:
    """Alembic settings for the shipped migrations (for commands beyond `migrate`)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    return config


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest migration shipped with this version of Cadencia."""
    head = _script().get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _current_heads(connection: sa.Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


def current_revision(url: str | sa.URL) -> str | None:
    """The ledger's schema revision, or None for an empty database."""
    with engine_for(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(url: str | sa.URL) -> None:
    """Upgrade the ledger to the head revision; a no-op (one query) when it is already there.

    Concurrent callers are serialised by the database itself, so it also works across
    processes: PostgreSQL takes an advisory lock, SQLite a `BEGIN IMMEDIATE` write lock.
    Other backends get no lock: run their first migration from one place.
    """
    parsed = normalize_url(url)
    with engine_for(parsed).connect() as connection:
        if _current_heads(connection) == (head_revision(),):
            return

    config = alembic_config()
    with _alembic_lock:
        if parsed.get_backend_name() == "sqlite":
            _migrate_sqlite(parsed, config)
        elif parsed.get_backend_name() == "postgresql":
            _migrate_postgresql(parsed, config)
        else:
            with engine_for(parsed).connect() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()


def _migrate_postgresql(url: sa.URL, config: Config) -> None:
    # A private connection, closed at the end: even if unlocking fails the session (and with it
    # the lock) goes away instead of lingering in the pool.
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.select(sa.func.pg_advisory_lock(_PG_MIGRATE_LOCK)))
            connection.commit()
            try:
                # Alembic runs its own transaction here (PostgreSQL DDL is transactional), so
                # a failed upgrade leaves the schema as it was.
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                connection.commit()
            finally:
                connection.rollback()
                connection.execute(sa.select(sa.func.pg_advisory_unlock(_PG_MIGRATE_LOCK)))
                connection.commit()
    finally:
        engine.dispose()


def _migrate_sqlite(url: sa.URL, config: Config) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    # Foreign keys off while the schema changes (batch mode copies and drops tables; the
    # pragma cannot change inside a transaction), checked explicitly before committing.
    sa.event.listen(engine, "connect", _sqlite_on_connect(foreign_keys=False))

    @sa.event.listens_for(engine, "connect")
    def _manual_transactions(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: sa.Connection) -> None:
        # Take the write lock up front: a second migrator waits here (busy_timeout), then
        # finds the schema at head, instead of racing to create the same tables.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.connect() as connection, connection.begin():
            # Alembic sees a transaction already open and runs every migration inside it, so
            # SQLite's transactional DDL makes the whole upgrade atomic.
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            violations = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if violations:
                raise RuntimeError(f"migration left foreign key violations: {violations[:5]}")
    finally:
        engine.dispose()
