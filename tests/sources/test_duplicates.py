"""The duplicate-key check: hashed for speed, exact in its answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_PART, _PART), max_size=80))
def test_repeats_match_a_plain_dictionary(keys: list[tuple[str | None, str | None]]) -> None:
    rows = np.arange(len(keys)) + 2
    clean = [tuple(p if p is None or p.strip() else None for p in k) for k in keys]
    typed = pd.DataFrame(
        {
            "doc_type": pd.Series([k[0] for k in clean], dtype="str"),
            "doc_number": pd.Series([k[1] for k in clean], dtype="str"),
        }
    )
    found = duplicates(typed, "open_items", rows)
    expected = _expected(clean)
    assert list(found["index"]) == [i for i, _ in expected]
    assert list(found["reason"]) == [f"duplicate id (first seen in row {r})" for _, r in expected]
    single = duplicates(typed.rename(columns={"doc_type": "event_id"}), "events", rows)
    expected_single = _expected([(k[0],) for k in clean])
    assert list(single["index"]) == [i for i, _ in expected_single]
