"""Arrow <-> numpy boolean conversions done with numpy's bit packing: equal to Arrow's own."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks import arrow_text as at

_CHUNKS = st.lists(st.lists(st.booleans() | st.none(), max_size=20), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(_CHUNKS, st.integers(0, 9))
def test_masks_equal_arrows_conversion(chunks: list[list], skip: int) -> None:
    # Chunks that start inside their bitmaps (sliced past `skip` values).
    arrays = [pa.array([True] * skip + c, pa.bool_()).slice(skip) for c in chunks]
    values = pa.chunked_array(arrays, pa.bool_())
    expected = pc.fill_null(values, False).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(at.to_mask(values), expected)
    np.testing.assert_array_equal(at.valid(values), values.is_valid().to_numpy(False))
    np.testing.assert_array_equal(at.to_mask(arrays[0]), expected[: len(arrays[0])])


@given(st.lists(st.booleans(), max_size=70))
def test_from_mask_equals_arrows_array(mask: list[bool]) -> None:
    array = np.array(mask, dtype=bool)
    got = at.from_mask(array)
    got.validate(full=True)
    assert got.equals(pa.array(array, pa.bool_()))
    assert at.from_mask(array[1:]).equals(pa.array(array[1:], pa.bool_()))


def test_an_all_null_column_is_all_false() -> None:
    assert not at.to_mask(pa.nulls(5)).any()
    assert not at.valid(pa.nulls(5, pa.large_string())).any()


@settings(max_examples=80, deadline=None)
@given(_CHUNKS, st.data())
def test_take_equals_arrows_take(chunks: list[list], data) -> None:
    # Text chunks (some empty), any positions in any order, repeats included.
    text = pa.chunked_array(
        [pa.array([None if v is None else str(v) for v in c], pa.large_string()) for c in chunks],
        pa.large_string(),
    )
    n = len(text)
    rows = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=30)) if n else []
    got = at.take(text, np.array(rows, dtype=np.int64))
    assert got.equals(text.take(pa.array(rows, pa.int64())).combine_chunks())
