"""The duplicate-key check: hashed for speed, exact in its answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.sources.ingest import duplicates

# Few letters (many repeats), the \x1f that joins composite keys, lengths on both sides of 8.
_PART = st.text(alphabet="ab\x1f0", max_size=10) | st.none()


def _expected(parts: list[tuple[str | None, ...]]) -> list[tuple[int, int]]:
    """(row index, spreadsheet row of the first occurrence) of every repeat, the slow way."""
    seen: dict[str, int] = {}
    out = []
    for i, key in enumerate(parts):
        if any(p is None or p.strip() == "" for p in key):
            continue
        joined = "\x1f".join(key)
        if joined in seen:
            out.append((i, seen[joined] + 2))
        else:
            seen[joined] = i
    return out


def _chunked(cells: list[str | None]) -> pd.Series:
    third = len(cells) // 3
    parts = [cells[:third], cells[third : 2 * third], cells[2 * third :]]
    text = pa.chunked_array([pa.array(p, pa.large_string()) for p in parts], pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(text)).astype("str")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_PART, _PART), max_size=80))
def test_repeats_match_a_plain_dictionary(keys: list[tuple[str | None, str | None]]) -> None:
    rows = np.arange(len(keys)) + 2
    clean = [tuple(p if p is None or p.strip() else None for p in k) for k in keys]
    # Columns in several chunks, as a big file's are (Arrow reads it in blocks).
    typed = pd.DataFrame(
        {
            "doc_type": _chunked([k[0] for k in clean]),
            "doc_number": _chunked([k[1] for k in clean]),
        }
    )
    found = duplicates(typed, "open_items", rows)
    expected = _expected(clean)
    assert list(found["index"]) == [i for i, _ in expected]
    assert list(found["reason"]) == [f"duplicate id (first seen in row {r})" for _, r in expected]
    single = duplicates(typed.rename(columns={"doc_type": "event_id"}), "events", rows)
    expected_single = _expected([(k[0],) for k in clean])
    assert list(single["index"]) == [i for i, _ in expected_single]
