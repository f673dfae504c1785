"""Cell parsers: the number, date and yes/no spellings real exports contain."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

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
