"""The constraints the rest of Cadencia relies on hold on both backends."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from tasks.ledger.models import (
    Case,
    ConsentAudit,
    Contact,
    ContactSourceId,
    Event,
    Run,
    SourceFile,
    Touch,
)

AT = dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC)


def _touch(key: str, send_at: dt.datetime = AT) -> Touch:
    return Touch(
        idempotency_key=key,
        step="reminder_1",
        channel="email",
        template="renewal_reminder",
        purpose="service",
        send_at=send_at,
    )


def test_touch_idempotency_key_is_unique(ledger: sa.Engine) -> None:
    with Session(ledger) as session:
        session.add(_touch("case1:reminder_1:email"))
        session.commit()
    with Session(ledger) as session, pytest.raises(sa.exc.IntegrityError):
        session.add(_touch("case1:reminder_1:email"))
        session.commit()
    with Session(ledger) as session:
        touch = session.scalars(sa.select(Touch)).one()
        assert (touch.status, touch.attempts) == ("planned", 0)


def test_event_key_is_unique(ledger: sa.Engine) -> None:
    def event() -> Event:
        return Event(
            event_key="sendgrid:msg-1:delivered",
            source="sendgrid",
            event_type="delivered",
            occurred_at=AT,
        )

    with Session(ledger) as session:
        session.add(event())
        session.commit()
    with Session(ledger) as session, pytest.raises(sa.exc.IntegrityError):
        session.add(event())
        session.commit()


def test_contact_source_id_maps_to_one_contact(ledger: sa.Engine) -> None:
    with Session(ledger) as session:
        session.add_all([Contact(golden_id="gc_a"), Contact(golden_id="gc_b")])
        session.add(ContactSourceId(golden_id="gc_a", system="salesforce", source_id="003X"))
        session.add(ContactSourceId(golden_id="gc_a", system="hubspot", source_id="003X"))
        session.commit()
    with Session(ledger) as session, pytest.raises(sa.exc.IntegrityError):
        session.add(ContactSourceId(golden_id="gc_b", system="salesforce", source_id="003X"))
        session.commit()


def test_source_file_counts_must_add_up(ledger: sa.Engine) -> None:
    with Session(ledger) as session:
        run = Run(flow="daily_outreach", as_of=dt.date(2026, 3, 2))
        session.add(run)
        session.commit()
        session.add(
            SourceFile(
                run_id=run.id,
                source="erp_open_items",
                kind="open_items",
                path="data/erp.csv",
                digest="blake3:" + "0" * 64,
                file_format="csv",
                encoding="utf-8",
                rows_read=10,
                rows_accepted=8,
                rows_quarantined=1,
            )
        )
        with pytest.raises(sa.exc.IntegrityError):
            session.commit()


def test_foreign_keys_are_enforced(ledger: sa.Engine) -> None:
    with Session(ledger) as session, pytest.raises(sa.exc.IntegrityError):
        session.add(ContactSourceId(golden_id="gc_missing", system="hubspot", source_id="1"))
        session.commit()


def test_case_unique_per_account_kind_and_day(ledger: sa.Engine) -> None:
    def case() -> Case:
        return Case(
            account_id="acc1", kind="collections", stage="due", opened_on=dt.date(2026, 3, 2)
        )

    with Session(ledger) as session:
        session.add(case())
        session.commit()
    with Session(ledger) as session, pytest.raises(sa.exc.IntegrityError):
        session.add(case())
        session.commit()


def test_timestamps_are_aware_utc_on_both_backends(ledger: sa.Engine) -> None:
    madrid = dt.datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Europe/Madrid"))
    with Session(ledger) as session:
        session.add(_touch("k1", send_at=madrid))
        session.add(Contact(golden_id="gc_a"))
        session.flush()
        session.add(
            ConsentAudit(
                golden_id="gc_a",
                channel="email",
                purpose="marketing",
                new_state="granted",
                source="hubspot",
                stated_at=madrid,
            )
        )
        session.commit()
    with Session(ledger) as session:
        touch = session.scalars(sa.select(Touch)).one()
        assert touch.send_at == madrid and touch.send_at.tzinfo == dt.UTC
        assert touch.created_at.tzinfo == dt.UTC
        audit = session.scalars(sa.select(ConsentAudit)).one()
        assert audit.stated_at == AT.replace(hour=9)
        assert audit.recorded_at.tzinfo == dt.UTC
        # Comparisons happen in SQL on UTC values, so they agree across backends.
        due = session.scalars(sa.select(Touch.idempotency_key).where(Touch.send_at <= AT)).all()
        assert due == ["k1"]


def test_naive_timestamps_are_refused(ledger: sa.Engine) -> None:
    with Session(ledger) as session, pytest.raises(sa.exc.StatementError, match="naive"):
        session.add(_touch("k1", send_at=dt.datetime(2026, 3, 2, 9, 30)))
        session.commit()
