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
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType
from phonenumbers import timezone as pn_timezone
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

from tasks import arrow_text as at

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
# Extensions as CRMs hold them: "ext. 12", "x12", "#12", "anexo 12", "int. 12" (RE2 syntax).
_EXTENSION = (
    r"(?i)[\s\p{Z}]*(?:ext\.?|extension|extensión|x|#|anexo|int\.?|interno)[\s\p{Z}]*[:.]?"
    r"[\s\p{Z}]*(?P<v>[0-9]{1,7})[\s\p{Z}]*$"
)
_FORMATTING = "[ \t\r\n.()/\u00a0\u202f\\[\\]-]"
# Below this many strings for phonenumbers itself, starting worker processes costs more than
# it saves.
PARALLEL_FROM = 5_000
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
    idd: str | None

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
        idd=meta.international_prefix,
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


def _parse_many(items: list[tuple]) -> list[tuple[str | None, str, str | None, str]]:
    """Each item is (canonical, region) or (canonical, region, other reading)."""
    out = []
    for item in items:
        result = parse_one(item[0], item[1])
        if result[0] is None and len(item) > 2 and item[2]:
            result = parse_one(item[2], item[1])
        out.append(result)
    return out


def _parse_parallel(items: list[tuple[str, str]], workers: int | None) -> list[tuple]:
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(items) < PARALLEL_FROM:
        return _parse_many(items)
    size = -(-len(items) // (workers * 4))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return [r for part in pool.map(_parse_many, chunks) for r in part]


# --- the column-wise path: phonenumbers' metadata evaluated with Arrow ------------------------


def _full(s: pd.Series, pattern: str | None) -> pd.Series:
    if pattern is None or s.empty:
        return pd.Series(False, index=s.index)
    return pd.Series(at.full_match(s, pattern), index=s.index)


def _lengths(s: pd.Series) -> pd.Series:
    return pd.Series(at.lengths(s), index=s.index)


def _matches(s: pd.Series, lengths: pd.Series, d: _Desc) -> pd.Series:
    ok = _full(s, d.pattern)
    if d.lengths:
        ok &= lengths.isin(d.lengths)
    return ok


def _number_type(nsn: pd.Series, reg: _Region) -> pd.Series:
    """phonenumbers' `_number_type_helper`, column-wise."""
    lengths = _lengths(nsn)
    out = pd.Series("invalid", index=nsn.index, dtype=object)
    open_ = _matches(nsn, lengths, reg.general)
    for name, d in reg.types:
        if not open_.any():
            break
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
    """phonenumbers' `_maybe_strip_national_prefix_and_carrier_code` plus parse()'s length
    rule, column-wise. With a transform rule (Argentina: 0 11 15 xxxx → 9 11 xxxx) the rule
    applies when the prefix pattern's last group matched; otherwise the prefix is dropped."""
    if not reg.np_for_parsing or s.empty:
        return s
    anchored = f"^(?:{reg.np_for_parsing})"
    candidate = at.replace(s, anchored, "", max_replacements=1)
    if reg.np_transform:
        groups = re.compile(reg.np_for_parsing).groups
        last = f"^(?:{_name_last_group(reg.np_for_parsing, groups)})"
        group = at.extract(s, last)
        rule = reg.np_transform.replace("$", "\\")  # phonenumbers writes $1 in some data
        transformed = at.replace(s, anchored, rule, max_replacements=1)
        # RE2 gives "" (not null) for a group that took no part in the match.
        matched = group.notna() & (group != "")
        candidate = candidate.where(~matched, transformed)
    viable = _full(s, reg.general.pattern)
    keep = ~(viable & ~_full(candidate, reg.general.pattern))
    # ... and only when what is left has a possible (or too long) length for the region.
    n = _lengths(candidate)
    keep &= n.isin(reg.general.lengths) | (n > reg.max_length)
    return s.where(~keep, candidate)


def _name_last_group(pattern: str, groups: int) -> str:
    """The same pattern with its last capturing group named `v`, for Arrow's extract."""
    count = 0
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "(" and not pattern.startswith("(?", i):
            count += 1
            if count == groups:
                out.append("(?P<v>")
                i += 1
                continue
            out.append("(?:")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _split_calling_code(digits: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(calling code, national number) of '+'-less digit strings; codes are prefix-free."""
    cc = pd.Series(pd.NA, index=digits.index, dtype=object)
    nsn = pd.Series(pd.NA, index=digits.index, dtype=object)
    for width in (1, 2, 3):
        todo = cc.isna()
        if not todo.any():
            break
        prefix = at.slice_(digits[todo], 0, width)
        known = prefix.isin(_CALLING_CODES)
        hit = known[known].index
        cc[hit] = prefix[hit].astype(object)
        nsn[hit] = at.slice_(digits[hit], width).astype(object)
    return cc, nsn


def _fast_path(canon: pd.Series, region: pd.Series) -> pd.DataFrame:
    """Resolve plain '+digits' and national 'digits' forms; NA where the slow path must decide."""
    out = pd.DataFrame(
        {c: pd.Series(pd.NA, index=canon.index, dtype=object) for c in RESULT_COLUMNS}
    )
    plus = pd.Series(at.full_match(canon, r"\+[1-9][0-9]{3,16}"), index=canon.index)
    national = pd.Series(at.full_match(canon, r"[0-9]{4,17}"), index=canon.index)

    cc = pd.Series(pd.NA, index=canon.index, dtype=object)
    nsn = pd.Series(pd.NA, index=canon.index, dtype=object)
    if plus.any():
        cc[plus], nsn[plus] = _split_calling_code(at.slice_(canon[plus], 1))

    # National forms: the contact's region decides; a leading country code without '+' is
    # recognised exactly as phonenumbers does (the number only makes sense without it).
    def national_numbers(code: str, idx: pd.Index) -> tuple[pd.Index, pd.Series, str] | None:
        reg = _region(str(code))
        if reg is None:
            return None
        if reg.idd:
            # phonenumbers first strips the region's own international prefix (Israel's 012-019,
            # Mexico's 09...) when a non-zero digit follows: leave those numbers to it.
            idx = idx[~at.search(canon[idx], f"^(?:{reg.idd})(?:[1-9]|$)")]
        full = canon[idx]
        after_cc = _strip_national_prefix(at.slice_(full, len(reg.cc)), reg)
        starts = full.str.startswith(reg.cc)
        take_cc = starts & (
            (~_full(full, reg.general.pattern) & _full(after_cc, reg.general.pattern))
            | (_lengths(full) > reg.max_length)
        )
        return idx, _strip_national_prefix(full.where(~take_cc, after_cc), reg), reg.cc

    groups = national.groupby(region.where(national)).groups.items()
    for result in _each_group(national_numbers, groups):
        if result is not None:
            idx, numbers, code = result
            nsn[idx] = numbers.astype(object)
            cc[idx] = code

    # Main region per calling code; type and validity with that region's metadata.
    def typed_numbers(code: str, idx: pd.Index) -> tuple | None:
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code), ())
        main = _region(regions[0]) if regions and regions[0] != "001" else None
        if main is None:
            return None
        numbers = nsn[idx].astype("str")
        from_plus = plus[idx]
        if from_plus.any():
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
                hit = todo & pd.Series(at.search(numbers, f"^(?:{reg.leading_digits})"), index=idx)
            else:
                hit = todo & (_number_type(numbers[todo], reg).reindex(idx) != "invalid")
            if hit.any():
                kinds[hit] = _number_type(numbers[hit], reg)
                where[hit] = rcode
                todo &= ~hit
        ok = kinds.index[kinds != "invalid"]
        return ok, ("+" + str(code) + numbers[ok]).astype(object), kinds[ok], where[ok], code

    resolved = nsn.notna()
    calling_code = pd.Series(pd.NA, index=canon.index, dtype=object)
    groups = cc[resolved].groupby(cc[resolved]).groups.items()
    for result in _each_group(typed_numbers, groups):
        if result is not None:
            ok, e164, kinds, where, code = result
            out.loc[ok, "e164"] = e164
            out.loc[ok, "phone_type"] = kinds
            out.loc[ok, "number_region"] = where
            calling_code.loc[ok] = code
    ok = out["e164"].notna()
    out.loc[ok, "time_zones"] = _time_zones(
        out.loc[ok, "e164"].astype("str"), out.loc[ok, "phone_type"], calling_code[ok]
    ).astype(object)
    return out


def _each_group(work, groups) -> list:
    """Run `work(key, index)` per group on all cores: Arrow's regex kernels release the GIL.
    Each call only reads shared columns; results are written back by the caller."""
    groups = list(groups)
    if len(groups) < 2:
        return [work(key, idx) for key, idx in groups]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(lambda item: work(*item), groups))


@cache
def _calling_codes() -> frozenset[str]:
    return frozenset(str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


_CALLING_CODES = sorted(_calling_codes())
_TZ_JOINED = {p: "|".join(z for z in zs if z != "Etc/Unknown") for p, zs in TIMEZONE_DATA.items()}


def _time_zones(e164: pd.Series, kinds: pd.Series, cc: pd.Series) -> pd.Series:
    """phonenumbers' time-zone prefix lookup: longest prefix of the number (geographic types)
    or of the calling code (others), with Arrow's hash lookup per prefix length."""
    digits = at.slice_(e164, 1)
    geographic = kinds.isin(["fixed_line", "fixed_line_or_mobile"]) | (
        (kinds == "mobile") & cc.astype(int).isin(_GEO_MOBILE_COUNTRIES)
    )
    key = digits.where(geographic, cc.astype("str"))
    zones = pd.Series(pd.NA, index=e164.index, dtype=object)
    for width in range(TIMEZONE_LONGEST_PREFIX, 0, -1):
        todo = zones.isna()
        if not todo.any():
            break
        found = at.lookup(at.slice_(key[todo], 0, width), _TZ_JOINED)
        found = found.dropna()
        zones[found.index] = found.astype(object)
    return zones.fillna("")


# --- public entry point ---------------------------------------------------------------------


def canonical_forms(raw: pd.Series, region: pd.Series) -> pd.DataFrame:
    """Strip formatting, split off an extension, turn 00 (and 011 in NANP) into '+'."""
    text = at.replace(raw, r"^[\s\p{Z}]+|[\s\p{Z}]+$", "")
    extension = pd.Series(pd.NA, index=raw.index, dtype=object)
    has_extension = at.search(text, _EXTENSION)
    if has_extension.any():
        part = text[has_extension]
        extension[has_extension] = at.extract(part, _EXTENSION).astype(object)
        text = text.where(~has_extension, at.replace(part, _EXTENSION, ""))
    canon = at.replace(text, _FORMATTING, "")
    # 00 is the international prefix almost everywhere; where the region's own prefix is longer
    # (Colombia's 005/007/009, Brazil's 0021...) the number may mean that instead: keep that
    # reading for phonenumbers in case the '+' one is not a valid number.
    carrier_select = np.zeros(len(canon), dtype=bool)
    starts_00 = at.search(canon, "^00")
    for code in pd.unique(region[starts_00]) if starts_00.any() else []:
        reg = _region(str(code))
        if reg is None or not reg.idd or reg.idd == "00":
            continue
        rows = starts_00 & (region == code).to_numpy()
        rest = at.replace(canon[rows], f"^(?:{reg.idd})", "", max_replacements=1)
        carrier_select[rows] = (at.lengths(canon[rows]) - at.lengths(rest)) > 2
    carrier_form = canon.where(carrier_select)
    canon = at.replace(canon, r"^\+?00", "+")
    nanp = region.isin(phonenumbers.COUNTRY_CODE_TO_REGION_CODE[1]).to_numpy()
    from_nanp = nanp & at.search(canon, "^011")
    if from_nanp.any():
        canon = canon.where(~from_nanp, at.replace(canon, "^011", "+"))
    # Mexico's pre-2019 dialling, still common in exports though phonenumbers rejects it:
    # a mobile "1" after +52, and the 044/045/01 prefixes before ten national digits.
    canon = at.replace(canon, r"^\+521([0-9]{10})$", r"+52\1")
    legacy = (region == "MX").to_numpy() & at.full_match(canon, "(?:521|044|045|01)[0-9]{10}")
    if legacy.any():
        canon = canon.where(~legacy, at.slice_(canon, -10))
    return pd.DataFrame({"canonical": canon, "extension": extension, "carrier_form": carrier_form})


def normalise_phones(
    raw: pd.Series, region: pd.Series, *, workers: int | None = None
) -> pd.DataFrame:
    """Per input row: e164, phone_type, extension, number_region, time_zones ('|'-joined).

    `region` is each row's ISO region (from its country, else the configured default).
    Empty cells give empty results; unparseable ones give phone_type 'invalid'.
    """
    result = pd.DataFrame(index=raw.index, columns=RESULT_COLUMNS, dtype=object)
    text = raw.astype("str")
    present = text.notna().to_numpy() & ~at.full_match(text, r"[\s\p{Z}]*")
    if not present.any():
        return result
    # 1. Each distinct (raw string, region) once.
    raw_p, region_p = text[present], region[present].astype("str")
    codes, first = _distinct(raw_p + "\x1f" + region_p)
    forms = canonical_forms(
        raw_p.iloc[first].reset_index(drop=True), region_p.iloc[first].reset_index(drop=True)
    )
    # 2. Each distinct canonical form once: "612 345 678" and "612-345-678" are one number.
    form_region = region_p.iloc[first].reset_index(drop=True)
    ccodes, cfirst = _distinct(forms["canonical"] + "\x1f" + form_region)
    canon = pd.DataFrame(
        {
            "canonical": forms["canonical"].iloc[cfirst].reset_index(drop=True),
            "region": form_region.iloc[cfirst].reset_index(drop=True),
            "other": forms["carrier_form"].iloc[cfirst].reset_index(drop=True),
        }
    )
    resolved = _fast_path(canon["canonical"], canon["region"])
    slow = resolved["e164"].isna()
    if slow.any():
        part = canon[slow]
        items = [
            (c, r) if pd.isna(o) else (c, r, o)
            for c, r, o in zip(part["canonical"], part["region"], part["other"], strict=True)
        ]
        parsed = pd.DataFrame(
            _parse_parallel(items, workers),
            columns=["e164", "phone_type", "number_region", "time_zones"],
            index=canon.index[slow],
        )
        for col in parsed.columns:
            resolved.loc[slow, col] = parsed[col].astype(object)
    values = resolved[RESULT_COLUMNS].to_numpy(dtype=object)[ccodes[codes]]
    values[:, RESULT_COLUMNS.index("extension")] = forms["extension"].to_numpy(dtype=object)[codes]
    result.loc[present, RESULT_COLUMNS] = values
    return result


def _distinct(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, position of each code's first row)."""
    codes, uniques = at.codes(values)
    first = np.full(len(uniques), -1, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return codes, first


def mobile_capable(phone_type: pd.Series) -> pd.Series:
    """WhatsApp, SMS and RCS need a number that can be a mobile."""
    return phone_type.isin(MOBILE_CAPABLE)


def plain_loop(raw: list[str], region: list[str]) -> list[tuple]:
    """The naive per-row phonenumbers loop (for the benchmark's comparison only)."""
    return [parse_one(re.sub(r"\s+", "", r), g) for r, g in zip(raw, region, strict=True)]
