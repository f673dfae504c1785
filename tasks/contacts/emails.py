"""Email addresses: trimmed, lower-cased, syntax-checked, role and typo flags (never rewritten).

email-validator is the authority on syntax (no DNS). It checks ~30,000 addresses/s, so the
plain ASCII addresses that make up almost every export are checked column-wise with a pattern
that accepts only what email-validator accepts; anything else (accents, IDN domains, quotes,
special-use names) goes to email-validator itself, each distinct address once.
"""

from __future__ import annotations

from functools import cache

import pandas as pd
import pyarrow.compute as pc
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from tasks import arrow_text as at

_ATOM = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_TLD = r"[a-z](?:[a-z0-9-]{0,61}[a-z])?"  # email-validator: a TLD ends in a letter
PLAIN_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+{_TLD}"


def _valid_slow(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def valid_syntax(addresses: pd.Series) -> pd.Series:
    """True where email-validator would accept the (already normalised) address."""
    addresses = addresses.astype("str")
    plain = pd.Series(at.full_match(addresses, PLAIN_ADDRESS), index=addresses.index)
    local_len = pd.Series(at.lengths(at.replace(addresses, "@.*$", "")), index=addresses.index)
    plain &= (local_len <= 64) & (pd.Series(at.lengths(addresses), index=addresses.index) <= 254)
    plain &= ~pd.Series(at.search(addresses, "xn--"), index=addresses.index)
    # RFC 5890 R-LDH labels ("ab--cd") are rejected unless Punycode ("xn--", already excluded).
    plain &= ~pd.Series(at.search(addresses, "[@.][a-z0-9][a-z0-9-]--"), index=addresses.index)
    tld = at.replace(addresses, r"^.*\.", "")
    plain &= ~tld.isin(SPECIAL_USE_DOMAIN_NAMES)
    out = plain.copy()
    rest = addresses[~plain & addresses.notna()]
    if len(rest):
        uniques = rest.unique()
        verdicts = {a: _valid_slow(a) for a in uniques}
        out[rest.index] = rest.map(verdicts).astype(bool)
    return out


# Real domains one edit away from a common one (Aon, Morgan Stanley, mail.com...): not typos.
REAL_NEIGHBOURS = frozenset(
    {"aon.com", "ms.com", "mtn.com", "mail.com", "cloud.com", "gmx.com", "live.co", "msm.com",
     "aim.com", "mac.com", "me.com", "ymail.com"}
)  # fmt: skip


@cache
def _typo_table(common: tuple[str, ...]) -> dict[str, str]:
    """Every domain one edit away from a common one (deletion, swap, replacement, insertion).
    Very short names (aol, msn) are skipped: one edit away from them are real companies."""
    letters = "abcdefghijklmnopqrstuvwxyz0123456789.-"
    table: dict[str, str] = {}
    for domain in common:
        if len(domain.split(".")[0]) < 5:
            continue
        splits = [(domain[:i], domain[i:]) for i in range(len(domain) + 1)]
        variants = {a + b[1:] for a, b in splits if b}
        variants |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
        variants |= {a + c + b[1:] for a, b in splits if b for c in letters}
        variants |= {a + c + b for a, b in splits for c in letters}
        for v in variants - set(common) - REAL_NEIGHBOURS:
            table.setdefault(v, domain)
    return table


def normalise_emails(
    raw: pd.Series, role_local_parts: list[str], common_domains: list[str]
) -> pd.DataFrame:
    """Per row: email (normalised, <NA> if empty or invalid), email_valid, email_role,
    email_typo_of (the common domain it probably meant)."""
    text = at.to_series(pc.utf8_lower(pc.utf8_trim_whitespace(at.arrow(raw))), raw.index)
    text = text.astype("str")
    # Forms mail clients paste: "mailto:ana@x.es", "Ana García <ana@x.es>".
    text = at.replace(text, r"^mailto:\s*", "")
    text = at.replace(text, r"^[^<]*<\s*([^<>\s]+)\s*>\s*$", r"\1")
    text = text.where(text.notna() & (text != ""))
    present = text.notna()
    valid = pd.Series(False, index=raw.index)
    if present.any():
        valid[present] = valid_syntax(text[present])
    local = at.replace(text, "@.*$", "").where(text.notna())
    domain = at.replace(text, "^.*@", "").where(pd.Series(at.search(text, "@"), index=text.index))
    role = local.isin(set(role_local_parts)).fillna(False) & present
    typo_of = at.lookup(domain, _typo_table(tuple(common_domains)))
    return pd.DataFrame(
        {
            "email": text.where(valid),
            "email_valid": valid.astype(bool),
            "email_role": role.astype(bool),
            "email_typo_of": typo_of.where(present),
        },
        index=raw.index,
    )
