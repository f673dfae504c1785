"""Who receives a due step, and on which channel: recipients, capability, consent, suppression
lists, in-app silence and channel affinity, in that order. Each channel passed over leaves a
decision row saying why (rerouted), and a step with no usable channel is suppressed, with the
reason for every channel it could have used.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from config.outreach_policy import OutreachPolicy
from tasks import arrow_text as at
from tasks.contacts.consent import MESSAGING
from tasks.decide.cadences import decision_rows

MOBILE_TYPES = ("mobile", "fixed_line_or_mobile")
_ROLE_FLAG = {"collections": "receives_collections", "renewal": "receives_renewals"}
_TIER = {"collections": "collections_tier", "renewal": "renewals_tier"}


def messaging_number(golden: pd.DataFrame) -> pd.Series:
    """The number that can take WhatsApp/SMS/RCS: the mobile, else a mobile-capable phone."""
    mobile_ok = golden["mobile_e164"].notna() & golden["mobile_type"].isin(MOBILE_TYPES)
    phone_ok = golden["phone_e164"].notna() & golden["phone_type"].isin(MOBILE_TYPES)
    number = golden["mobile_e164"].where(mobile_ok)
    return number.where(mobile_ok, golden["phone_e164"].where(phone_ok))


def recipients(steps: pd.DataFrame, golden: pd.DataFrame) -> pd.DataFrame:
    """One row per (due step, recipient). A call task goes to one person: the first recipient
    with a phone (by role tier); a message goes to every recipient of the case's role."""
    people = []
    for kind, flag in _ROLE_FLAG.items():
        chosen = golden[golden[flag].astype(bool)]
        people.append(
            pd.DataFrame(
                {
                    "account_id": chosen["account_id"].array,
                    "golden_id": chosen["golden_id"].array,
                    "kind": kind,
                    "tier": chosen[_TIER[kind]].to_numpy(dtype="float64", na_value=np.nan),
                    "has_phone": (
                        chosen["phone_e164"].notna() | chosen["mobile_e164"].notna()
                    ).to_numpy(),
                }
            )
        )
    who = pd.concat(people, ignore_index=True)
    who = who.sort_values(["account_id", "kind", "has_phone", "tier", "golden_id"],
                          ascending=[True, True, False, True, True])  # fmt: skip
    out = steps.reset_index(drop=True).rename_axis("step_row").reset_index()
    out = out.merge(who, on=["account_id", "kind"], how="left")
    call = out["channels"].eq("voice").to_numpy()
    first = ~out.duplicated("step_row").to_numpy()
    return out[~call | first].drop(columns=["has_phone", "tier"]).reset_index(drop=True)


def _options(cands: pd.DataFrame) -> pd.DataFrame:
    """One row per (candidate, channel it may use), in the policy's preference order; only
    the columns the choice needs (`cand` points back at the candidate row)."""
    # Split each distinct channel list once (they are few), then expand by category code.
    codes, lists = pd.factorize(cands["channels"].astype(object))
    split = [str(x).split("|") for x in lists]
    flat = np.array([c for parts in split for c in parts], dtype=object)
    size_of = np.array([len(parts) for parts in split], dtype=np.int64)
    start_of = np.cumsum(size_of) - size_of
    sizes = size_of[codes] if len(codes) else np.zeros(0, dtype=np.int64)
    cand = np.repeat(np.arange(len(cands)), sizes)
    first = np.repeat(np.cumsum(sizes) - sizes, sizes)
    position = np.arange(len(cand)) - first
    return pd.DataFrame(
        {
            "cand": cand,
            "golden_id": cands["golden_id"].array.take(cand),
            "purpose": cands["purpose"].to_numpy(dtype=object)[cand],
            "urgent": cands["urgent"].to_numpy(dtype=bool)[cand],
            "channel": flat[start_of[codes[cand]] + position] if len(cand) else flat[:0],
            "pref": position,
        }
    )


def choose_channels(
    candidates: pd.DataFrame,
    golden: pd.DataFrame,
    consent_wide: pd.DataFrame,
    suppressed: pd.DataFrame,
    in_app_seen: pd.Series,
    affinity: pd.DataFrame,
    as_of_end: pd.Timestamp,
    policy: OutreachPolicy,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one chosen channel per candidate, decisions for channels passed over or no channel)."""
    cands = candidates[candidates["golden_id"].notna()].reset_index(drop=True)
    nobody = candidates[candidates["golden_id"].isna()]
    notes = [
        decision_rows(
            nobody,
            outcome="suppressed",
            rule="recipient",
            detail="no contact of the account has this role",
        )  # fmt: skip
    ]
    seen_at = in_app_seen.to_numpy(dtype="datetime64[ns]")
    seen_row = at.positions(cands["golden_id"], in_app_seen.index)
    seen = np.where(seen_row >= 0, seen_at[seen_row] if len(seen_at) else np.datetime64("NaT"),
                    np.datetime64("NaT"))  # fmt: skip
    window = pd.Timedelta(days=policy.in_app.active_within_days)
    since = (as_of_end.tz_convert(None) - pd.Timedelta(days=1) - window).to_datetime64()
    active = ~np.isnat(seen) & (seen >= since)
    # Active in the product: the message goes in-app and the external channels stay silent.
    silence = active & (cands["channels"] != "voice").to_numpy()
    channels = cands["channels"].astype(object).to_numpy()
    cands["channels"] = np.where(silence, "in_app", channels)
    opts = _options(cands)
    g = opts["golden_id"]
    ch = opts["channel"].to_numpy()
    row = at.positions(g, golden["golden_id"])  # every candidate's contact is in `golden`
    email = golden["email"].notna().to_numpy()[row]
    number = messaging_number(golden).notna().to_numpy()[row]
    phone = (golden["phone_e164"].notna() | golden["mobile_e164"].notna()).to_numpy()[row]
    in_app = at.positions(g, in_app_seen.index[in_app_seen.notna().to_numpy()]) >= 0
    capable = np.select(
        [ch == "email", np.isin(ch, MESSAGING), ch == "voice", ch == "in_app"],
        [email, number, phone, in_app],
        False,
    )
    state = _consent_state(consent_wide, g, ch, opts["purpose"].to_numpy())
    basis = _basis(policy, ch, opts["purpose"].to_numpy())
    consented = np.where(basis == "granted", state == "granted", state != "denied")
    listed = suppressed["golden_id"].astype(str) + "|" + suppressed["channel"].astype(str)
    where = at.positions(g.astype(str) + "|" + opts["channel"].astype(str), listed)
    reasons = np.append(suppressed["reason"].to_numpy(dtype=object), None)
    block_reason = reasons[where]
    is_blocked = where >= 0
    ok = capable & consented & ~is_blocked
    opts["ok"] = ok
    opts["order"] = _affinity_order(opts, affinity, policy)
    opts = opts.sort_values(["cand", "order"], kind="stable")
    before = opts.groupby("cand")["ok"].cumsum().to_numpy()
    take = opts.index.to_numpy()
    picked = opts["ok"].to_numpy() & (before == 1)
    chosen_opts = opts[picked]
    silenced = silence[chosen_opts["cand"].to_numpy()]
    # The next allowed channel is the fallback when delivery on the chosen one fails for good.
    second = opts[opts["ok"].to_numpy() & (before == 2)]
    fallback = np.full(len(cands), None, dtype=object)
    fallback[second["cand"].to_numpy()] = second["channel"].to_numpy()
    chosen = cands.iloc[chosen_opts["cand"].to_numpy()].assign(
        channel=chosen_opts["channel"].to_numpy(),
        fallback_channel=fallback[chosen_opts["cand"].to_numpy()],
        choice=_texts(
            [silenced], ["active in the product: in-app only, other channels silent"], ""
        ),
    )
    # Every channel passed over says why (only those rows get a text: they are the few).
    gone = take[before == 0]
    has_choice = np.zeros(len(cands), dtype=bool)
    has_choice[chosen_opts["cand"].to_numpy()] = True
    p_cand = opts["cand"].to_numpy()[before == 0]
    p_ch, p_purpose = ch[gone], opts["purpose"].to_numpy()[before == 0]
    failed = [~capable[gone], ~consented[gone], is_blocked[gone]]
    rule = _texts(failed, ["capability", "consent", "suppression list"], "")
    no_address = _texts(
        [p_ch == "email", np.isin(p_ch, MESSAGING), p_ch == "voice"],
        ["no email address", "no mobile number", "no phone number"],
        "never seen in the product",
    )
    p_state = pd.Series(state[gone], dtype=object)
    no_consent = "no " + pd.Series(p_ch, dtype=object) + " consent for "
    no_consent = no_consent + pd.Series(p_purpose, dtype=object) + " messages (" + p_state + ")"
    listed_why = "on the suppression list: " + pd.Series(block_reason[gone], dtype=object).fillna(
        ""
    )
    detail = _texts(failed, [no_address, no_consent.to_numpy(), listed_why.to_numpy()], "")
    about = ["case_key", "account_id", "kind", "stage", "step", "golden_id"]
    passed = cands[about].iloc[p_cand].assign(channel=p_ch)
    notes.append(
        decision_rows(
            passed,
            outcome=np.where(has_choice[p_cand], "rerouted", "suppressed"),
            rule=rule,
            detail=detail,
        )
    )
    return chosen.reset_index(drop=True), pd.concat(notes, ignore_index=True)


def _texts(conditions: list[np.ndarray], choices: list[object], default: str) -> np.ndarray:
    """np.select for text as an object array: numpy's own would store fixed-width unicode,
    several hundred bytes per row for a long reason."""
    n = len(conditions[0])
    out = np.full(n, default, dtype=object)
    for condition, choice in reversed(list(zip(conditions, choices, strict=True))):
        out[condition] = choice[condition] if isinstance(choice, np.ndarray) else choice
    return out


def _basis(policy: OutreachPolicy, channel: np.ndarray, purpose: np.ndarray) -> np.ndarray:
    out = np.full(len(channel), "granted", dtype=object)
    for c, rules in policy.consent.items():
        for p, basis in rules.items():
            out[(channel == c) & (purpose == p)] = basis
    return out


def _consent_state(
    wide: pd.DataFrame, golden_id: pd.Series, channel: np.ndarray, purpose: np.ndarray
) -> np.ndarray:
    """The consent state of each option's (contact, channel, purpose), column by column."""
    row = at.positions(golden_id, wide.index)
    state = np.full(len(channel), "unknown", dtype=object)
    for column in wide.columns:
        c, p = column.split(":")
        hit = (channel == c) & (purpose == p) & (row >= 0)
        if hit.any():
            picked = at.arrow(wide[column]).take(pa.array(row[hit]))
            state[hit] = picked.to_numpy(zero_copy_only=False)
    return state


def _affinity_order(
    opts: pd.DataFrame, affinity: pd.DataFrame, policy: OutreachPolicy
) -> np.ndarray:
    """Sort key: the policy's order, or descending affinity for non-urgent steps of contacts
    with enough evidence."""
    pref = opts["pref"].to_numpy(dtype="float64")
    if affinity.empty:
        return pref
    row = at.positions(opts["golden_id"], affinity.index)
    col = pd.Index(affinity.columns).get_indexer(opts["channel"].to_numpy())
    evidence = (row >= 0) & (col >= 0)
    aff = np.zeros(len(opts))
    aff[evidence] = affinity.to_numpy()[row[evidence], col[evidence]]
    use = evidence & ~opts["urgent"].to_numpy(dtype=bool)
    return np.where(use, -aff + pref * 1e-6, pref)
