"""Email normalisation: trimmed and lower-cased, syntax-checked exactly as email-validator would
(no DNS), role mailboxes and one-edit typos of common mail domains flagged, never rewritten.

The column-wise fast path in `valid_syntax` must accept only what email-validator accepts and
reject only what it rejects; the property tests compare the two address by address.
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

import pandas as pd
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.contacts_policy import load_contacts_policy
from tasks.contacts.emails import normalise_emails, valid_syntax


@pytest.fixture(scope="module")
def policy():
    return load_contacts_policy()


def _norm(value: Any) -> Any:
    if value is None or value is pd.NA or value == "":
        return None
    if isinstance(value, float) and value != value:
        return None
    return value


def _validator_accepts(address: str) -> bool:
    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


class Case(NamedTuple):
    raw: Any
    email: str | None  # the normalised address, None when empty or invalid
    valid: bool
    role: bool
    typo_of: str | None


CASES = [
    # Normalisation: trimmed, lower-cased.
    Case("  Juan.Perez@Empresa.COM  ", "juan.perez@empresa.com", True, False, None),
    Case("ANA@SUMINISTROS-OLIVO.ES", "ana@suministros-olivo.es", True, False, None),
    Case("\tmarta@laboratoriosebano.com.co\n", "marta@laboratoriosebano.com.co", True, False, None),
    Case("", None, False, False, None),
    Case("   ", None, False, False, None),
    Case(None, None, False, False, None),
    # Validity.
    Case("juan+facturas@empresa.com", "juan+facturas@empresa.com", True, False, None),
    Case("juan_o'neil@empresa.ie", "juan_o'neil@empresa.ie", True, False, None),
    Case("josé.núñez@empresa.es", "josé.núñez@empresa.es", True, False, None),  # SMTPUTF8
    Case("ana@correos.españa.es", "ana@correos.españa.es", True, False, None),  # IDN
    Case("ana@xn--espaa-rta.es", "ana@xn--espaa-rta.es", True, False, None),  # Punycode
    Case("j@e.co", "j@e.co", True, False, None),
    Case("juan@sub.empresa.com.mx", "juan@sub.empresa.com.mx", True, False, None),
    Case("juan@empresa.c0m", "juan@empresa.c0m", True, False, None),  # TLD ends in a letter
    Case("juan..perez@empresa.com", None, False, False, None),
    Case("juan.@empresa.com", None, False, False, None),
    Case(".juan@empresa.com", None, False, False, None),
    Case("juan.perez.empresa.com", None, False, False, None),  # missing @
    Case("juan@@empresa.com", None, False, False, None),
    Case("juan@empresa.com.", None, False, False, None),  # trailing dot
    Case("juan@empresa..com", None, False, False, None),
    Case("juan@-empresa.com", None, False, False, None),
    Case("juan@empresa-.com", None, False, False, None),
    Case("juan@empresa", None, False, False, None),  # no dot in the domain
    Case("juan@empresa.test", None, False, False, None),  # special-use names
    Case("juan@server.local", None, False, False, None),
    Case("juan@localhost", None, False, False, None),
    Case("juan@foo.invalid", None, False, False, None),
    Case("juan@1.in-addr.arpa", None, False, False, None),
    Case("juan@empresa.123", None, False, False, None),  # numeric TLD
    Case("juan@empresa.co1", None, False, False, None),  # TLD must end with a letter
    Case("juan@ab--cd.com", None, False, False, None),  # RFC 5890 R-LDH label, not xn--
    Case("juan pérez@empresa.com", None, False, False, None),
    Case('"juan perez"@empresa.com', None, False, False, None),  # quoted local part
    Case("juan@[192.168.0.1]", None, False, False, None),  # domain literal
    Case("juan@empresa.com, ana@empresa.com", None, False, False, None),
    # Role mailboxes (the shipped policy's list).
    Case("facturacion@empresa.com", "facturacion@empresa.com", True, True, None),
    Case("Facturacion@Empresa.com", "facturacion@empresa.com", True, True, None),
    Case("cuentasporpagar@grupo-rio.co", "cuentasporpagar@grupo-rio.co", True, True, None),
    Case("ap@empresa.com", "ap@empresa.com", True, True, None),
    Case("billing@empresa.com", "billing@empresa.com", True, True, None),
    Case("info@empresa.com.ar", "info@empresa.com.ar", True, True, None),
    Case("juan.perez@empresa.com", "juan.perez@empresa.com", True, False, None),
    Case("apolo@empresa.com", "apolo@empresa.com", True, False, None),  # not a prefix match
    # Typos of common mail domains: flagged with the intended domain, address kept.
    Case("juan@gmial.com", "juan@gmial.com", True, False, "gmail.com"),
    Case("juan@hotmal.com", "juan@hotmal.com", True, False, "hotmail.com"),
    Case("juan@gmail.con", "juan@gmail.con", True, False, "gmail.com"),
    Case("juan@yaho.com", "juan@yaho.com", True, False, "yahoo.com"),
    Case("juan@outlok.es", "juan@outlok.es", True, False, "outlook.es"),
    Case("JUAN@GMIAL.COM", "juan@gmial.com", True, False, "gmail.com"),
    Case("juan@gmail.com", "juan@gmail.com", True, False, None),
    Case("juan@hotmail.es", "juan@hotmail.es", True, False, None),
    Case("juan@suministros-olivo.es", "juan@suministros-olivo.es", True, False, None),
    Case("juan@gruporiograndecali.co", "juan@gruporiograndecali.co", True, False, None),
]


@pytest.fixture(scope="module")
def table_result(policy) -> pd.DataFrame:
    raw = pd.Series([c.raw for c in CASES], dtype=object)
    return normalise_emails(raw, policy.role_local_parts, policy.common_domains)


@pytest.mark.parametrize("i", range(len(CASES)), ids=[repr(c.raw) for c in CASES])
def test_normalise_emails_table(table_result: pd.DataFrame, i: int) -> None:
    case = CASES[i]
    row = table_result.iloc[i]
    got = (
        _norm(row["email"]),
        bool(row["email_valid"]),
        bool(row["email_role"]),
        _norm(row["email_typo_of"]),
    )
    assert got == (case.email, case.valid, case.role, case.typo_of)


def test_table_validity_agrees_with_email_validator() -> None:
    """The table's expected validity is email-validator's own verdict on the trimmed,
    lower-cased address (so the table is not just our opinion)."""
    for case in CASES:
        if case.raw is None or not case.raw.strip():
            continue
        assert _validator_accepts(case.raw.strip().lower()) is case.valid, case.raw


def test_output_shape(policy) -> None:
    raw = pd.Series(["Ana@Empresa.com", None, "x"], index=[7, 3, 9], dtype=object)
    got = normalise_emails(raw, policy.role_local_parts, policy.common_domains)
    assert list(got.index) == [7, 3, 9]
    assert list(got.columns) == ["email", "email_valid", "email_role", "email_typo_of"]
    assert got["email_valid"].dtype == bool
    assert got["email_role"].dtype == bool


def test_all_empty(policy) -> None:
    raw = pd.Series([None, "", "  "], dtype=object)
    got = normalise_emails(raw, policy.role_local_parts, policy.common_domains)
    assert not got["email_valid"].any()
    assert not got["email_role"].any()
    assert got["email"].isna().all()
    assert got["email_typo_of"].isna().all()


# --- valid_syntax (fast path) == email-validator ---------------------------------------------

ATEXT = "abcxyz0189!#$%&'*+/=?^_`{|}~-"
LOCAL_CHARS = ATEXT + "...--__++"
ODD_CHARS = ' "(),:;<>@[\\]éñ'
LABEL_CHARS = "abcxn0189-"
TLDS = ["com", "es", "co", "mx", "museum", "c0m", "x", "a-b", "1a", "a1", "co1", "123",
        "xn--p1ai", "ab--c", "test", "local", "localhost", "invalid", "onion", "arpa",
        "example", "internal"]  # fmt: skip


@st.composite
def addresses(draw: st.DrawFn) -> str:
    atom = st.text(ATEXT, min_size=1, max_size=8)
    local = draw(
        st.one_of(
            st.lists(atom, min_size=1, max_size=3).map(".".join),  # well-formed dot-atoms
            st.lists(atom, min_size=1, max_size=3).map(".".join),
            st.text(LOCAL_CHARS, min_size=0, max_size=12),
            st.text(LOCAL_CHARS, min_size=60, max_size=70),
            st.text(LOCAL_CHARS + ODD_CHARS, min_size=0, max_size=12),
        )
    )
    good_label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
    label = st.one_of(
        good_label,
        good_label,
        st.text(LABEL_CHARS, min_size=0, max_size=12),
        st.text("ab0-", min_size=60, max_size=66),
        st.builds(
            lambda a, b: a + "--" + b, st.text("abx0", max_size=3), st.text("ab0", max_size=4)
        ),
    )
    labels = draw(st.lists(label, min_size=0, max_size=4))
    tld = draw(
        st.one_of(
            st.sampled_from(TLDS),
            st.text("ab19-", min_size=0, max_size=4),
            st.from_regex(r"[a-z0-9][a-z0-9-]{0,4}[a-z0-9]", fullmatch=True),
        )
    )
    domain = ".".join([*labels, tld])
    at = draw(st.sampled_from(["@", "@", "@", "@", "@", "@", "@", "", "@@"]))
    trailing = draw(st.sampled_from(["", "", "", "", "."]))
    return (local + at + domain + trailing).lower()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(addresses(), min_size=1, max_size=40))
def test_valid_syntax_agrees_with_email_validator(batch: list[str]) -> None:
    got = valid_syntax(pd.Series(batch, dtype="str"))
    bad = [
        (a, bool(g)) for a, g in zip(batch, got, strict=True) if bool(g) != _validator_accepts(a)
    ]
    assert not bad, f"valid_syntax != email-validator (address, ours): {bad[:10]}"


def test_valid_syntax_agrees_seeded_bulk() -> None:
    rng = random.Random(20260901)

    def text(chars: str, lo: int, hi: int) -> str:
        return "".join(rng.choices(chars, k=rng.randint(lo, hi)))

    batch = []
    for _ in range(20_000):
        local = text(rng.choice([LOCAL_CHARS, LOCAL_CHARS, LOCAL_CHARS + ODD_CHARS]), 0, 12)
        if rng.random() < 0.05:
            local = text(LOCAL_CHARS, 60, 70)
        labels = [text(rng.choice([LABEL_CHARS, "ab0-"]), 0, 12) for _ in range(rng.randint(0, 3))]
        tld = rng.choice(TLDS) if rng.random() < 0.7 else text("ab19-", 0, 4)
        at = rng.choice(["@"] * 12 + ["", "@@"])
        batch.append((local + at + ".".join([*labels, tld])).lower())
    got = valid_syntax(pd.Series(batch, dtype="str"))
    bad = [
        (a, bool(g)) for a, g in zip(batch, got, strict=True) if bool(g) != _validator_accepts(a)
    ]
    assert sum(map(bool, got)) > 1000  # the batch is not all garbage
    assert not bad, f"{len(bad)} disagreements (address, ours), e.g. {bad[:10]}"


@pytest.mark.parametrize(
    "address",
    [
        "juan@empresa.co1",
        "x@b.a1",
        "+@bb.a1",
        "juan@ab--cd.com",
        "juan@mail.ab--cd.es",
        "juan@empresa.ab--c",
        "juan@a---b.com",
        "juan@xn--espaa-rta.es",
        "juan@empresa.c0m",
        "juan@empresa.1a",
    ],
)
def test_valid_syntax_edge_cases(address: str) -> None:
    assert bool(valid_syntax(pd.Series([address], dtype="str")).iloc[0]) is _validator_accepts(
        address
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("mailto:Ana.Garcia@Acme.es", "ana.garcia@acme.es"),
        ('"García, Ana" <ana.garcia@acme.es>', "ana.garcia@acme.es"),
        ("Ana García <ana.garcia@acme.es> ", "ana.garcia@acme.es"),
    ],
)
def test_pasted_forms_are_read(cell: str, expected: str) -> None:
    out = normalise_emails(pd.Series([cell]), ["info"], ["gmail.com"])
    assert out.loc[0, "email"] == expected and out.loc[0, "email_valid"]
