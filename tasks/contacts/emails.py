"""Email addresses: trimmed, lower-cased, syntax-checked, role and typo flags (never rewritten).

email-validator is the authority on syntax (no DNS). It checks ~30,000 addresses/s, so the
plain ASCII addresses that make up almost every export are checked column-wise with a pattern
that accepts only what email-validator accepts; anything else (accents, IDN domains, quotes,
special-use names) goes to email-validator itself, each distinct address once.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?"
PLAIN_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}"


def _valid_slow(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def valid_syntax(addresses: pd.Series) -> pd.Series:
    """True where email-validator would accept the (already normalised) address."""
    plain = addresses.str.fullmatch(PLAIN_ADDRESS).fillna(False).astype(bool)
    local_len = addresses.str.find("@")
    plain &= (local_len <= 64) & (addresses.str.len() <= 254)
    plain &= ~addresses.str.contains("xn--", regex=False).fillna(False)
    tld = addresses.str.rsplit(".", n=1).str[-1]
    plain &= ~tld.isin(SPECIAL_USE_DOMAIN_NAMES)
    out = plain.copy()
    rest = addresses[~plain & addresses.notna()]
    if len(rest):
        uniques = rest.unique()
        verdicts = {a: _valid_slow(a) for a in uniques}
        out[rest.index] = rest.map(verdicts).astype(bool)
    return out


@cache
def _typo_table(common: tuple[str, ...]) -> dict[str, str]:
    """Every domain one edit away from a common one (deletion, swap, replacement, insertion)."""
    letters = "abcdefghijklmnopqrstuvwxyz0123456789.-"
    table: dict[str, str] = {}
    for domain in common:
        splits = [(domain[:i], domain[i:]) for i in range(len(domain) + 1)]
        variants = {a + b[1:] for a, b in splits if b}
        variants |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        variants |= {a + c + b[1:] for a, b in splits if b for c in letters}
        variants |= {a + c + b for a, b in splits for c in letters}
        for v in variants - set(common):
            table.setdefault(v, domain)
    return table


def normalise_emails(
    raw: pd.Series, role_local_parts: list[str], common_domains: list[str]
) -> pd.DataFrame:
    """Per row: email (normalised, <NA> if empty or invalid), email_valid, email_role,
    email_typo_of (the common domain it probably meant)."""
    text = raw.astype("str").str.strip().str.lower()
    text = text.where(text.notna() & (text != ""))
    present = text.notna()
    valid = pd.Series(False, index=raw.index)
    if present.any():
        valid[present] = valid_syntax(text[present])
    local = text.str.split("@", n=1).str[0]
    domain = text.str.rsplit("@", n=1).str[-1].where(text.str.contains("@", regex=False))
    role = local.isin(set(role_local_parts)).fillna(False) & present
    typo_of = domain.map(_typo_table(tuple(common_domains)))
    return pd.DataFrame(
        {
            "email": text.where(valid),
            "email_valid": valid.astype(bool),
            "email_role": role.astype(bool),
            "email_typo_of": typo_of.where(present),
        },
        index=raw.index,
    )
