"""The sample-data generator: deterministic, mapping-true headers, real-world encodings and mess."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from tasks.sample_data import generator
from tasks.sample_data.generator import HEADERS, MAPPING_NAMES, REFERENCE_DATE, generate

REPO = Path(__file__).resolve().parents[1]
MAPPINGS = REPO / "config" / "mappings"

# How each CSV export is written: (encoding to decode with, delimiter).
CSV_FORMS = {
    "salesforce_contacts": ("utf-8", ","),
    "hubspot_contacts": ("utf-8-sig", ","),
    "erp_open_items": ("cp1252", ";"),
    "events": ("utf-8", ","),
    "salesforce_opportunities": ("utf-8", ","),
    "hubspot_deals": ("utf-8-sig", ","),
}


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return generate(tmp_path_factory.mktemp("seed7"), contacts=300, seed=7)


def rows(path: Path, name: str) -> list[dict[str, str]]:
    encoding, sep = CSV_FORMS[name]
    text = path.read_bytes().decode(encoding)
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=sep))


def mapping_headers(name: str) -> list[str]:
    spec = yaml.safe_load((MAPPINGS / f"{name}.yaml").read_text(encoding="utf-8"))
    return list(dict.fromkeys(spec["columns"].values()))  # "Deal Stage" is mapped twice


def test_returns_every_mapping(exports: dict[str, Path]) -> None:
    assert list(exports) == list(MAPPING_NAMES)
    assert all(p.suffix == ".csv" and p.stat().st_size > 0 for p in exports.values())


def test_committed_samples_are_the_generator_output(exports: dict[str, Path]) -> None:
    """data/samples must be regenerated whenever the generator changes (see its README)."""
    for path in exports.values():
        committed = REPO / "data" / "samples" / path.name
        assert committed.read_bytes() == path.read_bytes(), f"regenerate {committed}"


def test_block_boundaries_do_not_show(
    exports: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big files are rendered in row blocks; a tiny block size must give the same bytes."""
    monkeypatch.setattr(generator, "_BLOCK_ROWS", 7)
    small_blocks = generate(tmp_path, contacts=300, seed=7)
    for name in MAPPING_NAMES:
        assert small_blocks[name].read_bytes() == exports[name].read_bytes(), name


def test_same_seed_same_bytes_other_seed_other_bytes(
    exports: dict[str, Path], tmp_path: Path
) -> None:
    again = generate(tmp_path / "again", contacts=300, seed=7)
    other = generate(tmp_path / "other", contacts=300, seed=8)
    for name in MAPPING_NAMES:
        assert exports[name].read_bytes() == again[name].read_bytes(), name
        assert exports[name].read_bytes() != other[name].read_bytes(), name


@pytest.mark.parametrize("name", MAPPING_NAMES)
def test_headers_are_the_mapping_headers(exports: dict[str, Path], name: str) -> None:
    assert list(HEADERS[name]) == mapping_headers(name)
    encoding, sep = CSV_FORMS[name]
    first_line = exports[name].read_bytes().decode(encoding).splitlines()[0]
    assert next(csv.reader([first_line], delimiter=sep)) == mapping_headers(name)


@pytest.mark.parametrize("name", MAPPING_NAMES)
def test_every_row_has_every_column(exports: dict[str, Path], name: str) -> None:
    encoding, sep = CSV_FORMS[name]
    text = exports[name].read_bytes().decode(encoding)
    widths = {len(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=sep)}
    assert widths == {len(HEADERS[name])}


def test_encodings_and_byte_order_marks(exports: dict[str, Path]) -> None:
    for name in ("hubspot_contacts", "hubspot_deals"):
        assert exports[name].read_bytes().startswith(b"\xef\xbb\xbf")
    for name in ("salesforce_contacts", "events", "salesforce_opportunities"):
        raw = exports[name].read_bytes()
        assert not raw.startswith(b"\xef\xbb\xbf")
        raw.decode("utf-8")
    assert "ú" in exports["salesforce_contacts"].read_text(encoding="utf-8") or "é" in (
        exports["salesforce_contacts"].read_text(encoding="utf-8")
    )

    erp = exports["erp_open_items"].read_bytes()
    assert re.search(rb"[\x80-\xff]", erp), "the ERP sample should carry accents"
    erp.decode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        erp.decode("utf-8")
    assert b"\r\n" in erp and erp.count(b"\r\n") == erp.count(b"\n")


def test_erp_looks_like_spanish_excel(exports: dict[str, Path]) -> None:
    lines = rows(exports["erp_open_items"], "erp_open_items")
    number = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d\d$")
    assert all(number.match(r["Amount"]) for r in lines)
    assert any("." in r["Amount"] for r in lines), "thousands separators expected"
    dates = [r["Posting Date"] for r in lines]
    good = [d for d in dates if re.fullmatch(r"\d\d/\d\d/\d{4}", d)]
    assert len(good) >= 0.98 * len(dates)
    types = {r["Document Type"] for r in lines}
    assert {"Invoice", "Payment", "Credit Memo"} <= types
    payments = [r for r in lines if r["Document Type"] in ("Payment", "Pago")]
    invoices = {r["Document No."] for r in lines if r["Document Type"] in ("Invoice", "Factura")}
    applied = [p for p in payments if p["Applies-to Doc. No."]]
    assert applied and all(p["Applies-to Doc. No."] in invoices for p in applied)
    assert {r["Status"] for r in lines} == {"Open", "Closed"}
    assert {"EUR", "MXN", "USD"} <= {r["Currency Code"] for r in lines}


def test_due_dates_span_the_collection_window(exports: dict[str, Path]) -> None:
    due = []
    for r in rows(exports["erp_open_items"], "erp_open_items"):
        if r["Document Type"] in ("Invoice", "Factura") and re.fullmatch(
            r"\d\d/\d\d/\d{4}", r["Due Date"]
        ):
            d, m, y = map(int, r["Due Date"].split("/"))
            due.append((date(y, m, d) - REFERENCE_DATE).days)
    due = [x for x in due if -400 < x < 400]  # "31/02/2026" style defects never parse
    assert min(due) >= -180 and max(due) <= 60
    assert min(due) < -90 and max(due) > 30


def test_people_in_both_crms(exports: dict[str, Path]) -> None:
    def keys(lines: list[dict[str, str]], acct: str) -> set[tuple[str, str]]:
        return {
            (r[acct].strip().upper(), r["Email"].strip().lower())
            for r in lines
            if "@" in r["Email"] and "." in r["Email"].split("@")[-1]
        }

    sf = rows(exports["salesforce_contacts"], "salesforce_contacts")
    hs = rows(exports["hubspot_contacts"], "hubspot_contacts")
    assert 1.2 * 300 <= len(sf) + len(hs) <= 1.4 * 300
    shared = keys(sf, "Account_Number__c") & keys(hs, "ERP Account Number")
    assert 0.15 * 300 <= len(shared) <= 0.45 * 300
    # The other CRM's copy is often cased differently.
    hs_emails = {r["Email"] for r in hs}
    assert any(e != e.lower() and "@" in e for e in hs_emails)


def test_phone_styles_vary(exports: dict[str, Path]) -> None:
    sf = rows(exports["salesforce_contacts"], "salesforce_contacts")
    hs = rows(exports["hubspot_contacts"], "hubspot_contacts")
    phones = [r[c] for r in sf for c in ("Phone", "MobilePhone")]
    phones += [r[c] for r in hs for c in ("Phone Number", "Mobile Phone Number")]
    styles = {
        "e164": r"\+\d{8,14}",
        "international spaced": r"\+\d{1,3}( \d+)+",
        "00 prefix": r"00\d{9,14}",
        "national spaced": r"\d{1,4}( \d{2,4})+",
        "dotted": r"\d+(\.\d+)+",
        "dashed": r"\d+(-\d+)+",
        "parenthesised": r"\(\+?\d+\) .+",
        "extension": r".+ ([eE]xt\.? ?|x)\d+",
        "junk": r"N/A|n/a|tbd|TBD|123|-|0|000000|pendiente|sin teléfono",
    }
    seen = {name for name, pat in styles.items() if any(re.fullmatch(pat, p) for p in phones)}
    assert seen == set(styles)
    junk = sum(bool(re.fullmatch(styles["junk"], p)) for p in phones if p)
    assert 0 < junk < 0.08 * sum(1 for p in phones if p)


def test_export_value_forms(exports: dict[str, Path]) -> None:
    sf = rows(exports["salesforce_contacts"], "salesforce_contacts")
    hs = rows(exports["hubspot_contacts"], "hubspot_contacts")
    for col in ("HasOptedOutOfEmail", "DoNotCall", "WhatsApp_OptIn__c"):
        assert {r[col] for r in sf} <= {"true", "false", ""}
    for col in ("Unsubscribed from all email", "WhatsApp Opt-In", "SMS Opt-In"):
        assert {r[col] for r in hs} == {"Yes", "No", ""}
    ids = [r["Id"] for r in sf if r["Id"]]
    assert all(re.fullmatch(r"003[0-9A-Za-z]{15}", i) for i in ids)
    assert all(r["AccountId"].startswith("001") for r in sf)
    assert all(re.fullmatch(r"\d+", r["Record ID"]) for r in hs if r["Record ID"])
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z")
    assert sum(bool(stamp.fullmatch(r["LastModifiedDate"])) for r in sf) >= 0.98 * len(sf)
    hs_stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")
    assert sum(bool(hs_stamp.fullmatch(r["Last Modified Date"])) for r in hs) >= 0.98 * len(hs)
    countries = {r["MailingCountry"] for r in sf} | {r["Country/Region"] for r in hs}
    assert {"España", "ES", "México", "MX", ""} <= countries
    assert any(c in r["FirstName"] + r["LastName"] for r in sf for c in "áéíóúñç")


def test_events_reference_real_documents(exports: dict[str, Path]) -> None:
    events = rows(exports["events"], "events")
    invoices = {r["Document No."] for r in rows(exports["erp_open_items"], "erp_open_items")}
    assert len(events) == 900
    for e in events:
        assert sum(bool(e[c]) for c in ("contact_source_id", "contact_email", "contact_phone")) == 1
        if e["invoice_number"]:
            assert e["invoice_number"] in invoices
    promises = [e for e in events if e["event_type"] == "promise_to_pay"]
    assert promises and all(p["promised_date"] and p["amount"] for p in promises)
    calls = [e for e in events if e["event_type"] == "call_outcome"]
    assert {c["outcome"] for c in calls} <= {"connected", "no_answer", "voicemail", "wrong_number"}
    assert all(not e["channel"] for e in events if e["event_type"] == "payment")
    limit = (REFERENCE_DATE + timedelta(days=1)).isoformat()
    assert all(e["occurred_at"] < limit for e in events if e["occurred_at"][:2] == "20")


def test_renewals_around_the_reference_date(exports: dict[str, Path]) -> None:
    opps = rows(exports["salesforce_opportunities"], "salesforce_opportunities")
    deals = rows(exports["hubspot_deals"], "hubspot_deals")
    assert opps and deals
    for lines, col in ((opps, "Contract_End_Date__c"), (deals, "Contract End Date")):
        for r in lines:
            if re.fullmatch(r"\d{4}-\d\d-\d\d", r[col]) and r[col] != "2027-02-30":
                offset = (date.fromisoformat(r[col]) - REFERENCE_DATE).days
                assert -30 <= offset <= 120
    assert all(r["OwnerId"].startswith("005") for r in opps)
    assert {r["StageName"] for r in opps} <= {
        "Prospecting",
        "Negotiation/Review",
        "Closed Won",
        "Closed Lost",
    }


def test_bad_rows_can_be_switched_off(tmp_path: Path) -> None:
    clean = generate(tmp_path, contacts=300, seed=7, bad_row_share=0)
    erp = rows(clean["erp_open_items"], "erp_open_items")
    assert all(r["Customer No."] and r["Currency Code"] not in ("XXX", "EURO") for r in erp)
    assert all(
        not r["Amount"].startswith("-") for r in erp if r["Document Type"] in ("Invoice", "Factura")
    )
    assert all(r["Id"] for r in rows(clean["salesforce_contacts"], "salesforce_contacts"))


def test_bad_rows_are_present_by_default(exports: dict[str, Path]) -> None:
    erp = rows(exports["erp_open_items"], "erp_open_items")
    events = rows(exports["events"], "events")
    sf = rows(exports["salesforce_contacts"], "salesforce_contacts")
    broken = sum(
        not r["Customer No."]
        or r["Currency Code"] in ("XXX", "EURO")
        or not re.fullmatch(r"\d\d/\d\d/\d{4}", r["Posting Date"])
        or not re.fullmatch(r"\d\d/\d\d/\d{4}", r["Due Date"])
        or r["Posting Date"].startswith("31/02")
        or r["Due Date"].startswith("31/02")
        or (r["Document Type"] in ("Invoice", "Factura") and r["Amount"].startswith("-"))
        for r in erp
    )
    assert 1 <= broken <= 0.02 * len(erp)
    assert any(not e["event_id"] or e["currency"] in ("XXX", "EURO") for e in events) or any(
        not e["occurred_at"].endswith("Z") for e in events
    )
    assert any(not r["Id"] or not parses(r["LastModifiedDate"]) for r in sf)


def parses(stamp: str) -> bool:
    try:
        datetime.fromisoformat(stamp)
    except ValueError:
        return False
    return True


def test_scale_proportions(tmp_path: Path) -> None:
    paths = generate(tmp_path, contacts=5000, seed=3, events_per_contact=1.0)
    crm = sum(len(rows(paths[n], n)) for n in ("salesforce_contacts", "hubspot_contacts"))
    assert 1.25 * 5000 <= crm <= 1.35 * 5000
    erp = len(rows(paths["erp_open_items"], "erp_open_items"))
    assert 1.7 * 5000 <= erp <= 2.3 * 5000
    assert len(rows(paths["events"], "events")) == 5000


def test_parquet_and_xlsx_are_typed_and_stable(tmp_path: Path) -> None:
    pq_paths = generate(tmp_path / "pq", contacts=60, seed=7, fmt="parquet")
    xl_paths = generate(tmp_path / "xl", contacts=60, seed=7, fmt="xlsx")
    xl_again = generate(tmp_path / "xl2", contacts=60, seed=7, fmt="xlsx")
    csv_paths = generate(tmp_path / "csv", contacts=60, seed=7)
    for name in MAPPING_NAMES:
        table = pq.read_table(pq_paths[name])
        assert table.column_names == list(HEADERS[name])
        assert table.num_rows == len(rows(csv_paths[name], name))
        sheet = openpyxl.load_workbook(xl_paths[name], read_only=True).worksheets[0]
        assert [c.value for c in next(sheet.iter_rows(max_row=1))] == list(HEADERS[name])
        assert xl_paths[name].read_bytes() == xl_again[name].read_bytes()
        with zipfile.ZipFile(xl_paths[name]) as z:
            assert z.testzip() is None
    erp = pq.read_table(pq_paths["erp_open_items"])
    assert erp.schema.field("Posting Date").type == pa.date32()
    assert erp.schema.field("Amount").type == pa.float64()
    contacts = pq.read_table(pq_paths["salesforce_contacts"])
    assert contacts.schema.field("HasOptedOutOfEmail").type == pa.bool_()
    assert pa.types.is_timestamp(contacts.schema.field("LastModifiedDate").type)
