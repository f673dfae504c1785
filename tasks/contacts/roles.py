"""Who in an account receives collections and who receives renewals.

Tiers come from config/contacts.yaml in fallback order (CRM role, then title rules, then role
mailboxes, then anyone): a contact's tier is the first it matches, and in each account the
contacts of the best tier present are the recipients.
"""

from __future__ import annotations

import re

import pandas as pd

from config.contacts_policy import RoleTier
from tasks import arrow_text as at


def tier_of(golden: pd.DataFrame, tiers: list[RoleTier]) -> pd.Series:
    """1-based tier per contact (<NA> if it matches none)."""
    tier = pd.Series(pd.NA, index=golden.index, dtype="Int64")
    role = golden["role"].astype("str")
    title = golden["title"].astype("str")
    index = golden.index
    for number, rule in enumerate(tiers, start=1):
        hit = pd.Series(False, index=golden.index)
        if rule.crm_roles:
            names = "|".join(re.escape(r) for r in rule.crm_roles)
            # Multi-select CRM fields hold "Billing;Decision Maker".
            pattern = rf"(?:^|;)\s*(?:{names})\s*(?:;|$)"
            hit |= pd.Series(at.search(role, pattern, ignore_case=True), index=index)
        if rule.title_pattern:
            hit |= pd.Series(at.search(title, rule.title_pattern), index=index)
        if rule.role_address:
            hit |= golden["email_role"].fillna(False).astype(bool)
        if rule.any:
            hit |= True
        tier = tier.mask(tier.isna() & hit, number)
    return tier


def recipients(account_id: pd.Series, tier: pd.Series) -> pd.Series:
    """True for the contacts in the best tier their account has."""
    best = tier.groupby(account_id.fillna("")).transform("min")
    return (tier == best).fillna(False).astype(bool) & account_id.notna()
