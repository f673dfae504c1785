"""Golden records: one row per person, built from its source records by survivorship rules.

Survivorship (documented in docs/contacts.md): for every field, the most recent non-empty
value by the record's last-modified time wins; on equal times the configured source priority
decides, then the source id. Phones prefer a mobile-capable number for `mobile_e164` and any
valid number for `phone_e164` (voice). Every source id stays linked to its golden id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from tasks import arrow_text as at
from tasks.contacts.countries import default_time_zone
from tasks.contacts.identity import new_golden_id
from tasks.contacts.phones import mobile_capable

GOLDEN_COLUMNS = [
    "golden_id", "account_id", "account_name", "first_name", "last_name", "title", "role",
    "email", "email_role", "email_typo_of", "phone_e164", "phone_type", "mobile_e164",
    "mobile_type", "country", "region", "time_zone", "language", "last_modified", "records",
    "systems",
]  # fmt: skip


def assign_golden_ids(
    record_key: pd.Series,
    cluster: np.ndarray,
    known: pd.Series,
    issued: set[str] | frozenset[str] = frozenset(),
) -> tuple[pd.Series, pd.DataFrame]:
    """Golden id per record, keeping the ids the ledger already gave (`known`: record_key →
    golden_id). Returns (ids, merges) where merges lists ids folded into another this run."""
    frame = pd.DataFrame({"record_key": record_key.reset_index(drop=True), "cluster": cluster})
    frame["known"] = (
        at.lookup(frame["record_key"], known.astype(str).to_dict()) if len(known) else None
    )
    # The smallest source id of each cluster, via integer ranks (no string group-bys).
    rank = pc.rank(at.arrow(frame["record_key"]), sort_keys="ascending").to_numpy()
    smallest_rank = pd.Series(rank).groupby(cluster).transform("min").to_numpy()
    by_rank = np.empty(len(rank), dtype=np.int64)
    by_rank[rank - 1] = np.arange(len(rank))
    frame["smallest"] = frame["record_key"].iloc[by_rank[smallest_rank - 1]].reset_index(drop=True)
    # An old id goes to the cluster holding most of its records (ties: smallest source id).
    claims = (
        frame.dropna(subset=["known"])
        .groupby(["known", "cluster"], as_index=False)
        .agg(votes=("record_key", "size"), smallest=("smallest", "first"))
        .sort_values(["known", "votes", "smallest"], ascending=[True, False, True])
        .drop_duplicates("known")
    )
    # A cluster that won several old ids keeps the smallest; the others merge into it.
    claims = claims.sort_values(["cluster", "known"])
    kept = claims.drop_duplicates("cluster")
    merged = (
        claims[~claims.index.isin(kept.index)]
        .merge(kept[["cluster", "known"]].rename(columns={"known": "merged_into"}), on="cluster")[
            ["known", "merged_into"]
        ]
        .rename(columns={"known": "golden_id"})
    )
    ids = frame["cluster"].map(kept.set_index("cluster")["known"]).astype(object)
    fresh = ids.isna()
    if fresh.any():
        taken = set(known.dropna().unique()) | set(kept["known"]) | set(issued)
        seeds = frame.loc[fresh, "smallest"]
        codes, uniques = pd.factorize(seeds)
        new = []
        for seed in uniques.tolist():
            candidate, n = new_golden_id(seed), 1
            while candidate in taken:  # a split cluster must not reuse its old id
                n += 1
                candidate = new_golden_id(f"{seed}#{n}")
            taken.add(candidate)
            new.append(candidate)
        ids[fresh] = np.array(new, dtype=object)[codes]
    return ids.astype("str").set_axis(record_key.index), merged.reset_index(drop=True)


def golden_records(records: pd.DataFrame, source_priority: list[str]) -> pd.DataFrame:
    """`records` are clean records with a `golden_id` column; one row per golden id out."""
    r = records
    mobile_ok = (mobile_capable(r["mobile_type"]) & r["mobile_e164"].notna()).to_numpy()
    phone_ok = (mobile_capable(r["phone_type"]) & r["phone_e164"].notna()).to_numpy()
    voice = r["phone_e164"].notna().to_numpy()
    derived = {
        "mobile_e164": _pick(r["mobile_e164"], mobile_ok, r["phone_e164"], phone_ok),
        "mobile_type": _pick(r["mobile_type"], mobile_ok, r["phone_type"], phone_ok),
        "mobile_zones": _pick(r["mobile_time_zones"], mobile_ok, r["phone_time_zones"], phone_ok),
        "phone_e164": _pick(r["phone_e164"], voice, r["mobile_e164"], ~voice),
        "phone_type": _pick(r["phone_type"], voice, r["mobile_type"], ~voice),
        "phone_zones": _pick(r["phone_time_zones"], voice, r["mobile_time_zones"], ~voice),
        "region": r["region"].where(r["region_known"]),
        "mobile_number_region": _pick(
            r["mobile_number_region"], mobile_ok, r["phone_number_region"], phone_ok
        ),
        "phone_number_region": _pick(
            r["phone_number_region"], voice, r["mobile_number_region"], ~voice
        ),
    }
    # One stable order for all fields: person, newest first, source priority, source id.
    person, people = at.codes(r["golden_id"])
    priority = r["system"].map({s: i for i, s in enumerate(source_priority)}).fillna(99)
    modified = pd.to_datetime(r["last_modified"], utc=True).astype("datetime64[us, UTC]")
    key_rank = pc.rank(at.arrow(r["record_key"]), sort_keys="ascending").to_numpy()
    order = np.lexsort((key_rank, priority.to_numpy(), -np.asarray(modified.array.asi8), person))
    person_sorted = person[order]
    golden = pd.DataFrame({"golden_id": people.to_numpy(dtype=object)})

    def survivor(values: pd.Series) -> np.ndarray:
        """Per person, the position of the first non-empty value in the order above."""
        filled = values.notna().to_numpy()[order]
        positions = order[filled]
        owners = person_sorted[filled]
        owners_first = np.r_[True, owners[1:] != owners[:-1]] if len(owners) else owners
        pos = np.full(len(people), -1, dtype=np.int64)
        pos[owners[owners_first]] = positions[owners_first]
        return pos

    plain = ["account_id", "account_name", "first_name", "last_name", "title", "role",
             "email", "country", "language", "last_modified"]  # fmt: skip
    columns = {name: r[name] for name in plain} | derived
    for name, values in columns.items():
        pos = survivor(values)
        taken = values.iloc[np.maximum(pos, 0)].reset_index(drop=True)  # stays Arrow-backed
        golden[name] = taken.where(pos >= 0)
    # Flags follow the chosen email, not any email of the person.
    email_pos = survivor(r["email"])
    golden["email_role"] = np.where(
        email_pos >= 0, r["email_role"].to_numpy(bool)[email_pos], False
    )
    typo = r["email_typo_of"].astype("str").iloc[np.maximum(email_pos, 0)].reset_index(drop=True)
    golden["email_typo_of"] = typo.where(email_pos >= 0)
    golden["records"] = np.bincount(person, minlength=len(people))
    systems = pd.Series("", index=golden.index, dtype=object)
    for system in sorted(r["system"].unique()):
        has = np.zeros(len(people), dtype=bool)
        has[person[(r["system"] == system).to_numpy()]] = True
        systems[has] = systems[has] + np.where(systems[has] == "", "", ",") + system
    golden["systems"] = systems
    newest_region = r["region"].iloc[survivor(r["region"])].reset_index(drop=True)
    golden["time_zone"] = _time_zone(golden, newest_region)
    golden = golden.sort_values("golden_id", kind="stable").reset_index(drop=True)
    return golden[GOLDEN_COLUMNS]


def _pick(
    first: pd.Series, first_ok: np.ndarray, second: pd.Series, second_ok: np.ndarray
) -> pd.Series:
    out = first.where(first_ok)
    return out.where(first_ok, second.where(second_ok))


def _time_zone(golden: pd.DataFrame, region: pd.Series) -> pd.Series:
    """The number's zone when it has one. Where it spans several (Spanish mobiles: Madrid or
    the Canaries), the contact's country zone if it is one of them, else the main zone of the
    number's own country (a Spanish mobile of a Colombian contact: Madrid), else the first."""
    fallback = default_time_zone(region).astype("str")
    mobile = golden["mobile_zones"].astype("str")
    use_mobile = mobile.fillna("") != ""
    zones = mobile.where(use_mobile, golden["phone_zones"].astype("str"))
    zones = zones.where(zones.fillna("") != "")
    number_region = golden["mobile_number_region"].where(use_mobile, golden["phone_number_region"])
    number_default = default_time_zone(number_region.astype("str")).astype("str")
    first = at.replace(zones, r"\|.*$", "").where(zones.notna())
    several = pd.Series(at.search(zones, r"\|"), index=zones.index)
    listed = "|" + zones.fillna("") + "|"
    country_in = _contains_elementwise(listed, "|" + fallback.fillna("\x00") + "|")
    number_in = _contains_elementwise(listed, "|" + number_default.fillna("\x00") + "|")
    tz = first.where(~several, fallback.where(country_in, number_default.where(number_in, first)))
    return tz.fillna(fallback)


def _contains_elementwise(haystack: pd.Series, needle: pd.Series) -> np.ndarray:
    """haystack[i] contains needle[i], over distinct pairs only (few: zones × countries)."""
    codes, pairs = at.codes(haystack + "\x1f" + needle)
    split = (pair.split("\x1f") for pair in pairs.to_numpy(dtype=object))
    verdict = np.array([needle in hay for hay, needle in split], dtype=bool)
    return verdict[codes]
