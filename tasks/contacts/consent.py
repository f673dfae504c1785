"""Consent per channel and purpose, merged across sources, with an append-only audit trail.

Each source field (HasOptedOutOfEmail, WhatsApp_OptIn__c, "Unsubscribed from all email"...)
is a *statement* about some (channel, purpose) pairs, dated by the record's last-modified time
(config/contacts.yaml says which field states what). Merging:

- the most recent explicit statement wins, across sources and across runs;
- on equal times a denial beats a grant, so an explicit opt-out is never outvoted by an
  opt-in of the same age;
- an empty cell states nothing: it neither grants nor revokes.

`consent_for` turns states into a yes/no for a send: unknown means no for WhatsApp, SMS and
RCS and for all marketing; a service message by email, voice or in-app rests on the contract
(legitimate interest) unless denied; marketing on a messaging channel also needs that
channel's own opt-in.
"""

from __future__ import annotations

import pandas as pd

from config.contacts_policy import ContactsPolicy

CHANNELS = ("email", "whatsapp", "sms", "rcs", "voice", "in_app")
PURPOSES = ("service", "marketing")
MESSAGING = ("whatsapp", "sms", "rcs")
STATEMENT_COLUMNS = ["golden_id", "channel", "purpose", "state", "stated_at", "source"]
_STATE_ORDER = {"denied": 0, "granted": 1}


def consent_statements(records: pd.DataFrame, policy: ContactsPolicy) -> pd.DataFrame:
    """Every explicit statement in the source records (rows with golden_id, record_key)."""
    parts = []
    for field, by_value in policy.consent_fields.items():
        if field not in records:
            continue
        cells = records[field]
        for value, statements in by_value.items():
            hit = (cells == value).fillna(False).to_numpy(bool)
            if not hit.any():
                continue
            base = records.loc[hit, ["golden_id", "last_modified", "record_key"]]
            for channel, purpose, state in statements:
                parts.append(
                    pd.DataFrame(
                        {
                            "golden_id": base["golden_id"].to_numpy(),
                            "channel": channel,
                            "purpose": purpose,
                            "state": state,
                            "stated_at": base["last_modified"].to_numpy(),
                            "source": (base["record_key"] + f" {field}").to_numpy(),
                        }
                    )
                )
    if not parts:
        return pd.DataFrame(columns=STATEMENT_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def latest(statements: pd.DataFrame) -> pd.DataFrame:
    """The winning statement per (golden_id, channel, purpose): newest, denial on ties."""
    if statements.empty:
        return statements.reindex(columns=STATEMENT_COLUMNS)
    ranked = statements.assign(_order=statements["state"].map(_STATE_ORDER).fillna(2))
    ranked = ranked.sort_values(
        ["golden_id", "channel", "purpose", "stated_at", "_order", "source"],
        ascending=[True, True, True, False, True, True],
        kind="stable",
    )
    winners = ranked.drop_duplicates(["golden_id", "channel", "purpose"], keep="first")
    return winners[STATEMENT_COLUMNS].reset_index(drop=True)


def consent_changes(current: pd.DataFrame, statements: pd.DataFrame) -> pd.DataFrame:
    """Audit rows for every (person, channel, purpose) whose effective state changes.

    `current` is the ledger's state (latest audit row per key, same columns); a statement
    older than the one behind the current state changes nothing."""
    candidates = latest(statements)
    if candidates.empty:
        return candidates.assign(old_state=pd.Series(dtype=object))
    keys = ["golden_id", "channel", "purpose"]
    merged = candidates.merge(
        current[[*keys, "state", "stated_at"]].rename(
            columns={"state": "old_state", "stated_at": "old_stated_at"}
        ),
        on=keys,
        how="left",
    )
    newer = merged["old_stated_at"].isna() | (merged["stated_at"] > merged["old_stated_at"])
    same_time_denial = (merged["stated_at"] == merged["old_stated_at"]) & (
        merged["state"] == "denied"
    )
    differs = merged["state"] != merged["old_state"].fillna("unknown")
    changes = merged[(newer | same_time_denial) & differs].copy()
    changes["old_state"] = changes["old_state"].fillna("unknown")
    return changes[[*STATEMENT_COLUMNS, "old_state"]].reset_index(drop=True)


def apply_changes(current: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """The state after appending `changes` to the audit trail (what the ledger will derive)."""
    keys = ["golden_id", "channel", "purpose"]
    both = pd.concat([current[STATEMENT_COLUMNS], changes[STATEMENT_COLUMNS]], ignore_index=True)
    return both.drop_duplicates(keys, keep="last").reset_index(drop=True)


def consent_wide(state: pd.DataFrame, golden_ids: pd.Series) -> pd.DataFrame:
    """One row per person, one column per 'channel:purpose' with granted/denied/unknown."""
    wide = pd.DataFrame(index=pd.Index(golden_ids.unique(), name="golden_id"))
    for channel in CHANNELS:
        for purpose in PURPOSES:
            wide[f"{channel}:{purpose}"] = "unknown"
    if not state.empty:
        table = state.pivot_table(
            index="golden_id", columns=["channel", "purpose"], values="state", aggfunc="last"
        )
        table.columns = [f"{c}:{p}" for c, p in table.columns]
        table = table.reindex(wide.index)
        for col in table.columns:
            if col in wide:
                wide[col] = table[col].fillna(wide[col])
    return wide


def consent_for(wide: pd.DataFrame, channel: str, purpose: str) -> pd.Series:
    """May a message of `purpose` go to each person on `channel`? (see module docstring)"""
    state = wide[f"{channel}:{purpose}"]
    if purpose == "marketing":
        allowed = state == "granted"
        if channel in MESSAGING:
            allowed &= wide[f"{channel}:service"] == "granted"
        return allowed
    if channel in MESSAGING:
        return state == "granted"
    return state != "denied"
