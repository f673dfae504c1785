"""Country spellings from exports → ISO regions, from a table (config/countries.yaml).

Exports write "España", "Spain", "ES", "México", "MX"...; guessing from fuzzy matches would
silently put a number in the wrong country, so an unknown spelling stays unknown and the
configured default region applies instead.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

import pandas as pd
import phonenumbers
import yaml

COUNTRIES_FILE = Path(__file__).resolve().parents[2] / "config" / "countries.yaml"


@cache
def _table() -> tuple[dict[str, str], dict[str, str]]:
    data = yaml.safe_load(COUNTRIES_FILE.read_text(encoding="utf-8"))
    spellings = {_fold(k): str(v).upper() for k, v in data["spellings"].items()}
    for region in phonenumbers.SUPPORTED_REGIONS:
        spellings.setdefault(region.casefold(), region)
    return spellings, dict(data["time_zones"])


def fold(text: str) -> str:
    """Case, accents and spacing folded away: "  Núñez " and "nunez" are one spelling."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def _fold(text: str) -> str:
    return fold(text.replace(".", ""))


def region_of(country: pd.Series) -> pd.Series:
    """ISO region per row, <NA> where the spelling is empty or unknown (each spelling once)."""
    spellings, _ = _table()
    codes, uniques = pd.factorize(country, use_na_sentinel=True)
    mapped = [spellings.get(_fold(str(u))) for u in uniques] + [None]
    return pd.Series(pd.array(mapped, dtype="str"), dtype="str").iloc[codes].set_axis(country.index)


def default_time_zone(region: pd.Series) -> pd.Series:
    _, zones = _table()
    return region.map(zones)
