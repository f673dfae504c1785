"""Golden contacts in the ledger (SQLite and PostgreSQL): ids that last, an append-only consent
trail whose latest rows are the current state, and merges that point at the survivor."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from tasks.contacts.build import Contacts, unify_contacts_task
from tasks.contacts.consent import STATEMENT_COLUMNS, latest
from tasks.ledger.contacts import (
    CONTACT_COLUMNS,
    consent_history,
    current_consent,
    known_golden_ids,
)
from tasks.ledger.models import ConsentAudit, Contact, ContactSourceId
from tasks.ledger.runs import start_run

KEYS = ["golden_id", "channel", "purpose"]
BASE_TIME = pd.Timestamp("2025-06-01 09:00", tz="UTC")  # contact_frame's hour 0


def at_hour(hours: int) -> pd.Timestamp:
    return BASE_TIME + pd.Timedelta(hours=hours)


ANA_SF = {
    "source_id": "A1",
    "account_id": "C1",
    "first_name": "Ana",
    "last_name": "García",
    "title": "Tesorera",
    "email": "Ana.Garcia@Acme.es",
    "phone": "+34 912 345 678",
    "country": "España",
    "marketing_opt_in": True,
    "last_modified": 0,
}
ANA_HS = {
    "source_id": "900",
    "account_id": "C1",
    "last_name": "GARCIA",
    "email": " ana.garcia@acme.es",
    "mobile_phone": "0034612345678",
    "whatsapp_opt_in": True,
    "last_modified": 2,
}
LUIS = {
    "source_id": "A2",
    "account_id": "C1",
    "last_name": "Pérez",
    "role": "Decision Maker",
    "email": "luis@acme.es",
    "mobile_phone": "622 345 678",
    "email_opt_out": True,
    "last_modified": 1,
}
MARTA = {
    "source_id": "901",
    "account_id": "C2",
    "last_name": "Soto",
    "email": "facturacion@soto.es",
    "phone": "+52 55 1234 5678",
    "country": "México",
    "last_modified": 1,
}


def run(engine: sa.Engine, contact_frame, sf, hs) -> Contacts:
    """One run of the contacts step against the ledger, exactly as the flow's task does it."""
    run_id = start_run(engine, flow="test", as_of=dt.date(2026, 3, 2), flow_run_id=None)
    frames = [contact_frame("salesforce", list(sf)), contact_frame("hubspot", list(hs))]
    return unify_contacts_task.fn(engine.url, run_id, frames, "ES")


def table(engine: sa.Engine, model, order_by: str) -> pd.DataFrame:
    t = model.__table__
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(sa.select(t).order_by(t.c[order_by])).mappings().all())


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain values (no categoricals), sorted by key: comparable whatever the representation."""
    out = frame[STATEMENT_COLUMNS].astype(
        {c: object for c in STATEMENT_COLUMNS if c != "stated_at"}
    )
    out["stated_at"] = pd.to_datetime(out["stated_at"], utc=True).astype("datetime64[us, UTC]")
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def live_id(engine: sa.Engine) -> dict[str, str]:
    """golden_id → the live id it now belongs to (following merge chains to the end)."""
    stored = table(engine, Contact, "golden_id")
    merged = dict(zip(stored["golden_id"], stored["merged_into"], strict=True))
    out = {}
    for golden_id in merged:
        current, hops = golden_id, 0
        while isinstance(merged.get(current), str):
            current, hops = merged[current], hops + 1
            assert hops < len(merged), "merge cycle"
        out[golden_id] = current
    return out


def state_from_audit(engine: sa.Engine) -> pd.DataFrame:
    """The consent state derived from the trail alone: the last row per key, each counted for
    the person it now belongs to, and the newest statement (denial on ties) per live key."""
    audit = table(engine, ConsentAudit, "id").rename(columns={"new_state": "state"})
    last = audit.drop_duplicates(KEYS, keep="last")
    return latest(last.assign(golden_id=last["golden_id"].map(live_id(engine))))


def assert_state_is_the_latest_audit_row(engine: sa.Engine, contacts: Contacts) -> None:
    from_ledger = canonical(latest(current_consent(engine)))
    pd.testing.assert_frame_equal(from_ledger, canonical(state_from_audit(engine)))
    pd.testing.assert_frame_equal(from_ledger, canonical(contacts.consent))
    assert set(from_ledger["golden_id"]) <= set(contacts.golden["golden_id"])


def test_save_contacts_round_trip(ledger, contact_frame):
    contacts = run(ledger, contact_frame, sf=[ANA_SF, LUIS], hs=[ANA_HS, MARTA])
    assert len(contacts.golden) == 3

    stored = table(ledger, Contact, "golden_id").set_index("golden_id")
    golden = contacts.golden.set_index("golden_id").sort_index()
    assert list(stored.index) == list(golden.index)
    assert stored["merged_into"].isna().all()
    assert stored["erased_at"].isna().all()
    assert stored["country"].tolist() == golden["region"].tolist()
    for column in CONTACT_COLUMNS:
        if column in ("golden_id", "country"):
            continue
        expected = golden[column].astype(object).where(golden[column].notna(), None)
        actual = stored[column].astype(object).where(stored[column].notna(), None)
        if column == "last_modified":
            expected = pd.to_datetime(expected, utc=True)
            actual = pd.to_datetime(actual, utc=True)
        assert actual.tolist() == expected.tolist(), column
    ana = stored[stored["last_name"].str.casefold() == "garcia"].iloc[0]
    assert ana["email"] == "ana.garcia@acme.es"
    assert ana["mobile_e164"] == "+34612345678"
    assert ana["records"] == 2
    assert ana["systems"] == "hubspot,salesforce"
    assert ana["first_name"] == "Ana"  # only Salesforce has it; HubSpot's is newer but empty

    source_ids = table(ledger, ContactSourceId, "id")
    triples = ["system", "source_id", "golden_id"]
    stored_map = sorted(source_ids[triples].itertuples(index=False, name=None))
    assert stored_map == sorted(contacts.source_map[triples].itertuples(index=False, name=None))

    audit = table(ledger, ConsentAudit, "id")
    assert len(audit) == len(contacts.consent_changes) > 0
    assert (audit["old_state"] == "unknown").all()
    assert audit["run_id"].notna().all()
    assert audit["recorded_at"].notna().all()
    assert_state_is_the_latest_audit_row(ledger, contacts)
    luis = contacts.golden.loc[contacts.golden["last_name"] == "Pérez", "golden_id"].item()
    history = consent_history(ledger, luis)
    denied = history.loc[history["channel"] == "email", "new_state"]
    assert set(denied) == {"denied"}


def test_second_run_keeps_ids_and_appends_only_consent_changes(ledger, contact_frame):
    first = run(ledger, contact_frame, sf=[ANA_SF, LUIS], hs=[ANA_HS, MARTA])
    audit_before = len(table(ledger, ConsentAudit, "id"))

    # The same exports again: same ids, nothing appended.
    again = run(ledger, contact_frame, sf=[ANA_SF, LUIS], hs=[ANA_HS, MARTA])
    assert again.consent_changes.empty
    assert len(table(ledger, ConsentAudit, "id")) == audit_before
    assert dict(zip(again.records["record_key"], again.records["golden_id"], strict=True)) == (
        dict(zip(first.records["record_key"], first.records["golden_id"], strict=True))
    )
    assert_state_is_the_latest_audit_row(ledger, again)

    # Ana opts out of email in Salesforce later on; a new HubSpot record of hers appears (with
    # a key smaller than her existing ones); an old opt-in arrives for Luis (older than his
    # opt-out, so it changes nothing).
    ana_id = first.records.loc[first.records["source_id"] == "A1", "golden_id"].item()
    opted_out = {**ANA_SF, "email_opt_out": True, "last_modified": 30}
    newcomer = {
        "source_id": "1",
        "account_id": "C1",
        "last_name": "Garcia",
        "mobile_phone": "+34 612 345 678",
        "last_modified": 31,
    }
    luis_old_opt_in = {**LUIS, "source_id": "902", "email_opt_out": None, "email_opt_in": True}
    luis_old_opt_in["last_modified"] = 0
    third = run(
        ledger,
        contact_frame,
        sf=[opted_out, LUIS],
        hs=[ANA_HS, MARTA, newcomer, luis_old_opt_in],
    )
    assert set(third.golden["golden_id"]) == set(first.golden["golden_id"])
    assert third.records.loc[third.records["source_id"] == "1", "golden_id"].item() == ana_id
    assert third.merges.empty

    audit = table(ledger, ConsentAudit, "id")
    appended = audit.iloc[audit_before:]
    assert len(appended) == len(third.consent_changes)
    # State changes: only Ana's email, now denied. Other rows restate a state with a newer
    # time (her Salesforce record changed, so its opt-ins are restated) and change nothing.
    changed = appended[appended["old_state"] != appended["new_state"]]
    assert sorted(changed[KEYS].itertuples(index=False, name=None)) == [
        (ana_id, "email", "marketing"),
        (ana_id, "email", "service"),
    ]
    assert set(changed["new_state"]) == {"denied"}
    assert dict(zip(changed["purpose"], changed["old_state"], strict=True)) == {
        "marketing": "granted",
        "service": "unknown",
    }
    restated = appended[appended["old_state"] == appended["new_state"]]
    assert set(restated["golden_id"]) <= {ana_id}
    assert (pd.to_datetime(restated["stated_at"], utc=True) == at_hour(30)).all()
    # Luis's old opt-in (older than his opt-out) appended nothing.
    luis_id = first.records.loc[first.records["source_id"] == "A2", "golden_id"].item()
    assert luis_id not in set(appended["golden_id"])
    assert_state_is_the_latest_audit_row(ledger, third)
    assert len(table(ledger, ContactSourceId, "id")) == 6

    # And the same exports once more append nothing.
    fourth = run(
        ledger,
        contact_frame,
        sf=[opted_out, LUIS],
        hs=[ANA_HS, MARTA, newcomer, luis_old_opt_in],
    )
    assert fourth.consent_changes.empty
    assert len(table(ledger, ConsentAudit, "id")) == len(audit)


def test_merge_marks_merged_into(ledger, contact_frame):
    # Ana in Salesforce (email only) and in HubSpot (mobile only): two people at first.
    ana_sf = {**ANA_SF, "phone": None}
    ana_hs = {**ANA_HS, "email": None}
    first = run(ledger, contact_frame, sf=[ana_sf, LUIS], hs=[ana_hs, MARTA])
    assert len(first.golden) == 4
    ids = {
        key: first.records.loc[first.records["record_key"] == key, "golden_id"].item()
        for key in ("salesforce:A1", "hubspot:900")
    }
    survivor, merged = sorted(ids.values())

    link = {**ANA_SF, "source_id": "A3", "mobile_phone": "612 345 678", "last_modified": 5}
    second = run(ledger, contact_frame, sf=[ana_sf, LUIS, link], hs=[ana_hs, MARTA])
    assert second.merges.to_dict("records") == [{"golden_id": merged, "merged_into": survivor}]

    stored = table(ledger, Contact, "golden_id").set_index("golden_id")
    assert stored.loc[merged, "merged_into"] == survivor
    assert stored["merged_into"].drop(merged).isna().all()
    known = known_golden_ids(ledger)
    assert known["salesforce:A1"] == known["hubspot:900"] == known["salesforce:A3"] == survivor
    assert set(known.index) == {
        "salesforce:A1",
        "salesforce:A2",
        "salesforce:A3",
        "hubspot:900",
        "hubspot:901",
    }
    survivor_row = stored.loc[survivor]
    assert survivor_row["records"] == 3
    assert survivor_row["email"] == "ana.garcia@acme.es"
    assert survivor_row["mobile_e164"] == "+34612345678"
    # The merged id's consent statements now count for the survivor.
    wide = second.consent_wide.loc[survivor]
    assert wide["whatsapp:service"] == "granted"  # HubSpot's opt-in
    assert wide["email:marketing"] == "granted"  # Salesforce's opt-in

    # A third run with the same exports changes nothing.
    third = run(ledger, contact_frame, sf=[ana_sf, LUIS, link], hs=[ana_hs, MARTA])
    assert third.merges.empty
    assert set(third.golden["golden_id"]) == set(second.golden["golden_id"])


def test_merged_persons_recorded_opt_out_survives_the_merge(ledger, contact_frame):
    # Ana's Salesforce record (larger golden id, merged away) opted out of email at 2h; her
    # HubSpot record (the survivor) opted in to marketing at 1h.
    ana_sf = {**ANA_SF, "phone": None, "marketing_opt_in": None, "email_opt_out": True}
    ana_sf["last_modified"] = 2
    ana_hs = {**ANA_HS, "email": None, "marketing_opt_in": True, "last_modified": 1}
    first = run(ledger, contact_frame, sf=[ana_sf], hs=[ana_hs, MARTA])
    merged = first.records.loc[first.records["source_id"] == "A1", "golden_id"].item()
    survivor = first.records.loc[first.records["source_id"] == "900", "golden_id"].item()
    assert survivor < merged
    # The opt-out is cleared in Salesforce (an empty cell states nothing); a link appears.
    cleared = {**ana_sf, "email_opt_out": None}
    link = {**ANA_SF, "source_id": "A3", "mobile_phone": "612 345 678", "last_modified": 3}
    link["marketing_opt_in"] = None
    second = run(ledger, contact_frame, sf=[cleared, link], hs=[ana_hs, MARTA])
    assert len(second.merges) == 1
    third = run(ledger, contact_frame, sf=[cleared, link], hs=[ana_hs, MARTA])
    # Newest statement for Ana's email marketing is the opt-out (2h > 1h), in the merge run
    # and in every run after it.
    for contacts in (second, third):
        assert contacts.consent_wide.loc[survivor, "email:marketing"] == "denied"
        assert contacts.consent_wide.loc[survivor, "email:service"] == "denied"
        assert contacts.consent_wide.loc[survivor, "whatsapp:marketing"] == "granted"
    assert third.consent_changes.empty
    assert_state_is_the_latest_audit_row(ledger, third)


def test_split_after_merge_gives_live_ids_without_merged_into(ledger, contact_frame):
    ana_sf = {**ANA_SF, "phone": None}
    ana_hs = {**ANA_HS, "email": None}
    link = {**ANA_SF, "source_id": "A3", "mobile_phone": "612 345 678", "last_modified": 5}
    run(ledger, contact_frame, sf=[ana_sf], hs=[ana_hs, MARTA])
    merged = run(ledger, contact_frame, sf=[ana_sf, link], hs=[ana_hs, MARTA])
    assert len(merged.merges) == 1
    split = run(ledger, contact_frame, sf=[ana_sf], hs=[ana_hs, MARTA])
    assert split.golden["golden_id"].is_unique
    stored = table(ledger, Contact, "golden_id").set_index("golden_id")
    live = stored.loc[list(split.golden["golden_id"])]
    assert live["merged_into"].isna().all(), live["merged_into"].dropna().to_dict()
    # The id merged away is never given to someone else.
    (merged_away,) = merged.merges["golden_id"]
    assert merged_away not in set(split.golden["golden_id"])
    assert_state_is_the_latest_audit_row(ledger, split)


def test_chained_merges_keep_the_first_persons_opt_out(ledger, contact_frame):
    """P1 merges into P2, then P2 into P3: P1's recorded opt-out follows to P3."""
    p1 = {**ANA_SF, "phone": None, "marketing_opt_in": None, "email_opt_out": True}
    p1["last_modified"] = 2
    p2 = {**ANA_HS, "email": None, "whatsapp_opt_in": None, "last_modified": 1}
    p3 = {
        "source_id": "B6",  # its new id sorts before P2's: P3 survives the second merge
        "account_id": "C1",
        "last_name": "García",
        "email": "ana.g@acme.es",
        "marketing_opt_in": True,
        "last_modified": 1,
    }
    first = run(ledger, contact_frame, sf=[p1, p3], hs=[p2])
    ids = dict(zip(first.records["source_id"], first.records["golden_id"], strict=True))
    assert ids["B6"] < ids["900"] < ids["A1"]
    p1_cleared = {**p1, "email_opt_out": None}  # only the ledger remembers the opt-out now
    link_12 = {
        "source_id": "L1",
        "last_name": "Garcia",
        "email": "ana.garcia@acme.es",
        "mobile_phone": "612345678",
        "last_modified": 3,
    }
    second = run(ledger, contact_frame, sf=[p1_cleared, p3, link_12], hs=[p2])
    assert second.merges.to_dict("records") == [{"golden_id": ids["A1"], "merged_into": ids["900"]}]
    link_23 = {
        "source_id": "L2",
        "last_name": "GARCÍA",
        "email": "ana.g@acme.es",
        "mobile_phone": "+34 612 345 678",
        "last_modified": 4,
    }
    third = run(ledger, contact_frame, sf=[p1_cleared, p3, link_12, link_23], hs=[p2])
    assert third.merges.to_dict("records") == [{"golden_id": ids["900"], "merged_into": ids["B6"]}]
    fourth = run(ledger, contact_frame, sf=[p1_cleared, p3, link_12, link_23], hs=[p2])
    assert list(fourth.golden["golden_id"]) == [ids["B6"]]
    stored = table(ledger, Contact, "golden_id").set_index("golden_id")
    assert stored.loc[ids["A1"], "merged_into"] == ids["B6"]
    assert stored.loc[ids["900"], "merged_into"] == ids["B6"]
    for contacts in (third, fourth):
        # P1's opt-out (2h) is newer than P3's opt-in (1h).
        assert contacts.consent_wide.loc[ids["B6"], "email:marketing"] == "denied"
    assert_state_is_the_latest_audit_row(ledger, fourth)
