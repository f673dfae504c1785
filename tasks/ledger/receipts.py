"""The ledger side of webhooks: what a batch of provider receipts changes, in one transaction.

Providers deliver at least once and out of order, so every write here is idempotent and
monotonic: events are inserted ON CONFLICT (event_key) DO NOTHING and only the ones that went in
have effects; a touch's delivery_status only moves forward (failures always win); `unknown`
touches become `sent` on any evidence; fallback touches and suppressions are insert-if-new.
The guards live in the SQL itself (not in what was read first), so two concurrent requests
about the same touch cannot undo each other.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tasks.deliver.receipts import DELIVERY_RANK, EVIDENCE, Receipt, mask
from tasks.ledger.bulk import insert_new
from tasks.ledger.delivery import fallback_touch
from tasks.ledger.models import Contact, Event, Suppression, Touch, UtcDateTime, utcnow

log = logging.getLogger("cadencia.webhooks")

_t = Touch.__table__
_e = Event.__table__
_c = Contact.__table__
_s = Suppression.__table__

_CHUNK = 500  # ids per IN (...): well under every driver's parameter limit
TOUCH_COLUMNS = [
    "id", "message_ref", "provider_message_id", "status", "channel", "golden_id", "account_id",
    "idempotency_key", "fallback_channel", "case_key", "step", "template", "purpose", "as_of",
    "context",
]  # fmt: skip
# A touch whose send outcome we never learned (or whose sender is still waiting for it).
RECONCILABLE = ("unknown", "claimed")


@dataclass(frozen=True, slots=True)
class Recorded:
    """What one request changed (for the response, the log line and tests)."""

    received: int = 0
    new: int = 0
    matched: int = 0
    delivery_updated: int = 0
    reconciled: int = 0
    fallbacks: int = 0
    suppressions: int = 0


@dataclass(frozen=True, slots=True)
class TouchRef:
    """A touch found by its message_ref (the unsubscribe link)."""

    id: int
    channel: str
    golden_id: str | None


def touch_by_ref(engine: sa.Engine, ref: str) -> TouchRef | None:
    query = sa.select(_t.c.id, _t.c.channel, _t.c.golden_id).where(_t.c.message_ref == ref)
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else TouchRef(int(row.id), row.channel, row.golden_id)


def record_receipts(
    engine: sa.Engine, receipts: Sequence[Receipt], now: dt.datetime | None = None
) -> Recorded:
    """Write one webhook request's receipts and their effects, all or nothing."""
    now = now or utcnow()
    batch = list({r.event_key: r for r in reversed(receipts)}.values())[::-1]  # first wins
    if not batch:
        return Recorded(received=len(receipts))
    with engine.begin() as conn:
        touches = _touches(conn, batch)
        matched = {r.event_key: _match(r, touches) for r in batch}
        # Contacts by number or address: inbound messages, and events we cannot tie to a touch.
        lookup = [r for r in batch if r.recipient and matched[r.event_key] is None]
        contacts = _contacts(conn, [r.recipient for r in lookup if r.recipient])
        rows = [_event_row(r, matched[r.event_key], contacts) for r in batch]
        new_keys = _insert_events(conn, rows)
        fresh = [r for r in batch if r.event_key in new_keys]
        with_touch = [(r, matched[r.event_key]) for r in fresh if matched[r.event_key]]
        updated = _advance_delivery(conn, with_touch)
        reconciled = _reconcile(conn, with_touch)
        fallbacks = _fallbacks(conn, with_touch, now)
        suppressed = _suppress(conn, fresh, matched, contacts)
    result = Recorded(
        received=len(receipts),
        new=len(fresh),
        matched=sum(1 for r in batch if matched[r.event_key] is not None),
        delivery_updated=updated,
        reconciled=reconciled,
        fallbacks=fallbacks,
        suppressions=suppressed,
    )
    _log_unmatched(fresh, matched, contacts)
    return result


# --- matching ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Touches:
    by_ref: dict[str, dict[str, Any]]
    by_provider_id: dict[str, dict[str, Any]]


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _touches(conn: sa.Connection, batch: Sequence[Receipt]) -> _Touches:
    cols = [_t.c[c] for c in TOUCH_COLUMNS]
    by_ref: dict[str, dict[str, Any]] = {}
    by_pid: dict[str, dict[str, Any]] = {}
    refs = [r.ref for r in batch if r.ref]
    pids = [r.provider_message_id for r in batch if r.provider_message_id]
    for part in _chunks(refs):
        for row in conn.execute(sa.select(*cols).where(_t.c.message_ref.in_(part))).mappings():
            by_ref[row["message_ref"]] = dict(row)
    for part in _chunks(pids):
        query = sa.select(*cols).where(_t.c.provider_message_id.in_(part))
        for row in conn.execute(query).mappings():
            by_pid.setdefault(row["provider_message_id"], dict(row))
    return _Touches(by_ref, by_pid)


def _match(receipt: Receipt, touches: _Touches) -> dict[str, Any] | None:
    """Our own ref first (it survives a lost send answer), else the provider's message id."""
    if receipt.ref and receipt.ref in touches.by_ref:
        return touches.by_ref[receipt.ref]
    if receipt.provider_message_id:
        return touches.by_provider_id.get(receipt.provider_message_id)
    return None


def _contacts(conn: sa.Connection, recipients: Sequence[str]) -> dict[str, list[tuple]]:
    """recipient → [(golden_id, account_id)], mobile matches before landline ones."""
    phones = [r for r in recipients if "@" not in r]
    emails = [r.lower() for r in recipients if "@" in r]
    found: dict[str, list[tuple]] = {}
    live = _c.c.erased_at.is_(None)
    for column in (_c.c.mobile_e164, _c.c.phone_e164):
        for part in _chunks(phones):
            query = sa.select(column, _c.c.golden_id, _c.c.account_id).where(column.in_(part), live)
            for number, golden_id, account_id in conn.execute(query.order_by(_c.c.golden_id)):
                _add(found, number, (golden_id, account_id))
    for part in _chunks(emails):
        query = sa.select(_c.c.email, _c.c.golden_id, _c.c.account_id).where(
            _c.c.email.in_(part), live
        )
        for address, golden_id, account_id in conn.execute(query.order_by(_c.c.golden_id)):
            _add(found, address.lower(), (golden_id, account_id))
    return found


def _add(found: dict[str, list[tuple]], key: str, value: tuple) -> None:
    items = found.setdefault(key, [])
    if value not in items:
        items.append(value)


def _contact_of(receipt: Receipt, contacts: dict[str, list[tuple]]) -> list[tuple]:
    if not receipt.recipient:
        return []
    key = receipt.recipient.lower() if "@" in receipt.recipient else receipt.recipient
    return contacts.get(key, [])


# --- events --------------------------------------------------------------------------------


def _event_row(
    receipt: Receipt, touch: dict[str, Any] | None, contacts: dict[str, list[tuple]]
) -> dict[str, Any]:
    golden_id = account_id = touch_id = None
    if touch is not None:
        golden_id, account_id, touch_id = touch["golden_id"], touch["account_id"], touch["id"]
    else:
        found = _contact_of(receipt, contacts)
        if found:
            golden_id, account_id = found[0]
    return {
        "event_key": receipt.event_key,
        "source": receipt.source,
        "event_type": receipt.event_type,
        "channel": receipt.channel or (touch["channel"] if touch else None),
        "occurred_at": receipt.occurred_at,
        "account_id": account_id,
        "golden_id": golden_id,
        "touch_id": touch_id,
        "message_id": receipt.provider_message_id or receipt.ref,
        "payload": receipt.payload(),
    }


def _insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert-if-new; returns the keys that went in (a redelivery returns nothing)."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - the ledger runs on SQLite or PostgreSQL only
        raise NotImplementedError(f"webhook receipts need SQLite or PostgreSQL, not {dialect}")
    stmt = insert(_e).on_conflict_do_nothing(index_elements=["event_key"]).returning(_e.c.event_key)
    return set(conn.execute(stmt, rows).scalars())


# --- touches -------------------------------------------------------------------------------


def _rank_of(column: sa.ColumnElement[Any]) -> sa.ColumnElement[int]:
    return sa.case(DELIVERY_RANK, value=column, else_=-1)


def _advance_delivery(conn: sa.Connection, fresh: Sequence[tuple[Receipt, dict]]) -> int:
    """Per touch, the furthest new status; written only if it moves the touch forward."""
    best: dict[int, Receipt] = {}
    for receipt, touch in fresh:
        rank = DELIVERY_RANK.get(receipt.event_type)
        if rank is None:
            continue
        current = best.get(touch["id"])
        if current is None or _later(receipt, current):
            best[touch["id"]] = receipt
    if not best:
        return 0
    stmt = (
        sa.update(_t)
        .where(_t.c.id == sa.bindparam("tid"), _rank_of(_t.c.delivery_status) < sa.bindparam("rk"))
        .values(delivery_status=sa.bindparam("ds"), delivery_at=sa.bindparam("dat"))
    )
    params = [
        {"tid": tid, "rk": DELIVERY_RANK[r.event_type], "ds": r.event_type, "dat": r.occurred_at}
        for tid, r in best.items()
    ]
    return _rowcount(conn.execute(stmt, params))


def _later(receipt: Receipt, current: Receipt) -> bool:
    """Higher rank wins; among equals the earliest moment it was reached."""
    new, old = DELIVERY_RANK[receipt.event_type], DELIVERY_RANK[current.event_type]
    return new > old or (new == old and receipt.occurred_at < current.occurred_at)


def _touch_provider(receipt: Receipt) -> str:
    """The provider name the push writes (tasks/deliver/connect.py)."""
    if receipt.provider == "twilio":
        return "twilio_calls" if receipt.channel == "voice" else "twilio_sms"
    return receipt.provider


def _reconcile(conn: sa.Connection, fresh: Sequence[tuple[Receipt, dict]]) -> int:
    """`unknown`/`claimed` + any provider evidence → `sent`: the provider did accept it (the
    status guard is in the UPDATE, so touches already settled are left alone). The claim is
    dropped too, so a straggling sender cannot overwrite the evidence with its own (ambiguous)
    outcome."""
    first: dict[int, Receipt] = {}
    for receipt, touch in fresh:
        if receipt.event_type not in EVIDENCE:
            continue
        seen = first.get(touch["id"])
        if seen is None or receipt.occurred_at < seen.occurred_at:
            first[touch["id"]] = receipt
    if not first:
        return 0
    stmt = (
        sa.update(_t)
        # OR of plain comparisons: an IN list would be an "expanding" parameter, which
        # executemany refuses.
        .where(_t.c.id == sa.bindparam("tid"), sa.or_(*(_t.c.status == s for s in RECONCILABLE)))
        .values(
            status="sent",
            claim_token=None,
            error=None,
            error_code=None,
            sent_at=sa.func.coalesce(_t.c.sent_at, sa.bindparam("at", type_=UtcDateTime())),
            provider=sa.func.coalesce(_t.c.provider, sa.bindparam("pv")),
            provider_message_id=sa.func.coalesce(_t.c.provider_message_id, sa.bindparam("pid")),
        )
    )
    params = [
        {"tid": tid, "at": r.occurred_at, "pv": _touch_provider(r), "pid": r.provider_message_id}
        for tid, r in first.items()
    ]
    count = _rowcount(conn.execute(stmt, params))
    if count:
        log.info("reconciled %d touch(es) from unknown/claimed to sent on webhook evidence", count)
    return count


def _fallbacks(conn: sa.Connection, fresh: Sequence[tuple[Receipt, dict]], now: dt.datetime) -> int:
    """The failed step again on the touch's fallback channel: once, however often reported."""
    rows: dict[int, dict[str, Any]] = {}
    for receipt, touch in fresh:
        if receipt.wants_fallback and touch.get("fallback_channel"):
            rows.setdefault(touch["id"], fallback_touch(touch, now))
    if not rows:
        return 0
    frame = pd.DataFrame(list(rows.values()))
    return insert_new(conn, _t, frame, list(frame.columns), ["idempotency_key"])


def _suppress(
    conn: sa.Connection,
    fresh: Sequence[Receipt],
    matched: dict[str, dict[str, Any] | None],
    contacts: dict[str, list[tuple]],
) -> int:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for receipt in fresh:
        if not receipt.suppress:
            continue
        touch = matched[receipt.event_key]
        channel = receipt.channel or (touch["channel"] if touch else None)
        if touch is not None and touch["golden_id"]:
            who = [touch["golden_id"]]
        else:
            # A number that says STOP closes the channel for everyone using that number.
            who = [golden_id for golden_id, _ in _contact_of(receipt, contacts)]
        if not who or channel is None:
            log.warning("%s %s from %s: no known contact, nothing suppressed",
                        receipt.provider, receipt.event_type, mask(receipt.recipient))  # fmt: skip
            continue
        for golden_id in who:
            rows.setdefault((golden_id, channel), {
                "golden_id": golden_id, "channel": channel, "reason": receipt.suppress,
                "since": receipt.occurred_at,
            })  # fmt: skip
    if not rows:
        return 0
    frame = pd.DataFrame(list(rows.values()))
    count = insert_new(conn, _s, frame, list(frame.columns), ["golden_id", "channel"])
    for (golden_id, channel), row in rows.items():
        log.info("suppression: %s on %s (%s)", golden_id, channel, row["reason"])
    return count


def _rowcount(result: sa.CursorResult[Any]) -> int:
    return max(int(result.rowcount or 0), 0)


def _log_unmatched(
    fresh: Sequence[Receipt],
    matched: dict[str, dict[str, Any] | None],
    contacts: dict[str, list[tuple]],
) -> None:
    lost = [
        r
        for r in fresh
        if matched[r.event_key] is None and not _contact_of(r, contacts) and not r.inbound
    ]
    if lost:
        sample = lost[0]
        log.info("%d new %s receipt(s) match no touch (e.g. %s to %s)", len(lost),
                 sample.provider, sample.event_type, mask(sample.recipient))  # fmt: skip


def ping(engine: sa.Engine) -> None:
    """Raises if the ledger cannot be reached (for /health)."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
