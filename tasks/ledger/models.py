"""The ledger's tables: what Cadencia has read, decided, sent and heard back.

One schema for SQLite (embedded mode) and PostgreSQL, so only portable types are used. Changing
anything here needs a new migration in `migrations/versions/` (autogenerate, then hand-check).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Allowed values, documented here and checked by the helpers that write them. They are not
# CHECK constraints on purpose: adding a status should not need a table rebuild on SQLite.
RUN_STATUSES = ("running", "completed", "failed")
CASE_KINDS = ("renewal", "collections")
CASE_STATUSES = ("open", "paused", "closed")
CHANNELS = ("email", "whatsapp", "sms", "rcs", "voice", "in_app")
PURPOSES = ("service", "marketing")
CONSENT_STATES = ("granted", "denied", "unknown")
SOURCE_SYSTEMS = ("salesforce", "hubspot")
TOUCH_STATUSES = (
    "planned",
    "claimed",
    "sent",
    "failed",
    "unknown",
    "expired",
    "suppressed",
    "deferred",
)

# Named constraints: SQLite's batch migrations can only drop or alter what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """An aware timestamp stored as UTC on every backend.

    SQLite keeps no offset: without this, an aware value would be stored as its local wall time
    and read back naive, so comparisons and ordering would differ from PostgreSQL. Naive values
    are refused because guessing their zone is how a message goes out at 3 a.m.
    The DDL is plain `DateTime(timezone=True)` (see `render_item` in migrations/env.py).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the ledger needs an aware timestamp")
        value = value.astimezone(dt.UTC)
        if type(value) is not dt.datetime:  # e.g. pandas.Timestamp: drivers want the base type
            value = dt.datetime(
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
                tzinfo=dt.UTC,
            )
        return value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# SQLite only autoincrements an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# JSONB on PostgreSQL: comparable, indexable, and stored without the text's whitespace.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Money = sa.Numeric(18, 2)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _created() -> Mapped[dt.datetime]:
    return mapped_column(UtcDateTime, nullable=False, default=utcnow, server_default=sa.func.now())


def _updated() -> Mapped[dt.datetime]:
    return mapped_column(
        UtcDateTime,
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=sa.func.now(),
    )


class Run(Base):
    """One flow run; everything it read or wrote points back here."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    flow_run_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    flow: Mapped[str] = mapped_column(sa.String(50))
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    started_at: Mapped[dt.datetime] = _created()
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(sa.String(20), default="running", server_default="running")
    summary: Mapped[dict[str, Any] | None] = mapped_column(Json)


class SourceFile(Base):
    """Which file a run read for a source, and how its rows were split."""

    __tablename__ = "source_files"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "source"),
        sa.CheckConstraint("rows_read = rows_accepted + rows_quarantined", name="rows_add_up"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("runs.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(50))
    path: Mapped[str] = mapped_column(sa.String(1024))
    # "blake3:<hex>" (rows before migration 0008: "sha256:<hex>").
    digest: Mapped[str] = mapped_column(sa.String(80))
    file_format: Mapped[str] = mapped_column(sa.String(20))
    # Text exports only: XLSX and Parquet carry typed cells, not an encoding (nullable since 0003).
    encoding: Mapped[str | None] = mapped_column(sa.String(50))
    delimiter: Mapped[str | None] = mapped_column(sa.String(8))
    rows_read: Mapped[int] = mapped_column(sa.Integer)
    rows_accepted: Mapped[int] = mapped_column(sa.Integer)
    rows_quarantined: Mapped[int] = mapped_column(sa.Integer)


class Quarantine(Base):
    """A rejected cell or row, kept so that someone can fix the export and rerun."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(
        BigId, sa.ForeignKey("runs.id", ondelete="CASCADE"), index=True
    )
    source: Mapped[str] = mapped_column(sa.String(100))
    file: Mapped[str] = mapped_column(sa.String(1024))
    # Spreadsheet row number; null when the problem is the whole file (e.g. a missing column).
    row: Mapped[int | None] = mapped_column(sa.Integer)
    column: Mapped[str | None] = mapped_column("column_name", sa.String(200))
    value: Mapped[str | None] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.String(500))


class Contact(Base):
    """A golden contact: the merged view of one person across the CRMs."""

    __tablename__ = "contacts"

    golden_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    account_id: Mapped[str | None] = mapped_column(sa.String(100), index=True)
    first_name: Mapped[str | None] = mapped_column(sa.String(200))
    last_name: Mapped[str | None] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(320), index=True)
    phone_e164: Mapped[str | None] = mapped_column(sa.String(20))
    mobile_e164: Mapped[str | None] = mapped_column(sa.String(20))
    phone_type: Mapped[str | None] = mapped_column(sa.String(20))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    language: Mapped[str | None] = mapped_column(sa.String(35))
    title: Mapped[str | None] = mapped_column(sa.String(200))
    role: Mapped[str | None] = mapped_column(sa.String(100))
    # Added in 0002 (unified contacts).
    account_name: Mapped[str | None] = mapped_column(sa.String(200))
    email_role: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    email_typo_of: Mapped[str | None] = mapped_column(sa.String(100))
    mobile_type: Mapped[str | None] = mapped_column(sa.String(20))
    last_modified: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    records: Mapped[int] = mapped_column(sa.Integer, default=1, server_default="1")
    systems: Mapped[str | None] = mapped_column(sa.String(50))
    collections_tier: Mapped[int | None] = mapped_column(sa.Integer)
    renewals_tier: Mapped[int | None] = mapped_column(sa.Integer)
    receives_collections: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    receives_renewals: Mapped[bool] = mapped_column(
        sa.Boolean, default=False, server_default=sa.false()
    )
    # A person found to be the same as another: this id now points at the surviving one.
    merged_into: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()
    # Right to erasure: personal fields are blanked and this set, the row (and its audit) kept.
    erased_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class ContactSourceId(Base):
    """Which CRM record(s) a golden contact came from; a CRM id maps to one contact only."""

    __tablename__ = "contact_source_ids"
    __table_args__ = (sa.UniqueConstraint("system", "source_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    golden_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("contacts.golden_id", ondelete="CASCADE"), index=True
    )
    system: Mapped[str] = mapped_column(sa.String(20))
    source_id: Mapped[str] = mapped_column(sa.String(100))


class ConsentAudit(Base):
    """Append-only history of consent statements; the current state is the latest row.

    Rows are never updated or deleted (the foreign keys have no cascade for that reason).
    """

    __tablename__ = "consent_audit"
    __table_args__ = (
        sa.Index(
            "ix_consent_audit_golden_id_channel_purpose_recorded_at",
            "golden_id",
            "channel",
            "purpose",
            "recorded_at",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    golden_id: Mapped[str] = mapped_column(sa.String(64), sa.ForeignKey("contacts.golden_id"))
    channel: Mapped[str] = mapped_column(sa.String(20))
    purpose: Mapped[str] = mapped_column(sa.String(20))
    old_state: Mapped[str | None] = mapped_column(sa.String(10))
    new_state: Mapped[str] = mapped_column(sa.String(10))
    source: Mapped[str] = mapped_column(sa.String(100))
    stated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    recorded_at: Mapped[dt.datetime] = _created()
    run_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("runs.id"))


class Case(Base):
    """A renewal or collections case for one account, driving its cadence."""

    __tablename__ = "cases"
    # "One open case per account and kind" needs a partial index, which is not portable; this
    # at least stops a rerun of the same day from opening a duplicate.
    __table_args__ = (sa.UniqueConstraint("account_id", "kind", "opened_on"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(20))
    status: Mapped[str] = mapped_column(sa.String(20), default="open", server_default="open")
    stage: Mapped[str] = mapped_column(sa.String(50))
    opened_on: Mapped[dt.date] = mapped_column(sa.Date)
    closed_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    paused_until: Mapped[dt.date | None] = mapped_column(sa.Date)
    do_not_contact_until: Mapped[dt.date | None] = mapped_column(sa.Date)
    promise_amount: Mapped[Decimal | None] = mapped_column(Money)
    promise_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    state: Mapped[dict[str, Any] | None] = mapped_column(Json)
    updated_at: Mapped[dt.datetime] = _updated()
    # Added in 0004 (the decision engine).
    case_key: Mapped[str | None] = mapped_column(sa.String(160), unique=True)
    status_reason: Mapped[str | None] = mapped_column(sa.String(300))
    stage_since: Mapped[dt.date | None] = mapped_column(sa.Date)
    segment: Mapped[str | None] = mapped_column(sa.String(100))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    owner: Mapped[str | None] = mapped_column(sa.String(200))
    renewal_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    open_invoices: Mapped[int | None] = mapped_column(sa.Integer)
    worst_days_overdue: Mapped[int | None] = mapped_column(sa.Integer)
    promise_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    broken_promise_on: Mapped[dt.date | None] = mapped_column(sa.Date)
    # The control group the case was drawn into when it opened (no automated touch), and the
    # amount it opened with: what recovery and lift are measured against.
    holdout: Mapped[bool | None] = mapped_column(sa.Boolean)
    opening_amount: Mapped[Decimal | None] = mapped_column(Money)


class Touch(Base):
    """One planned or attempted message.

    The unique `idempotency_key` is what makes sends exactly-once: a rerun that plans the same
    touch collides with the existing row instead of sending twice.
    """

    __tablename__ = "touches"
    __table_args__ = (
        sa.Index("ix_touches_golden_id_send_at", "golden_id", "send_at"),
        sa.Index("ix_touches_status_send_at", "status", "send_at"),
    )
    # Statuses: planned -> claimed -> sent | failed | unknown; planned -> expired;
    # unknown -> sent (webhook evidence) | expired. See docs/deliver.md.

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    case_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("cases.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("runs.id"))
    golden_id: Mapped[str | None] = mapped_column(sa.String(64))
    step: Mapped[str] = mapped_column(sa.String(50))
    channel: Mapped[str] = mapped_column(sa.String(20))
    template: Mapped[str] = mapped_column(sa.String(100))
    purpose: Mapped[str] = mapped_column(sa.String(20))
    send_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(sa.String(20), default="planned", server_default="planned")
    provider: Mapped[str | None] = mapped_column(sa.String(50))
    # Indexed: delivery receipts and replies find their touch by it.
    provider_message_id: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = _created()
    updated_at: Mapped[dt.datetime] = _updated()
    # Added in 0004: the plan's own view of a touch (history for caps and cadences).
    case_key: Mapped[str | None] = mapped_column(sa.String(160), index=True)
    account_id: Mapped[str | None] = mapped_column(sa.String(100))
    as_of: Mapped[dt.date | None] = mapped_column(sa.Date)
    assignee: Mapped[str | None] = mapped_column(sa.String(200))
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    # The send moment as the recipient reads it, e.g. "2026-11-20 09:00 Europe/Madrid".
    send_at_local: Mapped[str | None] = mapped_column(sa.String(100))
    # Added in 0005: delivery. `message_ref` is our id for the message (a UUID derived from
    # the idempotency key), echoed to providers and back in their webhooks.
    message_ref: Mapped[str | None] = mapped_column(sa.String(36), unique=True)
    claim_token: Mapped[str | None] = mapped_column(sa.String(36))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    error_code: Mapped[str | None] = mapped_column(sa.String(50))
    # What the provider reported after the send: delivered, read, opened, clicked, bounced...
    delivery_status: Mapped[str | None] = mapped_column(sa.String(20))
    delivery_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # The next consented channel for the step, tried when this one fails permanently.
    fallback_channel: Mapped[str | None] = mapped_column(sa.String(20))
    fallback_of: Mapped[int | None] = mapped_column(BigId)
    # For call tasks: the open invoices, promises and amounts the agent needs.
    context: Mapped[dict[str, Any] | None] = mapped_column(Json)


class Receivable(Base):
    """Open receivables per day, currency and aging bucket (and what was invoiced in the last
    90 days): the history behind DSO and aging over time. A rerun of a day replaces its rows."""

    __tablename__ = "receivables"
    __table_args__ = (sa.UniqueConstraint("as_of", "currency", "bucket"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("runs.id"))
    as_of: Mapped[dt.date] = mapped_column(sa.Date)
    currency: Mapped[str] = mapped_column(sa.String(3))
    bucket: Mapped[str] = mapped_column(sa.String(20))
    open_amount: Mapped[Decimal] = mapped_column(Money)
    invoices: Mapped[int] = mapped_column(sa.Integer)
    invoiced_90d: Mapped[Decimal] = mapped_column(Money)


class Hold(Base):
    """A manual "do not contact until" for an account: every case of it waits."""

    __tablename__ = "holds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(sa.String(100), index=True)
    until: Mapped[dt.date] = mapped_column(sa.Date)
    reason: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[dt.datetime] = _created()


class Suppression(Base):
    """A channel closed for good for one contact (hard bounce, STOP, undeliverable...)."""

    __tablename__ = "suppressions"
    __table_args__ = (sa.UniqueConstraint("golden_id", "channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    golden_id: Mapped[str] = mapped_column(sa.String(64))
    channel: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.String(200))
    since: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    run_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("runs.id"))
    created_at: Mapped[dt.datetime] = _created()


class Event(Base):
    """Something that happened outside Cadencia (delivery, reply, payment, promise, ...).

    Feeds deliver at least once; the unique `event_key` turns a redelivery into a no-op.
    """

    __tablename__ = "events"
    __table_args__ = (
        sa.Index("ix_events_account_id_occurred_at", "account_id", "occurred_at"),
        sa.Index("ix_events_golden_id_occurred_at", "golden_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    source: Mapped[str] = mapped_column(sa.String(50))
    event_type: Mapped[str] = mapped_column(sa.String(50))
    channel: Mapped[str | None] = mapped_column(sa.String(20))
    occurred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    account_id: Mapped[str | None] = mapped_column(sa.String(100))
    golden_id: Mapped[str | None] = mapped_column(sa.String(64))
    touch_id: Mapped[int | None] = mapped_column(BigId, sa.ForeignKey("touches.id"), index=True)
    message_id: Mapped[str | None] = mapped_column(sa.String(200))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    promised_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)


class Erasure(Base):
    """A forgotten person's identifier (email, number, CRM record id) as a salted hash: enough
    to recognise them in a later export and drop the record, nothing to recover it from."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    digest: Mapped[str] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(10))
    golden_id: Mapped[str] = mapped_column(sa.String(64))
    erased_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
