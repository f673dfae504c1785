"""The shipped migrations build exactly the models' schema, and `migrate` is safe to repeat."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tasks.ledger.db import (
    alembic_config,
    current_revision,
    dispose_engines,
    engine_for,
    head_revision,
    migrate,
)
from tasks.ledger.models import Base

EXPECTED_TABLES = {
    "runs",
    "receivables",
    "source_files",
    "quarantine",
    "contacts",
    "contact_source_ids",
    "consent_audit",
    "cases",
    "touches",
    "events",
    "holds",
    "suppressions",
    "erasures",
}


def _tables(url: str) -> set[str]:
    return set(sa.inspect(engine_for(url)).get_table_names()) - {"alembic_version"}


def test_migrate_from_empty_creates_every_table(ledger_url: str) -> None:
    assert current_revision(ledger_url) is None
    migrate(ledger_url)
    assert _tables(ledger_url) == EXPECTED_TABLES == set(Base.metadata.tables)
    assert current_revision(ledger_url) == head_revision()


def test_migrations_match_the_models(ledger_url: str) -> None:
    """Guards against a model change shipped without its migration."""
    migrate(ledger_url)
    with engine_for(ledger_url).connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_migrate_twice_is_a_no_op(ledger_url: str) -> None:
    migrate(ledger_url)
    with engine_for(ledger_url).begin() as conn:
        conn.execute(
            sa.text("INSERT INTO runs (flow, as_of, status) VALUES ('backfill', '2026-01-05', 'x')")
        )
    migrate(ledger_url)
    assert current_revision(ledger_url) == head_revision()
    with engine_for(ledger_url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one() == 1


def test_downgrade_to_base_then_upgrade(ledger_url: str) -> None:
    migrate(ledger_url)
    config = alembic_config()
    with engine_for(ledger_url).connect() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        conn.commit()
    assert _tables(ledger_url) == set()
    assert current_revision(ledger_url) is None
    migrate(ledger_url)
    assert _tables(ledger_url) == EXPECTED_TABLES
    assert current_revision(ledger_url) == head_revision()


def test_file_digests_recorded_before_blake3_keep_their_sha256(ledger_url: str) -> None:
    # 0008 renames source_files.sha256 to digest, which names its algorithm.
    config = alembic_config()
    sha = "ab" * 32
    with engine_for(ledger_url).connect() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0007")
        run_id = conn.execute(
            sa.text(
                "INSERT INTO runs (flow, as_of, status) VALUES ('daily', '2026-01-05', 'ok') "
                "RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            sa.text(
                "INSERT INTO source_files (run_id, source, kind, path, sha256, file_format, "
                "rows_read, rows_accepted, rows_quarantined) "
                "VALUES (:run, 'erp', 'open_items', 'erp.csv', :sha, 'csv', 1, 1, 0)"
            ),
            {"run": run_id, "sha": sha},
        )
        conn.commit()
        command.upgrade(config, "head")
        conn.commit()
        assert conn.execute(sa.text("SELECT digest FROM source_files")).scalar_one() == (
            f"sha256:{sha}"
        )
        # A BLAKE3 digest has no SHA-256 to go back to: the downgrade refuses rather than
        # leave bare hex digits an upgrade would label sha256.
        conn.execute(
            sa.text(
                "INSERT INTO source_files (run_id, source, kind, path, digest, file_format, "
                "rows_read, rows_accepted, rows_quarantined) "
                "VALUES (:run, 'events', 'events', 'ev.csv', :digest, 'csv', 1, 1, 0)"
            ),
            {"run": run_id, "digest": "blake3:" + "ef" * 32},
        )
        conn.commit()
        with pytest.raises(RuntimeError, match="1 file.*BLAKE3"):
            command.downgrade(config, "0007")
        conn.rollback()
        conn.execute(sa.text("DELETE FROM source_files WHERE source = 'events'"))
        conn.commit()
        command.downgrade(config, "0007")
        conn.commit()
        assert conn.execute(sa.text("SELECT sha256 FROM source_files")).scalar_one() == sha


def test_concurrent_migrate_on_a_fresh_database(ledger_url: str) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            migrate(ledger_url)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert current_revision(ledger_url) == head_revision()
    assert _tables(ledger_url) == EXPECTED_TABLES


def test_concurrent_migrate_from_two_processes(ledger_url: str) -> None:
    """Within a process alembic is serialised anyway; across processes the database lock is."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=migrate, args=(ledger_url,)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [process.exitcode for process in processes] == [0, 0]
    assert current_revision(ledger_url) == head_revision()
    assert _tables(ledger_url) == EXPECTED_TABLES


def test_migrate_leaves_logging_alone(ledger_url: str) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("alembic").level)
    disabled = {
        name
        for name, lg in logging.Logger.manager.loggerDict.items()
        if getattr(lg, "disabled", False)
    }
    migrate(ledger_url)
    assert (root.level, list(root.handlers), logging.getLogger("alembic").level) == before
    assert {
        name
        for name, lg in logging.Logger.manager.loggerDict.items()
        if getattr(lg, "disabled", False)
    } == disabled


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/nested/dir/ledger.db"
    try:
        migrate(url)
        with engine_for(url).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1  # NORMAL
    finally:
        dispose_engines()


def test_engine_is_cached_per_url(ledger_url: str) -> None:
    assert engine_for(ledger_url) is engine_for(ledger_url)
