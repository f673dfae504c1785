"""Ledger queries for golden contacts: their source ids, their consent trail.

Bulk writes go through Core executemany in chunks inside one transaction, so a run either
records all of its contacts or none of them.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from tasks.ledger.bulk import bulk_insert, bulk_upsert
from tasks.ledger.models import ConsentAudit, Contact, ContactSourceId, utcnow

_contacts = Contact.__table__
_source_ids = ContactSourceId.__table__
_consent = ConsentAudit.__table__


def all_golden_ids(engine: sa.Engine) -> set[str]:
    """Every golden id ever issued (merged ones included): a new person must not reuse one."""
    with engine.connect() as conn:
        return set(conn.execute(sa.select(_contacts.c.golden_id)).scalars())


def known_golden_ids(engine: sa.Engine) -> pd.Series:
    """record_key ('system:source_id') → golden_id, for every source record seen before."""
    query = sa.select(_source_ids.c.system, _source_ids.c.source_id, _source_ids.c.golden_id)
    with engine.connect() as conn:
        frame = pd.DataFrame(
            conn.execute(query).all(), columns=["system", "source_id", "golden_id"]
        )
    keys = frame["system"].astype("str") + ":" + frame["source_id"].astype("str")
    return pd.Series(frame["golden_id"].to_numpy(dtype=object), index=keys.to_numpy(), dtype=object)


def current_consent(engine: sa.Engine) -> pd.DataFrame:
    """The latest audit row per (golden_id, channel, purpose): the current consent state.

    Rows of a person merged into another are reported under the survivor's id (the caller
    keeps the newest statement per key), so a merge never loses an opt-out."""
    last = (
        sa.select(sa.func.max(_consent.c.id).label("id"))
        .group_by(_consent.c.golden_id, _consent.c.channel, _consent.c.purpose)
        .subquery()
    )
    person = sa.func.coalesce(_contacts.c.merged_into, _consent.c.golden_id)
    query = (
        sa.select(
            person.label("golden_id"),
            _consent.c.channel,
            _consent.c.purpose,
            _consent.c.new_state.label("state"),
            _consent.c.stated_at,
            _consent.c.source,
        )
        .join(last, last.c.id == _consent.c.id)
        .join(_contacts, _contacts.c.golden_id == _consent.c.golden_id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    frame = pd.DataFrame(
        rows, columns=["golden_id", "channel", "purpose", "state", "stated_at", "source"]
    )
    frame["stated_at"] = pd.to_datetime(frame["stated_at"], utc=True)
    return frame


CONTACT_COLUMNS = [
    "golden_id", "account_id", "account_name", "first_name", "last_name", "title", "role",
    "email", "email_role", "email_typo_of", "phone_e164", "phone_type", "mobile_e164",
    "mobile_type", "country", "time_zone", "language", "last_modified", "records", "systems",
    "collections_tier", "renewals_tier", "receives_collections", "receives_renewals",
]  # fmt: skip


def save_contacts(
    engine: sa.Engine,
    run_id: int | None,
    golden: pd.DataFrame,
    source_map: pd.DataFrame,
    merges: pd.DataFrame,
    consent_rows: pd.DataFrame,
) -> None:
    """Upsert golden contacts and source ids, mark merges, append consent changes."""
    now = utcnow()
    # A golden row written now is a live person: clear any old merge mark.
    golden = golden.assign(country=golden["region"], updated_at=now, merged_into=None)
    audit = consent_rows.rename(columns={"state": "new_state"}).assign(
        run_id=run_id, recorded_at=now
    )
    # In index order: B-tree inserts then append instead of splitting pages all over.
    audit = audit.sort_values(["golden_id", "channel", "purpose"], kind="stable")
    audit_columns = ["golden_id", "channel", "purpose", "old_state", "new_state", "source",
                     "stated_at", "recorded_at", "run_id"]  # fmt: skip
    with engine.begin() as conn:
        bulk_upsert(conn, _contacts, golden, [*CONTACT_COLUMNS, "updated_at", "merged_into"],
                    ["golden_id"])  # fmt: skip
        bulk_upsert(conn, _source_ids, source_map, ["golden_id", "system", "source_id"],
                    ["system", "source_id"])  # fmt: skip
        for old, new in merges[["golden_id", "merged_into"]].itertuples(index=False):
            conn.execute(
                sa.update(_contacts)
                .where((_contacts.c.golden_id == old) | (_contacts.c.merged_into == old))
                .values(merged_into=new, updated_at=now)
            )
        bulk_insert(conn, _consent, audit, audit_columns)


def consent_history(engine: sa.Engine, golden_id: str) -> pd.DataFrame:
    query = sa.select(_consent).where(_consent.c.golden_id == golden_id).order_by(_consent.c.id)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).mappings().all())


def linkable_contacts(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(golden contacts, source ids) as the event linker reads them: what lets an event
    between daily runs find its person without re-reading the CRM exports."""
    c = _contacts.c
    query = sa.select(c.golden_id, c.account_id, c.email, c.phone_e164, c.mobile_e164).where(
        c.merged_into.is_(None), c.erased_at.is_(None)
    )
    with engine.connect() as conn:
        golden = pd.DataFrame(
            conn.execute(query).all(),
            columns=["golden_id", "account_id", "email", "phone_e164", "mobile_e164"],
        )
        source_map = pd.DataFrame(
            conn.execute(
                sa.select(_source_ids.c.golden_id, _source_ids.c.system, _source_ids.c.source_id)
            ).all(),
            columns=["golden_id", "system", "source_id"],
        )
    return golden.astype("str").where(golden.notna(), None), source_map.astype("str")
