"""The same export saved as CSV (any encoding, delimiter, number style), XLSX or Parquet gives
the same accepted rows: users should not have to care how Excel saved their file."""

from __future__ import annotations

import codecs
import random
from pathlib import Path

import blake3
import pandas as pd
import pyarrow as pa
import pytest

from config.settings import Settings
from tasks.sources import readers
from tasks.sources.ingest import ingest
from tasks.sources.mapping import load_mapping

ERP_ROWS = [
    # doc type, number, account, type, posting, due, amount, remaining, applies, currency, status
    (
        "Invoice",
        "F-1001",
        "C000001",
        "Distribución",
        "2026-09-01",
        "2026-10-01",
        1234.56,
        1234.56,
        "",
        "EUR",
        "Open",
    ),
    (
        "Invoice",
        "F-1002",
        "C000001",
        "Distribución",
        "2026-10-15",
        "2026-11-14",
        250000.0,
        120000.5,
        "",
        "EUR",
        "Open",
    ),
    (
        "Payment",
        "P-2001",
        "C000001",
        "Distribución",
        "2026-10-20",
        "",
        129999.5,
        0.0,
        "F-1002",
        "EUR",
        "Closed",
    ),
    (
        "Credit Memo",
        "A-3001",
        "C000002",
        "Retail",
        "2026-10-02",
        "",
        99.9,
        99.9,
        "F-1003",
        "MXN",
        "Open",
    ),
    (
        "Invoice",
        "F-1003",
        "C000002",
        "Retail",
        "2026-08-30",
        "2026-09-29",
        1500.0,
        1400.1,
        "",
        "MXN",
        "Open",
    ),
    (
        "Invoice",
        "F-1004",
        "C000003",
        "Señor Pérez SL",
        "2026-11-01",
        "2026-12-31",
        0.5,
        0.5,
        "",
        "USD",
        "Open",
    ),
]
ERP_HEADERS = [
    "Document Type", "Document No.", "Customer No.", "Customer Type", "Posting Date", "Due Date",
    "Amount", "Remaining Amount", "Applies-to Doc. No.", "Currency Code", "Status",
]  # fmt: skip


def _es_number(x: float) -> str:
    whole, frac = f"{x:,.2f}".split(".")
    return whole.replace(",", ".") + "," + frac


def _es_date(iso: str) -> str:
    return "" if not iso else "/".join(reversed(iso.split("-")))


def _text_rows(style: str) -> list[list[str]]:
    out = []
    for r in ERP_ROWS:
        row = list(r)
        if style == "es":
            row[4], row[5] = _es_date(row[4]), _es_date(row[5])
            row[6], row[7] = _es_number(row[6]), _es_number(row[7])
        else:
            row[6], row[7] = repr(row[6]), repr(row[7])
        out.append([str(v) for v in row])
    return out


def _write_csv(path: Path, delimiter: str, encoding: str, style: str) -> None:
    lines = [delimiter.join(ERP_HEADERS)]
    for row in _text_rows(style):
        lines.append(delimiter.join(f'"{v}"' if delimiter in v else v for v in row))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))


def _typed_frame() -> pd.DataFrame:
    df = pd.DataFrame(ERP_ROWS, columns=ERP_HEADERS)
    for col in ("Posting Date", "Due Date"):
        df[col] = pd.to_datetime(df[col].replace("", None))
    df["Applies-to Doc. No."] = df["Applies-to Doc. No."].replace("", None)
    return df


VARIANTS = {
    "utf8-comma-dot": lambda p: _write_csv(p / "erp_open_items.csv", ",", "utf-8", "en"),
    "utf8bom-semicolon-es": lambda p: _write_csv(p / "erp_open_items.csv", ";", "utf-8-sig", "es"),
    "cp1252-semicolon-es": lambda p: _write_csv(p / "erp_open_items.csv", ";", "cp1252", "es"),
    "latin1-semicolon-es": lambda p: _write_csv(p / "erp_open_items.csv", ";", "latin-1", "es"),
    "utf16-tab-es": lambda p: _write_csv(p / "erp_open_items.txt", "\t", "utf-16", "es"),
    "xlsx": lambda p: _typed_frame().to_excel(p / "erp_open_items.xlsx", index=False),
    "parquet": lambda p: _typed_frame().to_parquet(p / "erp_open_items.parquet", index=False),
}


def _ingest_variant(tmp_path: Path, name: str) -> pd.DataFrame:
    folder = tmp_path / name
    folder.mkdir()
    VARIANTS[name](folder)
    mapping = load_mapping("erp_open_items", Settings()).model_copy(
        update={"file": "erp_open_items.*"}
    )
    result = ingest(mapping, folder, "Europe/Madrid")
    assert result.quarantine.empty, result.quarantine.to_string()
    assert result.rows_read == len(ERP_ROWS) == result.rows_accepted
    return result.accepted


def test_bom_and_cp1252_files_really_differ(tmp_path: Path) -> None:
    VARIANTS["utf8bom-semicolon-es"](tmp_path)
    assert (tmp_path / "erp_open_items.csv").read_bytes().startswith(codecs.BOM_UTF8)
    VARIANTS["cp1252-semicolon-es"](tmp_path)
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / "erp_open_items.csv").read_bytes().decode("utf-8")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "utf8-comma-dot"])
def test_every_variant_gives_identical_accepted_rows(tmp_path: Path, variant: str) -> None:
    reference = _ingest_variant(tmp_path, "utf8-comma-dot")
    other = _ingest_variant(tmp_path, variant)
    pd.testing.assert_frame_equal(reference, other)


def test_values_are_parsed_not_just_equal(tmp_path: Path) -> None:
    df = _ingest_variant(tmp_path, "cp1252-semicolon-es")
    first = df.iloc[0]
    assert first["doc_type"] == "invoice" and first["amount"] == 1234.56
    assert df.loc[1, "amount"] == 250000.0 and df.loc[1, "open_amount"] == 120000.5
    assert df.loc[3, "doc_type"] == "credit_note" and df.loc[3, "currency"] == "MXN"
    assert df.loc[5, "customer_type"] == "Señor Pérez SL"
    assert df.loc[0, "due_date"] == pd.Timestamp("2026-10-01")
    assert pd.isna(df.loc[2, "due_date"])  # payments have no due date
    assert list(df["source_row"]) == [2, 3, 4, 5, 6, 7]


CONTACT_HEADERS = ["Id", "AccountId", "Account_Number__c", "FirstName", "LastName", "Title",
    "Contact_Role__c", "Email", "Phone", "MobilePhone", "MailingCountry", "Preferred_Language__c",
    "HasOptedOutOfEmail", "DoNotCall", "Email_OptIn__c", "WhatsApp_OptIn__c", "SMS_OptIn__c",
    "Marketing_OptIn__c", "LastModifiedDate"]  # fmt: skip
CONTACT_ROWS = [
    ["0031x00000AbCdEAAA", "0011x0000001", "C000001", "José", "Núñez", "Controller", "Billing",
     "Jose.Nunez@Acme.es", "+34 912 345 678", "612 345 678", "España", "es", "false", "false",
     "true", "true", "", "false", "2026-10-03T14:22:05.000Z"],
    ["0031x00000AbCdFAAA", "0011x0000001", "C000001", "Ana", "Peña", "CFO", "Decision Maker",
     "ana.pena@acme.es", "", "(+34) 699-12-34-56", "ES", "", "true", "false", "", "", "true",
     "", "2026-09-30T08:00:00.000Z"],
]  # fmt: skip


@pytest.mark.parametrize("variant", ["utf8-comma", "cp1252-semicolon", "xlsx", "parquet"])
def test_contacts_identical_across_containers(tmp_path: Path, variant: str) -> None:
    frames = {}
    for name in ("utf8-comma", variant):
        folder = tmp_path / name
        folder.mkdir(exist_ok=True)
        df = pd.DataFrame(CONTACT_ROWS, columns=CONTACT_HEADERS).replace("", None)
        if name == "utf8-comma":
            df.to_csv(folder / "salesforce_contacts.csv", index=False)
        elif name == "cp1252-semicolon":
            df.to_csv(folder / "salesforce_contacts.csv", index=False, sep=";", encoding="cp1252")
        elif name == "xlsx":
            df.to_excel(folder / "salesforce_contacts.xlsx", index=False)
        else:
            df["LastModifiedDate"] = pd.to_datetime(df["LastModifiedDate"], utc=True)
            df["HasOptedOutOfEmail"] = df["HasOptedOutOfEmail"] == "true"
            df.to_parquet(folder / "salesforce_contacts.parquet", index=False)
        result = ingest(load_mapping("salesforce_contacts", Settings()), folder, "Europe/Madrid")
        assert result.quarantine.empty, result.quarantine.to_string()
        frames[name] = result.accepted
    pd.testing.assert_frame_equal(frames["utf8-comma"], frames[variant])
    accepted = frames[variant]
    assert accepted.loc[0, "first_name"] == "José"
    assert accepted.loc[0, "whatsapp_opt_in"] is True or bool(accepted.loc[0, "whatsapp_opt_in"])
    assert pd.isna(accepted.loc[1, "whatsapp_opt_in"])  # empty = unknown, not "no"
    assert accepted.loc[1, "email_opt_out"]
    assert accepted.loc[0, "last_modified"] == pd.Timestamp("2026-10-03 14:22:05", tz="UTC")


# --- single-byte encodings are decoded cell by cell, not through Python's codec -------------


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "iso8859-15", "cp1250", "koi8_r"])
def test_single_byte_cells_decode_as_python_decodes_them(encoding: str) -> None:
    table = readers.single_byte_table(encoding)
    assert table is not None
    defined = [b for b in range(256) if bytes([b]).decode(encoding, "replace") != "\ufffd"]
    rng = random.Random(encoding)
    cells = [
        None if rng.random() < 0.1 else bytes(rng.choice(defined) for _ in range(rng.randint(0, 9)))
        for _ in range(400)
    ]
    # A sliced array: the chunk's offsets start past zero, as Arrow's CSV chunks may.
    array = pa.array(cells, pa.large_binary()).slice(3, 390)
    decoded = readers._decode_chunk(array, table)
    decoded.validate(full=True)
    assert decoded.to_pylist() == [c if c is None else c.decode(encoding) for c in cells[3:393]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "shift_jis", "gb18030"])
def test_multi_byte_encodings_are_left_to_arrow(encoding: str) -> None:
    assert readers.single_byte_table(encoding) is None


def test_a_ragged_row_in_a_cp1252_file_is_quarantined_as_written(tmp_path: Path) -> None:
    # Arrow hands a skipped row over as UTF-8 text, which cp1252 bytes are not: the file is
    # then read through the codec, and the row is reported as the user wrote it.
    _write_csv(tmp_path / "erp_open_items.csv", ";", "cp1252", "es")
    path = tmp_path / "erp_open_items.csv"
    path.write_bytes(path.read_bytes() + "Invoice;F-9;C9;Crédito;extra\r\n".encode("cp1252"))
    mapping = load_mapping("erp_open_items", Settings())
    result = ingest(mapping, tmp_path, "Europe/Madrid")
    assert result.encoding == "cp1252"
    assert result.rows_read == len(ERP_ROWS) + 1
    assert list(result.quarantine["value"]) == ["Invoice;F-9;C9;Crédito;extra"]
    assert "Señor Pérez SL" in set(result.accepted["customer_type"])
    # The recorded digest is the file's BLAKE3, what `b3sum` prints for it.
    assert result.digest == "blake3:" + blake3.blake3(path.read_bytes()).hexdigest()


def test_a_quote_left_unclosed_is_caught_on_the_fast_path(tmp_path: Path) -> None:
    # Arrow follows a quote across line breaks even when told values hold none, so such a
    # file reads without error; the line count sends it down the careful path, which reports
    # the cell that swallowed whole records.
    lines = [",".join(ERP_HEADERS)]
    lines.append("Invoice,F-1,C1,Retail,2026-09-01,2026-10-01,10.00,10.00,,EUR,Open")
    lines.append('Invoice,F-2,C1,"Retail,2026-10-15,2026-11-14,20.00,20.00,,EUR,Open')
    lines.append("Invoice,F-3,C2,Retail,2026-10-16,2026-11-15,30.00,30.00,,EUR,Open")
    lines.append('Invoice,F-4,C2,Señor",2026-10-02,2026-11-01,40.00,40.00,,MXN,Open')
    lines.append("Invoice,F-5,C3,Retail,2026-10-03,2026-11-02,50.00,50.00,,USD,Open")
    (tmp_path / "erp_open_items.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest(load_mapping("erp_open_items", Settings()), tmp_path, "Europe/Madrid")
    swallowed = result.quarantine[result.quarantine["column"] == "Customer Type"]
    assert list(swallowed["row"]) == [3]
    assert swallowed["reason"].str.contains("quote left unclosed").all()
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert list(result.accepted["doc_number"]) == ["F-1", "F-5"]


def test_quarantine_columns_keep_their_types_when_only_a_row_rule_fails(tmp_path: Path) -> None:
    lines = [",".join(ERP_HEADERS)]
    lines.append("Invoice,F-1,C1,Retail,2026-09-01,,10.00,10.00,,EUR,Open")
    lines.append("Invoice,F-2,C1,Retail,2026-09-01,2026-10-01,10.00,10.00,,EUR,Open")
    (tmp_path / "erp_open_items.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = ingest(load_mapping("erp_open_items", Settings()), tmp_path, "Europe/Madrid")
    assert list(result.quarantine["reason"]) == ["invoice without a due date"]
    assert result.quarantine["row"].dtype == "int64"
    assert result.quarantine["column"].dtype == "str"
