"""Golden records: one row per person, built from its source records by survivorship rules.

Survivorship (documented in docs/contacts.md): for every field, the most recent non-empty
value by the record's last-modified time wins; on equal times the configured source priority
decides, then the source id. Phones prefer a mobile-capable number for `mobile_e164` and any
valid number for `phone_e164` (voice). Every source id stays linked to its golden id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
    record_key: pd.Series, cluster: np.ndarray, known: pd.Series
) -> tuple[pd.Series, pd.DataFrame]:
    """Golden id per record, keeping the ids the ledger already gave (`known`: record_key →
    golden_id). Returns (ids, merges) where merges lists ids folded into another this run."""
    frame = pd.DataFrame({"record_key": record_key.to_numpy(), "cluster": cluster})
    frame["known"] = frame["record_key"].map(known)
    smallest = frame.groupby("cluster")["record_key"].transform("min")
    frame["smallest"] = smallest
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
        taken = set(known.dropna().unique()) | set(kept["known"])
        seeds = frame.loc[fresh, "smallest"]
        codes, uniques = pd.factorize(seeds)
        new = []
        for seed in uniques:
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
    r = records.copy()
    r["priority"] = r["system"].map({s: i for i, s in enumerate(source_priority)}).fillna(99)
    mobile_ok = mobile_capable(r["mobile_type"]) & r["mobile_e164"].notna()
    phone_ok = mobile_capable(r["phone_type"]) & r["phone_e164"].notna()
    r["best_mobile"] = r["mobile_e164"].where(mobile_ok, r["phone_e164"].where(phone_ok))
    r["best_mobile_type"] = r["mobile_type"].where(mobile_ok, r["phone_type"].where(phone_ok))
    r["best_mobile_zones"] = r["mobile_time_zones"].where(
        mobile_ok, r["phone_time_zones"].where(phone_ok)
    )
    voice = r["phone_e164"].notna()
    r["best_phone"] = r["phone_e164"].where(voice, r["mobile_e164"])
    r["best_phone_type"] = r["phone_type"].where(voice, r["mobile_type"])
    r["best_phone_zones"] = r["phone_time_zones"].where(voice, r["mobile_time_zones"])
    r["country_region"] = r["region"].where(r["region_known"])
    r = r.sort_values(
        ["golden_id", "last_modified", "priority", "record_key"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    fields = {
        "account_id": "account_id", "account_name": "account_name", "first_name": "first_name",
        "last_name": "last_name", "title": "title", "role": "role", "email": "email",
        "phone_e164": "best_phone", "phone_type": "best_phone_type",
        "phone_zones": "best_phone_zones",
        "mobile_e164": "best_mobile", "mobile_type": "best_mobile_type",
        "mobile_zones": "best_mobile_zones", "country": "country", "region": "country_region",
        "language": "language", "last_modified": "last_modified",
    }  # fmt: skip
    grouped = r.groupby("golden_id", sort=True)
    golden = grouped[list(fields.values())].first()
    golden.columns = list(fields)
    # Flags follow the chosen email, not any email of the person.
    flags = r.dropna(subset=["email"]).drop_duplicates("golden_id")
    golden["email_role"] = flags.set_index("golden_id")["email_role"].reindex(golden.index)
    golden["email_typo_of"] = flags.set_index("golden_id")["email_typo_of"].reindex(golden.index)
    golden["email_role"] = golden["email_role"].fillna(False).astype(bool)
    golden["records"] = grouped.size()
    present = r[["golden_id", "system"]].drop_duplicates()
    systems = pd.Series("", index=golden.index, dtype=object)
    for system in sorted(present["system"].unique()):
        has = golden.index.isin(present.loc[present["system"] == system, "golden_id"])
        systems[has] = systems[has] + np.where(systems[has] == "", "", ",") + system
    golden["systems"] = systems
    golden["time_zone"] = _time_zone(golden, r.groupby("golden_id")["region"].first())
    golden = golden.reset_index()
    return golden[GOLDEN_COLUMNS]


def _time_zone(golden: pd.DataFrame, region: pd.Series) -> pd.Series:
    """The number's zone when it has one; the country's when the number spans several and the
    country's is among them (Spanish mobiles: Madrid or Canaries); else the first."""
    fallback = default_time_zone(region.reindex(golden.index))
    zones = golden["mobile_zones"].where(
        golden["mobile_zones"].fillna("") != "", golden["phone_zones"]
    )
    zones = zones.where(zones.fillna("") != "")
    first = zones.str.split("|").str[0]
    several = zones.str.contains("|", regex=False).fillna(False)
    combo = fallback.fillna("").astype("str") + "\x1f" + zones.fillna("").astype("str")
    codes, uniques = pd.factorize(combo)
    verdict = np.array(
        [bool(f) and f in z.split("|") for f, z in (u.split("\x1f") for u in uniques)], dtype=bool
    )
    fallback_in = pd.Series(verdict[codes], index=golden.index)
    tz = first.where(~several | ~fallback_in, fallback)
    return tz.fillna(fallback)
