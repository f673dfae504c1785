"""Parse text cells into typed columns, column at a time, and say which cells did not parse.

Spanish and Latin American Excel writes "1.234,56" and "31/12/2026"; Salesforce writes ISO
timestamps in UTC; HubSpot writes local times without an offset. Each parser is vectorised
and returns the typed column together with a mask of the non-empty cells it could not read,
so a bad cell becomes a quarantine row instead of a silent NaN.

The parsers work on Arrow arrays (RE2 and Arrow kernels release the GIL, so columns parse in
parallel threads); `text`, `parse_*` and `sniff_decimal` take and return pandas Series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks import arrow_text as at

TRUE_WORDS = ("true", "t", "yes", "y", "1", "si", "sí", "s", "x", "verdadero", "opted in")
FALSE_WORDS = ("false", "f", "no", "n", "0", "falso", "opted out")
_BOOLS = {w: True for w in TRUE_WORDS} | {w: False for w in FALSE_WORDS}

# \p{Nd}, not \d: RE2's \d is ASCII only, Python's (which pandas used for these patterns on
# non-ASCII data) is any Unicode decimal digit.
_OFFSET = r"(?:Z|[+-]\p{Nd}{2}:?\p{Nd}{2})$"
_NOISE = "[ \t\r\n\u00a0\u202f€$£]"
_PLAIN_NUMBER = r"^(?:-?(?:[0-9]+\.?[0-9]*|\.[0-9]+))$"
# A value whose last separator is a comma followed by 1-2 or 4+ digits, or a comma after a dot
# group, can only be a decimal comma; likewise for the decimal point.
_UNAMBIGUOUS = {
    ",": r"(?:^[^.,]*\p{Nd},\p{Nd}{1,2}$|^[^.,]*\p{Nd},\p{Nd}{4,}$|\.\p{Nd}{3},\p{Nd}+$)",
    ".": r"(?:^[^.,]*\p{Nd}\.\p{Nd}{1,2}$|^[^.,]*\p{Nd}\.\p{Nd}{4,}$|,\p{Nd}{3}\.\p{Nd}+$)",
}
# What most cells look like: optional minus, digits (grouped by the other separator in threes,
# or not at all), optional decimals.
_CANONICAL = {
    ",": r"^-?(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?:,[0-9]+)?$",
    ".": r"^-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?$",
}
_US = np.int64(1_000_000)
_NAT = np.datetime64("NaT", "us")


@dataclass
class Parsed:
    values: pd.Series
    bad: pd.Series  # True where a non-empty cell could not be read
    reason: str


# --- Arrow helpers ----------------------------------------------------------------------------


def trimmed(cells: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Trimmed text, empty cells as null.

    Most columns hold no cell to trim: those are returned as they are (trimming copies every
    cell, and on a big export that copy costs as much memory as the column itself)."""
    if not _needs_trim(cells):
        return cells
    arr = pc.utf8_trim_whitespace(cells)
    empty = pc.equal(arr, "")
    if pc.any(empty).as_py():  # copying the column again only when some cell was blank
        arr = pc.if_else(empty, pa.scalar(None, arr.type), arr)
    return arr


# Bytes that can start (_WS_FIRST) or end (_WS_LAST) a character utf8_trim_whitespace removes:
# ASCII controls and space, and the lead or last bytes of the Unicode spaces (U+0085, U+00A0,
# U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000). A superset: cells flagged
# by these tables are checked exactly.
_WS_FIRST = np.zeros(256, dtype=bool)
_WS_FIRST[: 0x20 + 1] = True
_WS_FIRST[[0xC2, 0xE1, 0xE2, 0xE3]] = True
_WS_LAST = np.zeros(256, dtype=bool)
_WS_LAST[: 0x20 + 1] = True
_WS_LAST[[*range(0x80, 0x8B), 0x9F, 0xA0, 0xA8, 0xA9, 0xAF]] = True


def _needs_trim(cells: pa.ChunkedArray | pa.Array) -> bool:
    """Whether trimming would change any cell (surrounding whitespace, or a blank cell)."""
    chunks = cells.chunks if isinstance(cells, pa.ChunkedArray) else [cells]
    return any(_chunk_needs_trim(c) for c in chunks)


def _chunk_needs_trim(arr: pa.Array) -> bool:
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        return True
    if len(arr) == arr.null_count:
        return False
    offsets = value_offsets(arr)
    buffer = arr.buffers()[2]
    if buffer is None or offsets[-1] == offsets[0]:
        return True  # only empty strings: they become null
    data = np.frombuffer(buffer, dtype=np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    # First and last byte of each cell (an empty or null cell reads a neighbour's: harmless,
    # empty cells are flagged anyway and null cells are dropped below). Plain comparisons
    # first: the lookup tables are only needed when some cell starts or ends past ASCII.
    first = data.take(starts, mode="clip")
    last = data.take(ends - 1, mode="clip")
    flagged = first <= 0x20
    flagged |= last <= 0x20
    if (first >= 0xC2).any() or (last >= 0x80).any():
        flagged |= _WS_FIRST[first]
        flagged |= _WS_LAST[last]
    flagged |= ends == starts
    if arr.null_count:
        flagged &= at.valid(arr)
    if not flagged.any():
        return False
    # Exactly, on the flagged cells only: would trimming shorten or empty any of them?
    sub = arr.filter(at.from_mask(flagged))
    before = pc.binary_length(sub)
    after = pc.binary_length(pc.utf8_trim_whitespace(sub))
    return bool(pc.any(pc.or_(pc.not_equal(before, after), pc.equal(after, 0))).as_py())


def value_offsets(arr: pa.Array) -> np.ndarray:
    """Where each value of a string array starts in its data buffer (and where the last ends);
    a view of Arrow's buffer when the offsets are 64-bit (read only)."""
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width)
    return offsets[arr.offset : arr.offset + len(arr) + 1].astype(np.int64, copy=False)


def _only(t: pa.ChunkedArray | pa.Array, keep: np.ndarray) -> pa.ChunkedArray:
    """`t` with every cell outside `keep` null, sharing its offsets and text (no copy)."""
    chunks, start = [], 0
    for chunk in t.chunks if isinstance(t, pa.ChunkedArray) else [t]:
        stop = start + len(chunk)
        bits = keep[start:stop]
        if chunk.null_count:
            bits = bits & at.valid(chunk)
        # The validity bitmap counts from the buffers' start: pad it by the chunk's offset.
        padded = np.concatenate([np.zeros(chunk.offset, dtype=bool), bits])
        validity = pa.py_buffer(np.packbits(padded, bitorder="little"))
        buffers = chunk.buffers()
        chunks.append(
            pa.Array.from_buffers(
                chunk.type,
                len(chunk),
                [validity, buffers[1], buffers[2]],
                null_count=len(chunk) - int(np.count_nonzero(bits)),
                offset=chunk.offset,
            )
        )
        start = stop
    return pa.chunked_array(chunks, t.type)


def str_column(arr: pa.ChunkedArray | pa.Array, n: int) -> pd.Series:
    return at.to_series(arr, pd.RangeIndex(n)).astype("str")


def _by_distinct(
    t: pa.ChunkedArray, lookup: Callable[[str], object], out: pa.DataType
) -> pa.ChunkedArray | pa.Array:
    """Apply `lookup` once per distinct value (exports repeat the same few words), then spread
    the answers over the cells (one pass of Arrow's hashing finds both)."""
    encoded = _dictionary(t)
    keys = encoded.dictionary.to_pylist()
    if not keys:
        return pa.nulls(len(t), type=out)
    answers = pa.array([lookup(u) for u in keys], type=out)
    return pc.take(answers, encoded.indices)


def _dictionary(t: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    """The column dictionary-encoded, as one array (its chunks share one dictionary)."""
    encoded = pc.dictionary_encode(t)
    return encoded.combine_chunks() if isinstance(encoded, pa.ChunkedArray) else encoded


def _no(n: int) -> pd.Series:
    return pd.Series(np.zeros(n, dtype=bool))


# --- parsers on trimmed Arrow text ------------------------------------------------------------


def bool_column(t: pa.ChunkedArray) -> Parsed:
    """Yes/no words, looked up once per distinct word; the answers spread with numpy."""
    positions, words = _distinct(t)
    answers = [_BOOLS.get(word.lower()) for word in words.to_pylist()]
    truth = np.array([a is True for a in answers] + [False])  # position -1: an empty cell
    known = np.array([a is not None for a in answers] + [False])
    missing = ~known[positions]
    out = pd.Series(pd.arrays.BooleanArray(truth[positions], missing))
    return Parsed(out, pd.Series(missing & (positions >= 0)), "unparseable yes/no value")


def _case_folded(t: pa.ChunkedArray | pa.Array, lower: bool) -> bool:
    """Whether the column is already all lower (or upper) case ASCII: then changing its case
    would copy it for nothing."""
    first, last = (ord("A"), ord("Z")) if lower else (ord("a"), ord("z"))
    for chunk in t.chunks if isinstance(t, pa.ChunkedArray) else [t]:
        if chunk.null_count == len(chunk):
            continue
        offsets = value_offsets(chunk)
        if chunk.buffers()[2] is None or offsets[-1] == offsets[0]:
            continue
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        if (data >= 0x80).any() or ((data >= first) & (data <= last)).any():
            return False
    return True


def code_column(t: pa.ChunkedArray) -> Parsed:
    """Currency codes: upper-cased; the schema checks them against ISO 4217."""
    upper = t if _case_folded(t, lower=False) else pc.utf8_upper(t)
    return Parsed(str_column(upper, len(t)), _no(len(t)), "")


def enum_column(t: pa.ChunkedArray, translate: dict[str, str] | None) -> Parsed:
    """Translate export values (e.g. 'Credit Memo') to Cadencia's (e.g. 'credit_note')."""
    if not translate:
        lower = t if _case_folded(t, lower=True) else pc.utf8_lower(t)
        return Parsed(str_column(lower, len(t)), _no(len(t)), "")
    default = translate.get("_default")
    folded = {k.casefold(): v for k, v in translate.items() if k != "_default"}

    def lookup(u: str) -> str | None:
        return translate.get(u) or folded.get(u.casefold()) or default or u.lower()

    return Parsed(str_column(_by_distinct(t, lookup, t.type), len(t)), _no(len(t)), "")


def decimal_votes(columns: list[pa.ChunkedArray]) -> dict[str, int]:
    """Values (of the first 20,000 filled cells per column) that can only be read one way."""
    votes = {",": 0, ".": 0}
    for t in columns:
        sample = pc.replace_substring_regex(pc.drop_null(t).slice(0, 20_000), _NOISE, "")
        for sep, pattern in _UNAMBIGUOUS.items():
            votes[sep] += pc.sum(pc.match_substring_regex(sample, pattern)).as_py() or 0
    return votes


def pick_decimal(votes: dict[str, int], delimiter: str | None) -> str:
    if votes[","] != votes["."]:
        return "," if votes[","] > votes["."] else "."
    return "," if delimiter == ";" else "."


def number_column(t: pa.ChunkedArray, decimal: str) -> Parsed:
    n = len(t)
    present = at.valid(t)
    reason = (
        f"unparseable number (this file uses decimal {'commas' if decimal == ',' else 'points'})"
    )
    if not present.any():
        return Parsed(pd.Series(np.full(n, np.nan)), pd.Series(present), "")
    if t.null_count > n // 2:
        # Mostly empty (amounts of the few events that have one): RE2 spends as long on an
        # empty slot as on a value, so only the filled cells are read (each cell is read on
        # its own, so the numbers are the same).
        numbers = np.full(n, np.nan)
        filled = t.filter(at.from_mask(present))
        numbers[present] = _numbers(filled, decimal, np.ones(len(filled), dtype=bool))
    else:
        numbers = _numbers(t, decimal, present)
    return Parsed(pd.Series(numbers), pd.Series(present & np.isnan(numbers)), reason)


def _numbers(t: pa.ChunkedArray, decimal: str, present: np.ndarray) -> np.ndarray:
    """The cells' numbers (NaN where empty or unreadable); `present` marks the filled ones."""
    # Amounts in cents ("-1.234,56", "1234.50") are read digit by digit; the other cells as
    # any number is.
    numbers, done = _cents(t, decimal)
    if not done.any():
        return _written_numbers(t, decimal, present)
    left = present & ~done
    if left.any():
        numbers[left] = _written_numbers(t.filter(at.from_mask(left)), decimal, left[left])
    return numbers


def _written_numbers(t: pa.ChunkedArray, decimal: str, present: np.ndarray) -> np.ndarray:
    """Numbers in any spelling (NaN where empty or unreadable)."""
    # Most cells are plainly written ("1.234,56", "1234.5"): no noise, no accounting sign, not
    # readable the other way; they only lose their thousands separators. The rest take the
    # long way.
    plain = at.to_mask(pc.match_substring_regex(t, _CANONICAL[decimal]))
    rest = present & ~plain
    if not rest.any():  # nulls read as NaN
        return _plain_numbers(t, decimal)
    numbers = np.full(len(t), np.nan)
    if plain.any():
        numbers[plain] = _plain_numbers(t.filter(at.from_mask(plain)), decimal)
    numbers[rest] = _any_numbers(t.filter(at.from_mask(rest)), decimal)
    return numbers


# An amount in cents: optional minus, whole units (grouped by the thousands separator in
# threes, or not), the decimal separator, two digits. At most 13 digits of units: the 15
# digits make an integer below 2**53, which divided by 100 is the correctly rounded double,
# the same number as reading the text.
_MAX_UNITS = 13
_MAX_WIDTH = 1 + _MAX_UNITS + (_MAX_UNITS - 1) // 3 + 3


def _cents_layouts(width: int, decimal: str) -> dict[tuple[bool, bool], str]:
    """The layouts of one width, by (negative, grouped): D a digit, the rest as written."""
    thousands = "." if decimal == "," else ","
    out = {}
    for negative in (False, True):
        units_width = width - 3 - negative
        if 1 <= units_width <= _MAX_UNITS:
            out[negative, False] = "-" * negative + "D" * units_width + decimal + "DD"
        # Grouped: 1-3 digits, then groups of three, each after a separator.
        for digits in range(4, _MAX_UNITS + 1):
            if digits + (digits - 1) // 3 == units_width:
                groups = (digits - 1) // 3
                units = "D" * (digits - 3 * groups) + (thousands + "DDD") * groups
                out[negative, True] = "-" * negative + units + decimal + "DD"
    return out


def _cents(t: pa.ChunkedArray, decimal: str) -> tuple[np.ndarray, np.ndarray]:
    """The cells written as amounts in cents, read: the numbers, and a mask of those read.

    Like the fixed-width dates, with the column taken whole (one copy of its text): the cells
    are grouped by width, sign and whether a thousands separator stands where the first one
    would; each group is laid out one row per character position and checked against its
    layout digit by digit."""
    n = len(t)
    numbers = np.full(n, np.nan)
    done = np.zeros(n, dtype=bool)
    whole = t.combine_chunks() if isinstance(t, pa.ChunkedArray) else t
    if whole.null_count == n or whole.buffers()[2] is None:
        return numbers, done
    thousands = ord("." if decimal == "," else ",")
    offsets = value_offsets(whole)
    starts, widths = offsets[:-1], np.diff(offsets)
    chars = np.frombuffer(whole.buffers()[2], dtype=np.uint8)
    # Too short or too long for any layout: width 0 (empty cells too).
    widths[(widths < 4) | (widths > _MAX_WIDTH)] = 0
    if whole.null_count:
        widths[~at.valid(whole)] = 0
    negative = chars.take(starts, mode="clip") == ord("-")
    grouped = chars.take(starts + widths - 7, mode="clip") == thousands
    grouped &= widths >= 7
    group = widths.astype(np.uint8) * np.uint8(4) + negative * np.uint8(2) + grouped
    order = np.argsort(group, kind="stable")  # a radix sort: one byte per cell
    bounds = np.r_[0, np.cumsum(np.bincount(group, minlength=256))]
    for key in np.flatnonzero(np.diff(bounds)):
        width, neg, grp = int(key) // 4, bool(key & 2), bool(key & 1)
        layout = _cents_layouts(width, decimal).get((neg, grp)) if width else None
        if layout is None:
            continue
        cells = order[bounds[key] : bounds[key + 1]]
        where = starts[cells]
        ok = np.ones(len(cells), dtype=bool)
        cents = np.zeros(len(cells), dtype=np.int64)
        row = np.empty(len(cells), dtype=np.uint8)
        for i, c in enumerate(layout):
            np.take(chars[i:], where, out=row)
            if c == "D":
                row -= np.uint8(48)  # wraps around below '0'
                ok &= row <= 9
                cents *= 10
                cents += row
            else:
                ok &= row == ord(c)
        value = cents / 100.0
        read = cells[ok]
        numbers[read] = -value[ok] if neg else value[ok]
        done[read] = True
    return numbers, done


def _plain_numbers(t: pa.ChunkedArray, decimal: str) -> np.ndarray:
    """Cells matching _CANONICAL: drop the thousands separators, read the decimal one.

    Both are single ASCII bytes (never part of a multi-byte character), so this is done on
    Arrow's byte buffers with numpy, instead of two passes of Arrow's replace kernel."""
    if decimal == "." and not pc.any(pc.match_substring(t, ",")).as_py():
        return _to_float(t)  # nothing to rewrite
    chunks = t.chunks if isinstance(t, pa.ChunkedArray) else [t]
    return _to_float(pa.chunked_array([_plain_chunk(c, decimal) for c in chunks], t.type))


def _plain_chunk(chunk: pa.Array, decimal: str) -> pa.Array:
    """`chunk` without its thousands separators and with a decimal point."""
    if not pa.types.is_large_string(chunk.type) or chunk.buffers()[2] is None:
        other = "." if decimal == "," else ","
        chunk = pc.replace_substring(chunk, other, "")
        return pc.replace_substring(chunk, ",", ".") if decimal == "," else chunk
    offsets = value_offsets(chunk)
    data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    relative = offsets - offsets[0]
    dropped = np.flatnonzero(data == ord("." if decimal == "," else ","))
    if len(dropped):
        keep = np.ones(len(data), dtype=bool)
        keep[dropped] = False
        data = data[keep]
        relative = relative - np.searchsorted(dropped, relative)
    elif decimal == ",":
        data = data.copy()
    if decimal == ",":
        data[data == ord(",")] = ord(".")
    return at.rewritten(chunk, relative, data)


def _any_numbers(t: pa.ChunkedArray, decimal: str) -> np.ndarray:
    """Any spelling: strip noise, read accounting negatives, refuse what reads the other way."""
    x = pc.replace_substring_regex(t, _NOISE, "")
    other = "." if decimal == "," else ","
    wrong = pc.fill_null(pc.match_substring_regex(x, _UNAMBIGUOUS[other]), False)
    # Accounting negatives: SAP writes "1.234,56-", others "(1.234,56)".
    negative = pc.or_(pc.ends_with(x, "-"), pc.and_(pc.starts_with(x, "("), pc.ends_with(x, ")")))
    negative = pc.fill_null(negative, False)
    if pc.any(negative).as_py():
        signed = pc.utf8_replace_slice(pc.utf8_trim(x, "()-"), 0, 0, "-")
        x = pc.if_else(negative, signed, x)
    x = pc.replace_substring(x, other, "")
    if decimal == ",":
        x = pc.replace_substring(x, ",", ".")
    readable = pc.and_not(pc.fill_null(pc.match_substring_regex(x, _PLAIN_NUMBER), False), wrong)
    return _to_float(pc.if_else(readable, x, pa.scalar(None, x.type)))


def _to_float(t: pa.ChunkedArray) -> np.ndarray:
    values = pc.cast(t, pa.float64())
    return values.to_numpy(zero_copy_only=False).astype(np.float64, copy=True)


def datetime_column(t: pa.ChunkedArray, formats: list[str], tz: str) -> Parsed:
    """Timestamps in UTC; those without an offset are read in the export's time zone `tz`."""
    n = len(t)
    present = at.valid(t)
    aware = at.to_mask(pc.ends_with(t, "Z"))
    other = present & ~aware  # only cells not ending in Z can carry a numeric offset
    if other.any():
        cells = t if other.all() else t.filter(at.from_mask(other))
        may = _sign_near_end(cells)
        if may.any():
            found = pc.match_substring_regex(cells.filter(at.from_mask(may)), _OFFSET)
            aware[np.flatnonzero(other)[may][at.to_mask(found)]] = True
    if aware.all():
        out = _parse_chain(t, formats, utc=True)
    elif aware.any():
        # The other cells hidden as nulls, not filtered out: the same cells are parsed, without
        # copying the column's text or scattering the result back.
        out = _parse_chain(_only(t, aware), formats, utc=True)
        if not out.flags.writeable:
            out = out.copy()
    else:
        out = np.full(n, _NAT)
    naive = present & ~aware
    if naive.any():
        local = _parse_chain(t.filter(at.from_mask(naive)), formats, utc=False)
        out[naive] = local_to_utc(local, tz)
    values = pd.Series(out).dt.tz_localize("UTC")
    return Parsed(values, pd.Series(present & np.isnat(out)), "unparseable date")


def local_to_utc(local: np.ndarray, tz: str) -> np.ndarray:
    """Wall times in `tz` (naive datetime64[us]) as naive UTC: an ambiguous time (the hour the
    clocks go back) is NaT, a time that does not exist (the hour they skip) is moved forward,
    as pandas' tz_localize does.

    The offset is looked up per hour of wall time: an export spans a few thousand hours, so
    pandas localizes those rather than every cell (a third of the cost of a HubSpot
    timestamp column). Hours whose two ends have different offsets, or none (a clock change
    inside), are left to pandas cell by cell."""
    hours = local.astype("datetime64[h]").view(np.int64)  # floors
    known = ~np.isnat(local)
    first, last = (int(hours[known].min()), int(hours[known].max())) if known.any() else (0, 0)
    if known.sum() < 10_000 or last - first > 2_000_000:  # a few cells, or centuries
        return _localized(local, tz)
    starts = np.arange(first, last + 1).astype("datetime64[h]").astype("datetime64[us]")
    ends = starts + np.timedelta64(3_599_999_999, "us")
    offset = [(edge - _localized(edge, tz)).view(np.int64) for edge in (starts, ends)]
    regular = (offset[0] == offset[1]) & ~np.isnat(_localized(starts, tz))
    regular &= ~np.isnat(_localized(ends, tz))
    row = np.clip(hours - first, 0, last - first)
    use = known & regular[row]
    out = np.full(len(local), _NAT)
    out[use] = local[use] - offset[0][row[use]].view("timedelta64[us]")
    rest = known & ~use
    if rest.any():
        out[rest] = _localized(local[rest], tz)
    return out


def _localized(local: np.ndarray, tz: str) -> np.ndarray:
    """pandas' tz_localize of naive wall times, as naive UTC."""
    zoned = pd.DatetimeIndex(local).tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    return zoned.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[us]")


def _sign_near_end(t: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Cells that may end in a numeric UTC offset (+hh:mm, -hhmm): a sign 5 or 6 bytes from
    the end, or a character past ASCII (digits of other scripts are longer). Two byte lookups
    per cell, so the offset pattern runs only on these (on every cell it costs 100 ns each)."""
    out = []
    for chunk in t.chunks if isinstance(t, pa.ChunkedArray) else [t]:
        offsets = value_offsets(chunk)
        if chunk.buffers()[2] is None or offsets[-1] == offsets[0]:
            out.append(np.zeros(len(chunk), dtype=bool))
            continue
        data = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
        if (data[offsets[0] : offsets[-1]] >= 0x80).any():
            out.append(np.ones(len(chunk), dtype=bool))
            continue
        ends, lengths = offsets[1:], np.diff(offsets)
        sign = np.zeros(len(chunk), dtype=bool)
        for back in (5, 6):
            byte = data.take(ends - back, mode="clip")
            sign |= ((byte == ord("+")) | (byte == ord("-"))) & (lengths >= back)
        out.append(sign)
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def date_column(t: pa.ChunkedArray, formats: list[str]) -> Parsed:
    """Calendar dates (due dates, renewal dates): no time zone, time of day dropped."""
    days = _parse_chain(t, formats, utc=False).astype("datetime64[D]")  # floors, like normalize
    parsed = pd.Series(days.astype("datetime64[us]"))
    return Parsed(parsed, pd.Series(at.valid(t) & np.isnat(days)), "unparseable date")


# --- the pandas-Series interface --------------------------------------------------------------


def text(s: pd.Series) -> pd.Series:
    """Trimmed text, empty cells as <NA>."""
    return at.to_series(trimmed(at.arrow(s)), s.index).astype("str")


def _on_series(s: pd.Series, parsed: Parsed) -> Parsed:
    parsed.values.index = s.index
    parsed.bad.index = s.index
    return parsed


def parse_bool(s: pd.Series) -> Parsed:
    return _on_series(s, bool_column(trimmed(at.arrow(s))))


def parse_code(s: pd.Series) -> Parsed:
    return _on_series(s, code_column(trimmed(at.arrow(s))))


def parse_enum(s: pd.Series, translate: dict[str, str] | None) -> Parsed:
    return _on_series(s, enum_column(trimmed(at.arrow(s)), translate))


def sniff_decimal(columns: list[pd.Series], delimiter: str | None, typed: bool) -> str:
    """Decide the file's decimal separator from the values that can only be read one way."""
    if typed:
        return "."
    return pick_decimal(decimal_votes([trimmed(at.arrow(c)) for c in columns]), delimiter)


def parse_number(s: pd.Series, decimal: str) -> Parsed:
    return _on_series(s, number_column(trimmed(at.arrow(s)), decimal))


def parse_datetime(s: pd.Series, formats: list[str], tz: str) -> Parsed:
    return _on_series(s, datetime_column(trimmed(at.arrow(s)), formats, tz))


def parse_date(s: pd.Series, formats: list[str]) -> Parsed:
    return _on_series(s, date_column(trimmed(at.arrow(s)), formats))


# --- dates ------------------------------------------------------------------------------------


def date_formats(dayfirst: bool, extra: list[str]) -> list[str]:
    if dayfirst:
        local = ["%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d-%m-%Y", "%d.%m.%Y"]
        short = ["%d/%m/%y"]
    else:
        local = ["%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m-%d-%Y"]
        short = ["%m/%d/%y"]
    return [*extra, "ISO8601", *local, *short]


# Fixed-width spellings read without pandas (Y year, M month, D day, h hour, m minute,
# s second, f millisecond; any other character must be there as written).
_ISO_AWARE = ("YYYY-MM-DDThh:mm:ssZ", "YYYY-MM-DDThh:mm:ss.fffZ")
_ISO_NAIVE = ("YYYY-MM-DD", "YYYY-MM-DD hh:mm", "YYYY-MM-DD hh:mm:ss", "YYYY-MM-DDThh:mm:ss")
_LOCAL = {"%d/%m/%Y": "DD/MM/YYYY", "%m/%d/%Y": "MM/DD/YYYY"}
_FIELDS = "YMDhmsf"
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
_FIRST_STAMP, _PAST_STAMP = np.datetime64("1900-01-01", "us"), np.datetime64("2201-01-01", "us")


def _parse_chain(t: pa.ChunkedArray, formats: list[str], utc: bool) -> np.ndarray:
    """`_parse_cells`, once per distinct cell when the column repeats a few values (dates:
    an export of millions of rows spans a few hundred days). Each cell's result depends only
    on the cell and on which spellings the column holds, so it is the same either way."""
    if t.null_count > len(t) // 2:
        # Mostly empty (the promised dates of the few promises): the filled cells only.
        filled = at.valid(t)
        out = np.full(len(t), _NAT)
        out[filled] = _parse_chain(t.filter(at.from_mask(filled)), formats, utc)
        return out
    distinct = _few_distinct(t)
    if distinct is None:
        return _parse_cells(t, formats, utc)
    positions, values = distinct
    parsed = np.append(_parse_cells(values, formats, utc), _NAT)  # position -1: empty cell
    return parsed[positions]


def _few_distinct(t: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array] | None:
    """Each cell's position among the column's distinct values (-1 where empty), and those
    values; None unless a sample says there are few (counting them over a column of
    millions of distinct values would cost more than it saves)."""
    filled = len(t) - t.null_count
    if filled < 10_000:
        return None
    sample = pc.drop_null(t.slice(0, 50_000))
    if pc.count_distinct(sample).as_py() > len(sample) // 20:
        return None
    positions, values = _distinct(t)
    return None if len(values) > filled // 4 else (positions, values)


def _distinct(t: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, pa.Array]:
    """Each cell's position among the column's distinct values (-1 where empty), and those
    values (one pass of Arrow's hashing)."""
    encoded = _dictionary(t)
    positions = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return positions.astype(np.intp, copy=False), encoded.dictionary


def _parse_cells(t: pa.ChunkedArray | pa.Array, formats: list[str], utc: bool) -> np.ndarray:
    """Try each format on the cells still unparsed; UTC (if `utc`) or naive datetime64[us].

    First Arrow's whole-column ISO 8601 cast (the usual case, 5-10x faster than pandas). If a
    cell defeats it, the cells in the common fixed-width spellings are read by Arrow's cast per
    spelling or digit by digit (the same instants pandas gives them; only valid dates in
    1900-2200, anything else is left to pandas), and pandas tries the formats on the rest."""
    present = at.valid(t)
    out = np.full(len(t), _NAT)
    if "ISO8601" in formats and present.any():
        try:
            cast = pc.cast(t, pa.timestamp("us", tz="UTC" if utc else None))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast = None
        if cast is not None:
            return _timestamps(cast)
    todo = present.copy()
    if formats and formats[0] == "ISO8601" and todo.any():
        # A local spelling never reaches pandas' ISO parser: reading it here changes nothing
        # for the other cells.
        local = _LOCAL.get(formats[1]) if len(formats) > 1 else None
        if local and not utc:
            _fill_fixed(t, todo, out, [local])
        iso = list(_ISO_AWARE if utc else _ISO_NAIVE)
        before = None if utc else todo.copy()
        _fill_fixed(t, todo, out, iso)
        # pandas parses the ISO-looking cells as one batch and refuses a batch mixing local
        # times with offsets; keep that batch as it was unless the cells left are plain dates.
        if before is not None and not _plain_dates_only(t, todo):
            out[before & ~todo] = _NAT  # the cells just read were unread (NaT) before
            todo = before
    if todo.any():
        # What is left for pandas is mostly the same few bad spellings ("not a date") over and
        # over: each distinct one is parsed once (pandas' cost is per call and per format).
        positions, values = _distinct(t.filter(at.from_mask(todo)))
        parsed = _parse_with_pandas(str_column(values, len(values)), formats, utc)
        stamps = parsed.to_numpy(dtype="datetime64[us]") if not utc else _naive_utc(parsed)
        out[todo] = stamps[positions]
    return out


def _naive_utc(parsed: pd.Series) -> np.ndarray:
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")


def _timestamps(cast: pa.ChunkedArray) -> np.ndarray:
    if cast.type.tz is not None:
        cast = cast.cast(pa.timestamp("us"))
    return cast.to_numpy().astype("datetime64[us]", copy=False)


def _plain_dates_only(t: pa.ChunkedArray, todo: np.ndarray) -> bool:
    """No cell left for pandas' ISO parser has more than a date (so none carries an offset)."""
    if not todo.any():
        return True
    left = t.filter(at.from_mask(todo))
    iso = at.to_mask(pc.match_substring_regex(left, r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"))
    longer = at.to_mask(pc.greater(pc.binary_length(left), 10))
    return not (iso & longer).any()


# A time of day followed by a UTC offset; group 1 is everything but the offset.
_TIME_WITH_OFFSET = (
    r"^(.*[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?)\s*(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
)


def _parse_with_pandas(t: pd.Series, formats: list[str], utc: bool) -> pd.Series:
    """pandas, format by format, its ISO parser only on ISO-looking cells."""
    dtype = "datetime64[us, UTC]" if utc else "datetime64[us]"
    out = pd.Series(pd.NaT, index=t.index, dtype=dtype)
    todo = t.notna()
    for fmt in formats:
        if not todo.any():
            break
        cand = t if todo.all() else t[todo]
        if fmt == "ISO8601":
            cand = cand[cand.str.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False).astype(bool)]
            if cand.empty:
                continue
            if not utc:
                # A naive column (calendar dates) keeps each cell's own wall time: pandas
                # refuses a batch mixing offsets ("Mixed timezones"), so the offsets go.
                cand = at.replace(cand, _TIME_WITH_OFFSET, r"\1")
            parsed = pd.to_datetime(cand, format="ISO8601", errors="coerce", utc=utc)
        else:
            # pandas, not Arrow's strptime: Arrow rolls 31/02 over into March.
            parsed = pd.to_datetime(cand, format=fmt, errors="coerce", utc=utc)
        out.loc[parsed.index] = parsed.astype(dtype)
        todo = todo & out.isna()
    return out


def _fill_fixed(t: pa.ChunkedArray, todo: np.ndarray, out: np.ndarray, layouts: list[str]) -> None:
    """Read the cells of `todo` written in one of `layouts` into `out`; clear them in `todo`.

    Works chunk by chunk and with masks over the column (no row numbers, lengths or start
    positions for the whole column): on a big export every such array is tens of MB of fresh
    memory."""
    chunks = t.chunks if isinstance(t, pa.ChunkedArray) else [t]
    bounds = np.cumsum([0, *(len(c) for c in chunks)])
    for layout in layouts:
        width = len(layout)
        take = np.zeros(len(t), dtype=bool)
        picked = []
        for k, chunk in enumerate(chunks):
            part = take[bounds[k] : bounds[k + 1]]
            np.equal(np.diff(value_offsets(chunk)), width, out=part)
            part &= todo[bounds[k] : bounds[k + 1]]
            if part.any():
                picked.append((chunk, part))
        if not picked:
            continue
        scratch = np.empty((width, max(int(np.count_nonzero(m)) for _, m in picked)), np.uint8)

        def blocks(
            positions: list[int], picked: list = picked, scratch: np.ndarray = scratch
        ) -> Iterator[tuple[slice, np.ndarray]]:
            """The cells a chunk at a time, one row per character position asked for, gathered
            straight from Arrow's buffers into one small reused block (the whole column laid
            out so would be width x cells of fresh memory)."""
            done = 0
            for chunk, mask in picked:
                chars = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)
                where = value_offsets(chunk)[:-1][mask]
                block = scratch[: len(positions), : len(where)]
                for row, i in enumerate(positions):
                    np.take(chars[i:], where, out=block[row])
                yield slice(done, done + len(where)), block
                done += len(where)

        def chosen(ok: np.ndarray, take: np.ndarray = take) -> np.ndarray:
            """The cells of the column (a mask) that are the candidates marked in `ok`."""
            if ok.all():
                return take
            sel = take.copy()
            sel[take] = ok
            return sel

        def cast(ok: np.ndarray, zone: str | None) -> bool:
            """Arrow's cast of the chosen cells, through a view of the column with the other
            cells null; False (nothing read) when it refuses one of them. Only years
            1900-2200 are taken (the others stay for pandas)."""
            sel = chosen(ok)
            try:
                stamps = _timestamps(pc.cast(_only(t, sel), pa.timestamp("us", tz=zone)))
            except pa.ArrowInvalid:
                return False
            sel &= (stamps >= _FIRST_STAMP) & (stamps < _PAST_STAMP)
            np.copyto(out, stamps, where=sel)
            todo[sel] = False
            return True

        def put(stamps: np.ndarray, ok: np.ndarray) -> None:
            """Candidates' timestamps where `ok`."""
            sel = chosen(ok)
            out[sel] = stamps if ok.all() else stamps[ok]
            todo[sel] = False

        _read_layout(blocks, int(np.count_nonzero(take)), layout, cast, put)


def _read_layout(
    blocks: Callable[[list[int]], Iterator[tuple[slice, np.ndarray]]],
    n: int,
    layout: str,
    cast: Callable[[np.ndarray, str | None], bool],
    put: Callable[[np.ndarray, np.ndarray], None],
) -> None:
    """Read `n` fixed-width cells: `blocks(positions)` gives them a slice at a time, one row
    per character position asked for. The valid ones go to `cast(ok, zone)` (Arrow's cast, for
    ISO spellings) or, digit by digit, to `put(timestamps, ok)`."""
    digit_at = [i for i, c in enumerate(layout) if c in _FIELDS]
    literal_at = [i for i, c in enumerate(layout) if c not in _FIELDS]
    expected = np.frombuffer(layout.encode(), dtype=np.uint8)[literal_at][:, None]
    ordinal = layout.startswith("YYYY-")  # ISO: only the date is read before Arrow's cast
    ok = np.ones(n, dtype=bool)
    fields: dict[str, np.ndarray] = {}

    def read(which: str, whole: bool) -> None:
        """Accumulate the digits of the fields in `which` and mark in `ok` the cells whose
        digits there are digits; with `whole`, every position is checked (digits and the
        layout's literal characters)."""
        wanted = [i for i in digit_at if layout[i] in which]
        positions = sorted({*digit_at, *literal_at}) if whole else wanted
        rows = {i: row for row, i in enumerate(positions)}
        checked = [rows[i] for i in digit_at] if whole else list(range(len(wanted)))
        literal_rows = [rows[i] for i in literal_at] if whole else []
        for f in which:
            fields[f] = np.zeros(n, dtype=np.int32)
        for part, block in blocks(positions):
            digits = block[checked] - np.uint8(48)  # wraps around below '0'
            valid = (digits <= 9).all(axis=0)
            if literal_rows:
                valid &= (block[literal_rows] == expected).all(axis=0)
            ok[part] &= valid
            for i in wanted:
                fields[layout[i]][part] *= 10
                fields[layout[i]][part] += block[rows[i]] - np.uint8(48)

    def calendar() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Clear in `ok` the dates that do not exist (30 February, month 13, year 20250); the
        year's row in _YEARS, the month from 0 and whether the year is a leap year. The
        calendar is looked up, not computed (each step of the arithmetic would be another
        column-sized array); cells that are no date read clipped garbage."""
        year, month, day = fields["Y"], fields["M"], fields["D"]
        valid = (year >= 1900) & (year <= 2200)
        valid &= (month >= 1) & (month <= 12) & (day >= 1)
        y = year - np.int32(_YEARS[0])
        np.clip(y, 0, len(_YEARS) - 1, out=y)
        m = np.clip(month, 1, 12)
        m -= 1
        leap = _LEAP[y]
        valid &= day <= _MONTH_DAYS[m] + ((month == 2) & leap)
        np.logical_and(ok, valid, out=ok)
        return y, m, leap

    if ordinal:
        # ISO spellings. Timestamps in UTC are usually all well formed: Arrow's cast takes them
        # at once, without a digit being looked at. Otherwise the date's digits find the cells
        # that are no date (30 February) and Arrow's cast (which refuses 31/04, 24:00, :60 like
        # pandas) reads the others in one go; only a group holding a cell it still refuses is
        # read digit by digit below. Arrow reads the other ISO spellings it accepts at this
        # width (a space for the T) as the instants pandas gives them.
        zone = "UTC" if layout.endswith("Z") else None
        if zone and cast(np.ones(n, dtype=bool), zone):
            return
        read("YMD", whole=False)
        calendar()
        if not ok.any() or cast(ok, zone):
            return
        ok[:] = True
    read("".join(dict.fromkeys(layout[i] for i in digit_at)), whole=True)
    y, m, leap = calendar()
    if not ok.any():
        return
    zero = np.int32(0)
    hour, minute, second = (fields.get(f, zero) for f in "hms")
    if "h" in fields:
        ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    days = _YEAR_START[y]
    m += leap * np.int32(12)
    days += _MONTH_START[m]
    days += fields["D"]
    days -= 1
    micros = days.astype(np.int64)
    micros *= 86400
    if "h" in fields:
        micros += (hour * 60 + minute) * 60 + second
    micros *= _US
    if "f" in fields:
        micros += fields["f"] * 1000
    put(micros.view("datetime64[us]"), ok)


def _days(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


# The calendar of the years fixed-width dates may have (see _read_layout): leap years, the day
# number (since 1970-01-01) of each 1 January, and of each month's first day within its year
# (common years, then leap years).
_YEARS = np.arange(1900, 2201, dtype=np.int32)
_LEAP = (_YEARS % 4 == 0) & ((_YEARS % 100 != 0) | (_YEARS % 400 == 0))
_YEAR_START = _days(_YEARS, np.ones_like(_YEARS), np.ones_like(_YEARS)).astype(np.int32)
_MONTH_START = np.concatenate(
    [
        np.r_[0, np.cumsum(_MONTH_DAYS)[:-1]],
        np.r_[0, np.cumsum(_MONTH_DAYS + (np.arange(12) == 1))[:-1]],
    ]
).astype(np.int32)
