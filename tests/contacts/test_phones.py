"""Phone normalisation: real spellings → exact E.164, type, extension and time zones; and the
core guarantee that the column-wise fast path answers exactly what phonenumbers answers for the
canonical form of every input (the slow path *is* phonenumbers).

Expected values in the tables are literals, derived by hand and checked against phonenumbers
9.0.x (`phonenumbers.parse(raw, region)`, `is_valid_number`, `number_type`, `format_number(...,
E164)`, `timezone.time_zones_for_number`). Where our canonicalisation deliberately differs from
plain phonenumbers (00 read as '+' for every region; Mexico's legacy +52 1 / 521 / 044 / 045 /
01 forms) the difference is tested explicitly in `DELIBERATE_DIFFERENCES`.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
import phonenumbers
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.contacts import phones
from tasks.contacts.countries import region_of
from tasks.contacts.phones import canonical_forms, normalise_phones, parse_one

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def _norm(value: Any) -> Any:
    """None, NaN, <NA> and '' all mean 'nothing'."""
    if value is None or value is pd.NA or value == "":
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


# --- the table: real-world spellings -------------------------------------------------------


class Case(NamedTuple):
    raw: str
    region: str
    e164: str | None
    phone_type: str
    extension: str | None
    time_zones: str | None


FLM = "fixed_line_or_mobile"
MADRID_CANARY = "Atlantic/Canary|Europe/Madrid"
LISBON_AZORES = "Atlantic/Azores|Europe/Lisbon"
MEXICO_CITY = "America/Mexico_City"
NEW_YORK = "America/New_York"
LOS_ANGELES = "America/Los_Angeles"
# A NANP toll-free number is not geographic: phonenumbers gives every zone of calling code 1.
NANP_ALL_ZONES = (
    "America/Adak|America/Anchorage|America/Anguilla|America/Antigua|America/Barbados|"
    "America/Boise|America/Cayman|America/Chicago|America/Denver|America/Dominica|"
    "America/Edmonton|America/Fort_Nelson|America/Grand_Turk|America/Grenada|America/Halifax|"
    "America/Jamaica|America/Juneau|America/Los_Angeles|America/Lower_Princes|"
    "America/Montserrat|America/Nassau|America/New_York|America/North_Dakota/Center|"
    "America/Phoenix|America/Port_of_Spain|America/Puerto_Rico|America/Regina|"
    "America/Santo_Domingo|America/St_Johns|America/St_Kitts|America/St_Lucia|"
    "America/St_Thomas|America/St_Vincent|America/Toronto|America/Tortola|America/Vancouver|"
    "America/Winnipeg|Atlantic/Bermuda|Pacific/Guam|Pacific/Honolulu|Pacific/Pago_Pago|"
    "Pacific/Saipan"
)
MX_TOLL_FREE_ZONES = (
    "America/Cancun|America/Ciudad_Juarez|America/Matamoros|America/Mazatlan|"
    "America/Mexico_City|America/New_York|America/Ojinaga|America/Tijuana"
)

CASES = [
    # Spain: mobiles may be on the Canaries, so they carry both zones; landlines pin one.
    Case("612 345 678", "ES", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("+34 612 345 678", "ES", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("0034 612 34 56 78", "ES", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("34612345678", "ES", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("612.345.678", "ES", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("612\u00a0345\u00a0678", "ES", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("91 123 45 67", "ES", "+34911234567", "fixed_line", None, "Europe/Madrid"),
    Case("(91) 123-45-67 ext. 12", "ES", "+34911234567", "fixed_line", "12", "Europe/Madrid"),
    Case("+34.928.123.456", "ES", "+34928123456", "fixed_line", None, "Atlantic/Canary"),
    Case("900 123 456", "ES", "+34900123456", "toll_free", None, MADRID_CANARY),
    Case("+34 612 345 678 x 45", "ES", "+34612345678", "mobile", "45", MADRID_CANARY),
    Case("+34 612 345 678 #12", "ES", "+34612345678", "mobile", "12", MADRID_CANARY),
    # Non-breaking spaces (pasted from web pages and Excel) are spaces, around extensions too.
    Case("612\u00a0345\u00a0678\u00a0ext.\u00a012", "ES", "+34612345678", "mobile", "12",
         MADRID_CANARY),
    Case("\u00a0+34 612 345 678 x45\u00a0", "ES", "+34612345678", "mobile", "45", MADRID_CANARY),
    Case("001 212 736 5000", "ES", "+12127365000", FLM, None, NEW_YORK),
    Case("N/A", "ES", None, "invalid", None, None),
    Case("123", "ES", None, "invalid", None, None),
    Case("tbd", "ES", None, "invalid", None, None),
    Case("6123456789012", "ES", None, "invalid", None, None),  # too long
    # Mexico: since 2019 one 10-digit plan; phonenumbers cannot tell mobiles from landlines.
    Case("55 1234 5678", "MX", "+525512345678", FLM, None, MEXICO_CITY),
    Case("+52 55 1234 5678", "MX", "+525512345678", FLM, None, MEXICO_CITY),
    Case("52 55 1234 5678", "MX", "+525512345678", FLM, None, MEXICO_CITY),
    Case("+52 1 55 1234 5678", "MX", "+525512345678", FLM, None, MEXICO_CITY),
    Case("521 55 1234 5678", "MX", "+525512345678", FLM, None, MEXICO_CITY),
    Case("044 55 1234 5678", "MX", "+525512345678", FLM, None, MEXICO_CITY),
    Case("045 33 1234 5678", "MX", "+523312345678", FLM, None, MEXICO_CITY),
    Case("01 81 8123 4567", "MX", "+528181234567", FLM, None, MEXICO_CITY),
    Case("(81) 8123-4567", "MX", "+528181234567", FLM, None, MEXICO_CITY),
    Case("+52 1 55 1234 5678", "ES", "+525512345678", FLM, None, MEXICO_CITY),
    Case("800 123 4567", "MX", "+528001234567", "toll_free", None, MX_TOLL_FREE_ZONES),
    # Colombia: 60x landlines (2021 plan), 3xx mobiles, 01 8000 toll-free.
    Case("(601) 555 1234", "CO", "+576015551234", "fixed_line", None, "America/Bogota"),
    Case("604 286 5544", "CO", "+576042865544", "fixed_line", None, "America/Bogota"),
    Case("+57 304 601 4210", "CO", "+573046014210", "mobile", None, "America/Bogota"),
    Case("304-601-4210", "CO", "+573046014210", "mobile", None, "America/Bogota"),
    Case("01 8000 912 345", "CO", "+5718000912345", "toll_free", None, "America/Bogota"),
    Case("(601) 555 1234 ext. 105", "CO", "+576015551234", "fixed_line", "105", "America/Bogota"),
    # Argentina: national "0 area 15 number" mobiles become +54 9 area number.
    Case("011 15-2937-2512", "AR", "+5491129372512", "mobile", None, "America/Buenos_Aires"),
    Case("+54 9 11 2937 2512", "AR", "+5491129372512", "mobile", None, "America/Buenos_Aires"),
    Case("011 4321-1234", "AR", "+541143211234", "fixed_line", None, "America/Buenos_Aires"),
    Case("+54 11 4321 1234", "AR", "+541143211234", "fixed_line", None, "America/Buenos_Aires"),
    Case("0341-461-8483", "AR", "+543414618483", "fixed_line", None, "America/Buenos_Aires"),
    Case("0341 15 461 8483", "AR", "+5493414618483", "mobile", None, "America/Buenos_Aires"),
    Case("0800 333 1234", "AR", "+548003331234", "toll_free", None, "America/Buenos_Aires"),
    Case("15 2937 2512", "AR", None, "invalid", None, None),  # mobile without its area code
    # Chile: 9-digit numbers; phonenumbers' fixed and mobile patterns overlap.
    Case("+56 9 6098 1532", "CL", "+56960981532", FLM, None, "America/Santiago"),
    Case("9-6098-1532", "CL", "+56960981532", FLM, None, "America/Santiago"),
    Case("(2) 2571 3562", "CL", "+56225713562", FLM, None, "America/Santiago"),
    Case("600 123 4567", "CL", "+566001234567", "shared_cost", None, "America/Santiago"),
    # Peru: "(01)" is Lima's trunk-prefixed area code; "anexo" is the local word for extension.
    Case("(01) 234 5678", "PE", "+5112345678", "fixed_line", None, "America/Lima"),
    Case("987 654 321", "PE", "+51987654321", "mobile", None, "America/Lima"),
    Case("(01) 234 5678 anexo 3", "PE", "+5112345678", "fixed_line", "3", "America/Lima"),
    Case("+51 1 234 5678", "PE", "+5112345678", "fixed_line", None, "America/Lima"),
    Case("0800 12345", "PE", "+5180012345", "toll_free", None, "America/Lima"),
    # Portugal: mainland vs Azores; mobiles may be on either.
    Case("+351 912 345 678", "PT", "+351912345678", "mobile", None, LISBON_AZORES),
    Case("22 515 3034", "PT", "+351225153034", "fixed_line", None, "Europe/Lisbon"),
    Case("00351 21 123 4567", "PT", "+351211234567", "fixed_line", None, "Europe/Lisbon"),
    Case("+351 296 123 456", "PT", "+351296123456", "fixed_line", None, "Atlantic/Azores"),
    Case("800 123 456", "PT", "+351800123456", "toll_free", None, LISBON_AZORES),
    # United States: 011 is the international prefix; 1 is the trunk prefix.
    Case("(212) 736-5000 x 45", "US", "+12127365000", FLM, "45", NEW_YORK),
    Case("212-736-5000 ext. 1234", "US", "+12127365000", FLM, "1234", NEW_YORK),
    Case("+1 415 555 2671", "US", "+14155552671", FLM, None, LOS_ANGELES),
    Case("415.555.2671", "US", "+14155552671", FLM, None, LOS_ANGELES),
    Case("1 (305) 358-1000", "US", "+13053581000", FLM, None, NEW_YORK),
    Case("011 34 612 345 678", "US", "+34612345678", "mobile", None, MADRID_CANARY),
    Case("0052 55 1234 5678", "US", "+525512345678", FLM, None, MEXICO_CITY),
    Case("1-800-642-7676", "US", "+18006427676", "toll_free", None, NANP_ALL_ZONES),
    Case("555-1234", "US", None, "invalid", None, None),  # 7-digit local number
]  # fmt: skip


@pytest.fixture(scope="module")
def table_result() -> pd.DataFrame:
    """All table rows in one call (the call has a fixed cost of a few hundred ms)."""
    raw = pd.Series([c.raw for c in CASES])
    region = pd.Series([c.region for c in CASES])
    return normalise_phones(raw, region, workers=1)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[f"{c.region}:{c.raw}" for c in CASES])
def test_real_world_spellings(table_result: pd.DataFrame, i: int) -> None:
    case = CASES[i]
    row = table_result.iloc[i]
    got = (
        _norm(row["e164"]),
        row["phone_type"],
        _norm(row["extension"]),
        _norm(row["time_zones"]),
    )
    assert got == (case.e164, case.phone_type, case.extension, case.time_zones)
    if case.e164 is not None:
        assert row["number_region"] == phonenumbers.region_code_for_number(
            phonenumbers.parse(case.e164)
        )


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 45
    assert {c.region for c in CASES} >= {"ES", "MX", "CO", "AR", "CL", "PE", "PT", "US"}


# Where plain phonenumbers, given the raw string and region, answers differently on purpose.
# (raw, region, what phonenumbers.parse(raw, region) says, what we say)
DELIBERATE_DIFFERENCES = [
    # Mexico's pre-2019 mobile '1' and 044/045/01 dialling prefixes: phonenumbers rejects them.
    ("+52 1 55 1234 5678", "MX", None, "+525512345678"),
    ("+52 1 55 1234 5678", "ES", None, "+525512345678"),
    ("521 55 1234 5678", "MX", None, "+525512345678"),
    ("044 55 1234 5678", "MX", None, "+525512345678"),
    ("045 33 1234 5678", "MX", None, "+523312345678"),
    ("01 81 8123 4567", "MX", None, "+528181234567"),
    # 00 is read as '+' whatever the region; for the US phonenumbers only knows 011.
    ("0052 55 1234 5678", "US", None, "+525512345678"),
    ("0034 612 345 678", "CA", None, "+34612345678"),
]


@pytest.mark.parametrize(("raw", "region", "plain", "ours"), DELIBERATE_DIFFERENCES)
def test_deliberate_differences_from_plain_phonenumbers(
    raw: str, region: str, plain: str | None, ours: str
) -> None:
    number = phonenumbers.parse(raw, region)
    plain_e164 = (
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if phonenumbers.is_valid_number(number)
        else None
    )
    assert plain_e164 == plain
    got = normalise_phones(pd.Series([raw]), pd.Series([region]), workers=1)
    assert got.loc[0, "e164"] == ours


@pytest.mark.parametrize(
    ("raw", "canonical", "extension"),
    [
        ("+34 (91) 123-45-67", "+34911234567", None),
        ("0034 612 345 678", "+34612345678", None),
        ("+0034 612 345 678", "+34612345678", None),
        ("612 345 678 ext. 12", "612345678", "12"),
        ("612 345 678 x45", "612345678", "45"),
        ("612 345 678 EXT 7", "612345678", "7"),
        ("(01) 234 5678 anexo 3", "012345678", "3"),
        ("011 4321-1234 int. 22", "01143211234", "22"),
        ("612/345/678", "612345678", None),
        ("[91] 123 45 67", "911234567", None),
    ],
)
def test_canonical_forms(raw: str, canonical: str, extension: str | None) -> None:
    region = "AR" if raw.startswith("011") else "ES"
    forms = canonical_forms(pd.Series([raw]), pd.Series([region]))
    assert forms.loc[0, "canonical"] == canonical
    assert _norm(forms.loc[0, "extension"]) == extension


def test_empty_cells_give_empty_results() -> None:
    raw = pd.Series(["", "   ", None, float("nan"), "\u00a0", " \t\u00a0\n", "612 345 678"])
    got = normalise_phones(raw, pd.Series(["ES"] * 7), workers=1)
    for i in range(6):
        assert all(_norm(v) is None for v in got.iloc[i]), (raw[i], got.iloc[i].to_dict())
    assert got.loc[6, "e164"] == "+34612345678"


def test_index_is_kept() -> None:
    raw = pd.Series(["612 345 678", "", "+57 304 601 4210"], index=[10, 5, 7])
    got = normalise_phones(raw, pd.Series(["ES", "ES", "ES"], index=raw.index), workers=1)
    assert list(got.index) == [10, 5, 7]
    assert [_norm(v) for v in got["e164"]] == ["+34612345678", None, "+573046014210"]


# --- equivalence: fast path == phonenumbers on the canonical form --------------------------


def _mismatches(raw: Sequence[str], region: Sequence[str]) -> list[tuple]:
    """Rows where normalise_phones differs from parse_one on the row's canonical form."""
    raw_s = pd.Series(list(raw), dtype=object)
    region_s = pd.Series(list(region), dtype=object)
    got = normalise_phones(raw_s, region_s, workers=1)
    present = raw_s.notna() & (raw_s.astype("str").str.strip() != "")
    forms = canonical_forms(raw_s[present].astype("str"), region_s[present])
    canon, other = forms["canonical"], forms["carrier_form"]
    bad = []
    for i in canon.index:
        reference = parse_one(canon[i], region_s[i])
        if reference[0] is None and not pd.isna(other[i]):
            # "00" where the region's own prefix is longer (Colombia's 005, Brazil's 0055...):
            # when the '+' reading is invalid, phonenumbers' reading with that prefix counts.
            reference = parse_one(other[i], region_s[i])
        expected = tuple(_norm(v) for v in reference)
        row = got.loc[i]
        actual = tuple(_norm(row[c]) for c in ("e164", "phone_type", "number_region", "time_zones"))
        if actual != expected:
            bad.append((raw_s[i], region_s[i], canon[i], actual, expected))
    return bad


def _assert_equivalent(raw: Sequence[str], region: Sequence[str]) -> None:
    bad = _mismatches(raw, region)
    assert not bad, "fast path != phonenumbers (raw, region, canonical, ours, phonenumbers):\n" + (
        "\n".join(map(repr, bad[:20]))
    )


# Plausible national beginnings per region, with the usual total length of the national
# form (trunk prefixes included where people write them); lengths are then jittered by ±2.
NATIONAL = {
    "ES": [("6", 9), ("7", 9), ("91", 9), ("93", 9), ("928", 9), ("900", 9), ("8", 9), ("5", 9)],
    "MX": [("55", 10), ("33", 10), ("81", 10), ("222", 10), ("800", 10), ("1", 10)],
    "CO": [("30", 10), ("31", 10), ("32", 10), ("601", 10), ("604", 10), ("018000", 13),
           ("1", 8)],
    "AR": [("011", 11), ("0341", 11), ("01115", 13), ("034115", 13), ("0800", 11), ("11", 10),
           ("9", 11)],
    "CL": [("2", 9), ("9", 9), ("600", 10), ("800", 10), ("4", 9)],
    "PE": [("9", 9), ("01", 9), ("1", 8), ("0800", 9), ("4", 8), ("064", 9)],
    "PT": [("2", 9), ("9", 9), ("800", 9), ("707", 9), ("3", 9)],
    "US": [("212", 10), ("415", 10), ("1212", 11), ("800", 10), ("2", 10)],
    "CA": [("416", 10), ("604", 10), ("1416", 11), ("800", 10)],
    "GB": [("07", 11), ("020", 11), ("01", 11), ("0800", 11), ("7", 10)],
    "DE": [("0151", 12), ("030", 11), ("089", 10), ("0", 11), ("15", 11)],
    "FR": [("06", 10), ("01", 10), ("09", 10), ("0800", 10), ("6", 9)],
    "IT": [("3", 10), ("06", 10), ("02", 9), ("0", 10), ("800", 9)],
    "BR": [("119", 11), ("11", 10), ("21", 10), ("0800", 11), ("0", 11), ("9", 9)],
}  # fmt: skip
REGIONS = sorted(NATIONAL)
JITTER = [0, 0, 0, 0, 0, -1, 1, -2, 2]
STYLES = [" ", " ", "-", ".", "", "\u00a0", "/"]
EXTENSIONS = ["", "", "", "", " ext. 12", " x 45", " anexo 3", " #7", " int. 210"]
SHAPES = ["national", "national", "national", "plus", "plus", "double_zero", "bare_cc",
          "idd_011", "mx_legacy"]  # fmt: skip


def _spell(pick: Callable[[Sequence[Any]], Any], digits: Callable[[int], str]) -> tuple[str, str]:
    """One (raw, region): `pick` chooses from options, `digits(n)` gives n random digits.

    Shared by the hypothesis strategy and the seeded bulk generator.
    """
    region = pick(REGIONS)
    home = pick([region, region, region, pick(REGIONS)])  # the number's own country
    cc = str(phonenumbers.country_code_for_region(home))
    start, length = pick(NATIONAL[home])
    national = start + digits(max(length + pick(JITTER) - len(start), 1))
    shape = pick(SHAPES)
    if shape == "national":
        text = national
    elif shape == "plus":
        text = "+" + cc + national.removeprefix("0")
    elif shape == "double_zero":
        text = "00" + cc + national.removeprefix("0")
    elif shape == "bare_cc":
        text = cc + national
    elif shape == "idd_011":
        text = "011" + cc + national.removeprefix("0")
    else:  # Mexican legacy dialling around ten digits
        text = pick(["044", "045", "01", "521", "+521", "+52 1 ", "52"]) + digits(10)
    style = pick(STYLES)
    separators = [""] * 6 + [style] * 3 + ["(", ")", "/"]
    spelled = "".join(ch + pick(separators) for ch in text).strip()
    return spelled + pick(EXTENSIONS), region


@st.composite
def spelled_number(draw: st.DrawFn) -> tuple[str, str]:
    return _spell(
        lambda options: draw(st.sampled_from(list(options))),
        lambda n: draw(st.text("0123456789", min_size=n, max_size=n)),
    )


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(spelled_number(), min_size=1, max_size=60))
def test_equivalence_hypothesis(pairs: list[tuple[str, str]]) -> None:
    _assert_equivalent([p[0] for p in pairs], [p[1] for p in pairs])


def test_equivalence_seeded_bulk() -> None:
    """Many more spellings than hypothesis can afford, in one batch (mixing regions)."""
    rng = random.Random(20260901)
    pairs = [
        _spell(rng.choice, lambda n: "".join(rng.choices("0123456789", k=n))) for _ in range(4000)
    ]
    _assert_equivalent([p[0] for p in pairs], [p[1] for p in pairs])


def test_equivalence_table_inputs() -> None:
    _assert_equivalent([c.raw for c in CASES], [c.region for c in CASES])


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        # Regions whose international prefix is not '00': phonenumbers strips it from a
        # number that starts with it (and the next digit is not 0) before anything else.
        ("09 34 612 345 678", "MX"),
        ("1230 34 612 345 678", "CL"),
        ("0110 212 736 5000", "US"),
        ("015195274362", "IL"),  # 015 is an Israeli IDD: phonenumbers reads +1 95274362
        ("01919610719", "IL"),
    ],
)
def test_equivalence_international_prefix_of_region(raw: str, region: str) -> None:
    _assert_equivalent([raw], [region])


def _sample_phones() -> tuple[list[str], list[str]]:
    raw: list[str] = []
    region: list[str] = []
    sources = [
        ("salesforce_contacts.csv", "utf-8", ["Phone", "MobilePhone"], "MailingCountry"),
        (
            "hubspot_contacts.csv",
            "utf-8-sig",
            ["Phone Number", "Mobile Phone Number"],
            "Country/Region",
        ),
    ]
    for name, encoding, columns, country in sources:
        frame = pd.read_csv(SAMPLES / name, dtype=str, keep_default_na=False, encoding=encoding)
        regions = region_of(frame[country]).fillna("ES")
        for col in columns:
            raw += frame[col].tolist()
            region += regions.astype(object).tolist()
    return raw, region


def test_equivalence_committed_samples() -> None:
    raw, region = _sample_phones()
    assert len(raw) > 700
    _assert_equivalent(raw, region)


def test_committed_samples_mostly_valid() -> None:
    """The samples are realistic: nearly every non-empty, non-placeholder number resolves."""
    raw, region = _sample_phones()
    got = normalise_phones(pd.Series(raw), pd.Series(region), workers=1)
    filled = pd.Series(raw).str.strip() != ""
    valid = got["e164"].notna() & filled
    assert valid.sum() / filled.sum() > 0.9
    assert got.loc[valid, "e164"].str.fullmatch(r"\+[1-9]\d{6,14}").all()


# --- each distinct string is parsed once ---------------------------------------------------


def _distinct_work_rows() -> tuple[
    list[str], list[str], list[tuple[str, str]], list[tuple[str, str]]
]:
    """10,000 rows: 50 distinct numbers, each in 4 spellings.

    Also returns the spellings that may need the slow path (Argentine numbers, whose
    national-prefix rewriting the fast path may or may not handle) and those that must
    (garbage: every number the fast path finds invalid goes to phonenumbers itself).
    """
    numbers: list[tuple[str, list[str]]] = []
    for i in range(12):  # Spanish mobiles and landlines
        n = f"6{i:02d}{i * 7 % 1000:03d}{i * 13 % 1000:03d}"
        numbers.append(("ES", [n, f"{n[:3]} {n[3:6]} {n[6:]}", f"+34 {n}", f"0034-{n}"]))
    for i in range(8):
        n = f"91{i}{i * 31 % 1000000:06d}"
        numbers.append(("ES", [n, f"({n[:2]}) {n[2:5]} {n[5:7]} {n[7:]}", f"+34.{n}", f"34{n}"]))
    for i in range(8):  # Mexico City
        n = f"55{i}{i * 53 % 10000000:07d}"
        numbers.append(("MX", [n, f"{n[:2]} {n[2:6]} {n[6:]}", f"+52 {n}", f"0052{n}"]))
    for i, start in enumerate(["300", "301", "302", "304", "310", "311", "312", "313"]):
        n = f"{start}{i * 71 % 10000000:07d}"  # Colombian mobiles
        numbers.append(("CO", [n, f"{n[:3]}-{n[3:6]}-{n[6:]}", f"+57 {n}", f"0057 {n}"]))
    for i in range(5):  # Portuguese mobiles
        n = f"91{i}{i * 17 % 1000000:06d}"
        numbers.append(("PT", [n, f"{n[:3]} {n[3:6]} {n[6:]}", f"+351{n}", f"00351 {n}"]))
    argentine: list[tuple[str, list[str]]] = []
    for i in range(7):
        n = f"4{i}{i * 11 % 1000000:06d}"
        argentine.append(("AR", [f"011{n}", f"011 {n[:4]}-{n[4:]}", f"+54 11 {n}", f"0054 11 {n}"]))
    garbage = [("ES", ["N/A", "n/a", "tbd", "TBD"]), ("ES", ["123", "12-3", "6123456789012", "0"])]
    assert len(numbers) + len(argentine) + len(garbage) == 50
    rows = [(s, r) for r, spellings in numbers + argentine + garbage for s in spellings]
    rows = rows * 50  # 200 distinct raw strings × 50 = 10,000 rows
    random.Random(7).shuffle(rows)
    may = [(s, r) for r, spellings in argentine for s in spellings]
    must = [(s, r) for r, spellings in garbage for s in spellings]
    return [s for s, _ in rows], [r for _, r in rows], may, must


def _canonical_keys(pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    forms = canonical_forms(pd.Series([s for s, _ in pairs]), pd.Series([r for _, r in pairs]))
    return set(zip(forms["canonical"], [r for _, r in pairs], strict=True))


def test_each_distinct_string_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    raw, region, may, must = _distinct_work_rows()
    assert len(raw) == 10_000
    seen: list[tuple[str, str]] = []
    calls = 0
    real = phones._parse_many

    def counting(items: list[tuple[str, str]]) -> list[tuple]:
        nonlocal calls
        calls += 1
        seen.extend(items)
        return real(items)

    monkeypatch.setattr(phones, "_parse_many", counting)
    got = normalise_phones(pd.Series(raw), pd.Series(region), workers=1)

    assert calls == 1
    assert Counter(seen).most_common(1)[0][1] == 1, "a canonical form was parsed twice"
    # The slow path sees the garbage (7 canonical forms: "123" and "12-3" are one) and at most
    # the Argentine numbers (2 canonical forms each); never the plain ES/MX/CO/PT numbers.
    assert _canonical_keys(must) <= set(seen) <= _canonical_keys(must) | _canonical_keys(may)
    assert len(seen) <= 7 + 14
    # And the answers are the same for every spelling of a number.
    e164 = [_norm(v) for v in got["e164"]]
    frame = pd.DataFrame({"raw": raw, "region": region, "e164": e164}, dtype=object)
    assert frame.groupby(["raw", "region"])["e164"].nunique(dropna=False).max() == 1
    assert frame["e164"].notna().sum() == 10_000 - 8 * 50  # 8 garbage spellings × 50 rows
    spellings_per_number = frame.dropna(subset=["e164"]).groupby("e164")["raw"].nunique()
    assert len(spellings_per_number) == 48
    assert (spellings_per_number == 4).all()


# --- the parallel slow path ----------------------------------------------------------------


class _CountingPool(ProcessPoolExecutor):
    created = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).created += 1
        super().__init__(*args, **kwargs)


def _slow_path_rows() -> list[tuple[str, str]]:
    """> 20,000 distinct strings that go to phonenumbers itself, valid ones among them."""
    rows = [(f"011 4{i:07d}", "AR") for i in range(5_000)]  # Argentine national numbers
    rows += [(f"0341 15 4{i:06d}", "AR") for i in range(2_000)]
    # Fullwidth digits (a form the fast path leaves alone; phonenumbers reads them).
    fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
    rows += [(f"6{i:08d}".translate(fullwidth), "ES") for i in range(0, 4_000_000, 1000)]
    # Invalid numbers, > 20,000 on their own: the fast path never decides those (Spanish
    # numbers have 9 digits), whatever else it learns to resolve.
    rows += [(f"6{i:09d}", "ES") for i in range(0, 210_000_000, 10_000)]
    random.Random(3).shuffle(rows)
    return rows


def test_parallel_slow_path_matches_serial(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _slow_path_rows()
    raw = pd.Series([s for s, _ in rows])
    region = pd.Series([r for _, r in rows])
    sizes: list[int] = []
    real = phones._parse_parallel

    def recording(items: list[tuple[str, str]], workers: int | None) -> list[tuple]:
        sizes.append(len(items))
        return real(items, workers)

    monkeypatch.setattr(phones, "_parse_parallel", recording)
    started = time.perf_counter()
    serial = normalise_phones(raw, region, workers=1)
    assert sizes[0] > 20_000, "the inputs no longer reach the slow path: choose others"
    monkeypatch.setattr(phones, "ProcessPoolExecutor", _CountingPool)
    _CountingPool.created = 0
    parallel = normalise_phones(raw, region, workers=2)
    assert _CountingPool.created == 1, "workers=2 with > 20,000 slow strings must use the pool"
    pd.testing.assert_frame_equal(serial, parallel)
    valid = serial["e164"].notna()
    assert 0.2 < valid.mean() < 0.6  # valid and invalid interleaved: order errors would show
    assert time.perf_counter() - started < 30


# --- countries -----------------------------------------------------------------------------


def test_region_of_spellings() -> None:
    spellings = ["España", "Spain", "ES", "Mexico", "México", "MX", "EE.UU.", "USA", " perú ",
                 "Narnia", "", None, "es", "ESPAÑA", "Reino Unido", "Colombia"]  # fmt: skip
    expected = ["ES", "ES", "ES", "MX", "MX", "MX", "US", "US", "PE",
                None, None, None, "ES", "ES", "GB", "CO"]  # fmt: skip
    got = region_of(pd.Series(spellings, index=range(100, 100 + len(spellings))))
    assert list(got.index) == list(range(100, 100 + len(spellings)))
    assert [_norm(v) for v in got] == expected
