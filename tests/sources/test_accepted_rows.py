"""Keeping the accepted rows: the text filter that handles empty cells apart from the text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.sources.ingest import _filtered

_CELL = st.text(alphabet="añ ", max_size=4) | st.none()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(_CELL, max_size=12), min_size=1, max_size=4),
    st.integers(0, 3),
    st.data(),
)
def test_filtered_text_equals_arrows_filter(chunks: list[list], skip: int, data) -> None:
    # Chunks that start inside their buffers (sliced), with and without empty cells.
    arrays = [pa.array(["pad"] * skip + c, pa.large_string()).slice(skip) for c in chunks]
    text = pa.chunked_array(arrays, pa.large_string())
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text))))
    got = _filtered(text, keep.astype(bool))
    got.validate(full=True)
    assert got.equals(pc.filter(text, pa.array(keep.astype(bool))))
