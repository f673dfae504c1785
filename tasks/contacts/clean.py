"""One frame of contact records from every CRM, with clean phones, emails and regions.

Raw values are kept next to the clean ones (`phone_raw`, `email_raw`...) so a person can see
what the export said; identity and consent work only on the clean columns.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from config.contacts_policy import ContactsPolicy
from tasks.contacts.countries import region_of
from tasks.contacts.emails import normalise_emails
from tasks.contacts.phones import mobile_capable, normalise_phones


def contact_records(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack the accepted contacts of every CRM source; `record_key` is 'system:source_id'."""
    records = pd.concat([f for f in frames if len(f)], ignore_index=True) if frames else None
    if records is None or records.empty:
        return pd.DataFrame()
    records["record_key"] = records["system"].astype("str") + ":" + records["source_id"]
    return records


def clean_records(
    records: pd.DataFrame, policy: ContactsPolicy, default_region: str, workers: int | None = None
) -> pd.DataFrame:
    """Add region, E.164 phones with type/time zones, and normalised emails with flags."""
    out = records.copy()
    region = region_of(out["country"])
    out["region"] = region.fillna(default_region)
    out["region_known"] = region.notna()
    # Both phone columns in one pass, so a number in both is parsed once.
    both = pd.concat([out["phone"], out["mobile_phone"]], ignore_index=True)
    regions = pd.concat([out["region"], out["region"]], ignore_index=True)
    # Emails meanwhile, on the other core: both steps spend their time in Arrow kernels.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(
            normalise_emails, out["email"], policy.role_local_parts, policy.common_domains
        )
        parsed = normalise_phones(both, regions, workers=workers)
        emails = pending.result()
    n = len(out)
    for prefix, part in (("phone", parsed.iloc[:n]), ("mobile", parsed.iloc[n:])):
        part = part.set_axis(out.index)
        out[f"{prefix}_e164"] = part["e164"].astype("str")
        out[f"{prefix}_type"] = part["phone_type"].astype("str")
        out[f"{prefix}_extension"] = part["extension"].astype("str")
        out[f"{prefix}_time_zones"] = part["time_zones"].astype("str")
        out[f"{prefix}_number_region"] = part["number_region"].astype("str")
    out = out.rename(
        columns={"email": "email_raw", "phone": "phone_raw", "mobile_phone": "mobile_raw"}
    )
    for col in emails.columns:
        out[col] = emails[col]
    return out


def person_keys(records: pd.DataFrame) -> pd.DataFrame:
    """(row, key) pairs: personal (non-role, valid) emails and mobile-capable numbers."""
    pos = pd.RangeIndex(len(records))
    parts = []
    personal = records["email"].notna().to_numpy() & ~records["email_role"].to_numpy(bool)
    parts.append(
        pd.DataFrame(
            {"row": pos[personal], "key": ("email:" + records["email"][personal]).to_numpy()}
        )
    )
    for prefix in ("mobile", "phone"):
        capable = (
            mobile_capable(records[f"{prefix}_type"]).to_numpy()
            & records[f"{prefix}_e164"].notna().to_numpy()
        )
        e164 = records[f"{prefix}_e164"][capable]
        parts.append(pd.DataFrame({"row": pos[capable], "key": ("mobile:" + e164).to_numpy()}))
    return pd.concat(parts, ignore_index=True)
