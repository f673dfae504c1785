"""The ingestion's ledger writes: runs, source files and quarantine."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tasks.ledger.models import Quarantine, Run
from tasks.ledger.runs import (
    finish_run,
    record_quarantine,
    record_source_file,
    run_counts,
    start_run,
)

AS_OF = dt.date(2026, 3, 2)


def _file(engine: sa.Engine, run_id: int, source: str, read: int, accepted: int) -> None:
    record_source_file(
        engine,
        run_id,
        source=source,
        kind="contacts",
        path=f"data/samples/{source}.csv",
        digest="blake3:" + "ab" * 32,
        file_format="csv",
        encoding="utf-8",
        delimiter=";",
        rows_read=np.int64(read),
        rows_accepted=accepted,
        rows_quarantined=read - accepted,
    )


def test_run_and_source_files_round_trip(ledger: sa.Engine) -> None:
    run_id = start_run(ledger, flow="daily_outreach", as_of=AS_OF, flow_run_id="f-123")
    assert start_run(ledger, flow="backfill", as_of=AS_OF, flow_run_id=None) != run_id
    _file(ledger, run_id, "salesforce_contacts", 100, 97)
    _file(ledger, run_id, "hubspot_contacts", 50, 50)
    with pytest.raises(sa.exc.IntegrityError):  # one file per source and run
        _file(ledger, run_id, "hubspot_contacts", 50, 50)

    counts = run_counts(ledger, run_id)
    assert list(counts["source"]) == ["hubspot_contacts", "salesforce_contacts"]
    assert list(counts["rows_quarantined"]) == [0, 3]
    assert set(counts.columns) >= {"run_id", "path", "digest", "delimiter", "rows_read"}
    assert run_counts(ledger, 999_999).empty

    summary = {"as_of": AS_OF, "rows": np.int64(150), "ok": np.bool_(True), "sources": ["a"]}
    finish_run(ledger, run_id, status="completed", summary=summary)
    with ledger.connect() as conn:
        run = conn.execute(sa.select(Run.__table__).where(Run.id == run_id)).one()
    assert (run.flow, run.as_of, run.flow_run_id, run.status) == (
        "daily_outreach",
        AS_OF,
        "f-123",
        "completed",
    )
    assert run.summary == {"as_of": "2026-03-02", "rows": 150, "ok": True, "sources": ["a"]}
    assert run.started_at <= run.finished_at
    assert run.finished_at.tzinfo == dt.UTC


def test_finish_run_checks_its_arguments(ledger: sa.Engine) -> None:
    run_id = start_run(ledger, flow="daily_outreach", as_of=AS_OF, flow_run_id=None)
    with pytest.raises(ValueError, match="status"):
        finish_run(ledger, run_id, status="done")
    with pytest.raises(LookupError):
        finish_run(ledger, run_id + 1000, status="failed")


def test_record_quarantine_round_trips(ledger: sa.Engine) -> None:
    run_id = start_run(ledger, flow="daily_outreach", as_of=AS_OF, flow_run_id=None)
    n = 10_000
    frame = pd.DataFrame(
        {
            "source": "erp_open_items",
            "file": "erp_open_items.csv",
            "row": np.arange(2, n + 2),
            "column": [f"col{i % 7}" for i in range(n)],
            # Mixed types, as read from a spreadsheet; pandas 3 would infer `str` otherwise.
            "value": pd.Series([None if i % 5 == 0 else f"v{i}" for i in range(n)], dtype=object),
            "reason": "not a date",
        }
    )
    frame.loc[1, "value"] = "nul\x00byte"
    frame.loc[2, "value"] = 12.5
    frame.loc[3, "column"] = None
    assert record_quarantine(ledger, run_id, frame) == n

    table = Quarantine.__table__
    with ledger.connect() as conn:
        stored = (
            conn.execute(sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id))
            .mappings()
            .all()
        )
    assert len(stored) == n
    assert [r["row"] for r in stored] == list(range(2, n + 2))
    assert stored[0]["value"] is None
    assert stored[1]["value"] == "nul\ufffdbyte"
    assert stored[2]["value"] == "12.5"
    assert stored[3]["column_name"] is None
    assert stored[4]["value"] == "v4"
    assert {r["reason"] for r in stored} == {"not a date"}


def test_record_quarantine_edge_cases(ledger: sa.Engine) -> None:
    run_id = start_run(ledger, flow="daily_outreach", as_of=AS_OF, flow_run_id=None)
    empty = pd.DataFrame(columns=["source", "file", "row", "column", "value", "reason"])
    assert record_quarantine(ledger, run_id, empty) == 0
    with pytest.raises(ValueError, match="column"):
        record_quarantine(ledger, run_id, pd.DataFrame({"source": ["s"]}))
    # A file-level problem has no row; overlong text is cut to the column size.
    whole_file = pd.DataFrame(
        {
            "source": ["s"],
            "file": ["f.csv"],
            "row": [None],
            "column": ["email"],
            "value": [None],
            "reason": ["x" * 2000],
        }
    )
    assert record_quarantine(ledger, run_id, whole_file) == 1
    with ledger.connect() as conn:
        row, reason = conn.execute(sa.select(Quarantine.row, Quarantine.reason)).one()
    assert row is None
    assert len(reason) == 500


def test_typed_exports_have_no_encoding(ledger: sa.Engine) -> None:
    """XLSX and Parquet files are recorded without a text encoding or delimiter."""
    run_id = start_run(ledger, flow="daily_outreach", as_of=dt.date(2026, 11, 20), flow_run_id=None)
    record_source_file(
        ledger,
        run_id,
        source="salesforce_contacts",
        kind="contacts",
        path="exports/salesforce_contacts.parquet",
        digest="blake3:" + "cd" * 32,
        file_format="parquet",
        encoding=None,
        delimiter=None,
        rows_read=3,
        rows_accepted=3,
        rows_quarantined=0,
    )
    counts = run_counts(ledger, run_id)
    assert counts.loc[0, "file_format"] == "parquet"
    assert counts.loc[0, "encoding"] is None or pd.isna(counts.loc[0, "encoding"])
