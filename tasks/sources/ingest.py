"""Ingest one source: find its file, read it, parse its columns, validate, quarantine bad rows.

The invariant every caller relies on: rows read = rows accepted + rows quarantined. A row with
any problem is quarantined whole (one quarantine line per problem: file, row, column, value,
reason); a file-level problem raises `SourceFileError` before anything is accepted.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks import arrow_text as at
from tasks.sources import coerce
from tasks.sources.errors import SourceFileError
from tasks.sources.mapping import SourceMapping
from tasks.sources.readers import RawFile, read_export
from tasks.sources.schemas import KINDS, row_rule_frame, schema_for

QUARANTINE_COLUMNS = ["source", "file", "row", "column", "value", "reason"]
REQUIRED_EMPTY = "empty value in required column"
RUNAWAY_QUOTE = "value runs over several lines and holds whole records: a quote left unclosed?"


@dataclass
class SourceResult:
    source: str
    kind: str
    system: str
    path: Path
    file_format: str
    encoding: str | None
    delimiter: str | None
    digest: str  # "blake3:<hex>" of the file (readers.file_digest)
    rows_read: int
    rows_quarantined: int  # distinct rows with at least one quarantine line
    accepted: pd.DataFrame  # Cadencia's fields, typed, plus source/system/source_row
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS

    @property
    def rows_accepted(self) -> int:
        return len(self.accepted)


def locate(mapping: SourceMapping, input_dir: Path) -> Path:
    matches = sorted(p for p in input_dir.glob(mapping.file) if p.is_file())
    if not matches:
        present = [p.name for p in input_dir.iterdir()] if input_dir.is_dir() else []
        stem = mapping.file.split("*")[0].split(".")[0]
        stems = {name.split(".")[0]: name for name in present}
        # Near misses only: a file whose name starts like the pattern or is spelt almost alike.
        near = [n for n in present if stem and n.startswith(stem)][:2] or [
            stems[s] for s in difflib.get_close_matches(stem, list(stems), n=2, cutoff=0.85)
        ]
        hint = f" (the folder has {', '.join(repr(n) for n in near)})" if near else ""
        if not input_dir.is_dir():
            hint = " (the input folder does not exist)"
        raise SourceFileError(
            input_dir / mapping.file,
            f"no file matches {mapping.file!r} for source {mapping.name!r}{hint}",
            "put the export in the input folder (CADENCIA_INPUT_DIR), change 'file' in the "
            "mapping, or remove the source from CADENCIA_SOURCES",
        )
    if len(matches) > 1:
        names = ", ".join(p.name for p in matches)
        raise SourceFileError(
            input_dir / mapping.file,
            f"several files match {mapping.file!r} ({names})",
            "keep one export per source in the input folder, or make 'file' in the mapping exact",
        )
    return matches[0]


def ingest(mapping: SourceMapping, input_dir: Path, default_tz: str) -> SourceResult:
    path = locate(mapping, input_dir)
    headers = list(dict.fromkeys(mapping.columns.values()))
    opts = mapping.options
    raw = read_export(
        path, headers, encoding=opts.encoding, delimiter=opts.delimiter, sheet=opts.sheet
    )
    schema = schema_for(mapping.kind, list(KINDS[mapping.kind].fields))
    # The schema's column checks run as soon as each column is parsed, beside the parsing of
    # the others; its row rules need every column.
    typed, problems = parse_fields(
        raw,
        mapping,
        default_tz,
        check=lambda name, values: check_column(schema, name, values),
        check_key=lambda keys: duplicates(keys, mapping.kind, raw.rows),
    )
    # The row rules run beside the quarantine lines of what is known so far.
    with ThreadPoolExecutor(max_workers=1) as pool:
        ruled = pool.submit(check_rows, schema, mapping.kind, typed)
        problems = _export_values_in_reasons(problems, mapping)
        quarantine = quarantine_rows(problems, raw, mapping)
        broken = ruled.result()
    if len(broken):
        # A cell already reported keeps its first reason (as one call over all would).
        seen = pd.MultiIndex.from_frame(problems[["index", "field"]])
        broken = broken[~pd.MultiIndex.from_frame(broken[["index", "field"]]).isin(seen)]
        more = quarantine_rows(broken, raw, mapping, whole_rows=False)
        if quarantine.empty:  # (an empty frame's columns would turn the text to objects)
            quarantine = more
        elif len(more):
            quarantine = (
                pd.concat([quarantine, more], ignore_index=True)
                .sort_values(["row", "column"], kind="stable")
                .reset_index(drop=True)
            )
        problems = pd.concat([problems, broken], ignore_index=True)
    bad_index = problems["index"].unique()
    keep = np.ones(len(typed), dtype=bool)
    keep[bad_index.astype(np.int64)] = False
    rows_read = len(typed) + len(raw.bad_rows)
    # The text cells are not needed any more: let them go, so the accepted rows' copies can
    # reuse their memory (touching fresh memory costs as much as the copying itself).
    raw.frame = raw.frame.iloc[:0]
    accepted = _keep_rows(typed, keep)
    del typed
    accepted.insert(0, "source", _repeated(mapping.name, len(accepted)))
    accepted.insert(1, "system", _repeated(mapping.system, len(accepted)))
    accepted.insert(2, "source_row", raw.rows[keep].astype(np.int64))
    accepted.index = pd.RangeIndex(len(accepted))
    quarantined = int(quarantine["row"].nunique()) if len(quarantine) else 0
    if rows_read != len(accepted) + quarantined:  # an internal error, never the user's
        raise AssertionError(
            f"{path.name}: {rows_read} rows read but {len(accepted)} accepted "
            f"+ {quarantined} quarantined"
        )
    return SourceResult(
        source=mapping.name,
        kind=mapping.kind,
        system=mapping.system,
        path=path,
        file_format=raw.file_format,
        encoding=raw.encoding,
        delimiter=raw.delimiter,
        digest=raw.fingerprint.digest,
        rows_read=rows_read,
        rows_quarantined=quarantined,
        accepted=accepted,
        quarantine=quarantine,
    )


def parse_fields(
    raw: RawFile,
    mapping: SourceMapping,
    default_tz: str,
    check: Callable[[str, pd.Series], pd.DataFrame] | None = None,
    check_key: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed columns for every field of the kind (unmapped optional fields stay empty), and
    the problems found: cells that did not parse, then what `check` finds in each column,
    then what `check_key` finds in the key's columns. The checks run on the parsing threads
    as soon as their columns are ready."""
    spec = KINDS[mapping.kind]
    opts = mapping.options
    formats = coerce.date_formats(opts.dayfirst, opts.date_formats)
    tz = opts.timezone or default_tz
    n = len(raw.frame)
    number_headers = [
        mapping.columns[f] for f in mapping.columns if spec.fields[f].type == "number"
    ]

    def parse(name: str, cells: pyarrow.ChunkedArray, decimal: str = ".") -> coerce.Parsed:
        fs = spec.fields[name]
        if fs.type == "bool":
            return coerce.bool_column(cells)
        if fs.type == "number":
            return coerce.number_column(cells, decimal)
        if fs.type == "datetime":
            return coerce.datetime_column(cells, formats, tz)
        if fs.type == "date":
            return coerce.date_column(cells, formats)
        if fs.type == "currency":
            return coerce.code_column(cells)
        if fs.type == "enum":
            return coerce.enum_column(cells, mapping.values.get(name))
        return coerce.Parsed(coerce.str_column(cells, n), pd.Series(np.zeros(n, bool)), "")

    def trim(header: str) -> pyarrow.ChunkedArray:
        return coerce.trimmed(at.arrow(raw.frame[header]))

    def finish(name: str, parsed: coerce.Parsed | None) -> tuple[pd.Series, list[pd.DataFrame]]:
        """The column and its problems: unparsed cells first, then the schema's checks."""
        if parsed is None:
            values = _empty(spec.fields[name].type, n)
            return values, [check(name, values)] if check else []
        problems = []
        runaway = raw.suspect.get(mapping.columns[name])
        if runaway is not None:
            problems.append(_problems(np.flatnonzero(runaway), name, RUNAWAY_QUOTE))
        if parsed.reason:
            bad = parsed.bad.to_numpy()
            if bad.any():
                problems.append(_problems(np.flatnonzero(bad), name, parsed.reason))
        if check:
            problems.append(check(name, parsed.values))
        return parsed.values, problems

    mapped = [name for name in spec.fields if name in mapping.columns]
    numbers = [name for name in mapped if spec.fields[name].type == "number"]
    # Queued in this order: the key's fields (quick, and the duplicate check waits for them),
    # the dates, the numbers and the duplicate check (the slow ones), then the many quick
    # columns, which fill the cores at the end.
    keys = [name for name in spec.key if name in mapped and name not in numbers]
    dates = [n for n in mapped if spec.fields[n].type in ("datetime", "date") and n not in keys]
    others = [name for name in mapped if name not in {*numbers, *keys, *dates}]
    futures: dict[str, Future[tuple[pd.Series, list[pd.DataFrame]]]] = {}

    def text_field(name: str) -> tuple[pd.Series, list[pd.DataFrame]]:
        return finish(name, parse(name, trim(mapping.columns[name])))

    def number_field(name: str, decimal: str) -> tuple[pd.Series, list[pd.DataFrame]]:
        parsed = parse(name, texts[mapping.columns[name]].result(), decimal)
        if mapping.kind == "open_items":
            # ERPs disagree on the sign of payments and credit notes (Business Central writes
            # them negative); Cadencia reads their size. A negative invoice is still an error.
            values = parsed.values.to_numpy(dtype=np.float64, copy=True)
            np.abs(values, out=values, where=settling.result())
            parsed.values = pd.Series(values)
        return finish(name, parsed)

    def settles() -> np.ndarray:
        """Rows of payments and credit notes (the document type is part of the key, queued
        before the numbers)."""
        doc_types = futures["doc_type"].result()[0]
        return at.to_mask(pc.is_in(at.arrow(doc_types), pyarrow.array(["payment", "credit_note"])))

    # Columns are independent and Arrow releases the GIL: trim and parse them on all cores,
    # each column parsed as soon as it is trimmed; numbers wait for the file's decimal
    # separator, voted on their trimmed text (trimmed first).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        texts = {h: pool.submit(trim, h) for h in number_headers}
        futures |= {name: pool.submit(text_field, name) for name in keys + dates}
        decimal = (
            "."
            if raw.typed
            else coerce.pick_decimal(
                coerce.decimal_votes([texts[h].result() for h in number_headers]), raw.delimiter
            )
        )
        if mapping.kind == "open_items" and numbers:
            settling = pool.submit(settles)
        futures |= {name: pool.submit(number_field, name, decimal) for name in numbers}
        keyed = None
        if check_key is not None and all(name in futures for name in spec.key):
            keyed = pool.submit(
                lambda: check_key(pd.DataFrame({f: futures[f].result()[0] for f in spec.key}))
            )
        futures |= {name: pool.submit(text_field, name) for name in others}
        futures |= {
            name: pool.submit(finish, name, None) for name in spec.fields if name not in futures
        }
        finished = {name: futures[name].result() for name in spec.fields}
    typed = pd.DataFrame(
        {name: values for name, (values, _) in finished.items()}, index=pd.RangeIndex(n)
    )
    problems = [p for _, found in finished.values() for p in found]
    if check_key is not None:
        problems.append(keyed.result() if keyed is not None else check_key(typed))
    return typed, _concat(problems)


def check_column(schema: pa.DataFrameSchema, name: str, values: pd.Series) -> pd.DataFrame:
    """Run the schema's checks of one column (`name` holds `values`): its not-null rule, then
    each of its checks through pandera's Check API. Every column check here answers cell by
    cell, so its output names the failing rows; a container's validate would first build
    pandera's report of the failure cases, about 10 ms for each column with a failure."""
    column = schema.columns[name]
    found = []
    if not column.nullable:
        empty = at.missing(values)
        if empty.any():
            found.append(_problems(np.flatnonzero(empty), name, REQUIRED_EMPTY))
    for check in column.checks:
        failed = _failed_rows(check(values).check_output)
        if len(failed):
            found.append(_problems(failed, name, check.error))
    return _concat(found)


def _failed_rows(output: pd.Series) -> np.ndarray:
    """The rows a check's answer fails, by its index: a check with pandera's default ignore_na
    answers only for the filled cells (the frames here are indexed by row position)."""
    if not isinstance(output, pd.Series):
        raise TypeError(f"a check must answer row by row, not with {type(output).__name__}")
    failed = np.flatnonzero(~output.to_numpy(dtype=bool))
    index = output.index
    if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
        return failed.astype(np.int64)  # every row answered: positions are the rows
    return index.to_numpy()[failed].astype(np.int64)


def check_rows(schema: pa.DataFrameSchema, kind: str, typed: pd.DataFrame) -> pd.DataFrame:
    """Run the schema's row rules (checks across columns), like the column checks through
    pandera's Check API; a failed rule blames the field its kind names for it."""
    blamed = {reason: field for field, reason in KINDS[kind].row_rules.values()}
    frame = row_rule_frame(typed, kind)
    found = []
    for check in schema.checks:
        failed = _failed_rows(check(frame).check_output)
        if len(failed):
            found.append(_problems(failed, blamed[check.error], check.error))
    return _concat(found)


def _export_values_in_reasons(problems: pd.DataFrame, mapping: SourceMapping) -> pd.DataFrame:
    """Name the values the export may use ('Factura'), not Cadencia's internal ones."""
    for name, translate in mapping.values.items():
        written = [k for k in translate if k != "_default"]
        if not written or "_default" in translate:
            continue
        hit = (problems["field"] == name) & problems["reason"].astype(str).str.startswith(
            "unknown value"
        )
        problems.loc[hit, "reason"] = f"unknown value (expected one of: {', '.join(written)})"
    return problems


def duplicates(typed: pd.DataFrame, kind: str, rows: np.ndarray) -> pd.DataFrame:
    """A repeated key (same id twice in one file) keeps the first row and quarantines the rest."""
    key = list(KINDS[kind].key)
    parts = [at.arrow(typed[col]) for col in key]  # chunk by chunk: not copied whole
    if len(parts) > 1 and any(_holds_separator(p) for p in parts):
        # Keys compare as their parts joined by \x1f: with the separator inside a part, two
        # different splits can join alike, so compare the joined strings themselves.
        parts = [_joined_key(parts)]
    # Exact comparison (Arrow's dictionary codes) only among the rows whose key hash repeats.
    # A repeated key repeats its last part (the number of a typed document number, the id
    # of a plain key): hashing that part alone finds every suspect.
    suspects = _hash_repeats(parts[-1])
    if suspects is None:
        suspects = np.arange(len(parts[0]))
    elif not len(suspects):
        return _concat([])
    if len(suspects) < len(parts[0]):
        parts = [at.take(p, suspects) for p in parts]
    codes = _key_codes([_whole(p) for p in parts])
    present = codes >= 0
    counts = np.bincount(codes[present])
    if not len(counts) or counts.max() < 2:
        return _concat([])
    # Only the rows of repeated keys are sorted, to find the first row of each.
    candidates = np.flatnonzero(present & (counts[np.maximum(codes, 0)] > 1))
    order = candidates[np.argsort(codes[candidates], kind="stable")]
    sorted_codes = codes[order]
    first_of_run = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    run_start = np.maximum.accumulate(np.where(first_of_run, np.arange(len(order)), 0))
    repeat = suspects[order[~first_of_run]]
    firsts = suspects[order[run_start[~first_of_run]]]
    by_row = np.argsort(repeat)
    idx, firsts = repeat[by_row], rows[firsts[by_row]]
    return pd.DataFrame(
        {
            "index": idx.astype(np.int64),
            "field": key[-1],
            "reason": [f"duplicate id (first seen in row {r})" for r in firsts],
        }
    )


_SEP = "\x1f"


def _whole(part: pyarrow.ChunkedArray) -> pyarrow.Array:
    return part.combine_chunks() if isinstance(part, pyarrow.ChunkedArray) else part


def _holds_separator(part: pyarrow.ChunkedArray) -> bool:
    """Whether any cell holds \\x1f: a byte that in UTF-8 is only ever that character, looked
    for in the text buffers with numpy (several times faster than a substring kernel)."""
    for chunk in part.chunks:
        offsets = coerce.value_offsets(chunk)
        if chunk.buffers()[2] is None or offsets[-1] == offsets[0]:
            continue
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        if (data == ord(_SEP)).any():
            return True
    return False


def _joined_key(parts: list[pyarrow.ChunkedArray]) -> pyarrow.ChunkedArray:
    """The key as one Arrow string per row (parts joined by \\x1f), null where any part is."""
    separator = pyarrow.scalar(_SEP, pyarrow.large_string())
    return pc.binary_join_element_wise(*parts, separator)


def _key_codes(parts: list[pyarrow.Array]) -> np.ndarray:
    """An integer per distinct key (-1 where a part is empty): each part's codes, combined
    (no joined strings are built)."""
    codes = _codes(parts[0])
    for part in parts[1:]:
        more = _codes(part)
        missing = (codes < 0) | (more < 0)
        codes = codes * (int(more.max(initial=0)) + 1) + more
        codes[missing] = -1
        # Renumber so the codes stay small (they index a bincount).
        present = ~missing
        codes[present] = np.unique(codes[present], return_inverse=True)[1]
    return codes


def _codes(keys: pyarrow.Array) -> np.ndarray:
    """An integer per distinct key (-1 where empty), via Arrow's hashing."""
    encoded = pc.dictionary_encode(keys)
    return encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


_MIX = np.uint64(0x9E3779B97F4A7C15)


def _hash_repeats(part: pyarrow.ChunkedArray) -> np.ndarray | None:
    """Rows whose `part` of the key hashes like another row's (an empty cell has no key):
    hashed chunk by chunk with numpy (`_hashes`) and sorted (an Arrow hash table over
    millions of distinct ids costs several times more). None when the part comes in too
    many lengths."""
    if len(part) == 0 or part.null_count == len(part):
        return np.empty(0, dtype=np.int64)
    chunks = [_hashes(chunk) for chunk in part.chunks]
    if any(h is None for h in chunks):
        return None
    hashes = np.concatenate(chunks)
    present = np.flatnonzero(at.valid(part))
    ordered = np.sort(hashes[present])
    repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
    if not len(repeated):
        return np.empty(0, dtype=np.int64)
    return present[np.isin(hashes[present], repeated)]


def _hashes(keys: pyarrow.Array) -> np.ndarray | None:
    """A 64-bit hash per key (0 where empty): keys of one byte length are read as a grid of
    64-bit words and mixed with numpy. None when the keys come in too many lengths."""
    offsets = coerce.value_offsets(keys)
    lengths = np.diff(offsets)
    valid = at.valid(keys)
    sizes = np.flatnonzero(np.bincount(lengths[valid]))
    if len(sizes) > 16:
        return None
    hashes = np.zeros(len(keys), dtype=np.uint64)
    for size in sizes:
        take = valid & (lengths == size)
        if size == 0:  # empty keys: all alike
            hashes[take] = _MIX
            continue
        count = int(np.count_nonzero(take))
        if offsets[-1] - offsets[0] == count * size:
            # Every other cell is empty, so these keys lie back to back in the text buffer
            # (ids of one length, the usual case): read them in place instead of filtering.
            start, buffer = offsets[0], keys.buffers()[2]
        else:
            group = keys.filter(at.from_mask(take))
            start, buffer = coerce.value_offsets(group)[0], group.buffers()[2]
        data = np.frombuffer(buffer, dtype=np.uint8)[start : start + count * size]
        if size % 8:  # pad each key with zero bytes to whole words
            grid = np.zeros((count, size + 8 - size % 8), dtype=np.uint8)
            grid[:, :size] = data.reshape(count, size)
        else:
            grid = data.reshape(count, size)
        h = np.full(count, np.uint64(size) + _MIX, dtype=np.uint64)
        for word in np.ascontiguousarray(grid).view(np.uint64).T:
            h = (h ^ word) * _MIX
            h ^= h >> np.uint64(29)
        if count == len(keys):
            return h
        hashes[take] = h
    return hashes


def _keep_rows(typed: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows to accept, column by column: Arrow's filter for text (pandas would convert the
    mask to indices and take), numpy masks for the rest.

    Empties `typed` as it goes (each column is dropped once it is queued), so a column's memory
    is released as soon as its accepted copy exists, instead of all copies living beside all
    originals."""
    if keep.all():
        return typed

    def kept(col: pd.Series) -> pd.Series:
        if col.dtype == "str":
            return at.to_series(_filtered(at.arrow(col), keep), None).astype("str")
        return pd.Series(col.array[keep])

    # Arrow's filter and numpy's masking release the GIL: filter the columns on all cores.
    names = list(typed.columns)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = [pool.submit(kept, typed.pop(name)) for name in names]
        columns = dict(zip(names, (f.result() for f in futures), strict=True))
    return pd.DataFrame(columns, index=pd.RangeIndex(int(keep.sum())))


def _filtered(text: pyarrow.ChunkedArray, keep: np.ndarray) -> pyarrow.ChunkedArray:
    """The cells of `keep`, chunk by chunk. Arrow filters text with empty cells 2-3x slower
    than without (a branch per cell): the text and the empty-cell bitmap are filtered apart
    and put back together."""
    chunks, start = [], 0
    for chunk in text.chunks:
        stop = start + len(chunk)
        mask = at.from_mask(keep[start:stop])
        start = stop
        if not chunk.null_count:
            chunks.append(chunk.filter(mask))
            continue
        buffers = chunk.buffers()
        dense = pyarrow.Array.from_buffers(
            chunk.type, len(chunk), [None, *buffers[1:]], null_count=0, offset=chunk.offset
        )
        cells, valid = dense.filter(mask), chunk.is_valid().filter(mask)
        if cells.offset != valid.offset:  # (both 0 in every Arrow so far)
            chunks.append(chunk.filter(mask))
            continue
        chunks.append(
            pyarrow.Array.from_buffers(
                chunk.type,
                len(cells),
                [valid.buffers()[1], *cells.buffers()[1:]],
                null_count=len(valid) - valid.true_count,
                offset=cells.offset,
            )
        )
    return pyarrow.chunked_array(chunks, text.type)


def quarantine_rows(
    problems: pd.DataFrame, raw: RawFile, mapping: SourceMapping, whole_rows: bool = True
) -> pd.DataFrame:
    """One line per problem, naming the export's own column header and the cell as written
    (and, with `whole_rows`, one per row the reader could not split into fields)."""
    problems = problems.drop_duplicates(["index", "field"], keep="first")
    parts = []
    for field, group in problems.groupby("field", sort=False):
        header = mapping.header_for(str(field))
        idx = group["index"].to_numpy(np.int64)
        values = (
            np.array(at.take(at.arrow(raw.frame[header]), idx).to_pylist(), dtype=object)
            if header in raw.frame
            else np.full(len(idx), None)
        )
        parts.append(
            pd.DataFrame(
                {
                    "row": raw.rows[idx],
                    "column": header,
                    "value": values,
                    "reason": group["reason"].to_numpy(),
                }
            )
        )
    if raw.bad_rows and whole_rows:
        parts.append(
            pd.DataFrame(
                {
                    "row": [r for r, _, _ in raw.bad_rows],
                    "column": "(whole row)",
                    "value": [line for _, line, _ in raw.bad_rows],
                    "reason": [reason for _, _, reason in raw.bad_rows],
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=QUARANTINE_COLUMNS)
    out = pd.concat(parts, ignore_index=True)
    out["value"] = out["value"].where(pd.notna(out["value"]), None)
    out.insert(0, "source", mapping.name)
    out.insert(1, "file", raw.path.name)
    return out.sort_values(["row", "column"], kind="stable").reset_index(drop=True)[
        QUARANTINE_COLUMNS
    ]


def _repeated(value: str, n: int) -> pd.Series:
    """A text column of one value: built by Arrow in half the time pandas takes to spread
    a scalar over millions of rows."""
    cells = pyarrow.repeat(pyarrow.scalar(value, pyarrow.large_string()), n)
    return at.to_series(cells, pd.RangeIndex(n))


def _empty(ftype: str, n: int) -> pd.Series:
    dtype = {
        "bool": "boolean",
        "number": "float64",
        "datetime": "datetime64[us, UTC]",
        "date": "datetime64[us]",
    }.get(ftype, "str")
    return pd.Series(
        pd.NA if dtype in ("boolean", "str") else None, index=pd.RangeIndex(n), dtype=dtype
    )


def _problems(idx: np.ndarray, field: str, reason: str) -> pd.DataFrame:
    return pd.DataFrame({"index": idx.astype(np.int64), "field": field, "reason": reason})


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({"index": pd.Series(dtype=np.int64), "field": [], "reason": []})
    return pd.concat(frames, ignore_index=True)


# --- Prefect tasks: thin wrappers, one per source and one to record them ---------------------


@task(name="ingest-source", cache_policy=NO_CACHE, retries=0)
def ingest_source(
    mapping: SourceMapping, input_dir: Path, default_tz: str
) -> SourceResult | SourceFileError:
    """A file-level problem is returned, not raised, so one run reports every broken file."""
    try:
        return ingest(mapping, input_dir, default_tz)
    except SourceFileError as problem:
        return problem
