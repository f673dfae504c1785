"""Identity resolution: which source records (Salesforce, HubSpot) are the same person.

Two records are one person when they share a person-level key — a normalised email or a
mobile-capable E.164 number — transitively (connected components of the record–key graph).
Guards against fusing different people:

- role addresses (facturacion@, ap@, billing@...) are never keys;
- a key carried by records with different last names is shared (a switchboard, a team
  mailbox) and is not used; a record without a last name counts as a name of its own, so it
  never bridges two people;
- a cluster larger than `max_cluster_size` is not believed: its records stay apart, and it
  is reported as suspicious.

Each rule depends only on sets of keys and names, so the result does not depend on row
order, and resolving golden records (carrying all their members' keys) again changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from tasks import arrow_text as at
from tasks.contacts.countries import fold


@dataclass
class Resolution:
    cluster: np.ndarray  # one label per record; equal labels = one person
    shared_keys: pd.DataFrame  # key kind, records, names: keys not used (shared by people)
    suspicious: pd.DataFrame  # cluster size of every cluster over the bound (kept apart)


def name_key(last_name: pd.Series, record_key: pd.Series) -> pd.Series:
    """Folded last name (accents, case, spaces); a record without one gets its own key."""
    folded = _fold_names(last_name)
    return folded.where(folded.notna() & (folded != ""), "#" + record_key.astype("str"))


def _fold_names(names: pd.Series) -> pd.Series:
    codes, uniques = pd.factorize(names, use_na_sentinel=True)
    folded = np.array([fold(str(u)) for u in uniques] + [None], dtype=object)
    return pd.Series(folded[codes], index=names.index, dtype="str")


def resolve(
    record_key: pd.Series, names: pd.Series, keys: pd.DataFrame, max_cluster_size: int
) -> Resolution:
    """`keys` has one row per (row, key): `row` is the record's position, `key` a person key
    prefixed by its kind ('email:...', 'mobile:...')."""
    n = len(record_key)
    # Everything as integers: key codes and name codes from Arrow's hashing, then numpy.
    key_code, key_values = at.codes(keys["key"].astype("str"))
    name_code, _ = at.codes(names.astype("str"))
    rows = keys["row"].to_numpy(np.int64)
    n_keys = len(key_values)
    # pandas' hash-based unique on int64: numpy's np.unique is several times slower here.
    pair = pd.unique(rows * max(n_keys, 1) + key_code)
    rows, key_code = pair // max(n_keys, 1), pair % max(n_keys, 1)
    records_per_key = np.bincount(key_code, minlength=n_keys)
    n_names = int(name_code.max()) + 1 if len(name_code) else 1
    key_names = pd.unique(key_code * n_names + name_code[rows])
    names_per_key = np.bincount(key_names // n_names, minlength=n_keys)
    shared_key = names_per_key > 1
    usable = ~shared_key[key_code]
    rows, key_codes = rows[usable], key_code[usable]
    size = n + (int(key_codes.max()) + 1 if len(key_codes) else 0)
    graph = coo_matrix(
        (np.ones(len(rows), dtype=np.int8), (rows, n + key_codes)), shape=(size, size)
    )
    _, labels = connected_components(graph, directed=False)
    cluster = labels[:n].copy()

    sizes = np.bincount(cluster)
    over = sizes[cluster] > max_cluster_size
    suspicious = pd.DataFrame({"cluster_size": sizes[np.unique(cluster[over])]})
    if over.any():
        cluster[over] = cluster.max() + 1 + np.arange(int(over.sum()))
    shared_ids = np.flatnonzero(shared_key)
    shared_report = pd.DataFrame(
        {
            "kind": at.replace(key_values.iloc[shared_ids].reset_index(drop=True), ":.*$", ""),
            "records": records_per_key[shared_ids],
            "names": names_per_key[shared_ids],
        }
    )
    return Resolution(cluster=cluster, shared_keys=shared_report, suspicious=suspicious)


def new_golden_id(seed: str) -> str:
    return "gc_" + hashlib.blake2b(seed.encode(), digest_size=8).hexdigest()
