"""The contacts step: raw CRM rows in, golden contacts with consent and roles out.

clean (phones, emails, regions) → resolve identities → golden records (survivorship, stable
ids) → roles → consent merge and audit → data-quality figures. Pure on DataFrames; the Prefect
task at the bottom reads and writes the ledger around it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa
from prefect import task
from prefect.cache_policies import NO_CACHE

from config.contacts_policy import ContactsPolicy, contacts_policy
from tasks.contacts.clean import clean_records, contact_records, person_keys
from tasks.contacts.consent import apply_changes, consent_changes, consent_statements, consent_wide
from tasks.contacts.golden import assign_golden_ids, golden_records
from tasks.contacts.identity import Resolution, name_key, resolve
from tasks.contacts.quality import contact_quality
from tasks.contacts.roles import recipients, tier_of

# Benchmarks may set this to a dict to receive each phase's wall time in seconds.
PHASE_TIMES: dict[str, float] | None = None


@contextmanager
def _phase(name: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    if PHASE_TIMES is not None:
        PHASE_TIMES[name] = PHASE_TIMES.get(name, 0.0) + time.perf_counter() - start


logger = logging.getLogger("cadencia.contacts")


@dataclass
class Contacts:
    records: pd.DataFrame  # clean source records, each with its golden_id
    golden: pd.DataFrame  # one row per person
    consent: pd.DataFrame  # long: golden_id, channel, purpose, state, stated_at, source
    consent_wide: pd.DataFrame  # one row per person, 'channel:purpose' columns
    consent_changes: pd.DataFrame  # rows to append to the audit trail
    merges: pd.DataFrame  # golden_id → merged_into, for ids folded together this run
    resolution: Resolution
    quality: dict[str, Any]

    @property
    def source_map(self) -> pd.DataFrame:
        return self.records[["golden_id", "system", "source_id"]]


def unify_contacts(
    frames: list[pd.DataFrame],
    policy: ContactsPolicy,
    default_region: str,
    known: pd.Series | None = None,
    current: pd.DataFrame | None = None,
    workers: int | None = None,
    issued: set[str] | None = None,
) -> Contacts:
    known = known if known is not None else pd.Series(dtype=object)
    current = current if current is not None else consent_changes_frame()
    with _phase("clean"):
        records = clean_records(contact_records(frames), policy, default_region, workers)
    with _phase("identity"):
        names = name_key(records["last_name"], records["record_key"])
        resolution = resolve(
            records["record_key"], names, person_keys(records), policy.identity.max_cluster_size
        )
        records["golden_id"], merges = assign_golden_ids(
            records["record_key"], resolution.cluster, known, issued or set()
        )
    with _phase("golden"):
        golden = golden_records(records, policy.identity.source_priority)
        golden["collections_tier"] = tier_of(golden, policy.roles.collections)
        golden["renewals_tier"] = tier_of(golden, policy.roles.renewals)
        golden["receives_collections"] = recipients(
            golden["account_id"], golden["collections_tier"]
        )
        golden["receives_renewals"] = recipients(golden["account_id"], golden["renewals_tier"])

    if len(merges):  # statements recorded under a merged id now belong to the survivor
        current = current.assign(
            golden_id=current["golden_id"].replace(
                dict(zip(merges["golden_id"], merges["merged_into"], strict=True))
            )
        )
    with _phase("consent"):
        changes = consent_changes(current, consent_statements(records, policy))
        consent = apply_changes(current, changes)
        wide = consent_wide(consent, golden["golden_id"])
    with _phase("quality"):
        quality = contact_quality(records, golden, resolution, wide)
    return Contacts(records, golden, consent, wide, changes, merges, resolution, quality)


def consent_changes_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "golden_id": pd.Series(dtype=object),
            "channel": pd.Series(dtype=object),
            "purpose": pd.Series(dtype=object),
            "state": pd.Series(dtype=object),
            "stated_at": pd.Series(dtype="datetime64[us, UTC]"),
            "source": pd.Series(dtype=object),
        }
    )


def without_erased(engine: sa.Engine, contacts: Contacts, known: set[str]) -> Contacts:
    """Drop people who asked to be forgotten and are still in the CRM exports."""
    from config.settings import get_settings
    from tasks.ledger.erasure import erased_people, erasure_key

    gone = erased_people(engine, erasure_key(get_settings()), contacts.golden,
                         contacts.source_map, known)  # fmt: skip
    if not gone:
        return contacts
    logger.info("%d forgotten people found in the exports again: dropped", len(gone))

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        if "golden_id" not in frame.columns:
            return frame
        return frame[~frame["golden_id"].isin(gone)].reset_index(drop=True)

    return dataclasses.replace(
        contacts, records=keep(contacts.records), golden=keep(contacts.golden),
        consent=keep(contacts.consent), consent_wide=keep(contacts.consent_wide),
        consent_changes=keep(contacts.consent_changes), merges=keep(contacts.merges),
    )  # fmt: skip


@task(name="unify-contacts", cache_policy=NO_CACHE)
def unify_contacts_task(
    ledger_url: str, run_id: int, frames: list[pd.DataFrame], default_region: str
) -> Contacts:
    """Resolve against the ids and consent the ledger holds, then record the result."""
    from tasks.ledger.contacts import (
        all_golden_ids,
        current_consent,
        known_golden_ids,
        save_contacts,
    )
    from tasks.ledger.db import engine_for

    engine = engine_for(ledger_url)
    known = known_golden_ids(engine)
    contacts = unify_contacts(
        frames,
        contacts_policy(),
        default_region,
        known=known,
        current=current_consent(engine),
        issued=all_golden_ids(engine),
    )
    contacts = without_erased(engine, contacts, set(known.to_numpy()))
    save_contacts(
        engine,
        run_id,
        contacts.golden,
        contacts.source_map,
        contacts.merges,
        contacts.consent_changes,
    )
    return contacts
