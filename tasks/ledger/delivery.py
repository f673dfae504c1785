"""The ledger side of delivery: the state machine that makes sends exactly-once.

planned --claim--> claimed --answer--> sent | failed | unknown | planned (retry later)
planned --too late--> expired;  claimed, owner died --> unknown (or planned if the provider
deduplicates);  unknown --webhook evidence--> sent;  unknown --no evidence in time--> expired

A touch is claimed by one atomic UPDATE that only matches `planned` rows, before any request
leaves; two runs (or a retry and a straggler) can never both own it. Results are written back
only by the claim's owner (`claim_token`), so a process that lost its claim cannot overwrite.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from tasks.decide.plan import message_ref
from tasks.ledger.bulk import insert_new
from tasks.ledger.models import Case, Contact, Hold, Suppression, Touch

_t = Touch.__table__
_c = Contact.__table__
_k = Case.__table__
_s = Suppression.__table__

TOUCH_PART = [
    "id", "message_ref", "channel", "template", "purpose", "golden_id", "account_id",
    "case_key", "step", "assignee", "send_at", "context", "fallback_channel", "attempts",
    "idempotency_key", "as_of",
]  # fmt: skip
CONTACT_PART = [
    "first_name", "last_name", "email", "mobile_e164", "mobile_type", "phone_e164",
    "phone_type", "language", "country", "account_name",
]  # fmt: skip
CASE_PART = [
    "kind", "stage", "amount", "currency", "open_invoices", "worst_days_overdue",
    "renewal_date", "promise_date", "promise_amount", "owner",
]  # fmt: skip
MESSAGE_COLUMNS = TOUCH_PART + CONTACT_PART + CASE_PART


def housekeeping(
    engine: sa.Engine,
    now: dt.datetime,
    validity_hours: dict[str, float],
    lease_seconds: float,
    unknown_expire_hours: float,
    idempotent_providers: Iterable[str],
) -> dict[str, int]:
    """Before a push: settle what earlier pushes left behind. Returns counts per change."""
    idempotent = list(idempotent_providers)
    stale = now - dt.timedelta(seconds=lease_seconds)
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        claimed_stale = (_t.c.status == "claimed") & (_t.c.claimed_at < stale)
        counts["reclaimed"] = conn.execute(
            # By the provider the claim was made for: only those deduplicate on our id.
            sa.update(_t).where(claimed_stale, _t.c.provider.in_(idempotent))
            .values(status="planned", claim_token=None,
                    error="claim expired; the provider deduplicates, so it is sent again")
        ).rowcount  # fmt: skip
        counts["unknown"] = conn.execute(
            sa.update(_t).where(claimed_stale)
            .values(status="unknown", claim_token=None,
                    error="claimed by a run that stopped mid-batch; awaiting provider evidence")
        ).rowcount  # fmt: skip
        give_up = now - dt.timedelta(hours=unknown_expire_hours)
        counts["unknown_expired"] = conn.execute(
            sa.update(_t).where(_t.c.status == "unknown", _t.c.claimed_at < give_up)
            .values(status="expired",
                    error=f"send not confirmed by the provider within {unknown_expire_hours:g} h;"
                          " not resent")
        ).rowcount  # fmt: skip
        expired = 0
        default = validity_hours["default"]
        special = {k: v for k, v in validity_hours.items() if k != "default"}
        for channel, hours in [*special.items(), (None, default)]:
            where = [_t.c.status == "planned", _t.c.send_at < now - dt.timedelta(hours=hours)]
            where.append(_t.c.channel == channel if channel else _t.c.channel.not_in(special))
            expired += conn.execute(
                sa.update(_t).where(*where)
                .values(status="expired", error=f"not sent within {hours:g} h of its send time")
            ).rowcount  # fmt: skip
        counts["expired"] = expired
    counts["cancelled"] = cancel_blocked(engine, now)
    return counts


def _blocked(now: dt.datetime) -> sa.ColumnElement[bool]:
    """A planned touch that must not go out any more: its contact is suppressed on the
    channel (opt-out, STOP, bounce since it was planned), its account is on hold, or its case
    closed (paid, won, lost)."""
    s, h = Suppression.__table__, Hold.__table__
    suppressed = sa.exists().where(s.c.golden_id == _t.c.golden_id, s.c.channel == _t.c.channel)
    held = sa.exists().where(h.c.account_id == _t.c.account_id, h.c.until >= now.date())
    closed = sa.exists().where(_k.c.case_key == _t.c.case_key, _k.c.status == "closed")
    return suppressed | held | closed


def cancel_blocked(engine: sa.Engine, now: dt.datetime) -> int:
    """Cancel planned touches that became blocked after they were planned (checked again at
    send time: the plan may be hours old, a fallback minutes)."""
    with engine.begin() as conn:
        return conn.execute(
            sa.update(_t)
            .where(_t.c.status == "planned", _blocked(now))
            .values(status="cancelled", error="suppressed, on hold or case closed since planned")
            .execution_options(synchronize_session=False)
        ).rowcount


def due_variants(engine: sa.Engine, now: dt.datetime) -> pd.DataFrame:
    """Distinct (template, channel, purpose, language, country) of the touches due now: what
    the template check must cover before anything is claimed."""
    query = (
        sa.select(_t.c.template, _t.c.channel, _t.c.purpose, _c.c.language, _c.c.country)
        .join(_c, _c.c.golden_id == _t.c.golden_id, isouter=True)
        .where(_t.c.status == "planned", _t.c.send_at <= now)
        .distinct()
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return pd.DataFrame(rows, columns=["template", "channel", "purpose", "language", "country"])


def due_counts(engine: sa.Engine, now: dt.datetime, later: bool = False) -> dict[str, int]:
    """Planned touches due now (or, with `later`, due after now), per channel."""
    when = _t.c.send_at > now if later else _t.c.send_at <= now
    query = (
        sa.select(_t.c.channel, sa.func.count())
        .where(_t.c.status == "planned", when)
        .group_by(_t.c.channel)
    )
    with engine.connect() as conn:
        return {channel: int(n) for channel, n in conn.execute(query).all()}


def claim(
    engine: sa.Engine,
    channel: str,
    provider: str,
    now: dt.datetime,
    limit: int,
    valid_hours: float,
    exclude_templates: Sequence[str] = (),
    only_templates: Sequence[str] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Atomically take up to `limit` due touches of one channel; returns (token, rows).

    On PostgreSQL concurrent claimers skip each other's locked rows; on SQLite the write lock
    serialises them. Either way the outer `status = 'planned'` makes a second claim a no-op."""
    token = str(uuid.uuid4())
    pick = (
        sa.select(_t.c.id)
        .where(
            _t.c.status == "planned",
            _t.c.channel == channel,
            _t.c.send_at <= now,
            # Past its validity it expires at the next housekeeping, never goes out late.
            _t.c.send_at >= now - dt.timedelta(hours=valid_hours),
            ~_blocked(now),
        )
        .order_by(_t.c.send_at, _t.c.id)
        .limit(limit)
    )
    if exclude_templates:
        pick = pick.where(_t.c.template.not_in(list(exclude_templates)))
    if only_templates is not None:
        pick = pick.where(_t.c.template.in_(list(only_templates)))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        conn.execute(
            sa.update(_t)
            .where(_t.c.id.in_(pick.scalar_subquery()), _t.c.status == "planned")
            .values(status="claimed", claim_token=token, claimed_at=now, provider=provider,
                    attempts=_t.c.attempts + 1)
            .execution_options(synchronize_session=False)
        )  # fmt: skip
    return token, claimed_rows(engine, token)


def release(engine: sa.Engine, token: str) -> int:
    """Give back a claim nothing was sent for (the provider stalled before its turn)."""
    with engine.begin() as conn:
        return conn.execute(
            sa.update(_t)
            .where(_t.c.claim_token == token, _t.c.status == "claimed")
            .values(status="planned", claim_token=None, attempts=_t.c.attempts - 1)
        ).rowcount


def claimed_rows(engine: sa.Engine, token: str) -> list[dict[str, Any]]:
    """The claimed touches with what their messages need: contact, case, context. Plain
    dicts: each becomes one message, and per-row pandas access would cost more than the
    send."""
    touch_cols = [_t.c[c] for c in TOUCH_PART]
    contact_cols = [_c.c[c] for c in CONTACT_PART]
    case_cols = [_k.c[c] for c in CASE_PART]
    query = (
        sa.select(*touch_cols, *contact_cols, *case_cols)
        .join(_c, _c.c.golden_id == _t.c.golden_id, isouter=True)
        .join(_k, _k.c.case_key == _t.c.case_key, isouter=True)
        .where(_t.c.claim_token == token)
        .order_by(_t.c.id)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def last_touches(engine: sa.Engine, case_keys: Sequence[str], per_case: int = 5) -> dict:
    """The most recent touches per case, for call briefs."""
    if not case_keys:
        return {}
    query = (
        sa.select(_t.c.case_key, _t.c.send_at, _t.c.channel, _t.c.step, _t.c.status)
        .where(_t.c.case_key.in_(list(case_keys)), _t.c.status.in_(("sent", "unknown")))
        .order_by(_t.c.case_key, _t.c.send_at.desc())
    )
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for case_key, at, channel, step, status in conn.execute(query):
            items = out.setdefault(case_key, [])
            if len(items) < per_case:
                items.append({"at": at, "channel": channel, "step": step, "status": status})
    return out


@dataclass(frozen=True)
class Outcome:
    """What one claimed touch ended as in this push."""

    touch_id: int
    status: str  # sent | failed | unknown | planned
    provider: str | None = None
    provider_id: str | None = None
    error: str | None = None
    error_code: str | None = None


def record_outcomes(
    engine: sa.Engine,
    token: str,
    outcomes: Sequence[Outcome],
    now: dt.datetime,
    fallbacks: pd.DataFrame | None = None,
    suppressions: pd.DataFrame | None = None,
) -> None:
    """Write a batch's results in one transaction, only where we still own the claim."""
    if not outcomes:
        return
    stmt = (
        sa.update(_t)
        .where(_t.c.id == sa.bindparam("tid"), _t.c.claim_token == token)
        .values(
            status=sa.bindparam("st"),
            provider=sa.bindparam("pv"),
            provider_message_id=sa.bindparam("pid"),
            error=sa.bindparam("err"),
            error_code=sa.bindparam("code"),
            sent_at=sa.bindparam("sent"),
            claim_token=sa.bindparam("keep"),
        )
    )
    params = [
        {
            "tid": o.touch_id,
            "st": o.status,
            "pv": o.provider,
            "pid": o.provider_id,
            "err": o.error,
            "code": o.error_code,
            "sent": now if o.status == "sent" else None,
            # An ambiguous send keeps nothing to own; a retry later is claimed afresh.
            "keep": None,
        }
        for o in outcomes
    ]
    with engine.begin() as conn:
        conn.execute(stmt, params)
        failed = [o.touch_id for o in outcomes if o.status == "failed"]
        if failed and (fallbacks is not None or suppressions is not None):
            # Only failures we still owned count: a claim lost to housekeeping (now unknown)
            # or already reconciled by a webhook must not fall back or suppress.
            ours = set(conn.execute(
                sa.select(_t.c.id).where(_t.c.id.in_(failed), _t.c.status == "failed")
            ).scalars())  # fmt: skip
            if fallbacks is not None:
                fallbacks = fallbacks[fallbacks["fallback_of"].isin(ours)]
            if suppressions is not None:
                suppressions = suppressions[suppressions["touch_id"].isin(ours)].drop(
                    columns="touch_id"
                )
        if fallbacks is not None and not fallbacks.empty:
            insert_new(conn, _t, fallbacks, list(fallbacks.columns), ["idempotency_key"])
        if suppressions is not None and not suppressions.empty:
            insert_new(conn, _s, suppressions, list(suppressions.columns),
                       ["golden_id", "channel"])  # fmt: skip


def touch_statuses(engine: sa.Engine, as_of: dt.date | None = None) -> dict[str, dict[str, int]]:
    """Touches per channel and status (for one plan day, or all)."""
    query = sa.select(_t.c.channel, _t.c.status, sa.func.count()).group_by(
        _t.c.channel, _t.c.status
    )
    if as_of is not None:
        query = query.where(_t.c.as_of == as_of)
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for channel, status, n in conn.execute(query):
            out.setdefault(channel, {})[status] = int(n)
    return out


def fallback_touch(row: pd.Series | dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """The same step on the next consented channel, due at once. Its key derives from the
    failed touch's, so however often the failure is reported, it exists (and is sent) once."""
    key = f"{row['idempotency_key']}|fallback:{row['fallback_channel']}"
    return {
        "idempotency_key": key,
        "message_ref": message_ref(key),
        "case_key": row["case_key"],
        "account_id": row["account_id"],
        "golden_id": row["golden_id"],
        "step": row["step"],
        "channel": row["fallback_channel"],
        "template": row["template"],
        "purpose": row["purpose"],
        "send_at": now,
        "status": "planned",
        "as_of": row["as_of"],
        "fallback_of": int(row["id"]),
        "context": row["context"],
    }
