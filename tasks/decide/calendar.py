"""When a touch may land: business days, public holidays and quiet hours in the *recipient's*
country and time zone. A touch that cannot land today is deferred to the next allowed moment,
not dropped. Work is done once per distinct (country, time zone, window), never per contact.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import holidays
import numpy as np
import pandas as pd

from config.outreach_policy import WEEKDAYS, OutreachPolicy, Window


@cache
def _holidays(country: str, first_year: int) -> holidays.HolidayBase | None:
    try:
        return holidays.country_holidays(country, years=[first_year, first_year + 1])
    except (NotImplementedError, KeyError):
        return None


def quiet_reason(day: dt.date, country: str, policy: OutreachPolicy) -> str:
    """Why `day` is not a working day for `country` ('' when it is)."""
    if WEEKDAYS[day.weekday()] not in policy.calendar.business_days:
        return f"{day:%A} is not a business day"
    if policy.calendar.public_holidays and country:
        names = _holidays(country, day.year)
        if names is not None and day in names:
            return f"public holiday in {country} ({names.get(day)})"
    return ""


def first_working_day(
    as_of: dt.date, country: str, policy: OutreachPolicy
) -> tuple[dt.date | None, str]:
    """The first working day on or after `as_of` for `country`, and why earlier days were not."""
    first = quiet_reason(as_of, country, policy)
    for offset in range(policy.calendar.max_defer_days + 1):
        day = as_of + dt.timedelta(days=offset)
        if not quiet_reason(day, country, policy):
            return day, first
    return None, first


def _local_to_utc(day: dt.date, at: dt.time, tz: str) -> pd.Timestamp:
    local = pd.Timestamp(dt.datetime.combine(day, at))
    return local.tz_localize(tz, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC")


def windows(
    as_of: dt.date,
    country: pd.Series,
    time_zone: pd.Series,
    is_call: pd.Series,
    policy: OutreachPolicy,
    fallback_tz: str,
) -> pd.DataFrame:
    """Per candidate: local day, window start/end in UTC, and why it was deferred ('' if not).

    `day` is NaT when no working day falls within `max_defer_days`.
    """
    keys = pd.DataFrame(
        {
            "country": country.fillna("").astype(str).to_numpy(),
            "tz": time_zone.fillna(fallback_tz).replace("", fallback_tz).astype(str).to_numpy(),
            "call": is_call.to_numpy(dtype=bool),
        }
    )
    distinct = keys.drop_duplicates().reset_index(drop=True)
    rows = []
    for country_code, tz, call in distinct.itertuples(index=False):
        window: Window = policy.calendar.call_window if call else policy.calendar.message_window
        day, why = first_working_day(as_of, country_code, policy)
        if day is None:
            rows.append((pd.NaT, pd.NaT, pd.NaT, why))
            continue
        rows.append(
            (
                pd.Timestamp(day),
                _local_to_utc(day, window.start, tz),
                _local_to_utc(day, window.end, tz),
                why,
            )
        )
    table = pd.DataFrame(rows, columns=["day", "start", "end", "deferred"])
    # Window bounds as naive UTC datetime64: aware values become Python objects in numpy.
    for col in ("start", "end"):
        table[col] = pd.to_datetime(table[col], utc=True).dt.tz_localize(None)
    table = pd.concat([distinct, table], axis=1)
    which = distinct.reset_index().merge(
        keys.reset_index(names="row"), on=["country", "tz", "call"]
    )
    pick = np.empty(len(keys), dtype=np.int64)
    pick[which["row"].to_numpy()] = which["index"].to_numpy()
    return pd.DataFrame(
        {
            "day": table["day"].to_numpy(dtype="datetime64[D]")[pick],
            "start": table["start"].to_numpy(dtype="datetime64[ns]")[pick],
            "end": table["end"].to_numpy(dtype="datetime64[ns]")[pick],
            "deferred": table["deferred"].to_numpy(dtype=object)[pick],
            "tz": table["tz"].to_numpy(dtype=object)[pick],
        },
        index=country.index,
    )


def local_days(moments: pd.Series, time_zone: pd.Series, fallback_tz: str) -> np.ndarray:
    """The local calendar day of each UTC moment in its contact's zone (once per zone)."""
    tz = time_zone.fillna(fallback_tz).replace("", fallback_tz).astype(str)
    stamps = pd.to_datetime(moments, utc=True)
    out = np.full(len(moments), np.datetime64("NaT"), dtype="datetime64[D]")
    codes, zones = pd.factorize(tz)
    for i, zone in enumerate(zones):
        hit = codes == i
        out[hit] = (
            stamps[hit].dt.tz_convert(zone).dt.tz_localize(None).to_numpy(dtype="datetime64[D]")
        )
    return out
