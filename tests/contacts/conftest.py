"""Contacts fixtures: input frames shaped like ingestion's accepted contacts, and ledgers.

`contact_frame(system, rows)` builds what `tasks.sources.ingest` accepts for a contacts export
(source, system, source_row, then every field of KINDS["contacts"] with its parsed dtype) from
plain dicts, so tests only spell out the fields they care about.

`ledger_url` / `ledger` mirror tests/ledger/conftest.py (SQLite and PostgreSQL; PostgreSQL is
skipped when unreachable locally, and fails when the CI variable is set).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

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
