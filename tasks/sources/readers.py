"""Turn an export file into a frame of raw text cells, whatever its format or encoding.

Exports arrive as CSV in UTF-8, UTF-8 with BOM, UTF-16 (Excel "Unicode text") or Windows-1252,
comma/semicolon/tab delimited, or as XLSX or Parquet. Everything downstream works on the text
exactly as the user would see it in the file, so the same data gives the same result whatever
the container. Only the columns the mapping uses are read.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import difflib
import importlib
import math
import mmap
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import blake3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from tasks import arrow_text as at
from tasks.sources.errors import SourceFileError

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
DELIMITERS = (",", ";", "\t", "|")
_CHUNK = 8 << 20
_GUESS = 1 << 20


def _block_size(size: int) -> int:
    """Arrow's CSV block for a file of `size` bytes: about 32 blocks, 1-16 MB each. Bigger
    than Arrow's 1 MB default, a big file gives fewer chunks per column (every per-chunk step
    downstream costs less) and reads as fast; a small one still gives both cores blocks."""
    return min(16 << 20, max(1 << 20, size // 32))


_BLANK_BYTES = b" \t\r\n\x00\xef\xbb\xbf\xff\xfe"


@dataclass
class RawFile:
    """Text cells of one export, with what we learnt about the file on the way."""

    path: Path
    frame: pd.DataFrame  # one str column per mapped header, <NA> for empty cells
    rows: np.ndarray  # spreadsheet row number of each frame row (header = 1)
    file_format: str
    encoding: str | None
    delimiter: str | None
    fingerprint: Fingerprint
    typed: bool  # cells came from typed storage (XLSX/Parquet): numbers use a decimal point
    bad_rows: list[tuple[int, str, str]] = field(default_factory=list)  # (row, text, reason)
    suspect: dict[str, np.ndarray] = field(default_factory=dict)  # header -> runaway-quote cells


def file_format_of(path: Path, head: bytes) -> str:
    suffix = path.suffix.lower()
    if head.startswith(b"PK\x03\x04"):
        if suffix in XLSX_SUFFIXES:
            return "xlsx"
        raise SourceFileError(
            path,
            "this is an Excel workbook (or another zip file), not a text file",
            "rename it to .xlsx, or save it from Excel as 'CSV UTF-8'",
        )
    if head.startswith(b"PAR1"):
        return "parquet"
    if suffix in XLSX_SUFFIXES:
        raise SourceFileError(
            path, "the file is not a valid XLSX workbook", "open it in Excel and save it as .xlsx"
        )
    if suffix in PARQUET_SUFFIXES:
        raise SourceFileError(path, "the file is not a valid Parquet file", "re-export it")
    if suffix == ".xls":
        raise SourceFileError(
            path, "legacy .xls workbooks are not supported", "save it from Excel as .xlsx or CSV"
        )
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise SourceFileError(
        path,
        f"unknown file format {suffix or '(no extension)'!r}",
        "export as .csv, .xlsx or .parquet",
    )


def read_export(
    path: Path,
    headers: list[str],
    *,
    encoding: str = "auto",
    delimiter: str = "auto",
    sheet: str | int = 0,
) -> RawFile:
    """Read the mapped `headers` of one export as text cells."""
    if not path.is_file():
        raise SourceFileError(
            path,
            "file not found",
            "put the export there, point CADENCIA_INPUT_DIR at its folder, "
            "or remove this source from CADENCIA_SOURCES",
        )
    with path.open("rb") as fh:
        head = fh.read(4096)
        chunk = head
        while chunk and not chunk.strip(_BLANK_BYTES):
            chunk = fh.read(_CHUNK)
    if not chunk.strip(_BLANK_BYTES):
        raise SourceFileError(path, "the file is empty", "re-export it with its header row")
    fmt = file_format_of(path, head)
    if fmt == "csv":
        return _read_csv(path, headers, encoding, delimiter)
    if fmt == "xlsx":
        return _read_typed(path, fmt, headers, lambda: _load_xlsx(path, sheet))
    return _read_typed(path, fmt, headers, lambda: _load_parquet(path, headers))


# --- CSV ------------------------------------------------------------------------------------


@dataclass
class Sniffed:
    encoding: str
    digest: str
    newlines: int | None  # line breaks in the file (None for UTF-16)
    blank_lines: bool  # an empty line somewhere (Arrow skips those silently)


class Fingerprint:
    """A file's digest (`file_digest`), computed by a background thread at the lowest CPU
    priority, so it takes the cores only when the ingestion leaves one idle (Arrow's read keeps
    both busy, pandera's validation one). `digest` waits for it."""

    def __init__(self, data: mmap.mmap | bytes | None = None, digest: str | None = None):
        self._digest = digest
        self._thread = None
        if digest is None:
            self._thread = threading.Thread(target=self._hash, args=(data,), daemon=True)
            self._thread.start()

    def _hash(self, data: mmap.mmap | bytes) -> None:
        # Linux sets priorities per thread; elsewhere it runs at normal priority.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        self._digest = file_digest(data)

    @property
    def digest(self) -> str:
        if self._thread is not None:
            self._thread.join()
        assert self._digest is not None
        return self._digest


def file_digest(data: mmap.mmap | bytes) -> str:
    """The file's BLAKE3 as "blake3:<hex>" (what `b3sum` prints). The ledger's earlier rows
    hold "sha256:<hex>": BLAKE3 is as strong and costs a quarter of SHA-256's CPU time."""
    digest = blake3.blake3()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _CHUNK):
            digest.update(view[start : start + _CHUNK])  # releases the GIL on big blocks
    finally:
        view.release()
    return f"blake3:{digest.hexdigest()}"


def _map(path: Path) -> mmap.mmap | bytes:
    """The file's bytes without copying them (the mapping closes once nothing refers to it)."""
    with path.open("rb") as fh:
        try:
            return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # empty file, or a file that cannot be mapped
            return fh.read()


def _newlines(data: mmap.mmap | bytes) -> int:
    """Line breaks (b"\n" bytes, plus one for a last line without one). numpy releases the
    GIL, so this runs beside Arrow's read. Empty lines are looked for (`_has_blank_line`) only
    when the count says there may be some."""
    u8 = np.frombuffer(data, dtype=np.uint8)
    count = 0
    for start in range(0, len(u8), _CHUNK):
        count += int(np.count_nonzero(u8[start : start + _CHUNK] == 10))
    return count + (1 if len(u8) and u8[-1] != 10 else 0)


def _has_blank_line(data: mmap.mmap | bytes) -> bool:
    """An empty line somewhere: a line break right after another, or after a lone carriage
    return (b"\\n\\n" or b"\\n\\r\\n")."""
    u8 = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(u8 == 10)
    gaps = np.diff(breaks)
    return bool((gaps == 1).any() or ((gaps == 2) & (u8[breaks[:-1] + 1] == 13)).any())


def _valid_utf8(data: mmap.mmap | bytes) -> bool:
    """Arrow's SIMD UTF-8 validation over the whole file, without building a Python string."""
    buffer = pa.py_buffer(data)
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, buffer])
    try:
        whole.cast(pa.large_string())
    except pa.ArrowInvalid:
        return False
    return True


def _decodes(data: mmap.mmap | bytes, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(codecs.lookup(encoding).name)()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _CHUNK):
            decoder.decode(view[start : start + _CHUNK], final=False)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    finally:
        view.release()
    return True


# The five bytes Windows-1252 leaves undefined (Python's codec rejects them).
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")


def _encoding(path: Path, data: mmap.mmap | bytes, declared: str) -> str:
    """The file's encoding: the declared one (checked), else from its BOM, else UTF-8 if the
    whole file is valid UTF-8, else Windows-1252 or Latin-1."""
    first = data[:_CHUNK]
    if declared != "auto":
        enc = declared
    elif first.startswith(codecs.BOM_UTF8):
        enc = "utf-8-sig"
    elif first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        enc = "utf-16"
    elif b"\x00" in first:
        raise SourceFileError(
            path,
            "unreadable encoding: the file holds binary data (NUL bytes), not text",
            "export it again as 'CSV UTF-8' (or point the mapping at the right file)",
        )
    else:
        enc = "utf-8"
    utf8 = codecs.lookup(enc).name == "utf-8" or enc == "utf-8-sig"
    if _valid_utf8(data) if utf8 else _decodes(data, enc):
        return enc
    if declared != "auto":
        raise SourceFileError(
            path,
            f"unreadable encoding: the file is not valid {declared}",
            "set options.encoding in the mapping to the file's real encoding, or use 'auto'",
        )
    # Not UTF-8: Windows-1252 is what Spanish and Latin American Excel writes; Latin-1 maps
    # every byte, so it is the last resort for the five bytes cp1252 leaves undefined.
    if any(data.find(b) >= 0 for b in _CP1252_UNDEFINED):
        return "latin-1"
    return "cp1252"


def sniff_file(path: Path, declared: str = "auto") -> Sniffed:
    """Encoding, digest, line count and blank-line presence of a text file."""
    data = _map(path)
    enc = _encoding(path, data, declared)
    lines = None if enc.startswith("utf-16") else _newlines(data)
    return Sniffed(enc, file_digest(data), lines, _has_blank_line(data))


def _header_line(path: Path, encoding: str) -> tuple[int, str]:
    """The header is the first non-blank line; return how many blank lines precede it."""
    blank = 0
    with path.open("r", encoding=encoding, newline="") as fh:
        for line in fh:
            if line.strip():
                return blank, line.rstrip("\r\n")
            blank += 1
    return blank, ""


def sniff_delimiter(header: str) -> str:
    """The delimiter is the separator the header line uses most (outside quotes)."""
    unquoted = header
    if '"' in header:
        unquoted = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path, headers: list[str], encoding: str, delimiter: str) -> RawFile:
    data = _map(path)
    fingerprint = Fingerprint(data)
    # The whole file's encoding is checked and its line breaks counted on the other core while
    # Arrow reads it as bytes in the encoding its first block suggests (the usual case). It
    # is read again, carefully, when the check disagrees or a line is not one record: an
    # irregular or empty line, or a value spanning lines (Arrow follows a quote across line
    # breaks even when told values hold none: a quote left unclosed swallows records).
    with ThreadPoolExecutor(max_workers=1) as pool:
        checking = pool.submit(_check_bytes, path, data, encoding)
        guess = _likely_encoding(data, encoding)
        early = _read_bytes(path, data, guess, headers, delimiter) if guess else None
        enc, newlines = checking.result()
    if isinstance(early, SourceFileError) and guess == enc:
        raise early
    if (
        isinstance(early, _Bytes)
        and guess == enc
        and newlines == early.header.row + early.table.num_rows
    ):
        header = early.header
        frame = _arrow_to_text_frame(_decoded(early.table, enc), header)
        rows = np.arange(header.row + 1, header.row + 1 + len(frame), dtype=np.int64)
        return RawFile(path, frame, rows, "csv", enc, header.delimiter, fingerprint, typed=False)
    header = _header(path, data, enc, headers, delimiter)
    table, irregular = _read_table(path, data, enc, header)
    frame = _arrow_to_text_frame(table, header)
    header_row, delim = header.row, header.delimiter
    # Spreadsheet row numbers: each record is one line (a value with a line break shifts this);
    # Arrow skips empty lines silently, so find them to keep the numbers right. An empty line
    # is a line break without a record: with as many line breaks as records there is none.
    blank = []
    if newlines is not None and newlines != header_row + len(frame) + len(irregular):
        blank = _empty_lines(path, enc, header_row) if _has_blank_line(data) else []
    skipped = np.array([line for line, _, _ in irregular] + blank, dtype=np.int64)
    rows = np.arange(header_row + 1, header_row + 1 + len(frame) + len(skipped), dtype=np.int64)
    if len(skipped):
        keep = np.ones(len(rows), dtype=bool)
        inside = skipped[(skipped > header_row) & (skipped <= rows[-1])]
        keep[inside - header_row - 1] = False
        rows = rows[keep][: len(frame)]
    bad_rows = [(line, text, why) for line, text, why in irregular if why]
    raw = RawFile(path, frame, rows, "csv", enc, delim, fingerprint, typed=False, bad_rows=bad_rows)
    # Values spanning lines are rare: look for runaway quotes only if the file has more line
    # breaks than records (counted while sniffing the encoding).
    records = header_row + len(frame) + len(skipped)
    if newlines is None or newlines > records:
        raw.suspect = _runaway_quotes(frame, delim, len(header.names))
    return raw


def _check_bytes(path: Path, data: mmap.mmap | bytes, declared: str) -> tuple[str, int | None]:
    """The file's encoding (checked over the whole file) and its line breaks."""
    enc = _encoding(path, data, declared)
    return enc, None if enc.startswith("utf-16") else _newlines(data)


def _likely_encoding(data: mmap.mmap | bytes, declared: str) -> str | None:
    """The encoding the file's first block suggests, if Arrow can read the file as bytes in
    it (UTF-8 or a single-byte encoding); None otherwise."""
    if declared != "auto":
        name = codecs.lookup(declared).name
        utf8 = name == "utf-8" or declared == "utf-8-sig"
        return declared if utf8 or single_byte_table(declared) else None
    # A guess, checked over the whole file beside the read: its first MB is enough.
    first = bytes(data[:_GUESS])
    if first.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in first:
        return None
    # Up to the block's last line break, so no character is cut in two.
    whole_lines = first[: first.rfind(b"\n") + 1] if len(first) == _GUESS else first
    return "utf-8" if _valid_utf8(whole_lines) else "cp1252"


@dataclass(frozen=True)
class _Header:
    names: list[str]  # every column's name, as the header line has them
    selected: dict[str, int]  # mapped header -> column position
    row: int  # the header's line number (blank lines above it counted)
    delimiter: str


@dataclass
class _Bytes:
    header: _Header
    table: pa.Table  # the mapped columns as bytes


def _read_bytes(
    path: Path, data: mmap.mmap | bytes, enc: str, headers: list[str], delimiter: str
) -> _Bytes | SourceFileError | None:
    """The mapped columns as bytes, read in `enc`; the header's problem if it has one; None
    when Arrow meets an irregular row (the usual read reports those) or cannot parse it."""
    try:
        header = _header(path, data, enc, headers, delimiter)
    except SourceFileError as problem:
        return problem
    except (UnicodeDecodeError, LookupError):
        return None
    try:
        # Without a handler Arrow stops at the first irregular row (its handler would get the
        # row as UTF-8 text, which these bytes may not be).
        table = _arrow_csv(data, enc, header, None, threads=True, multiline=False, raw=True)
    except pa.ArrowInvalid:
        return None
    # Empty lines are read as rows without a value: with none of those, every line is one
    # record, numbered by its position.
    return None if _some_row_empty(table) else _Bytes(header, table)


def _some_row_empty(table: pa.Table) -> bool:
    """Whether some row has no value in any column (usually settled by the null counts)."""
    columns = sorted(table.columns, key=lambda col: col.null_count)
    if not columns or columns[0].null_count == 0:
        return False
    empty = None
    for col in columns:
        nulls = ~at.valid(col)
        empty = nulls if empty is None else empty & nulls
        if not empty.any():
            return False
    return True


def _decoded(table: pa.Table, enc: str) -> pa.Table:
    """Byte columns as text: UTF-8 bytes are text already (the whole file was checked), a
    single-byte encoding is decoded through its table."""
    byte_table = single_byte_table(enc)
    if byte_table is not None:
        return decode_cells(table, byte_table)
    columns = [
        pa.chunked_array([chunk.view(pa.large_string()) for chunk in col.chunks], pa.large_string())
        for col in table.columns
    ]
    return pa.table(columns, names=table.column_names)


def _header(
    path: Path, data: mmap.mmap | bytes, enc: str, headers: list[str], delimiter: str
) -> _Header:
    """Column names, the mapped ones' positions, the header's row number and the delimiter."""
    leading_blank, header_line = _header_line(path, enc)
    delim = delimiter if delimiter != "auto" else sniff_delimiter(header_line)
    try:
        names = next(csv.reader([header_line], delimiter=delim))
    except (csv.Error, StopIteration):
        names = []
    names = [n.strip().lstrip("\ufeff") for n in names]
    selected = resolve_headers(path, names, headers, delim)
    return _Header(names, selected, leading_blank + 1, delim)


def _arrow_csv(
    data: mmap.mmap | bytes,
    enc: str,
    header: _Header,
    handler: Callable | None,
    threads: bool,
    multiline: bool,
    raw: bool = False,
) -> pa.Table:
    """Arrow's CSV read of the mapped columns, as text; with `raw`, as bytes, an empty line
    read as a row without values."""
    # Arrow skips a leading UTF-8 BOM itself; naming utf-8-sig would make it transcode the
    # whole file through Python's codec.
    arrow_enc = "utf-8" if raw or enc == "utf-8-sig" else enc
    names, mapped = header.names, [header.names[i] for i in header.selected.values()]
    return pacsv.read_csv(
        pa.BufferReader(pa.py_buffer(data)),
        read_options=pacsv.ReadOptions(
            encoding=arrow_enc,
            column_names=names,
            skip_rows=header.row,
            use_threads=threads,
            block_size=_block_size(len(data)),
        ),
        parse_options=pacsv.ParseOptions(
            delimiter=header.delimiter,
            newlines_in_values=multiline,
            invalid_row_handler=handler,
            ignore_empty_lines=not raw,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.large_binary() if raw else pa.large_string() for name in mapped},
            include_columns=mapped,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
            # The bytes are valid UTF-8 already: the whole file was checked (`_encoding`) or
            # Arrow transcoded it. Cut at ASCII delimiters, so is every cell.
            check_utf8=False,
        ),
    )


def _read_table(
    path: Path, data: mmap.mmap | bytes, enc: str, header: _Header
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """The mapped columns as Arrow text, and the rows Arrow skipped as irregular."""
    irregular: list[tuple[int, str, str]] = []  # (line, text, reason)

    def on_invalid(row: pacsv.InvalidRow) -> str:
        reason = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        irregular.append((int(row.number or 0), (row.text or "")[:200], reason))
        return "skip"

    try:
        # Fast path: one record per line. A quoted value with a line break splits its record
        # into rows with the wrong number of fields, which sends us down the careful path.
        table = _arrow_csv(data, enc, header, on_invalid, threads=True, multiline=False)
        if irregular:
            # Careful path: values may span lines, and single-threaded Arrow numbers the lines
            # of the rows it skips.
            irregular.clear()
            table = _arrow_csv(data, enc, header, on_invalid, threads=False, multiline=True)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceFileError(
            path,
            f"the file cannot be parsed as {_delimiter_name(header.delimiter)}-delimited CSV"
            f" ({exc})",
            "check the delimiter and quoting, or set options.delimiter in the mapping",
        ) from None
    return table, irregular


@dataclass(frozen=True)
class ByteTable:
    """How each byte of a single-byte encoding is written in UTF-8: its length (1-3) and its
    bytes, one lookup array per position."""

    length: np.ndarray
    first: np.ndarray
    second: np.ndarray
    third: np.ndarray


def single_byte_table(encoding: str) -> ByteTable | None:
    """The byte table of an ASCII-compatible single-byte encoding (Windows-1252, Latin-1 and
    Python's other charmap codecs); None for any other encoding. Bytes the encoding leaves
    undefined never get here (the encoding check refuses them) and would decode to U+FFFD."""
    name = codecs.lookup(encoding).name
    if name == "iso8859-1":
        chars = bytes(range(256)).decode("latin-1")
    else:
        try:
            module = importlib.import_module(f"encodings.{name.replace('-', '_')}")
        except ImportError:
            return None
        chars = getattr(module, "decoding_table", None)
        if not isinstance(chars, str) or len(chars) != 256:
            return None
        chars = chars.replace("\ufffe", "\ufffd")  # the codec's mark for an undefined byte
    if chars[:128] != bytes(range(128)).decode("ascii"):
        return None
    encoded = [c.encode("utf-8") for c in chars]
    grid = np.zeros((3, 256), dtype=np.uint8)
    for byte, text in enumerate(encoded):
        grid[: len(text), byte] = list(text)
    length = np.array([len(text) for text in encoded], dtype=np.uint8)
    return ByteTable(length, grid[0], grid[1], grid[2])


def decode_cells(table: pa.Table, byte_table: ByteTable) -> pa.Table:
    """The table's byte columns as UTF-8 text, a column per thread (numpy releases the GIL)."""

    def decoded(col: pa.ChunkedArray) -> pa.ChunkedArray:
        chunks = [_decode_chunk(c, byte_table) for c in col.chunks]
        return pa.chunked_array(chunks, pa.large_string())

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        columns = list(pool.map(decoded, table.columns))
    return pa.table(columns, names=table.column_names)


def _decode_chunk(chunk: pa.Array, byte_table: ByteTable) -> pa.Array:
    """One chunk of bytes as UTF-8 text: ASCII as it is (the bytes are the same), the other
    bytes through the table."""
    buffers = chunk.buffers()
    width = np.int64 if pa.types.is_large_binary(chunk.type) else np.int32
    offsets = np.frombuffer(buffers[1], dtype=width)[chunk.offset : chunk.offset + len(chunk) + 1]
    offsets = offsets.astype(np.int64)
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        if buffers[2] is not None
        else np.empty(0, dtype=np.uint8)
    )
    high = np.flatnonzero(data >= 0x80)
    if not len(high):
        return chunk.view(pa.large_string())
    # Non-ASCII bytes are rare: each grows by `extra` bytes, and every byte after it moves.
    extra = byte_table.length[data[high]].astype(np.int64) - 1
    grown = np.cumsum(extra)
    lands = high + grown - extra  # where each non-ASCII byte's first UTF-8 byte lands
    out = np.empty(len(data) + int(grown[-1]), dtype=np.uint8)
    kept = np.ones(len(out), dtype=bool)
    kept[lands[extra > 0] + 1] = False
    kept[lands[extra > 1] + 2] = False
    out[kept] = data
    codes = data[high]
    out[lands] = byte_table.first[codes]
    out[lands[extra > 0] + 1] = byte_table.second[codes[extra > 0]]
    out[lands[extra > 1] + 2] = byte_table.third[codes[extra > 1]]
    relative = offsets - offsets[0]
    new_offsets = relative + np.concatenate([[0], grown])[np.searchsorted(high, relative)]
    return at.rewritten(chunk, new_offsets, out)


def _empty_lines(path: Path, encoding: str, header_row: int) -> list[int]:
    """Line numbers of the empty lines after the header, which Arrow skips silently (only
    called when `_has_blank_line` saw one)."""
    if encoding.startswith("utf-16"):
        return []
    found = []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if number > header_row and not line.strip(b"\r\n"):
                found.append(number)
    return found


def _runaway_quotes(frame: pd.DataFrame, delim: str, ncols: int) -> dict[str, np.ndarray]:
    """Cells that swallowed whole records: the signature of a quote left unclosed."""
    out = {}
    for header, col in frame.items():
        multiline = col.str.contains("\n", regex=False).fillna(False)
        if multiline.any():
            swallowed = multiline & (col.str.count(re.escape(delim)).fillna(0) >= max(ncols - 1, 1))
            if swallowed.any():
                out[str(header)] = swallowed.to_numpy()
    return out


def _delimiter_name(delim: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(delim, repr(delim))


def resolve_headers(path: Path, names: list[str], wanted: list[str], delim: str) -> dict[str, int]:
    """Map each wanted header to its column index; exact match first, then case-insensitive."""
    exact: dict[str, int] = {}
    for i, n in enumerate(reversed(names)):
        exact[n] = len(names) - 1 - i  # the first occurrence wins
    folded = {n.casefold(): i for n, i in reversed(list(exact.items()))}
    twice = sorted({n for n in names if n in set(wanted) and names.count(n) > 1})
    if twice:
        raise SourceFileError(
            path,
            f"the header names column {twice[0]!r} more than once",
            "rename or remove the duplicate column in the export",
        )
    found: dict[str, int] = {}
    missing: list[str] = []
    for h in wanted:
        if h in exact:
            found[h] = exact[h]
        elif h.casefold() in folded:
            found[h] = folded[h.casefold()]
        else:
            missing.append(h)
    if missing:
        single = delim is not None and len(names) <= 1
        fix = (
            "set options.delimiter in the mapping to the file's separator, and make sure the "
            "column headers are the first non-blank line (no title rows above them)"
            if single
            else _MISSING_FIX
        )
        raise SourceFileError(path, _missing_message(missing, names, delim), fix)
    return found


_MISSING_FIX = (
    "add the column to the export, or change the mapping's 'columns' so the field points at "
    "the header your export uses (docs/sources.md)"
)


def _missing_message(missing: list[str], names: list[str], delim: str | None) -> str:
    parts = []
    for h in missing:
        close = difflib.get_close_matches(h, names, n=1, cutoff=0.6)
        parts.append(f"{h!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    msg = f"missing required column{'s' if len(missing) > 1 else ''} " + ", ".join(parts)
    if delim is not None and len(names) <= 1:
        msg += (
            f"; the first line has a single column when split on {_delimiter_name(delim)}: "
            "the delimiter may be wrong, or a title row sits above the headers"
        )
    return msg


def _arrow_to_text_frame(table: pa.Table, header: _Header) -> pd.DataFrame:
    """The mapped columns, named by the mapping's headers."""
    data = {}
    for mapped, i in header.selected.items():
        col = table.column(header.names[i]).to_pandas()
        data[mapped] = col if col.dtype == "str" else col.astype("str")
    return pd.DataFrame(data)


# --- XLSX and Parquet -----------------------------------------------------------------------


def _load_xlsx(path: Path, sheet: str | int) -> pd.DataFrame:
    try:
        return pd.read_excel(path, sheet_name=sheet, dtype=object, engine="openpyxl")
    except ValueError as exc:
        raise SourceFileError(
            path, f"cannot read the sheet ({exc})", "set options.sheet in the mapping"
        ) from None
    except Exception:  # openpyxl raises many types for damaged workbooks
        raise SourceFileError(
            path,
            "the workbook is damaged or is not an XLSX file",
            "open it in Excel and save it again as .xlsx",
        ) from None


def _load_parquet(path: Path, headers: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        schema_names = pq.read_schema(path).names
    except (pa.ArrowInvalid, OSError) as exc:
        raise SourceFileError(
            path, f"the Parquet file cannot be read ({exc})", "re-export it"
        ) from None
    wanted = [
        n
        for n in schema_names
        if n in set(headers) or n.casefold() in {h.casefold() for h in headers}
    ]
    return pq.read_table(path, columns=wanted or None).to_pandas()


def _read_typed(
    path: Path, fmt: str, headers: list[str], load: Callable[[], pd.DataFrame]
) -> RawFile:
    fingerprint = Fingerprint(digest=file_digest(_map(path)))
    df = load()
    names = [str(c).strip() for c in df.columns]
    df.columns = names
    selected = resolve_headers(path, names, headers, None)
    df = df.dropna(how="all")  # Excel keeps formatted but empty rows
    frame = pd.DataFrame({h: typed_to_text(df.iloc[:, i]) for h, i in selected.items()})
    rows = df.index.to_numpy() + 2
    frame.index = pd.RangeIndex(len(frame))
    return RawFile(path, frame, rows, fmt, None, None, fingerprint, typed=True)


def typed_to_text(col: pd.Series) -> pd.Series:
    """Write typed cells as the text a CSV export of them holds (dot decimals, ISO dates)."""
    if pd.api.types.is_bool_dtype(col):
        out = col.map({True: "true", False: "false"})
    elif pd.api.types.is_integer_dtype(col):
        out = col.astype("Int64").astype("str")
    elif pd.api.types.is_float_dtype(col) or pd.api.types.is_datetime64_any_dtype(col):
        out = pd.Series([_cell_text(v) for v in col], index=col.index, dtype=object)
    elif pd.api.types.is_string_dtype(col) and col.dtype != object:
        out = col
    else:
        out = pd.Series([_cell_text(v) for v in col], index=col.index, dtype=object)
    out = out.astype("str").str.strip()
    return out.where(out.notna() & (out != "") & (out != "<NA>"), pd.NA).astype("str")


def _cell_text(value: object) -> object:
    if value is None or value is pd.NA or value is pd.NaT:
        return pd.NA
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return pd.NA
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        if ts.tzinfo is not None:
            return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
        if ts == ts.normalize():
            return ts.strftime("%Y-%m-%d")
        return ts.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
