"""Parse text cells into typed columns, column at a time, and say which cells did not parse.

Spanish and Latin American Excel writes "1.234,56" and "31/12/2026"; Salesforce writes ISO
timestamps in UTC; HubSpot writes local times without an offset. Each parser is vectorised
and returns the typed column together with a mask of the non-empty cells it could not read,
so a bad cell becomes a quarantine row instead of a silent NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tasks import arrow_text as at

TRUE_WORDS = ("true", "t", "yes", "y", "1", "si", "sí", "s", "x", "verdadero", "opted in")
FALSE_WORDS = ("false", "f", "no", "n", "0", "falso", "opted out")
_BOOLS = {w: True for w in TRUE_WORDS} | {w: False for w in FALSE_WORDS}

_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"
# Literal characters, not \s: pandas hands a pattern with Python escapes to Python's re
# (row by row) instead of Arrow's engine.
_NOISE = "[ \t\r\n\u00a0\u202f€$£]"
_PLAIN_NUMBER = r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
# A value whose last separator is a comma followed by 1-2 or 4+ digits, or a comma after a dot
# group, can only be a decimal comma; likewise for the decimal point.
_UNAMBIGUOUS = {
    ",": r"(?:^[^.,]*\d,\d{1,2}$|^[^.,]*\d,\d{4,}$|\.\d{3},\d+$)",
    ".": r"(?:^[^.,]*\d\.\d{1,2}$|^[^.,]*\d\.\d{4,}$|,\d{3}\.\d+$)",
}


@dataclass
class Parsed:
    values: pd.Series
    bad: pd.Series  # True where a non-empty cell could not be read
    reason: str


def text(s: pd.Series) -> pd.Series:
    """Trimmed text, empty cells as <NA>."""
    arr = pc.utf8_trim_whitespace(at.arrow(s))
    arr = pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)
    return at.to_series(arr, s.index).astype("str")


def _by_distinct(t: pd.Series, lookup) -> pd.Series:
    """Apply `lookup` once per distinct value: exports repeat the same few words."""
    codes, uniques = pd.factorize(t, use_na_sentinel=True)
    mapped = np.array([lookup(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=t.index, dtype=object)


def parse_bool(s: pd.Series) -> Parsed:
    t = text(s)
    values = _by_distinct(t, lambda u: _BOOLS.get(u.lower()))
    out = values.astype("boolean")
    return Parsed(out, t.notna() & out.isna(), "unparseable yes/no value")


def parse_code(s: pd.Series) -> Parsed:
    """Currency codes: upper-cased; the schema checks them against ISO 4217."""
    t = text(s).str.upper()
    return Parsed(t, pd.Series(False, index=s.index), "")


def parse_enum(s: pd.Series, translate: dict[str, str] | None) -> Parsed:
    """Translate export values (e.g. 'Credit Memo') to Cadencia's (e.g. 'credit_note')."""
    t = text(s)
    if not translate:
        return Parsed(t.str.lower(), pd.Series(False, index=s.index), "")
    default = translate.get("_default")
    folded = {k.casefold(): v for k, v in translate.items() if k != "_default"}

    def lookup(u: str) -> str | None:
        return translate.get(u) or folded.get(u.casefold()) or default or u.lower()

    values = _by_distinct(t, lookup).astype("str")
    return Parsed(values.where(t.notna()), pd.Series(False, index=s.index), "")


def sniff_decimal(columns: list[pd.Series], delimiter: str | None, typed: bool) -> str:
    """Decide the file's decimal separator from the values that can only be read one way."""
    if typed:
        return "."
    votes = {",": 0, ".": 0}
    for col in columns:
        sample = text(col).dropna().head(20_000).str.replace(_NOISE, "", regex=True)
        for sep, pattern in _UNAMBIGUOUS.items():
            votes[sep] += int(sample.str.contains(pattern, regex=True).sum())
    if votes[","] != votes["."]:
        return "," if votes[","] > votes["."] else "."
    return "," if delimiter == ";" else "."


def parse_number(s: pd.Series, decimal: str) -> Parsed:
    t = text(s)
    present = t.notna()
    if not present.any():
        return Parsed(pd.Series(np.nan, index=s.index), present, "")
    if present.mean() < 0.5:  # a mostly empty column: parse the filled cells only
        part = parse_number(t[present], decimal)
        values = pd.Series(np.nan, index=s.index)
        values[present] = part.values
        bad = pd.Series(False, index=s.index)
        bad[present] = part.bad
        return Parsed(values, bad, part.reason)
    t = t.str.replace(_NOISE, "", regex=True)
    other = "." if decimal == "," else ","
    wrong = present & t.str.contains(_UNAMBIGUOUS[other], regex=True).fillna(False)
    # Accounting negatives: SAP writes "1.234,56-", others "(1.234,56)".
    negative = (t.str.endswith("-") | (t.str.startswith("(") & t.str.endswith(")"))).fillna(False)
    if negative.any():
        t = t.where(~negative, "-" + t.str.strip("()-"))
    t = t.str.replace(other, "", regex=False)
    if decimal == ",":
        t = t.str.replace(",", ".", regex=False)
    readable = t.str.fullmatch(_PLAIN_NUMBER).fillna(False).astype(bool) & ~wrong
    values = t.where(readable).astype("float64")
    bad = present & values.isna()
    reason = (
        f"unparseable number (this file uses decimal {'commas' if decimal == ',' else 'points'})"
    )
    return Parsed(values, bad, reason)


def date_formats(dayfirst: bool, extra: list[str]) -> list[str]:
    if dayfirst:
        local = ["%d/%m/%Y", "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d-%m-%Y", "%d.%m.%Y"]
        short = ["%d/%m/%y"]
    else:
        local = ["%m/%d/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m-%d-%Y"]
        short = ["%m/%d/%y"]
    return [*extra, "ISO8601", *local, *short]


def _parse_chain(t: pd.Series, formats: list[str], utc: bool) -> pd.Series:
    """Try each format on the cells still unparsed: first Arrow's whole-column ISO 8601 cast
    (the usual case, 5-10x faster than pandas), else pandas format by format, its ISO parser
    only on ISO-looking cells."""
    dtype = "datetime64[us, UTC]" if utc else "datetime64[us]"
    present = t.notna()
    if "ISO8601" in formats and present.any():
        try:
            cast = pc.cast(at.arrow(t[present]), pa.timestamp("us", tz="UTC" if utc else None))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast = None
        if cast is not None:
            out = pd.Series(pd.NaT, index=t.index, dtype=dtype)
            out[present] = at.to_series(cast, t.index[present]).astype(dtype)
            return out
    out = pd.Series(pd.NaT, index=t.index, dtype=dtype)
    todo = present
    for fmt in formats:
        if not todo.any():
            break
        cand = t if todo.all() else t[todo]
        if fmt == "ISO8601":
            cand = cand[cand.str.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fillna(False).astype(bool)]
            if cand.empty:
                continue
            parsed = pd.to_datetime(cand, format="ISO8601", errors="coerce", utc=utc)
        else:
            # pandas, not Arrow's strptime: Arrow rolls 31/02 over into March.
            parsed = pd.to_datetime(cand, format=fmt, errors="coerce", utc=utc)
        out.loc[parsed.index] = parsed.astype(dtype)
        todo = todo & out.isna()
    return out


def parse_datetime(s: pd.Series, formats: list[str], tz: str) -> Parsed:
    """Timestamps in UTC; those without an offset are read in the export's time zone `tz`."""
    t = text(s)
    present = t.notna()
    aware = t.str.contains(_OFFSET, regex=True).fillna(False)
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    if aware.all():
        out = _parse_chain(t, formats, utc=True)
    elif aware.any():
        out[aware] = _parse_chain(t[aware], formats, utc=True)
    naive = present & ~aware
    if naive.any():
        local = _parse_chain(t[naive], formats, utc=False)
        out[naive] = local.dt.tz_localize(
            tz, ambiguous="NaT", nonexistent="shift_forward"
        ).dt.tz_convert("UTC")
    return Parsed(out, present & out.isna(), "unparseable date")


def parse_date(s: pd.Series, formats: list[str]) -> Parsed:
    """Calendar dates (due dates, renewal dates): no time zone, time of day dropped."""
    t = text(s)
    parsed = _parse_chain(t, formats, utc=False).dt.normalize()
    return Parsed(parsed, t.notna() & parsed.isna(), "unparseable date")
