"""Keeping the accepted rows: the text filter that handles empty cells apart from the text,
and the column checks that decide which rows fail."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.sources.ingest import _filtered, check_column

_CELL = st.text(alphabet="añ ", max_size=4) | st.none()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(_CELL, max_size=12), min_size=1, max_size=4),
    st.integers(0, 3),
    st.data(),
)
def test_filtered_text_equals_arrows_filter(chunks: list[list], skip: int, data) -> None:
    # Chunks that start inside their buffers (sliced), with and without empty cells.
    arrays = [pyarrow.array(["pad"] * skip + c, pyarrow.large_string()).slice(skip) for c in chunks]
    text = pyarrow.chunked_array(arrays, pyarrow.large_string())
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text))))
    got = _filtered(text, keep.astype(bool))
    got.validate(full=True)
    assert got.equals(pc.filter(text, pyarrow.array(keep.astype(bool))))


def test_a_check_that_skips_empty_cells_blames_the_right_rows() -> None:
    # pandera's default ignore_na answers only for the filled cells: its answer is read by
    # row label, not by position.
    schema = pa.DataFrameSchema(
        {"amount": pa.Column(nullable=True, checks=pa.Check.ge(0, error="negative amount"))}
    )
    values = pd.Series([np.nan, -1.0, 5.0, -2.0])
    found = check_column(schema, "amount", values)
    assert found["index"].tolist() == [1, 3]
    assert set(found["reason"]) == {"negative amount"}
