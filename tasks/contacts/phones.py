"""Phone numbers → E.164, with their type (who can get WhatsApp/SMS/RCS) and time zone.

phonenumbers is the authority, but it parses ~23,000 numbers/s on one core: a million-contact
book would take a minute. So each distinct raw string is handled once, in two paths:

- the fast path evaluates phonenumbers' own metadata (the same national-number patterns,
  possible lengths, national-prefix and country-code rules, time-zone prefixes) column-wise
  with Arrow's regex engine, for the plain forms that make up almost all real numbers;
- everything else — odd forms, regions whose national prefix rewrites digits (Argentina), and
  every number the fast path finds invalid — goes through `phonenumbers.parse` itself, spread
  over the machine's cores.

`tests/contacts/test_phones.py` checks that both paths agree with phonenumbers, number by number.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache

import pandas as pd
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as pn_timezone
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "invalid",
}
MOBILE_CAPABLE = ("mobile", "fixed_line_or_mobile")
_GEO_MOBILE_COUNTRIES = phonenumbers.phonenumberutil._GEO_MOBILE_COUNTRIES
_SPECIAL_TYPES = [
    ("premium_rate", "premium_rate"),
    ("toll_free", "toll_free"),
    ("shared_cost", "shared_cost"),
    ("voip", "voip"),
    ("personal_number", "personal_number"),
    ("pager", "pager"),
    ("uan", "uan"),
    ("voicemail", "voicemail"),
]
# Extensions as CRMs hold them: "ext. 12", "x12", "#12", "anexo 12", "int. 12".
_EXTENSION = (
    r"(?i)\s*(?:ext\.?|extension|extensión|x|#|anexo|int\.?|interno)\s*[:.]?\s*(\d{1,7})\s*$"
)
_FORMATTING = r"[\s.\-()/\u00a0\u202f\[\]]"
RESULT_COLUMNS = ["e164", "phone_type", "extension", "number_region", "time_zones"]


@dataclass(frozen=True)
class _Desc:
    pattern: str | None
    lengths: tuple[int, ...]


@dataclass(frozen=True)
class _Region:
    code: str
    cc: str
    general: _Desc
    types: tuple[tuple[str, _Desc], ...]
    fixed: _Desc
    mobile: _Desc
    same_fixed_mobile: bool
    np_for_parsing: str | None
    np_transform: str | None
    leading_digits: str | None

    @property
    def max_length(self) -> int:
        return max(self.general.lengths)


@cache
def _region(code: str) -> _Region | None:
    meta = PhoneMetadata.metadata_for_region(code)
    if meta is None:
        return None

    def desc(d) -> _Desc:
        if d is None:
            return _Desc(None, ())
        return _Desc(d.national_number_pattern, tuple(d.possible_length or ()))

    return _Region(
        code=code,
        cc=str(meta.country_code),
        general=desc(meta.general_desc),
        types=tuple((name, desc(getattr(meta, attr))) for name, attr in _SPECIAL_TYPES),
        fixed=desc(meta.fixed_line),
        mobile=desc(meta.mobile),
        same_fixed_mobile=bool(meta.same_mobile_and_fixed_line_pattern),
        np_for_parsing=meta.national_prefix_for_parsing,
        np_transform=meta.national_prefix_transform_rule,
        leading_digits=meta.leading_digits,
    )


# --- the per-string path: phonenumbers itself ------------------------------------------------


def parse_one(canonical: str, region: str) -> tuple[str | None, str, str | None, str]:
    """(e164, type, number region, '|'-joined time zones) straight from phonenumbers."""
    try:
        number = phonenumbers.parse(canonical, region)
    except phonenumbers.NumberParseException:
        return None, "invalid", None, ""
    if not phonenumbers.is_valid_number(number):
        return None, "invalid", None, ""
    kind = TYPE_NAMES.get(phonenumbers.number_type(number), "invalid")
    zones = pn_timezone.time_zones_for_number(number)
    return (
        phonenumbers.format_number(number, PhoneNumberFormat.E164),
        kind,
        phonenumbers.region_code_for_number(number),
        "|".join(z for z in zones if z != "Etc/Unknown"),
    )


def _parse_many(items: list[tuple[str, str]]) -> list[tuple[str | None, str, str | None, str]]:
    return [parse_one(c, r) for c, r in items]


def _parse_parallel(items: list[tuple[str, str]], workers: int | None) -> list[tuple]:
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(items) < 20_000:
        return _parse_many(items)
    size = -(-len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [r for part in pool.map(_parse_many, chunks) for r in part]


# --- the column-wise path: phonenumbers' metadata evaluated with Arrow ------------------------


def _full(s: pd.Series, pattern: str | None) -> pd.Series:
    if pattern is None or s.empty:
        return pd.Series(False, index=s.index)
    return s.str.fullmatch(f"(?:{pattern})").fillna(False).astype(bool)


def _matches(s: pd.Series, lengths: pd.Series, d: _Desc) -> pd.Series:
    ok = _full(s, d.pattern)
    if d.lengths:
        ok &= lengths.isin(d.lengths)
    return ok


def _number_type(nsn: pd.Series, reg: _Region) -> pd.Series:
    """phonenumbers' `_number_type_helper`, column-wise."""
    lengths = nsn.str.len()
    out = pd.Series("invalid", index=nsn.index, dtype=object)
    open_ = _matches(nsn, lengths, reg.general)
    for name, d in reg.types:
        hit = open_ & _matches(nsn, lengths, d)
        out[hit] = name
        open_ &= ~hit
    fixed = open_ & _matches(nsn, lengths, reg.fixed)
    if reg.same_fixed_mobile:
        out[fixed] = "fixed_line_or_mobile"
        return out
    mobile = open_ & _matches(nsn, lengths, reg.mobile)
    out[fixed & mobile] = "fixed_line_or_mobile"
    out[fixed & ~mobile] = "fixed_line"
    out[~fixed & mobile] = "mobile"
    return out


def _strip_national_prefix(s: pd.Series, reg: _Region) -> pd.Series:
    """phonenumbers' national-prefix stripping (regions without a transform rule)."""
    if not reg.np_for_parsing or s.empty:
        return s
    anchored = f"^(?:{reg.np_for_parsing})"
    stripped = s.str.replace(anchored, "", n=1, regex=True)
    viable = _full(s, reg.general.pattern)
    keep = ~(viable & ~_full(stripped, reg.general.pattern))
    # ... and only when what is left has a possible (or too long) length for the region.
    n = stripped.str.len()
    keep &= n.isin(reg.general.lengths) | (n > reg.max_length)
    return s.where(~keep, stripped)


def _fast_path(canon: pd.Series, region: pd.Series) -> pd.DataFrame:
    """Resolve plain '+digits' and national 'digits' forms; NA where the slow path must decide."""
    out = pd.DataFrame(
        {c: pd.Series(pd.NA, index=canon.index, dtype=object) for c in RESULT_COLUMNS}
    )
    plus = canon.str.fullmatch(r"\+[1-9]\d{3,16}").fillna(False)
    national = canon.str.fullmatch(r"\d{4,17}").fillna(False)

    # Country calling code and national number for the '+' forms (codes are prefix-free).
    cc = pd.Series(pd.NA, index=canon.index, dtype=object)
    digits = canon[plus].str.slice(1)
    for width in (1, 2, 3):
        prefix = digits.str.slice(0, width)
        known = prefix.isin(_CALLING_CODES) & cc[plus].isna()
        cc[known[known].index] = prefix[known]
    nsn = pd.Series(pd.NA, index=canon.index, dtype=object)
    has_cc = cc.notna()
    nsn[has_cc] = [d[len(c) :] for d, c in zip(digits[has_cc[plus]], cc[has_cc], strict=True)]

    # National forms: the contact's region decides; a leading country code without '+' is
    # recognised exactly as phonenumbers does (the number only makes sense without it).
    for code, idx in national.groupby(region.where(national)).groups.items():
        reg = _region(str(code))
        if reg is None or reg.np_transform:
            continue
        full = canon[idx]
        after_cc = _strip_national_prefix(full.str.slice(len(reg.cc)), reg)
        starts = full.str.startswith(reg.cc)
        take_cc = starts & (
            (~_full(full, reg.general.pattern) & _full(after_cc, reg.general.pattern))
            | (full.str.len() > reg.max_length)
        )
        nsn[idx] = _strip_national_prefix(full.where(~take_cc, after_cc), reg)
        cc[idx] = reg.cc

    # Main region per calling code; type and validity with that region's metadata.
    resolved = nsn.notna()
    for code, idx in cc[resolved].groupby(cc[resolved]).groups.items():
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code), ())
        main = _region(regions[0]) if regions and regions[0] != "001" else None
        if main is None or main.np_transform:
            continue
        numbers = nsn[idx].astype("str")
        if plus[idx].any():
            from_plus = plus[idx]
            numbers[from_plus] = _strip_national_prefix(numbers[from_plus], main)
        kinds = pd.Series("invalid", index=idx, dtype=object)
        where = pd.Series(pd.NA, index=idx, dtype=object)
        todo = pd.Series(True, index=idx)
        for rcode in regions:
            reg = _region(rcode)
            if reg is None or not todo.any():
                continue
            if len(regions) == 1:
                hit = todo
            elif reg.leading_digits:
                hit = todo & numbers.str.match(f"(?:{reg.leading_digits})").fillna(False)
            else:
                hit = todo & (_number_type(numbers[todo], reg).reindex(idx) != "invalid")
            if hit.any():
                kinds[hit] = _number_type(numbers[hit], reg)
                where[hit] = rcode
                todo &= ~hit
        valid = kinds != "invalid"
        ok = valid[valid].index
        out.loc[ok, "e164"] = "+" + str(code) + numbers[ok].astype(object)
        out.loc[ok, "phone_type"] = kinds[ok]
        out.loc[ok, "number_region"] = where[ok]
    ok = out["e164"].notna()
    out.loc[ok, "time_zones"] = _time_zones(out.loc[ok, "e164"], out.loc[ok, "phone_type"])
    return out


@cache
def _calling_codes() -> frozenset[str]:
    return frozenset(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


_CALLING_CODES = sorted(_calling_codes())


def _time_zones(e164: pd.Series, kinds: pd.Series) -> pd.Series:
    """phonenumbers' time-zone prefix lookup: longest prefix of the number (geographic types)
    or of the calling code (others), column-wise over distinct prefixes."""
    digits = e164.str.slice(1)
    cc_len = pd.Series(0, index=e164.index)
    for width in (3, 2, 1):
        hit = digits.str.slice(0, width).isin(_CALLING_CODES) & (cc_len == 0)
        cc_len[hit] = width
    cc = pd.Series([d[:n] for d, n in zip(digits, cc_len, strict=True)], index=e164.index)
    geographic = kinds.isin(["fixed_line", "fixed_line_or_mobile"]) | (
        (kinds == "mobile") & cc.astype(int).isin(_GEO_MOBILE_COUNTRIES)
    )
    key = digits.where(geographic, cc)
    zones = pd.Series(pd.NA, index=e164.index, dtype=object)
    for width in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        todo = zones.isna()
        if not todo.any():
            break
        found = key[todo].str.slice(0, width).map(_TZ_JOINED)
        zones[found.dropna().index] = found.dropna()
    return zones.fillna("")


_TZ_JOINED = {p: "|".join(z for z in zs if z != "Etc/Unknown") for p, zs in TIMEZONE_DATA.items()}


# --- public entry point ---------------------------------------------------------------------


def canonical_forms(raw: pd.Series, region: pd.Series) -> pd.DataFrame:
    """Strip formatting, split off an extension, turn 00 (and 011 in NANP) into '+'."""
    text = raw.astype("str").str.strip()
    extension = text.str.extract(_EXTENSION, expand=False)
    text = text.str.replace(_EXTENSION, "", regex=True)
    canon = text.str.replace(_FORMATTING, "", regex=True)
    canon = canon.str.replace(r"^\+?00", "+", regex=True)
    nanp = region.isin(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1])
    canon = canon.where(~(nanp & canon.str.startswith("011")), "+" + canon.str.slice(3))
    # Mexico's pre-2019 dialling, still common in exports though phonenumbers rejects it:
    # a mobile "1" after +52, and the 044/045/01 prefixes before ten national digits.
    mexican = region == "MX"
    canon = canon.str.replace(r"^\+521(\d{10})$", r"+52\1", regex=True)
    legacy = mexican & canon.str.fullmatch(r"(?:521|044|045|01)\d{10}").fillna(False)
    canon = canon.where(~legacy, canon.str.slice(-10))
    return pd.DataFrame({"canonical": canon, "extension": extension})


def normalise_phones(
    raw: pd.Series, region: pd.Series, *, workers: int | None = None
) -> pd.DataFrame:
    """Per input row: e164, phone_type, extension, number_region, time_zones ('|'-joined).

    `region` is each row's ISO region (from its country, else the configured default).
    Empty cells give empty results; unparseable ones give phone_type 'invalid'.
    """
    result = pd.DataFrame(index=raw.index, columns=RESULT_COLUMNS, dtype=object)
    present = raw.notna() & (raw.astype("str").str.strip() != "")
    if not present.any():
        return result
    # 1. Each distinct (raw string, region) once.
    pairs = pd.DataFrame({"raw": raw[present].astype("str"), "region": region[present]})
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(pairs))
    distinct = pd.DataFrame(list(uniques), columns=["raw", "region"])
    forms = canonical_forms(distinct["raw"].astype("str"), distinct["region"])
    # 2. Each distinct canonical form once: "612 345 678" and "612-345-678" are one number.
    key = pd.MultiIndex.from_arrays([forms["canonical"], distinct["region"]])
    ccodes, cuniques = pd.factorize(key)
    canon = pd.DataFrame(list(cuniques), columns=["canonical", "region"])
    resolved = _fast_path(canon["canonical"].astype("str"), canon["region"])
    slow = resolved["e164"].isna()
    if slow.any():
        items = list(
            zip(canon.loc[slow, "canonical"], canon.loc[slow, "region"].astype(str), strict=True)
        )
        parsed = pd.DataFrame(
            _parse_parallel(items, workers),
            columns=["e164", "phone_type", "number_region", "time_zones"],
            index=canon.index[slow],
        )
        for col in parsed.columns:
            resolved.loc[slow, col] = parsed[col].astype(object)
    per_distinct = resolved.iloc[ccodes].reset_index(drop=True)
    per_distinct["extension"] = forms["extension"].astype(object).to_numpy()
    rows = per_distinct.iloc[codes]
    rows.index = raw.index[present]
    result.loc[present, RESULT_COLUMNS] = rows[RESULT_COLUMNS].to_numpy()
    return result


def mobile_capable(phone_type: pd.Series) -> pd.Series:
    """WhatsApp, SMS and RCS need a number that can be a mobile."""
    return phone_type.isin(MOBILE_CAPABLE)


def plain_loop(raw: list[str], region: list[str]) -> list[tuple]:
    """The naive per-row phonenumbers loop (for the benchmark's comparison only)."""
    return [parse_one(re.sub(r"\s+", "", r), g) for r, g in zip(raw, region, strict=True)]
