"""Cell parsers: the number, date and yes/no spellings real exports contain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks import arrow_text as at
from tasks.sources import coerce

S = lambda *v: pd.Series(list(v), dtype="str")  # noqa: E731


@pytest.mark.parametrize(
    ("cell", "decimal", "expected"),
    [
        ("1.234,56", ",", 1234.56),
        ("1234,56", ",", 1234.56),
        ("1.234.567,8", ",", 1234567.8),
        ("1.234", ",", 1234.0),  # es thousands
        ("-12,5", ",", -12.5),
        ("1.234,56-", ",", -1234.56),  # SAP trailing minus
        ("(1.234,56)", ",", -1234.56),  # accounting negative
        ("€ 1.234,56", ",", 1234.56),
        ("1\u00a0234,56", ",", 1234.56),  # non-breaking space as thousands
        ("1,234.56", ".", 1234.56),
        ("1234.5", ".", 1234.5),
        ("1,234", ".", 1234.0),
        ("$1,234.00", ".", 1234.0),
        ("0", ".", 0.0),
    ],
)
def test_numbers(cell: str, decimal: str, expected: float) -> None:
    parsed = coerce.parse_number(S(cell), decimal)
    assert not parsed.bad.iloc[0]
    assert parsed.values.iloc[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("cell", "decimal"),
    [("12abc", "."), ("1.5", ","), ("12,50", "."), ("1,234.56", ","), ("--", ".")],
)
def test_numbers_that_must_be_quarantined(cell: str, decimal: str) -> None:
    parsed = coerce.parse_number(S(cell), decimal)
    assert parsed.bad.iloc[0] and pd.isna(parsed.values.iloc[0])


def test_empty_number_is_missing_not_bad() -> None:
    parsed = coerce.parse_number(S("", "  ", None), ",")
    assert not parsed.bad.any() and parsed.values.isna().all()


@pytest.mark.parametrize(
    ("cells", "delimiter", "expected"),
    [
        (["1.234,56", "12,5"], ",", ","),
        (["1,234.56", "12.5"], ";", "."),
        (["1234", "5"], ";", ","),  # nothing decides: Spanish Excel's semicolon implies comma
        (["1234", "5"], ",", "."),
    ],
)
def test_decimal_sniffing(cells: list[str], delimiter: str, expected: str) -> None:
    assert coerce.sniff_decimal([S(*cells)], delimiter, typed=False) == expected


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False))
def test_spanish_and_english_spellings_agree(value) -> None:
    en = f"{value:,.2f}"
    es = en.replace(",", "_").replace(".", ",").replace("_", ".")
    a = coerce.parse_number(S(en), ".").values.iloc[0]
    b = coerce.parse_number(S(es), ",").values.iloc[0]
    assert a == b == pytest.approx(float(value))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-10-03T14:22:05.000Z", "2026-10-03 14:22:05+00:00"),
        ("2026-10-03T16:22:05+02:00", "2026-10-03 14:22:05+00:00"),
        ("2026-10-03 16:22", "2026-10-03 14:22:00+00:00"),  # naive: Madrid summer time
        ("03/10/2026 16:22", "2026-10-03 14:22:00+00:00"),
        ("2026-01-15", "2026-01-14 23:00:00+00:00"),
    ],
)
def test_datetimes(cell: str, expected: str) -> None:
    parsed = coerce.parse_datetime(S(cell), coerce.date_formats(True, []), "Europe/Madrid")
    assert parsed.values.iloc[0] == pd.Timestamp(expected)


@pytest.mark.parametrize(
    ("cell", "dayfirst", "expected"),
    [
        ("31/12/2026", True, "2026-12-31"),
        ("03/10/2026", True, "2026-10-03"),
        ("03/10/2026", False, "2026-03-10"),
        ("3.10.2026", True, "2026-10-03"),
        ("2026-10-03", True, "2026-10-03"),
        ("03/10/26", True, "2026-10-03"),
    ],
)
def test_dates(cell: str, dayfirst: bool, expected: str) -> None:
    parsed = coerce.parse_date(S(cell), coerce.date_formats(dayfirst, []))
    assert parsed.values.iloc[0] == pd.Timestamp(expected)


@pytest.mark.parametrize("cell", ["32/10/2026", "2026-13-01", "ayer", "31/02/2026"])
def test_bad_dates(cell: str) -> None:
    parsed = coerce.parse_date(S(cell), coerce.date_formats(True, []))
    assert parsed.bad.iloc[0]


def test_a_date_column_mixing_offsets_reads_each_cell_as_written() -> None:
    # pandas refuses a batch mixing time zones; a calendar date keeps its own wall date.
    cells = ["01/02/2026", "2026-01-03T23:00:00+02:00", "2026-01-01 10:00:00-03:00", "x"]
    parsed = coerce.parse_date(pd.Series(cells, dtype="str"), coerce.date_formats(True, []))
    assert [str(v)[:10] for v in parsed.values] == ["2026-02-01", "2026-01-03", "2026-01-01", "NaT"]
    assert parsed.bad.tolist() == [False, False, False, True]


def test_booleans() -> None:
    parsed = coerce.parse_bool(S("true", "FALSE", "Yes", "no", "Sí", "1", "0", "", "maybe"))
    assert parsed.values.tolist()[:7] == [True, False, True, False, True, True, False]
    assert pd.isna(parsed.values.iloc[7]) and not parsed.bad.iloc[7]  # empty = unknown
    assert parsed.bad.iloc[8]


def test_enum_translation_is_case_insensitive_with_default() -> None:
    parsed = coerce.parse_enum(S("Closed Won", "closed lost", "Negotiation", ""), {
        "Closed Won": "won", "Closed Lost": "lost", "_default": "open"})  # fmt: skip
    assert parsed.values.tolist()[:3] == ["won", "lost", "open"]
    assert pd.isna(parsed.values.iloc[3])


# --- the fast paths give what pandas gives ----------------------------------------------------

_LAYOUT_CELLS = st.builds(
    lambda y, m, d, h, mi, s, f, form: form.format(y=y, m=m, d=d, h=h, mi=mi, s=s, f=f),
    st.sampled_from(
        ["0000", "0026", "1899", "1900", "1990", "2023", "2024", "2100", "2200", "2201"]
    ),
    st.integers(0, 13).map("{:02d}".format),
    st.integers(0, 32).map("{:02d}".format),
    st.integers(0, 25).map("{:02d}".format),
    st.integers(0, 60).map("{:02d}".format),
    st.integers(0, 60).map("{:02d}".format),
    st.integers(0, 999).map("{:03d}".format),
    st.sampled_from(
        [
            "{y}-{m}-{d}T{h}:{mi}:{s}Z",
            "{y}-{m}-{d}T{h}:{mi}:{s}.{f}Z",
            "{y}-{m}-{d}",
            "{y}-{m}-{d} {h}:{mi}",
            "{y}-{m}-{d} {h}:{mi}:{s}",
            "{y}-{m}-{d}T{h}:{mi}:{s}",
            "{d}/{m}/{y}",
            "{d}/{m}/{y} {h}:{mi}",
            "{d}.{m}.{y}",
        ]
    ),
)


def _pandas_chain(cells: pd.Series, formats: list[str], utc: bool) -> pd.Series:
    """The reference: pandas, format by format, on every cell."""
    return coerce._parse_with_pandas(cells, formats, utc)


@settings(max_examples=40, deadline=None)
@given(st.lists(_LAYOUT_CELLS | st.just("ayer"), min_size=1, max_size=60), st.booleans())
def test_fixed_width_dates_read_like_pandas(cells: list[str], dayfirst: bool) -> None:
    # Arrow's whole-column cast fails on "ayer", so the digit-by-digit reader and pandas share
    # the column; the result must be pandas' own, cell for cell.
    cells = [*cells, "ayer"]
    formats = coerce.date_formats(dayfirst, [])
    naive = [c for c in cells if not c.endswith("Z")]
    got = coerce.parse_date(S(*naive), formats).values
    expected = _pandas_chain(S(*naive), formats, utc=False).dt.normalize()
    pd.testing.assert_series_equal(got, expected, check_names=False)
    aware = [c for c in cells if c.endswith("Z")] + ["ayer"]
    got_utc = coerce._parse_chain(coerce.trimmed(pa.chunked_array([aware])), formats, utc=True)
    expected_utc = _pandas_chain(S(*aware), formats, utc=True)
    np.testing.assert_array_equal(got_utc, coerce._naive_utc(expected_utc))


def test_fixed_width_calendar_matches_pandas_at_the_edges() -> None:
    # The digit-by-digit reader looks the calendar up: every day 0-32 of every month 0-13 of
    # the first, last, leap and century years it covers (and one just outside), in both
    # spellings, with a cell that defeats Arrow's whole-column cast.
    years = ["1899", "1900", "1904", "2000", "2023", "2024", "2100", "2200", "2201"]
    days = [f"{d:02d}" for d in range(33)]
    months = [f"{m:02d}" for m in range(14)]
    local = [f"{d}/{m}/{y}" for y in years for m in months for d in days] + ["ayer"]
    iso = [f"{y}-{m}-{d} 23:59:59" for y in years for m in months for d in days] + ["ayer"]
    formats = coerce.date_formats(True, [])
    for cells in (local, iso):
        got = coerce.parse_date(S(*cells), formats).values
        expected = _pandas_chain(S(*cells), formats, utc=False).dt.normalize()
        pd.testing.assert_series_equal(got, expected, check_names=False)
    aware = [f"{y}-{m}-{d}T12:00:00Z" for y in years for m in months for d in days] + ["ayer"]
    got_utc = coerce._parse_chain(coerce.trimmed(pa.chunked_array([aware])), formats, utc=True)
    expected_utc = _pandas_chain(S(*aware), formats, utc=True)
    np.testing.assert_array_equal(got_utc, coerce._naive_utc(expected_utc))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789.,-() €\u00a0", max_size=12)
        | st.decimals(-(10**9), 10**9, places=2, allow_nan=False).map(lambda v: f"{v:,.2f}"),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([",", "."]),
)
def test_plain_number_path_agrees_with_the_full_path(cells: list[str], decimal: str) -> None:
    fast = coerce.parse_number(S(*cells), decimal)
    full = coerce._any_numbers(coerce.trimmed(pa.chunked_array([cells])), decimal)
    present = coerce.text(S(*cells)).notna().to_numpy()
    expected = np.where(present, full, np.nan)
    np.testing.assert_array_equal(fast.values.to_numpy(), expected)
    assert (fast.bad.to_numpy() == (present & np.isnan(expected))).all()


@settings(max_examples=25, deadline=None)
@given(st.lists(_LAYOUT_CELLS | st.just("ayer"), min_size=1, max_size=40), st.booleans())
def test_a_column_of_few_distinct_dates_reads_as_every_cell_alone(
    cells: list[str], dayfirst: bool
) -> None:
    # Millions of rows span a few hundred days: each distinct cell is parsed once and the
    # result spread over the column; every cell must get what parsing it in place gives.
    column = (cells * (12_000 // len(cells) + 1))[:12_000]
    t = coerce.trimmed(pa.chunked_array([column]))
    assert coerce._few_distinct(t) is not None
    formats = coerce.date_formats(dayfirst, [])
    # A mostly empty column (promised dates) is read on its filled cells only.
    sparse = coerce.trimmed(
        pa.chunked_array(
            [[c if i % 3 == 0 else None for i, c in enumerate(column)]], pa.large_string()
        )
    )
    for utc in (False, True):
        got = coerce._parse_chain(t, formats, utc)
        np.testing.assert_array_equal(got, coerce._parse_cells(t, formats, utc))
        got = coerce._parse_chain(sparse, formats, utc)
        np.testing.assert_array_equal(got, coerce._parse_cells(sparse, formats, utc))


def test_well_formed_utc_timestamps_outside_1900_2200_are_left_to_pandas() -> None:
    # Arrow's cast takes a whole width of well-formed UTC timestamps at once; the years the
    # fixed-width reader leaves to pandas stay pandas'.
    aware = [
        "1899-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z",
        "2026-08-22T00:00:04Z",
        "2026-08-22 00:00:04Z",
        "ayer",
    ]
    formats = coerce.date_formats(False, [])
    got = coerce._parse_chain(coerce.trimmed(pa.chunked_array([aware])), formats, utc=True)
    expected = _pandas_chain(S(*aware), formats, utc=True)
    np.testing.assert_array_equal(got, coerce._naive_utc(expected))


def _spelt(cents: int, decimal: str, grouped: bool) -> str:
    text = f"{abs(cents) // 100:,}" if grouped else str(abs(cents) // 100)
    if decimal == ",":
        text = text.replace(",", ".")
    return ("-" if cents < 0 else "") + text + decimal + f"{abs(cents) % 100:02d}"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(-(10**16), 10**16), st.booleans())
        | st.tuples(st.integers(-(10**6), 10**6), st.booleans()),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from([",", "."]),
    st.lists(st.text(alphabet="0123456789.,- ", max_size=12), max_size=5),
)
def test_amounts_in_cents_read_as_the_text_reads(
    amounts: list[tuple[int, bool]], decimal: str, odd: list[str]
) -> None:
    # Amounts written in cents are read digit by digit (up to 13 digits of units); every cell
    # must get the very double the general reader gives it, sign of zero included.
    cells = [_spelt(cents, decimal, grouped) for cents, grouped in amounts] + odd
    t = coerce.trimmed(pa.chunked_array([cells], pa.large_string()))
    present = at.valid(t)
    got = coerce._numbers(t, decimal, present)
    expected = coerce._written_numbers(t, decimal, present)
    assert got.tobytes() == expected.tobytes()


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.text(alphabet="0123456789+-: TZ٣", max_size=14)
        | st.sampled_from(["2026-10-03T16:22:05+02:00", "2026-10-03 16:22-0300", "2026-10-03"]),
        min_size=1,
        max_size=30,
    )
)
def test_the_offset_pattern_runs_on_every_cell_that_may_carry_one(cells: list[str]) -> None:
    # The UTC-offset pattern is only run on the cells not ending in Z with a sign where an
    # offset's would be (or a non-ASCII character): every such cell it matches is among them.
    t = pa.chunked_array([cells[: len(cells) // 2], cells[len(cells) // 2 :]], pa.large_string())
    matches = pc.match_substring_regex(t, coerce._OFFSET).to_numpy(zero_copy_only=False)
    ends_in_z = pc.ends_with(t, "Z").to_numpy(zero_copy_only=False)  # taken before
    may = coerce._sign_near_end(t)
    assert len(may) == len(cells)
    assert not (matches & ~ends_in_z & ~may).any()


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from(
        ["Europe/Madrid", "America/Santiago", "Australia/Lord_Howe", "America/St_Johns", "UTC"]
    ),
    st.integers(2015, 2030),
    st.lists(st.integers(0, 366 * 24 * 60), min_size=1, max_size=50),
)
def test_wall_times_become_utc_as_pandas_localizes_them(
    tz: str, year: int, minutes: list[int]
) -> None:
    # Every minute of the year's clock changes (and some drawn ones) plus a filler of 20,000
    # ordinary cells, so the hour table is used: each cell must get pandas' answer, NaT for an
    # ambiguous time, shifted forward for one that does not exist.
    start = np.datetime64(f"{year}-01-01T00:00", "us")
    hours = start + np.arange(366 * 24).astype("timedelta64[h]")
    offsets = hours - coerce._localized(hours, tz)  # NaT where the hour is ambiguous
    changed = np.isnat(offsets[1:]) | (offsets[1:] != offsets[:-1])
    changes = hours[1:][changed]
    assert tz != "Europe/Madrid" or len(changes) >= 2  # March and October
    near = [c + np.timedelta64(m, "m") for c in changes for m in range(-150, 150, 7)]
    drawn = [start + np.timedelta64(m, "m") + np.timedelta64(m % 60, "s") for m in minutes]
    filler = start + np.arange(20_000).astype("timedelta64[m]") * 26
    local = np.array([*near, *drawn, np.datetime64("NaT"), *filler], dtype="datetime64[us]")
    got = coerce.local_to_utc(local, tz)
    expected = coerce._localized(local, tz)
    np.testing.assert_array_equal(got, expected)
