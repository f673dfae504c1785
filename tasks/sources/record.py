"""Record what ingestion read and rejected: counts in the ledger, quarantine in ledger and file.

The quarantine file (CSV, under the state directory) holds the cells as written so the person
fixing the export can find them; it is local and git-ignored. Artifacts never show the values.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.ledger.db import engine_for
from tasks.ledger.runs import record_quarantine, record_source_file
from tasks.sources.ingest import QUARANTINE_COLUMNS, SourceResult


def quarantine_frame(results: list[SourceResult]) -> pd.DataFrame:
    frames = [r.quarantine for r in results if len(r.quarantine)]
    if not frames:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def write_quarantine_file(quarantine: pd.DataFrame, directory: Path, run_id: int) -> Path | None:
    if quarantine.empty:
        return None
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"run-{run_id}.csv"
    quarantine.to_csv(path, index=False, encoding="utf-8-sig")  # BOM: Excel shows accents
    return path


@task(name="record-ingestion", cache_policy=NO_CACHE)
def record_ingestion(
    ledger_url: str, run_id: int, results: list[SourceResult], quarantine_dir: Path
) -> Path | None:
    engine = engine_for(ledger_url)
    for r in results:
        assert r.rows_read == r.rows_accepted + r.rows_quarantined
        record_source_file(
            engine,
            run_id,
            source=r.source,
            kind=r.kind,
            path=str(r.path),
            digest=r.digest,
            file_format=r.file_format,
            encoding=r.encoding,
            delimiter=r.delimiter,
            rows_read=r.rows_read,
            rows_accepted=r.rows_accepted,
            rows_quarantined=r.rows_quarantined,
        )
    quarantine = quarantine_frame(results)
    record_quarantine(engine, run_id, quarantine)
    return write_quarantine_file(quarantine, quarantine_dir, run_id)
