"""Data-quality figures for a run's contacts: counts and shares only, never a value."""

from __future__ import annotations

from typing import Any

import pandas as pd

from tasks.contacts.consent import CHANNELS, consent_for
from tasks.contacts.identity import Resolution


def contact_quality(
    records: pd.DataFrame, golden: pd.DataFrame, resolution: Resolution, consent: pd.DataFrame
) -> dict[str, Any]:
    phones = pd.concat([records["phone_type"], records["mobile_type"]], ignore_index=True).dropna()
    raw_emails = records["email_raw"].notna()
    sizes = golden["records"]
    cross = golden["systems"].str.contains(",", regex=False)
    coverage = {
        channel: {
            "service": int(consent_for(consent, channel, "service").sum()),
            "marketing": int(consent_for(consent, channel, "marketing").sum()),
        }
        for channel in CHANNELS
    }
    shared = resolution.shared_keys.groupby("kind").size().to_dict()
    return {
        "records": int(len(records)),
        "records_by_system": records["system"].value_counts().sort_index().to_dict(),
        "golden_contacts": int(len(golden)),
        "records_merged": int(len(records) - len(golden)),
        "people_in_both_crms": int(cross.sum()),
        "largest_clusters": sorted(sizes.nlargest(5).astype(int).tolist(), reverse=True),
        "suspicious_clusters": int(len(resolution.suspicious)),
        "shared_keys_not_used": {str(k): int(v) for k, v in shared.items()},
        "phone_numbers": {
            "total": int(len(phones)),
            "valid": int((phones != "invalid").sum()),
            "invalid": int((phones == "invalid").sum()),
            "mobile": int((phones == "mobile").sum()),
            "landline": int((phones == "fixed_line").sum()),
            "fixed_line_or_mobile": int((phones == "fixed_line_or_mobile").sum()),
        },
        "emails": {
            "present": int(raw_emails.sum()),
            "invalid": int((raw_emails & ~records["email_valid"]).sum()),
            "role_addresses": int(records["email_role"].sum()),
            "likely_typos": int(records["email_typo_of"].notna().sum()),
        },
        "contacts_without_reachable_channel": int(
            (
                golden["email"].isna() & golden["mobile_e164"].isna() & golden["phone_e164"].isna()
            ).sum()
        ),
        "consent_coverage": coverage,
        "accounts_with_collections_contact": int(
            golden.loc[golden["receives_collections"], "account_id"].nunique()
        ),
        "accounts_with_renewals_contact": int(
            golden.loc[golden["receives_renewals"], "account_id"].nunique()
        ),
    }
