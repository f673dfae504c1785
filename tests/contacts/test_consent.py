"""Consent: merging statements across sources and runs, the audit trail, and send decisions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.contacts_policy import contacts_policy
from config.settings import Settings
from tasks.contacts.build import consent_changes_frame, unify_contacts
from tasks.contacts.consent import (
    CHANNELS,
    MESSAGING,
    PURPOSES,
    STATEMENT_COLUMNS,
    apply_changes,
    consent_changes,
    consent_for,
    consent_statements,
    consent_wide,
    latest,
)
from tasks.sources.ingest import ingest
from tasks.sources.mapping import load_mapping

KEYS = ["golden_id", "channel", "purpose"]
T0 = pd.Timestamp("2025-01-01 00:00", tz="UTC")
PEOPLE = ("gc_a", "gc_b")
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def at(hours: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def statements(rows) -> pd.DataFrame:
    """Statements from (golden_id, channel, purpose, state, hour, source) tuples."""
    rows = list(rows)
    frame = pd.DataFrame(
        {
            "golden_id": pd.Series([r[0] for r in rows], dtype=object),
            "channel": pd.Series([r[1] for r in rows], dtype=object),
            "purpose": pd.Series([r[2] for r in rows], dtype=object),
            "state": pd.Series([r[3] for r in rows], dtype=object),
            "stated_at": pd.Series(
                pd.DatetimeIndex([at(r[4]) for r in rows], dtype="datetime64[us, UTC]")
            ),
            "source": pd.Series([r[5] for r in rows], dtype=object),
        }
    )
    return frame[STATEMENT_COLUMNS]


statement = st.tuples(
    st.sampled_from(PEOPLE),
    st.sampled_from(CHANNELS),
    st.sampled_from(PURPOSES),
    st.sampled_from(["granted", "denied"]),
    st.integers(0, 4),  # few distinct times: ties between sources are common
    st.sampled_from(
        ["salesforce:1 email_opt_out", "hubspot:7 email_opt_out", "salesforce:1 sms_opt_in"]
    ),
)
# Few keys, so that several statements land on the same (person, channel, purpose).
focused_statement = st.tuples(
    st.sampled_from(PEOPLE),
    st.sampled_from(["email", "whatsapp"]),
    st.sampled_from(PURPOSES),
    st.sampled_from(["granted", "denied"]),
    st.integers(0, 4),
    st.sampled_from(["salesforce:1 f", "hubspot:7 f", "salesforce:2 f"]),
)
statement_lists = st.lists(st.one_of(statement, focused_statement), max_size=25)


def expected_states(rows) -> dict[tuple[str, str, str], str]:
    """The rule, stated independently: denied when a denial is at least as recent as every
    grant for the key; granted when some grant is strictly newer than every denial."""
    newest: dict[tuple, dict[str, int]] = {}
    for person, channel, purpose, state, hour, _source in rows:
        slot = newest.setdefault((person, channel, purpose), {})
        slot[state] = max(slot.get(state, -1), hour)
    return {
        key: "denied" if times.get("denied", -1) >= times.get("granted", -1) else "granted"
        for key, times in newest.items()
    }


def states_of(frame: pd.DataFrame) -> dict[tuple[str, str, str], str]:
    return {
        (g, c, p): s for g, c, p, s in frame[[*KEYS, "state"]].itertuples(index=False, name=None)
    }


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Plain values (no categoricals), sorted by key: comparable whatever the representation."""
    out = frame[STATEMENT_COLUMNS].astype(
        {c: object for c in STATEMENT_COLUMNS if c != "stated_at"}
    )
    out["stated_at"] = pd.to_datetime(out["stated_at"], utc=True).astype("datetime64[us, UTC]")
    return out.sort_values(KEYS, kind="stable").reset_index(drop=True)


def run(current: pd.DataFrame, batch: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    changes = consent_changes(current, batch)
    return apply_changes(current, changes), changes


# --- merging ---------------------------------------------------------------------------------


@PROPERTY
@given(rows=statement_lists)
def test_merge_never_turns_an_opt_out_into_consent(rows):
    batch = statements(rows)
    state, changes = run(consent_changes_frame(), batch)
    assert states_of(state) == expected_states(rows)
    assert states_of(latest(batch)) == expected_states(rows)
    assert (changes["old_state"] == "unknown").all()
    # The winning statement is one of the key's newest.
    for key, group in batch.groupby(KEYS):
        winner = state.set_index(KEYS).loc[key]
        assert winner["stated_at"] == group["stated_at"].max()


@PROPERTY
@given(rows=statement_lists)
def test_send_decisions_follow_the_states(rows):
    state, _ = run(consent_changes_frame(), statements(rows))
    people = pd.Series([*PEOPLE, "gc_silent"])
    wide = consent_wide(state, people)
    assert list(wide.index) == list(people)
    assert (wide.loc["gc_silent"] == "unknown").all()
    expected = expected_states(rows)
    for channel in CHANNELS:
        for purpose in PURPOSES:
            column = wide[f"{channel}:{purpose}"]
            for person in people:
                assert column[person] == expected.get((person, channel, purpose), "unknown")
            allowed = consent_for(wide, channel, purpose)
            assert allowed.dtype == bool
            assert not (allowed & (column == "denied")).any()
            if channel in MESSAGING or purpose == "marketing":
                # Unknown never allows messaging channels nor any marketing.
                assert (column[allowed] == "granted").all()
            else:
                # A service message by email, voice or in-app rests on the contract.
                assert allowed.equals(column != "denied")
            if channel in MESSAGING and purpose == "marketing":
                assert (wide.loc[allowed, f"{channel}:service"] == "granted").all()
                both = (column == "granted") & (wide[f"{channel}:service"] == "granted")
                assert allowed.equals(both)
            assert not allowed["gc_silent"] or (channel not in MESSAGING and purpose == "service")


# --- the audit trail across runs -------------------------------------------------------------


@PROPERTY
@given(
    batches=st.lists(statement_lists, min_size=1, max_size=3),
    order=st.lists(st.integers(0, 2), min_size=1, max_size=4),
)
def test_audit_trail_is_derivable_and_append_only(batches, order):
    """Runs see arbitrary batches (some repeated, some older than what was recorded)."""
    current = consent_changes_frame()
    audit = []
    seen: list = []
    for index in order:
        rows = batches[index % len(batches)]
        seen += rows
        batch = statements(rows)
        current, changes = run(current, batch)
        audit.append(changes)
        trail = pd.concat(audit, ignore_index=True)
        # The current state is the latest audit row per key (what the ledger derives).
        derived = trail.drop_duplicates(KEYS, keep="last")
        pd.testing.assert_frame_equal(canonical(current), canonical(derived))
        # Re-running the same statements appends nothing.
        assert consent_changes(current, batch).empty
        # Nothing recorded is lost: the state is one merge of every statement seen so far,
        # so an opt-out at least as recent as every grant is never turned into consent.
        assert states_of(current) == expected_states(seen)
    trail = pd.concat(audit, ignore_index=True)
    for _key, history in trail.groupby(KEYS, sort=False):
        previous_state, previous_time = "unknown", None
        for row in history.itertuples(index=False):
            assert row.old_state == previous_state
            # An older statement never overrides a newer recorded one: each row is newer than
            # the one before (a restatement of the same state included), or a denial of the
            # same age replacing a grant.
            if previous_time is not None:
                assert row.stated_at > previous_time or (
                    row.stated_at == previous_time
                    and (row.state, row.old_state) == ("denied", "granted")
                )
            previous_state, previous_time = row.state, row.stated_at


def test_same_time_denial_beats_grant_across_runs():
    current, _ = run(
        consent_changes_frame(), statements([("g", "email", "service", "granted", 1, "hs")])
    )
    current, changes = run(current, statements([("g", "email", "service", "denied", 1, "sf")]))
    assert changes[["state", "old_state"]].values.tolist() == [["denied", "granted"]]
    current, changes = run(current, statements([("g", "email", "service", "granted", 1, "hs")]))
    assert changes.empty
    assert states_of(current) == {("g", "email", "service"): "denied"}


def test_older_statement_does_not_override_a_newer_recorded_one():
    current, _ = run(
        consent_changes_frame(), statements([("g", "sms", "service", "denied", 3, "sf")])
    )
    current, changes = run(current, statements([("g", "sms", "service", "granted", 2, "hs")]))
    assert changes.empty
    assert states_of(current) == {("g", "sms", "service"): "denied"}


def test_newer_restated_opt_out_beats_a_late_older_grant():
    # Run 1: Salesforce opt-out at 1h. Run 2: HubSpot's opt-out at 3h restates it (recorded,
    # old = new). Run 3: HubSpot's record is gone and Salesforce's late export shows an opt-in
    # made at 2h, older than HubSpot's opt-out: it must not win.
    key = ("g", "email", "marketing")
    sf_out, hs_out = (*key, "denied", 1, "sf"), (*key, "denied", 3, "hs")
    current, _ = run(consent_changes_frame(), statements([sf_out]))
    current, changes = run(current, statements([sf_out, hs_out]))
    assert changes[["state", "old_state", "source"]].values.tolist() == [["denied", "denied", "hs"]]
    current, changes = run(current, statements([(*key, "granted", 2, "sf")]))
    assert changes.empty
    assert states_of(current) == {key: "denied"}


# --- from CRM fields -------------------------------------------------------------------------

PERSON = {
    "last_name": "García",
    "email": "ana.garcia@acme.es",
    "mobile_phone": "+34 612 345 678",
    "account_id": "C1",
}


def unify(contact_frame, sf=(), hs=(), current=None):
    frames = [contact_frame("salesforce", list(sf)), contact_frame("hubspot", list(hs))]
    return unify_contacts(frames, contacts_policy(), "ES", current=current)


def allowed(contacts, channel: str, purpose: str) -> bool:
    (value,) = consent_for(contacts.consent_wide, channel, purpose).tolist()
    return value


def test_newer_salesforce_opt_out_beats_older_hubspot_opt_in(contact_frame):
    contacts = unify(
        contact_frame,
        sf=[{**PERSON, "source_id": "003A", "email_opt_out": True, "last_modified": 48}],
        hs=[{**PERSON, "source_id": "501", "marketing_opt_in": True, "last_modified": 0}],
    )
    assert len(contacts.golden) == 1
    wide = contacts.consent_wide.iloc[0]
    assert wide["email:service"] == "denied"
    assert wide["email:marketing"] == "denied"
    assert not allowed(contacts, "email", "service")
    assert not allowed(contacts, "email", "marketing")
    # HubSpot's marketing opt-in still counts where nothing newer denies it...
    assert wide["whatsapp:marketing"] == "granted"
    # ...but marketing on WhatsApp also needs WhatsApp's own opt-in, which is unknown.
    assert not allowed(contacts, "whatsapp", "marketing")
    sources = set(contacts.consent.loc[contacts.consent["channel"] == "email", "source"])
    assert sources == {"salesforce:003A email_opt_out"}


def test_opt_out_and_opt_in_of_the_same_age_is_an_opt_out(contact_frame):
    contacts = unify(
        contact_frame,
        sf=[{**PERSON, "source_id": "003A", "email_opt_in": True, "last_modified": 5}],
        hs=[{**PERSON, "source_id": "501", "email_opt_out": True, "last_modified": 5}],
    )
    assert contacts.consent_wide.iloc[0]["email:marketing"] == "denied"


def test_unknown_whatsapp_means_no_whatsapp(contact_frame):
    contacts = unify(contact_frame, sf=[{**PERSON, "source_id": "003A"}])
    wide = contacts.consent_wide.iloc[0]
    assert (wide == "unknown").all()
    for channel in MESSAGING:
        assert not allowed(contacts, channel, "service")
        assert not allowed(contacts, channel, "marketing")
    assert allowed(contacts, "email", "service")
    assert not allowed(contacts, "email", "marketing")
    assert allowed(contacts, "voice", "service")


def test_whatsapp_opt_in_allows_service_and_marketing_needs_both(contact_frame):
    only_service = unify(contact_frame, sf=[{**PERSON, "source_id": "1", "whatsapp_opt_in": True}])
    assert allowed(only_service, "whatsapp", "service")
    assert not allowed(only_service, "whatsapp", "marketing")
    both = unify(
        contact_frame,
        sf=[{**PERSON, "source_id": "1", "whatsapp_opt_in": True, "marketing_opt_in": True}],
    )
    assert allowed(both, "whatsapp", "marketing")
    assert not allowed(both, "sms", "marketing")  # no SMS opt-in


def test_empty_cells_state_nothing(contact_frame):
    contacts = unify(
        contact_frame,
        sf=[{**PERSON, "source_id": "1", "whatsapp_opt_in": True, "last_modified": 0}],
        hs=[{**PERSON, "source_id": "2", "whatsapp_opt_in": None, "last_modified": 9}],
    )
    assert contacts.consent_wide.iloc[0]["whatsapp:service"] == "granted"


def test_do_not_call_denies_voice(contact_frame):
    contacts = unify(contact_frame, sf=[{**PERSON, "source_id": "1", "do_not_call": True}])
    assert not allowed(contacts, "voice", "service")
    assert allowed(contacts, "email", "service")


HUBSPOT_HEADERS = [
    "Record ID", "Associated Company ID", "ERP Account Number", "Company Name", "First Name",
    "Last Name", "Job Title", "Buying Role", "Email", "Phone Number", "Mobile Phone Number",
    "Country/Region", "Preferred language", "Unsubscribed from all email", "WhatsApp Opt-In",
    "SMS Opt-In", "Marketing Opt-In", "Last Modified Date",
]  # fmt: skip


def test_hubspot_unsubscribed_from_all_email_maps_to_an_email_opt_out(tmp_path: Path):
    rows = [
        ["101", "8001", "C1", "Acme", "Ana", "García", "CFO", "", "ana@acme.es", "",
         "+34 612 345 678", "Spain", "es", "Yes", "", "", "Yes", "2025-05-02 10:00"],
        ["102", "8001", "C1", "Acme", "Luis", "Pérez", "", "", "luis@acme.es", "",
         "+34 622 345 678", "Spain", "es", "No", "Yes", "", "", "2025-05-02 10:00"],
    ]  # fmt: skip
    pd.DataFrame(rows, columns=HUBSPOT_HEADERS).to_csv(
        tmp_path / "hubspot_contacts.csv", index=False
    )
    result = ingest(load_mapping("hubspot_contacts", Settings()), tmp_path, "Europe/Madrid")
    assert result.quarantine.empty, result.quarantine.to_string()
    contacts = unify_contacts([result.accepted], contacts_policy(), "ES")
    wide = (
        contacts.golden[["golden_id", "last_name"]]
        .merge(contacts.consent_wide, left_on="golden_id", right_index=True)
        .set_index("last_name")
    )
    assert wide.loc["García", "email:service"] == "denied"
    # Unsubscribed and a marketing opt-in on the same record (same time): the opt-out wins.
    assert wide.loc["García", "email:marketing"] == "denied"
    # "No" is not an opt-in: it states nothing.
    assert wide.loc["Pérez", "email:service"] == "unknown"
    assert wide.loc["Pérez", "whatsapp:service"] == "granted"
    assert "hubspot:101 email_opt_out" in set(contacts.consent["source"])
    statements_ = consent_statements(contacts.records, contacts_policy())
    assert set(statements_.loc[statements_["state"] == "denied", "channel"]) == {"email"}


def test_merge_keeps_the_newest_recorded_statement_whatever_the_row_order(contact_frame):
    """Two known people merge; the merged id's recorded opt-out (newer) must beat the
    survivor's older opt-in, whichever order the ledger returns the current rows in."""
    ana_hs = {**PERSON, "source_id": "900", "email": None, "marketing_opt_in": True}
    ana_hs["last_modified"] = 1
    ana_sf = {**PERSON, "source_id": "A1", "mobile_phone": None, "email_opt_out": True}
    ana_sf["last_modified"] = 2
    first = unify(contact_frame, sf=[ana_sf], hs=[ana_hs])
    assert len(first.golden) == 2
    known = pd.Series(
        first.records["golden_id"].to_numpy(object), index=first.records["record_key"].to_numpy()
    )
    link = {**PERSON, "source_id": "A2", "last_modified": 3}
    cleared = {**ana_sf, "email_opt_out": None}  # the opt-out is no longer in the export
    results = []
    for current in (first.consent, first.consent.iloc[::-1].reset_index(drop=True)):
        frames = [
            contact_frame("salesforce", [cleared, link]),
            contact_frame("hubspot", [ana_hs]),
        ]
        second = unify_contacts(frames, contacts_policy(), "ES", known=known, current=current)
        assert len(second.merges) == 1
        results.append(second.consent_wide.iloc[0]["email:marketing"])
    assert results == ["denied", "denied"]


def test_changes_against_a_merged_persons_rows_do_not_depend_on_row_order():
    key = ("gc_s", "email", "marketing")
    # The survivor's own row (granted at 1h) and the merged person's row (denied at 2h).
    current = statements(
        [(*key, "denied", 2, "salesforce:A1 email_opt_out"), (*key, "granted", 1, "x")]
    )
    # A grant at 1h30: newer than the survivor's row, older than the merged person's opt-out.
    batch = statements([(*key, "granted", 1, "hubspot:900 marketing_opt_in")]).assign(
        stated_at=at(1) + pd.Timedelta(minutes=30)
    )
    forward = consent_changes(current, batch)
    backward = consent_changes(current.iloc[::-1].reset_index(drop=True), batch)
    assert forward.empty and backward.empty  # older than the newest statement: nothing to add
