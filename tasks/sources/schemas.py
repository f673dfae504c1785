"""What Cadencia needs from each kind of export, as declarative schemas.

`FieldSpec` says how a column is parsed (its type) and whether it must be mapped and filled;
the pandera schema built from it states the row rules that send a row to quarantine.
Failure messages here are the quarantine reasons users read, so they are written for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc

from tasks import arrow_text as at

# pandera imports its pandas backends (and their hypothesis strategies) on the first
# validation, 0.1 s into the first file read; they are imported with this module instead.
pa.DataFrameSchema.register_default_backends(pd.DataFrame)

FieldType = Literal["str", "bool", "date", "datetime", "number", "currency", "enum"]

CHANNELS = ("email", "whatsapp", "sms", "rcs", "voice", "in_app")
EVENT_TYPES = (
    "delivered",
    "opened",
    "clicked",
    "bounced",
    "read",
    "replied",
    "failed",
    "unsubscribed",
    "call_outcome",
    "promise_to_pay",
    "payment",
    "dispute",
    "in_app_seen",
)
DOC_TYPES = ("invoice", "payment", "credit_note")
RENEWAL_STATUSES = ("open", "won", "lost")

# ISO 4217 active codes (data, not logic: a currency outside this list is a typo or a placeholder).
_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD
    BTN BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP
    DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR
    IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD
    MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS
    VED VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG ZWL
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())

# Dates outside this window are typos (year 0026, 20250), not real business dates.
EARLIEST_DATE = pd.Timestamp("1990-01-01")
LATEST_DATE = pd.Timestamp("2100-12-31")


@dataclass(frozen=True)
class FieldSpec:
    type: FieldType = "str"
    required: bool = False  # the mapping must map it and every row must fill it
    choices: tuple[str, ...] = ()  # for enums
    non_negative: bool = False


@dataclass(frozen=True)
class KindSpec:
    fields: dict[str, FieldSpec]
    key: tuple[str, ...]  # unique within one file
    row_rules: dict[str, tuple[str, str]] = field(default_factory=dict)
    # row rule name -> (blamed field, reason); the check itself is in _row_rule


KINDS: dict[str, KindSpec] = {
    "contacts": KindSpec(
        fields={
            "source_id": FieldSpec(required=True),
            "account_id": FieldSpec(),
            "crm_account_id": FieldSpec(),
            "account_name": FieldSpec(),
            "first_name": FieldSpec(),
            "last_name": FieldSpec(),
            "title": FieldSpec(),
            "role": FieldSpec(),
            "email": FieldSpec(),
            "phone": FieldSpec(),
            "mobile_phone": FieldSpec(),
            "country": FieldSpec(),
            "language": FieldSpec(),
            "email_opt_out": FieldSpec(type="bool"),
            "do_not_call": FieldSpec(type="bool"),
            "email_opt_in": FieldSpec(type="bool"),
            "whatsapp_opt_in": FieldSpec(type="bool"),
            "sms_opt_in": FieldSpec(type="bool"),
            "marketing_opt_in": FieldSpec(type="bool"),
            "last_modified": FieldSpec(type="datetime", required=True),
        },
        key=("source_id",),
    ),
    "open_items": KindSpec(
        fields={
            "doc_type": FieldSpec(type="enum", required=True, choices=DOC_TYPES),
            "doc_number": FieldSpec(required=True),
            "account_id": FieldSpec(required=True),
            "customer_type": FieldSpec(),
            "issue_date": FieldSpec(type="date", required=True),
            "due_date": FieldSpec(type="date"),
            "amount": FieldSpec(type="number", required=True, non_negative=True),
            "open_amount": FieldSpec(type="number", non_negative=True),
            "applies_to": FieldSpec(),
            "currency": FieldSpec(type="currency", required=True),
            "status": FieldSpec(),
        },
        key=("doc_type", "doc_number"),
        row_rules={
            "invoice_has_due_date": ("due_date", "invoice without a due date"),
            "open_within_amount": ("open_amount", "open amount is larger than the amount"),
        },
    ),
    "events": KindSpec(
        fields={
            "event_id": FieldSpec(required=True),
            "occurred_at": FieldSpec(type="datetime", required=True),
            "event_type": FieldSpec(type="enum", required=True, choices=EVENT_TYPES),
            "channel": FieldSpec(type="enum", choices=CHANNELS),
            "account_id": FieldSpec(),
            "contact_source_id": FieldSpec(),
            "contact_email": FieldSpec(),
            "contact_phone": FieldSpec(),
            "message_id": FieldSpec(),
            "amount": FieldSpec(type="number", non_negative=True),
            "currency": FieldSpec(type="currency"),
            "promised_date": FieldSpec(type="date"),
            "invoice_number": FieldSpec(),
            "outcome": FieldSpec(),
        },
        key=("event_id",),
        row_rules={
            "promise_has_date": ("promised_date", "promise to pay without a promised date"),
            "event_has_subject": ("account_id", "event names neither an account nor a contact"),
        },
    ),
    "renewals": KindSpec(
        fields={
            "source_id": FieldSpec(required=True),
            "account_id": FieldSpec(required=True),
            "crm_account_id": FieldSpec(),
            "name": FieldSpec(),
            "stage": FieldSpec(required=True),
            "status": FieldSpec(type="enum", required=True, choices=RENEWAL_STATUSES),
            "renewal_date": FieldSpec(type="date", required=True),
            "amount": FieldSpec(type="number", non_negative=True),
            "currency": FieldSpec(type="currency"),
            "owner": FieldSpec(),
            "last_modified": FieldSpec(type="datetime"),
        },
        key=("source_id",),
    ),
}


# The fields each row rule reads.
ROW_RULE_FIELDS = {
    "invoice_has_due_date": ("doc_type", "due_date"),
    "open_within_amount": ("open_amount", "amount"),
    "promise_has_date": ("event_type", "promised_date"),
    "event_has_subject": ("account_id", "contact_source_id", "contact_email", "contact_phone"),
}
# Whether the row has a value in any field: a row rule lets a row without any pass (pandera's
# ignore_na for checks across columns). Given as a column, the rules can run on the fields
# they read alone (pandera copies every column of a failing row into its report).
ROW_HAS_VALUE = "(row has a value)"


def row_rule_frame(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The frame the kind's row rules run on: the fields they read, and ROW_HAS_VALUE."""
    fields = [f for rule in KINDS[kind].row_rules for f in ROW_RULE_FIELDS[rule] if f in df]
    narrow = df[list(dict.fromkeys(fields))].copy(deep=False)
    narrow[ROW_HAS_VALUE] = ~_all_missing(df)
    return narrow


def _row_rule(df: pd.DataFrame, rule: str) -> pd.Series:
    """One row rule across fields; True means the row passes. A rule whose fields are absent
    passes. Each check computes only its own rule."""
    cols = set(df.columns)
    if rule == "invoice_has_due_date" and {"doc_type", "due_date"} <= cols:
        ok = ~_is(df["doc_type"], "invoice") | ~at.missing(df["due_date"])
    elif rule == "open_within_amount" and {"open_amount", "amount"} <= cols:
        ok = ~(df["open_amount"].to_numpy() > df["amount"].to_numpy() + 0.005)  # NaN passes
    elif rule == "promise_has_date" and {"event_type", "promised_date"} <= cols:
        ok = ~_is(df["event_type"], "promise_to_pay") | ~at.missing(df["promised_date"])
    elif rule == "event_has_subject" and set(ROW_RULE_FIELDS[rule]) <= cols:
        ok = np.logical_or.reduce([~at.missing(df[c]) for c in ROW_RULE_FIELDS[rule]])
    else:
        return pd.Series(True, index=df.index)
    # What pandera's ignore_na does for a frame-wide check (a row with every cell empty passes),
    # without it scanning every column of every row.
    empty = ~df[ROW_HAS_VALUE].to_numpy() if ROW_HAS_VALUE in cols else _all_missing(df)
    return pd.Series(ok | empty, index=df.index)


def _is(s: pd.Series, value: str) -> np.ndarray:
    """Cells equal to `value` (an empty cell is not)."""
    return at.to_mask(pc.equal(at.arrow(s), value))


def _all_missing(df: pd.DataFrame) -> np.ndarray:
    """Rows with every cell empty: narrowed column by column, so usually one column is read
    (reading a column's empty cells whole is cheaper than picking a few rows of a text one)."""
    rows = np.arange(len(df))
    for name in df.columns:
        rows = rows[at.missing(df[name])[rows]]
        if not len(rows):
            break
    out = np.zeros(len(df), dtype=bool)
    out[rows] = True
    return out


def _check(test: Callable[[pd.Series], pd.Series], error: str) -> pa.Check:
    """A column check that lets empty cells pass itself: pandera's ignore_na would first copy
    the non-empty cells of the column (slow for Arrow-backed text)."""
    return pa.Check(lambda s: test(s) | s.isna(), element_wise=False, ignore_na=False, error=error)


def _one_of(values: list[str], error: str) -> pa.Check:
    """A check that each cell is one of `values` (empty cells pass): one Arrow hash lookup per
    cell, the empty value among the allowed ones (pandas' isin, then isna, is three passes)."""
    allowed = pa_arrow.array([*values, None], pa_arrow.large_string())

    def test(s: pd.Series) -> pd.Series:
        found = pc.is_in(at.arrow(s), value_set=allowed, skip_nulls=False)
        return pd.Series(at.to_mask(found), index=s.index)

    return pa.Check(test, element_wise=False, ignore_na=False, error=error)


def _field_checks(name: str, spec: FieldSpec) -> list[pa.Check]:
    checks: list[pa.Check] = []
    if spec.type == "currency":
        checks.append(_one_of(sorted(ISO_4217), "unknown currency code"))
    if spec.type == "enum":
        choices = list(spec.choices)
        checks.append(
            _one_of(choices, f"unknown value (expected one of: {', '.join(spec.choices)})")
        )
    if spec.non_negative:
        checks.append(_check(lambda s: s >= 0, "negative amount"))
    if spec.type == "date":
        checks.append(
            _check(
                lambda s: (s >= EARLIEST_DATE) & (s <= LATEST_DATE),
                "implausible date (outside 1990-2100)",
            )
        )
    if spec.type == "datetime":
        earliest, latest = EARLIEST_DATE.tz_localize("UTC"), LATEST_DATE.tz_localize("UTC")
        checks.append(
            _check(
                lambda s: (s >= earliest) & (s <= latest), "implausible date (outside 1990-2100)"
            )
        )
    return checks


def schema_for(kind: str, present: list[str]) -> pa.DataFrameSchema:
    """The pandera schema for the fields this file maps (unmapped optional fields are absent)."""
    spec = KINDS[kind]
    columns = {
        name: pa.Column(
            nullable=not fs.required,
            checks=_field_checks(name, fs),
            required=True,
            name=name,
        )
        for name, fs in spec.fields.items()
        if name in present
    }
    row_checks = [
        pa.Check(
            lambda df, rule=rule: _row_rule(df, rule), name=rule, error=reason, ignore_na=False
        )
        for rule, (_blamed, reason) in spec.row_rules.items()
    ]
    return pa.DataFrameSchema(columns=columns, checks=row_checks, coerce=False)
