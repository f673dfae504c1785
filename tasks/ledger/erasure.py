"""The right to erasure (GDPR art. 17): `forget` removes a person's personal data from the
ledger and keeps only salted hashes of their identifiers, so that the CRM export that still
holds them next week is recognised and dropped instead of re-creating (and messaging) them.

Kept, because they prove lawful processing and hold nothing personal beyond the golden id:
the consent audit entries (channel, purpose, state, source, time) and the touches (which
template went on which channel when; no address, provider errors are masked).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from config.outreach_policy import CHANNELS
from config.settings import Settings
from tasks.ledger.models import Contact, ContactSourceId, Erasure, Suppression, Touch, utcnow

_c, _ids, _e = Contact.__table__, ContactSourceId.__table__, Erasure.__table__
PERSONAL = ("first_name", "last_name", "email", "phone_e164", "mobile_e164", "title",
            "email_typo_of")  # fmt: skip


def erasure_key(settings: Settings) -> bytes:
    """The key of the erasure hashes for these settings."""
    configured = settings.erasure_salt.get_secret_value() if settings.erasure_salt else None
    return salt_from(configured, settings.state_dir)


def salt_from(configured: str | None, state_dir: Path) -> bytes:
    """The configured key, else one created once (random, owner-only) in the state dir."""
    if configured:
        return configured.encode()
    path = state_dir / "erasure.salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def digest(salt: bytes, kind: str, value: str) -> str:
    return hmac.new(salt, f"{kind}:{value.strip().lower()}".encode(), hashlib.sha256).hexdigest()


def identifiers(email: str | None, phones: Iterable[str | None], records: Iterable[str]) -> list:
    out = [("email", email)] + [("phone", p) for p in phones] + [("record", r) for r in records]
    return [(kind, value) for kind, value in out if value]


@dataclass(frozen=True)
class Forgotten:
    golden_id: str
    identifiers: int
    touches_cancelled: int


def forget(engine: sa.Engine, golden_id: str, salt: bytes) -> Forgotten | None:
    """Erase one person; None when the golden id is unknown."""
    now = utcnow()
    with engine.begin() as conn:
        person = conn.execute(
            sa.select(_c.c.email, _c.c.phone_e164, _c.c.mobile_e164).where(
                _c.c.golden_id == golden_id
            )
        ).first()
        if person is None:
            return None
        records = [
            f"{system}:{source_id}"
            for system, source_id in conn.execute(
                sa.select(_ids.c.system, _ids.c.source_id).where(_ids.c.golden_id == golden_id)
            )
        ]
        ids = identifiers(person.email, (person.phone_e164, person.mobile_e164), records)
        for kind, value in ids:
            d = digest(salt, kind, value)
            exists = conn.execute(sa.select(_e.c.id).where(_e.c.digest == d)).first()
            if exists is None:
                conn.execute(sa.insert(_e).values(digest=d, kind=kind, golden_id=golden_id,
                                                  erased_at=now))  # fmt: skip
        conn.execute(
            sa.update(_c).where(_c.c.golden_id == golden_id)
            .values(**dict.fromkeys(PERSONAL), erased_at=now, updated_at=now)
        )  # fmt: skip
        conn.execute(sa.delete(_ids).where(_ids.c.golden_id == golden_id))
        s = Suppression.__table__
        listed = set(conn.execute(sa.select(s.c.channel).where(s.c.golden_id == golden_id))
                     .scalars())  # fmt: skip
        for channel in CHANNELS:
            if channel not in listed:
                row = {"golden_id": golden_id, "channel": channel, "since": now,
                       "reason": "erased on request"}  # fmt: skip
                conn.execute(sa.insert(s).values(**row))
        t = Touch.__table__
        cancelled = conn.execute(
            sa.update(t).where(t.c.golden_id == golden_id, t.c.status == "planned")
            .values(status="cancelled", error="person erased on request")
        ).rowcount  # fmt: skip
    return Forgotten(golden_id, len(ids), cancelled)


def erased_people(
    engine: sa.Engine, salt: bytes, golden: pd.DataFrame, source_map: pd.DataFrame,
    known: Iterable[str],
) -> set[str]:  # fmt: skip
    """Golden ids of this run that belong to forgotten people. Only people new to the ledger
    are hashed (a forgotten person's records no longer map to a known id), so the cost is
    per newcomer, not per contact."""
    with engine.connect() as conn:
        erased = set(conn.execute(sa.select(_e.c.digest)).scalars())
    if not erased:
        return set()
    new = golden[~golden["golden_id"].isin(set(known))]
    if new.empty:
        return set()
    records = source_map[source_map["golden_id"].isin(new["golden_id"])]
    keys = records["system"].astype(str) + ":" + records["source_id"].astype(str)
    by_person: dict[str, list[str]] = {}
    for gid, key in zip(records["golden_id"], keys, strict=True):
        by_person.setdefault(str(gid), []).append(key)
    hits = set()
    for row in new[["golden_id", "email", "phone_e164", "mobile_e164"]].itertuples(index=False):
        gid = str(row.golden_id)
        ids = identifiers(_text(row.email), (_text(row.phone_e164), _text(row.mobile_e164)),
                          by_person.get(gid, []))  # fmt: skip
        if any(digest(salt, kind, value) in erased for kind, value in ids):
            hits.add(gid)
    return hits


def _text(value: object) -> str | None:
    return None if value is None or pd.isna(value) else str(value)
