"""Consent per channel and purpose, merged across sources, with an append-only audit trail.

Each source field (HasOptedOutOfEmail, WhatsApp_OptIn__c, "Unsubscribed from all email"...)
is a *statement* about some (channel, purpose) pairs, dated by the record's last-modified time
(config/contacts.yaml says which field states what). Merging:

- the most recent explicit statement wins, across sources and across runs;
- on equal times a denial beats a grant, so an explicit opt-out is never outvoted by an
  opt-in of the same age;
- an empty cell states nothing: it neither grants nor revokes;
- the audit trail gets a row for every change of state and for every newer statement that
  repeats the state (a reaffirmation, old = new), so the newest statement time is never lost.

`consent_for` turns states into a yes/no for a send: unknown means no for WhatsApp, SMS and
RCS and for all marketing; a service message by email, voice or in-app rests on the contract
(legitimate interest) unless denied; marketing on a messaging channel also needs that
channel's own opt-in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from config.contacts_policy import ContactsPolicy
from tasks import arrow_text as at

CHANNELS = ("email", "whatsapp", "sms", "rcs", "voice", "in_app")
PURPOSES = ("service", "marketing")
MESSAGING = ("whatsapp", "sms", "rcs")
STATEMENT_COLUMNS = ["golden_id", "channel", "purpose", "state", "stated_at", "source"]
STATES = ("denied", "granted")  # codes 0, 1; unknown is -1
_PAIRS = [(c, p) for c in CHANNELS for p in PURPOSES]
_STATE_NAMES = np.array(["unknown", *STATES], dtype=object)

# Internally every statement is numbers — a person code, a (channel, purpose) code, a state
# code, a time — so merging millions of statements is a few numpy sorts, not string work.


def _pair_codes(frame: pd.DataFrame) -> np.ndarray:
    channel = pd.Categorical(frame["channel"], categories=CHANNELS).codes.astype(np.int64)
    purpose = pd.Categorical(frame["purpose"], categories=PURPOSES).codes.astype(np.int64)
    return channel * len(PURPOSES) + purpose


def _state_codes(states: pd.Series) -> np.ndarray:
    return pd.Categorical(states, categories=STATES).codes.astype(np.int64)


def _times(values: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(values, utc=True).astype("datetime64[us, UTC]")
    return np.asarray(stamps.array.asi8, dtype=np.int64)


def _text(values: pd.Series) -> pd.Series:
    return values if values.dtype == "str" else values.astype("str")


def _person_codes(*columns: pd.Series) -> list[np.ndarray]:
    """Codes for golden ids from a shared dictionary, so several frames can be compared.
    Categorical columns (as `consent_statements` makes) cost nothing but their categories."""
    vocab = [
        c.cat.categories.to_series() if isinstance(c.dtype, pd.CategoricalDtype) else c
        for c in columns
    ]
    categories = pd.Index(pd.unique(pd.concat(vocab, ignore_index=True).astype("str").dropna()))
    return [pd.Categorical(c, categories=categories).codes.astype(np.int64) for c in columns]


def consent_statements(records: pd.DataFrame, policy: ContactsPolicy) -> pd.DataFrame:
    """Every explicit statement in the source records (rows with golden_id, record_key)."""
    rows, pairs, states, fields = [], [], [], []
    for field, by_value in policy.consent_fields.items():
        if field not in records:
            continue
        cells = records[field]
        for value, statements in by_value.items():
            hit = np.flatnonzero((cells == value).fillna(False).to_numpy(bool))
            if not len(hit):
                continue
            for channel, purpose, state in statements:
                rows.append(hit)
                pairs.append(np.full(len(hit), _PAIRS.index((channel, purpose))))
                states.append(np.full(len(hit), STATES.index(state)))
                fields.append(
                    pa.array(np.full(len(hit), f" {field}", dtype=object), pa.large_string())
                )
    if not rows:
        return _empty_statements()
    row = np.concatenate(rows)
    pair = np.concatenate(pairs)
    take = pa.array(row)
    keys = pc.cast(pc.take(at.arrow(records["record_key"]), take), pa.large_string())
    source = pc.binary_join_element_wise(
        keys, pa.chunked_array(fields), pa.scalar("", pa.large_string())
    )
    person, people = at.codes(records["golden_id"])
    return pd.DataFrame(
        {
            "golden_id": pd.Categorical.from_codes(person[row], people.astype(object)),
            "channel": pd.Categorical.from_codes(pair // len(PURPOSES), CHANNELS),
            "purpose": pd.Categorical.from_codes(pair % len(PURPOSES), PURPOSES),
            "state": pd.Categorical.from_codes(np.concatenate(states), STATES),
            "stated_at": pd.to_datetime(_times(records["last_modified"])[row], unit="us", utc=True),
            "source": at.to_series(source, None).astype("str"),
        }
    )[STATEMENT_COLUMNS]


def _empty_statements() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "golden_id": pd.Series(dtype="str"),
            "channel": pd.Categorical([], categories=CHANNELS),
            "purpose": pd.Categorical([], categories=PURPOSES),
            "state": pd.Categorical([], categories=STATES),
            "stated_at": pd.Series(dtype="datetime64[us, UTC]"),
            "source": pd.Series(dtype="str"),
        }
    )


def _winners(
    key: np.ndarray, times: np.ndarray, states: np.ndarray, source: pd.Series
) -> np.ndarray:
    """Position of the winning statement per key: newest, then denial, then source order.
    Sources are compared only where a key's best statements tie on time and state (rare)."""
    # One int64 sort key — key, then newest first, then denial first — from dense time ranks
    # (a single argsort is several times faster than a lexsort over millions of statements).
    time_rank, _ = pd.factorize(times, sort=True)
    newest_then_denial = (int(time_rank.max()) - time_rank) * 2 + states
    order = np.argsort(key * (2 * int(time_rank.max()) + 2) + newest_then_denial, kind="stable")
    k, t, st = key[order], times[order], states[order]
    start = np.r_[True, k[1:] != k[:-1]]
    winners = order[start]
    same_as_next = np.r_[(k[1:] == k[:-1]) & (t[1:] == t[:-1]) & (st[1:] == st[:-1]), False]
    run = np.cumsum(start) - 1
    tied_run = (start & same_as_next)[start]
    if tied_run.any():
        first_t, first_st = t[start][run], st[start][run]
        contenders = tied_run[run] & (t == first_t) & (st == first_st)
        pos = order[contenders]
        names = _text(source).to_numpy(dtype=object)[pos]
        best = (
            pd.DataFrame({"run": run[contenders], "pos": pos, "source": names})
            .sort_values(["run", "source"], kind="stable")
            .drop_duplicates("run")
        )
        winners[best["run"].to_numpy()] = best["pos"].to_numpy()
    return np.sort(winners)


def latest(statements: pd.DataFrame) -> pd.DataFrame:
    """The winning statement per (golden_id, channel, purpose): newest, denial on ties."""
    if statements.empty:
        return statements.reindex(columns=STATEMENT_COLUMNS)
    (person,) = _person_codes(statements["golden_id"])
    key = person * len(_PAIRS) + _pair_codes(statements)
    rows = _winners(
        key,
        _times(statements["stated_at"]),
        _state_codes(statements["state"]),
        statements["source"],
    )
    return statements.iloc[rows][STATEMENT_COLUMNS].reset_index(drop=True)


def consent_changes(current: pd.DataFrame, statements: pd.DataFrame) -> pd.DataFrame:
    """Audit rows for every (person, channel, purpose) whose effective state changes.

    `current` is the ledger's state (latest audit row per key, same columns); a statement
    older than the one behind the current state changes nothing."""
    candidates = latest(statements)
    if candidates.empty:
        return candidates.assign(old_state=pd.Series(dtype=object))
    # Several current rows for one key (after a merge): the newest statement is the state.
    current = latest(current) if len(current) else current
    new_person, old_person = _person_codes(candidates["golden_id"], current["golden_id"])
    new_key = new_person * len(_PAIRS) + _pair_codes(candidates)
    old_key = old_person * len(_PAIRS) + _pair_codes(current)
    old = pd.DataFrame(
        {"state": _state_codes(current["state"]), "time": _times(current["stated_at"])},
        index=old_key,
    )
    old = old[~old.index.duplicated(keep="last")].reindex(new_key)
    old_state = old["state"].fillna(-1).to_numpy(np.int64)
    old_time = old["time"].to_numpy(dtype=float)
    new_state = _state_codes(candidates["state"])
    new_time = _times(candidates["stated_at"]).astype(float)
    unseen = np.isnan(old_time)
    newer = unseen | (new_time > old_time)
    same_time_denial = (new_time == old_time) & (new_state == 0)
    # A newer statement is recorded even when it repeats the state (a reaffirmation): the
    # trail must know the newest statement time, or a late, older export could override it.
    changed = newer | (same_time_denial & (old_state != 0))
    changes = candidates.iloc[np.flatnonzero(changed)].copy()
    changes["old_state"] = _STATE_NAMES[old_state[changed] + 1]
    return changes[[*STATEMENT_COLUMNS, "old_state"]].reset_index(drop=True)


def apply_changes(current: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
    """The state after appending `changes` to the audit trail (what the ledger will derive):
    per key the newest statement, a denial on equal times — whatever the row order.

    `changes` come from `consent_changes`, so each one beats the current rows of its key."""
    if current.empty:
        return changes[STATEMENT_COLUMNS].reset_index(drop=True)
    current = latest(current)  # a merged person may hold several rows per key
    if changes.empty:
        return current
    old_person, new_person = _person_codes(current["golden_id"], changes["golden_id"])
    old_key = old_person * len(_PAIRS) + _pair_codes(current)
    new_key = new_person * len(_PAIRS) + _pair_codes(changes)
    kept = current.iloc[np.flatnonzero(~np.isin(old_key, new_key))]
    frames = [kept[STATEMENT_COLUMNS], changes[STATEMENT_COLUMNS]]
    return pd.DataFrame(
        {
            col: _stack([f[col] for f in frames])
            if col != "stated_at"
            else pd.to_datetime(pd.concat([f[col] for f in frames], ignore_index=True), utc=True)
            for col in STATEMENT_COLUMNS
        }
    )


def _stack(parts: list[pd.Series]) -> pd.Series:
    """Concatenate columns that may be categorical with different categories, cheaply."""
    if all(isinstance(p.dtype, pd.CategoricalDtype) for p in parts):
        from pandas.api.types import union_categoricals

        return pd.Series(union_categoricals([p.array for p in parts], ignore_order=True))
    return pd.concat([p.astype("str") for p in parts], ignore_index=True)


def consent_wide(state: pd.DataFrame, golden_ids: pd.Series) -> pd.DataFrame:
    """One row per person, one column per 'channel:purpose' with granted/denied/unknown."""
    people = pd.Index(pd.unique(_text(golden_ids)), name="golden_id")
    grid = np.full((len(people), len(_PAIRS)), -1, dtype=np.int64)
    if not state.empty:
        position = pc.index_in(
            at.arrow(_text(state["golden_id"])),
            value_set=pa.array(people.astype(object), pa.string()),
        )
        position = pc.fill_null(position, -1).to_numpy(zero_copy_only=False)
        known = position >= 0
        grid[position[known], _pair_codes(state)[known]] = _state_codes(state["state"])[known]
    names = _STATE_NAMES[grid + 1]
    return pd.DataFrame({f"{c}:{p}": names[:, i] for i, (c, p) in enumerate(_PAIRS)}, index=people)


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
