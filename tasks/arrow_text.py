"""Column-wise text operations on Arrow's compute kernels (RE2), called directly.

pandas silently hands many patterns to Python's `re`, row by row (any `\\s`, `\\u`, back-
references, `\\d` on non-ASCII data...). The hot paths (phones, emails, roles, dates) use these
helpers instead, so a million cells cost milliseconds and the cost does not depend on how a
pattern happens to be spelled. Patterns are RE2 syntax.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def arrow(s: pd.Series) -> pa.ChunkedArray:
    """The column as an Arrow string array (zero-copy for pandas' Arrow-backed strings)."""
    if s.dtype != "str":
        s = s.astype("str")
    return pa.chunked_array(pa.array(s.array))


def to_series(values: pa.ChunkedArray | pa.Array, index: pd.Index | None) -> pd.Series:
    out = values.to_pandas()
    return pd.Series(out.array if isinstance(out, pd.Series) else out, index=index)


def to_mask(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Boolean result as numpy, nulls as False."""
    if values.type == pa.null():
        return np.zeros(len(values), dtype=bool)
    return _unpacked(values, lambda chunk: _and(_bits(chunk, 1), _bits(chunk, 0)))


def valid(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Where the cells are not empty (null), as numpy."""
    return _unpacked(values, lambda chunk: _bits(chunk, 0))


def missing(s: pd.Series) -> np.ndarray:
    """Where a column is empty, as numpy: for text, its Arrow validity bitmap unpacked by
    numpy (pandas' isna converts it value by value)."""
    if s.dtype == "str":
        return ~valid(arrow(s))
    return s.isna().to_numpy()


def take(values: pa.ChunkedArray | pa.Array, rows: np.ndarray) -> pa.Array:
    """The cells at positions `rows`, taken chunk by chunk: Arrow's take on a chunked text
    column first joins its chunks (a copy of the whole column for a handful of cells)."""
    rows = np.asarray(rows, dtype=np.int64)
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    if len(chunks) == 1:
        return chunks[0].take(pa.array(rows))
    if not len(rows):
        return pa.array([], type=values.type)
    bounds = np.cumsum([0, *(len(c) for c in chunks)])
    which = np.searchsorted(bounds, rows, side="right") - 1
    order = np.argsort(which, kind="stable")
    starts = np.searchsorted(which[order], np.arange(len(chunks) + 1))
    parts = [
        chunks[k].take(pa.array(rows[order[starts[k] : starts[k + 1]]] - bounds[k]))
        for k in range(len(chunks))
        if starts[k + 1] > starts[k]
    ]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return pa.concat_arrays(parts).take(pa.array(inverse))


def from_mask(mask: np.ndarray) -> pa.Array:
    """numpy booleans as an Arrow boolean array (a filter's mask)."""
    bits = np.packbits(mask, bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)], null_count=0)


# Arrow converts booleans to numpy and back one value at a time; numpy (un)packs the bits
# 10-20x faster, which counts where every column of a big export is converted several times.


def _unpacked(
    values: pa.ChunkedArray | pa.Array, chunk_bits: Callable[[pa.Array], np.ndarray | None]
) -> np.ndarray:
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    out = np.empty(len(values), dtype=bool)
    start = 0
    for chunk in chunks:
        stop = start + len(chunk)
        bits = chunk_bits(chunk) if len(chunk) else None
        out[start:stop] = True if bits is None else bits
        start = stop
    return out


def _bits(chunk: pa.Array, which: int) -> np.ndarray | None:
    """A bitmap of `chunk` (0: validity, 1: a boolean array's values) as numpy; None for an
    absent validity bitmap (no empty cell)."""
    if which == 0:
        if chunk.null_count == 0:
            return None
        if chunk.null_count == len(chunk) or chunk.buffers()[0] is None:
            return np.zeros(len(chunk), dtype=bool)
    buffer = chunk.buffers()[which]
    packed = np.frombuffer(buffer, dtype=np.uint8)
    unpacked = np.unpackbits(packed, count=chunk.offset + len(chunk), bitorder="little")
    return unpacked[chunk.offset :].view(bool)


def _and(values: np.ndarray | None, validity: np.ndarray | None) -> np.ndarray | None:
    if validity is None:
        return values
    return values & validity if values is not None else validity


def full_match(s: pd.Series, pattern: str, ignore_case: bool = False) -> np.ndarray:
    return to_mask(pc.match_substring_regex(arrow(s), f"^(?:{pattern})$", ignore_case=ignore_case))


def search(s: pd.Series, pattern: str, ignore_case: bool = False) -> np.ndarray:
    return to_mask(pc.match_substring_regex(arrow(s), pattern, ignore_case=ignore_case))


def replace(
    s: pd.Series, pattern: str, replacement: str, max_replacements: int | None = None
) -> pd.Series:
    """RE2 replacement; back-references are written \\1."""
    out = pc.replace_substring_regex(
        arrow(s), pattern, replacement, max_replacements=max_replacements
    )
    return to_series(out, s.index).astype("str")


def extract(s: pd.Series, pattern: str) -> pd.Series:
    """The first capture group of `pattern` (which must have exactly one named `v`)."""
    out = pc.extract_regex(arrow(s), pattern)
    return to_series(pc.struct_field(out, "v"), s.index).astype("str")


def slice_(s: pd.Series, start: int, stop: int | None = None) -> pd.Series:
    out = pc.utf8_slice_codeunits(arrow(s), start, stop if stop is not None else 2**31 - 1)
    return to_series(out, s.index).astype("str")


def lengths(s: pd.Series) -> np.ndarray:
    return pc.fill_null(pc.utf8_length(arrow(s)), -1).to_numpy(zero_copy_only=False)


def codes(s: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Dictionary-encode: an integer per distinct value (-1 for missing) and the distinct
    values, with Arrow's hashing (much faster than pandas.factorize on many distinct strings)."""
    encoded = pc.dictionary_encode(arrow(s)).combine_chunks()
    idx = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return idx, pd.Series(encoded.dictionary.to_pandas().array, dtype="str")


def positions(keys: pd.Series | pd.Index, table: pd.Series | pd.Index | list[str]) -> np.ndarray:
    """Where each key sits in `table` (first occurrence; -1 when absent or missing), by
    Arrow's hash lookup: the join on ids the decide step does many times over millions."""
    key_array = arrow(keys if isinstance(keys, pd.Series) else pd.Series(keys, dtype="str"))
    if isinstance(table, list):
        values = pa.array(table, pa.large_string())
    else:  # a Series or an Index: through pandas' Arrow-backed strings, not Python objects
        values = arrow(table if isinstance(table, pd.Series) else pd.Series(table, dtype="str"))
    found = pc.index_in(key_array, value_set=values)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def lookup(s: pd.Series, table: dict[str, str]) -> pd.Series:
    """Map values through `table` (missing keys → <NA>) with Arrow's hash lookup."""
    keys = pa.array(list(table.keys()), type=pa.string())
    values = pa.array(list(table.values()), type=pa.string())
    positions = pc.index_in(arrow(s), value_set=keys)
    return to_series(pc.take(values, positions), s.index).astype("str")


def rewritten(chunk: pa.Array, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    """A text array with `chunk`'s empty (null) cells and the given 64-bit offsets and bytes:
    the result of rewriting a chunk's bytes with numpy."""
    validity = chunk.is_valid().buffers()[1] if chunk.null_count else None
    return pa.Array.from_buffers(
        pa.large_string(),
        len(chunk),
        [validity, pa.py_buffer(offsets), pa.py_buffer(data)],
        null_count=chunk.null_count,
    )
