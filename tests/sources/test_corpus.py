"""The malformed-input corpus: every broken export we know of, and what the user is told about it.

Each case is one folder under `tests/corpus/` holding one export (and, where the case needs it,
its own mapping YAML). Mappings are loaded through the real loader with the case folder as
`mappings_dir`, so a case folder's YAML is used and the shipped mappings cover the rest.

File-level cases assert the exact `problem` of the `SourceFileError`, that a fix is offered and
that the message names the file. Row-level cases assert every quarantine line (row, column,
value as written, reason) and that each row read is either accepted or quarantined.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from config.settings import Settings
from tasks.sources.errors import SourceFileError
from tasks.sources.ingest import SourceResult, ingest
from tasks.sources.mapping import SourceMapping, load_mapping

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
TZ = "Europe/Madrid"


def load(case: str, source: str) -> SourceMapping:
    return load_mapping(source, Settings(mappings_dir=CORPUS / case))


def run(case: str, source: str) -> tuple[SourceMapping, SourceResult]:
    mapping = load(case, source)
    return mapping, ingest(mapping, CORPUS / case, TZ)


# --- file-level problems ----------------------------------------------------------------------


@dataclass(frozen=True)
class FileCase:
    case: str  # folder under tests/corpus
    source: str  # mapping name
    file: str  # the file the message must name
    problem: str  # exact SourceFileError.problem


ERP_HEADERS = (
    "'Document Type', 'Document No.', 'Customer No.', 'Customer Type', 'Posting Date', "
    "'Due Date', 'Amount', 'Remaining Amount', 'Applies-to Doc. No.', 'Currency Code', 'Status'"
)
EVENT_FIELDS = (
    "['account_id', 'amount', 'channel', 'contact_email', 'contact_phone', "
    "'contact_source_id', 'currency', 'event_id', 'event_type', 'invoice_number', "
    "'message_id', 'occurred_at', 'outcome', 'promised_date']"
)
WRONG_DELIMITER = (
    "; the first line has a single column when split on comma: the delimiter may be wrong, "
    "or a title row sits above the headers"
)

FILE_CASES = [
    FileCase(
        "missing_required_column",
        "salesforce_contacts",
        "salesforce_contacts.csv",
        "missing required column 'LastModifiedDate' (did you mean 'Last_Modified_Date'?)",
    ),
    # UTF-16 tab-delimited ("Unicode text") export, but the mapping declares a comma.
    FileCase(
        "wrong_delimiter_declared",
        "comma_events",
        "events_export.txt",
        "missing required columns 'event_id', 'occurred_at', 'event_type', 'channel', "
        "'account_id'" + WRONG_DELIMITER,
    ),
    # Fixed-width list output: no known delimiter in the header, the sniffer falls back to comma.
    FileCase(
        "wrong_delimiter_sniffed",
        "fixed_width_contacts",
        "fixed_contacts.txt",
        "missing required columns 'Id', 'LastModifiedDate', 'FirstName', 'Email'" + WRONG_DELIMITER,
    ),
    # A report title above the header: the hint blames the delimiter (see the report).
    FileCase(
        "title_row_above_header",
        "erp_open_items",
        "erp_open_items.csv",
        f"missing required columns {ERP_HEADERS}{WRONG_DELIMITER}",
    ),
    FileCase("empty_file", "erp_open_items", "erp_open_items.csv", "the file is empty"),
    FileCase(
        "only_bom_and_whitespace", "erp_open_items", "erp_open_items.csv", "the file is empty"
    ),
    FileCase(
        "binary_nul_bytes",
        "erp_open_items",
        "erp_open_items.csv",
        "unreadable encoding: the file holds binary data (NUL bytes), not text",
    ),
    FileCase(
        "xlsx_renamed_to_csv",
        "erp_open_items",
        "erp_open_items.csv",
        "this is an Excel workbook (or another zip file), not a text file",
    ),
    FileCase(
        "legacy_xls",
        "erp_open_items",
        "erp_open_items.xls",
        "legacy .xls workbooks are not supported",
    ),
    FileCase(
        "unknown_extension_json",
        "erp_open_items",
        "erp_open_items.json",
        "unknown file format '.json'",
    ),
    FileCase(
        "corrupt_xlsx_random_bytes",
        "erp_open_items",
        "erp_open_items.xlsx",
        "the file is not a valid XLSX workbook",
    ),
    FileCase(
        "truncated_xlsx",
        "erp_open_items",
        "erp_open_items.xlsx",
        "the workbook is damaged or is not an XLSX file",
    ),
    FileCase(
        "xlsx_missing_sheet",
        "erp_sheet",
        "erp_open_items.xlsx",
        "cannot read the sheet (Worksheet named 'Ledger' not found)",
    ),
    FileCase(
        "two_files_match_glob",
        "erp_open_items",
        "erp_open_items.*",
        "several files match 'erp_open_items.*' (erp_open_items.csv, erp_open_items.xlsx)",
    ),
    # The export carries a date suffix, so the glob 'hubspot_contacts.*' does not match it.
    FileCase(
        "no_matching_file",
        "hubspot_contacts",
        "hubspot_contacts.*",
        "no file matches 'hubspot_contacts.*' for source 'hubspot_contacts' "
        "(the folder has 'hubspot_contacts_2026-03-01.csv')",
    ),
    FileCase(
        "declared_encoding_mismatch",
        "deals_utf8",
        "hubspot_deals.csv",
        "unreadable encoding: the file is not valid utf-8",
    ),
    # --- the mapping itself is wrong (the message names the YAML file) ---
    FileCase(
        "mapping_invalid_yaml",
        "broken_mapping",
        "broken_mapping.yaml",
        "mapping is not valid YAML at line 8",
    ),
    FileCase(
        "mapping_missing_file_key",
        "no_file_mapping",
        "no_file_mapping.yaml",
        "invalid mapping (file: Field required)",
    ),
    FileCase(
        "mapping_required_field_unmapped",
        "contacts_no_modified",
        "contacts_no_modified.yaml",
        "invalid mapping (mapping: required field(s) ['last_modified'] are not mapped to a column)",
    ),
    FileCase(
        "mapping_unknown_top_level_key",
        "misplaced_delimiter",
        "misplaced_delimiter.yaml",
        "invalid mapping (delimiter: Extra inputs are not permitted)",
    ),
    FileCase(
        "mapping_unknown_cadencia_field",
        "typo_field",
        "typo_field.yaml",
        "invalid mapping (mapping: unknown field(s) ['invoice_no'] for kind "
        f"'events'; known: {EVENT_FIELDS})",
    ),
    FileCase(
        "mapping_not_a_mapping",
        "list_mapping",
        "list_mapping.yaml",
        "mapping is not a YAML mapping",
    ),
    # The folder holds erp_ledger.yaml; CADENCIA_SOURCES names 'erp_ledgr'.
    FileCase(
        "mapping_name_typo",
        "erp_ledgr",
        "erp_ledgr.yaml",
        "no column mapping named 'erp_ledgr'",
    ),
]


def assert_file_error(exc: SourceFileError, case: str, file: str) -> None:
    assert Path(exc.file) == CORPUS / case / file
    assert exc.fix.strip()
    assert str(exc) == f"{exc.file}: {exc.problem}. Fix: {exc.fix}"
    assert file in str(exc)


@pytest.mark.parametrize("c", FILE_CASES, ids=lambda c: c.case)
def test_file_level_problem(c: FileCase) -> None:
    with pytest.raises(SourceFileError) as info:
        run(c.case, c.source)
    assert info.value.problem == c.problem
    assert_file_error(info.value, c.case, c.file)


@pytest.mark.parametrize(
    ("case", "source", "mentions"),
    [
        pytest.param(
            "unknown_encoding_name",
            "deals_ansi",
            "'ansi'",
            id="unknown_encoding_name",
        ),
        pytest.param(
            "two_character_delimiter",
            "tab_events",
            "delimiter",
            id="two_character_delimiter",
        ),
    ],
)
def test_bad_read_option_is_a_file_error(case: str, source: str, mentions: str) -> None:
    """A read option no reader accepts should be reported like any other mapping problem."""
    with pytest.raises(SourceFileError) as info:
        run(case, source)
    assert mentions in info.value.problem
    assert Path(info.value.file).parent == CORPUS / case  # names the mapping or the export
    assert info.value.fix.strip()


# --- row-level problems (quarantine) ------------------------------------------------------------


@dataclass(frozen=True)
class RowCase:
    case: str
    source: str
    rows_read: int
    accepted_rows: tuple[int, ...]  # spreadsheet rows accepted
    quarantine: tuple[tuple[int, str, str | None, str], ...]  # (row, column, value, reason)
    values: tuple[tuple[int, str, object], ...] = field(default=())  # (row, field, accepted value)


BAD_DATE = "unparseable date"
IMPLAUSIBLE = "implausible date (outside 1990-2100)"
EMPTY = "empty value in required column"

ROW_CASES = [
    RowCase(
        "unparseable_date",
        "erp_open_items",
        2,
        (2,),
        ((3, "Posting Date", "32/13/2026", BAD_DATE),),
    ),
    RowCase(
        "implausible_date",
        "erp_open_items",
        3,
        (2,),
        (
            (3, "Due Date", "14/02/0026", IMPLAUSIBLE),
            (4, "Posting Date", "15/01/1926", IMPLAUSIBLE),
        ),
    ),
    # A negative invoice is an error; a negative credit memo is read by its size.
    RowCase(
        "negative_invoice_amount",
        "erp_open_items",
        3,
        (2, 4),
        ((3, "Amount", "-1210.00", "negative amount"),),
        values=((4, "doc_type", "credit_note"), (4, "amount", 500.0), (4, "open_amount", 500.0)),
    ),
    RowCase(
        "unknown_currency_code",
        "erp_open_items",
        3,
        (2,),
        (
            (3, "Currency Code", "EURO", "unknown currency code"),
            (4, "Currency Code", "$$", "unknown currency code"),
        ),
        values=((2, "currency", "EUR"),),
    ),
    RowCase(
        "empty_id",
        "salesforce_contacts",
        2,
        (2,),
        ((3, "Id", None, EMPTY),),
    ),
    RowCase(
        "duplicate_id",
        "salesforce_contacts",
        3,
        (2, 3),
        ((4, "Id", "003AA0000001", "duplicate id (first seen in row 2)"),),
        values=((2, "first_name", "Ana"),),
    ),
    RowCase(
        "unparseable_number",
        "erp_open_items",
        2,
        (2,),
        ((3, "Amount", "12abc", "unparseable number (this file uses decimal points)"),),
    ),
    # Semicolon file whose amounts read "1.234,56": "1.5" can only be a decimal point.
    RowCase(
        "decimal_point_in_comma_file",
        "erp_open_items",
        3,
        (2, 3),
        ((4, "Amount", "1.5", "unparseable number (this file uses decimal commas)"),),
        values=((2, "amount", 1234.56), (3, "amount", 2500.0), (3, "open_amount", 1000.0)),
    ),
    RowCase(
        "unparseable_opt_in",
        "salesforce_contacts",
        2,
        (2,),
        ((3, "WhatsApp_OptIn__c", "maybe", "unparseable yes/no value"),),
    ),
    RowCase(
        "unknown_document_type",
        "erp_open_items",
        2,
        (2,),
        (
            (
                3,
                "Document Type",
                "Nota",
                "unknown value (expected one of: "
                "Invoice, Factura, Payment, Pago, Credit Memo, Abono)",
            ),
        ),
    ),
    # A payment needs no due date; an invoice does.
    RowCase(
        "invoice_without_due_date",
        "erp_open_items",
        3,
        (2, 4),
        ((3, "Due Date", None, "invoice without a due date"),),
    ),
    RowCase(
        "open_amount_exceeds_amount",
        "erp_open_items",
        2,
        (2,),
        ((3, "Remaining Amount", "1500.00", "open amount is larger than the amount"),),
    ),
    # A cell that breaks its own rule is reported for that, before a rule across fields.
    RowCase(
        "negative_open_amount",
        "erp_open_items",
        2,
        (2,),
        (
            (3, "Amount", "-2000.00", "negative amount"),
            (3, "Remaining Amount", "-1500.00", "negative amount"),
        ),
    ),
    RowCase(
        "promise_without_date",
        "events",
        2,
        (2,),
        ((3, "promised_date", None, "promise to pay without a promised date"),),
    ),
    RowCase(
        "event_without_subject",
        "events",
        2,
        (2,),
        ((3, "account_id", None, "event names neither an account nor a contact"),),
    ),
    # An unquoted thousands separator ("1,210.00") splits the amount into two fields.
    RowCase(
        "too_many_fields",
        "erp_open_items",
        2,
        (2,),
        (
            (
                3,
                "(whole row)",
                "Invoice,FV-1002,C001,B2B,15/01/2026,14/02/2026,1,210.00,1210.00,,EUR,Open",
                "expected 11 fields, found 12",
            ),
        ),
    ),
    RowCase(
        "too_few_fields",
        "erp_open_items",
        2,
        (2,),
        ((3, "(whole row)", "Total,1210.00", "expected 11 fields, found 2"),),
    ),
    pytest.param(
        RowCase(
            "blank_line_before_bad_row",
            "erp_open_items",
            2,
            (2,),
            ((4, "Posting Date", "32/13/2026", BAD_DATE),),
        ),
        id="blank_line_before_bad_row",
    ),
    pytest.param(
        RowCase("blank_line_before_header", "erp_open_items", 1, (3,), ()),
        id="blank_line_before_header",
    ),
]


def quarantine_lines(q: pd.DataFrame) -> list[tuple[int, str, str | None, str]]:
    return [
        (int(row), column, value, reason)
        for row, column, value, reason in q[["row", "column", "value", "reason"]].itertuples(
            index=False, name=None
        )
    ]


@pytest.mark.parametrize("c", ROW_CASES, ids=lambda c: c.case if isinstance(c, RowCase) else None)
def test_row_level_quarantine(c: RowCase) -> None:
    mapping, result = run(c.case, c.source)
    q = result.quarantine

    assert quarantine_lines(q) == list(c.quarantine)
    assert set(q["source"]) <= {mapping.name}
    assert set(q["file"]) <= {result.path.name}

    # Every row read is accepted or quarantined, once.
    assert result.rows_read == c.rows_read
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert result.rows_quarantined == q["row"].nunique()
    accepted_rows = [int(r) for r in result.accepted["source_row"]]
    assert accepted_rows == list(c.accepted_rows)
    assert not set(accepted_rows) & set(q["row"].astype(int))

    by_row = result.accepted.set_index("source_row")
    for row, name, expected in c.values:
        assert by_row.at[row, name] == expected, (row, name)


# --- the positive control -----------------------------------------------------------------------


def test_cp1252_semicolon_decimal_comma_file_is_accepted_whole() -> None:
    """Spanish Excel's 'CSV (delimitado por comas)': Windows-1252, ';' and '1.234,56'."""
    case = "valid_cp1252_semicolon_decimal_comma"
    raw = (CORPUS / case / "hubspot_deals.csv").read_bytes()
    assert "José Núñez".encode("cp1252") in raw
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")

    _, result = run(case, "hubspot_deals")

    assert (result.encoding, result.delimiter) == ("cp1252", ";")
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (2, 2, 0)
    assert result.quarantine.empty
    got = result.accepted.set_index("source_row")
    assert list(got.index) == [2, 3]
    assert got.at[2, "source_id"] == "9001"
    assert got.at[2, "owner"] == "José Núñez"
    assert got.at[3, "owner"] == "María Peña"
    assert got.at[2, "name"] == "Renovación anual"
    assert got.at[3, "stage"] == "Negociación"
    assert got.at[2, "amount"] == pytest.approx(1234.56)
    assert got.at[3, "amount"] == pytest.approx(980.0)
    assert list(got["status"]) == ["won", "open"]
    assert list(got["currency"]) == ["EUR", "EUR"]
    assert got.at[2, "renewal_date"] == pd.Timestamp("2026-12-31")
    # "15/01/2026 10:30" without an offset is Madrid time (CET, UTC+1).
    assert got.at[2, "last_modified"] == pd.Timestamp("2026-01-15 09:30", tz="UTC")


def test_every_corpus_folder_is_a_case() -> None:
    """A folder added to the corpus without a table row would silently test nothing."""
    known = {c.case for c in FILE_CASES}
    known |= {(p.values[0] if not isinstance(p, RowCase) else p).case for p in ROW_CASES}
    known |= {
        "unknown_encoding_name",
        "two_character_delimiter",
        "valid_cp1252_semicolon_decimal_comma",
    }
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == known
    assert len(folders) >= 20


def test_missing_file_hint_names_only_near_misses(tmp_path: Path) -> None:
    """An unrelated export in the folder is not offered as the missing one."""
    (tmp_path / "salesforce_opportunities.csv").write_text("Id\n1\n", encoding="utf-8")
    mapping = load_mapping("erp_open_items", Settings())
    with pytest.raises(SourceFileError) as info:
        ingest(mapping, tmp_path, TZ)
    assert info.value.problem == "no file matches 'erp_open_items.*' for source 'erp_open_items'"
