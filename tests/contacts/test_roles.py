"""Who receives collections and renewals: tiers from CRM roles, titles, role mailboxes, anyone."""

from __future__ import annotations

import pandas as pd
import pytest

from config.contacts_policy import RoleTier, contacts_policy
from tasks.contacts.build import unify_contacts
from tasks.contacts.roles import recipients, tier_of

COLLECTIONS = contacts_policy().roles.collections
RENEWALS = contacts_policy().roles.renewals
# Collections: 1 CRM role, 2 payables/accounting title, 3 role mailbox, 4 finance title, 5 anyone.
# Renewals: 1 CRM role, 2 executive/purchasing title, 3 influencer role, 4 anyone.


def golden(*people: dict) -> pd.DataFrame:
    """Golden rows with the columns the tiers read (role, title, email_role, account_id)."""
    rows = [
        {"account_id": "C1", "role": None, "title": None, "email_role": False, **person}
        for person in people
    ]
    frame = pd.DataFrame(rows)
    for column in ("account_id", "role", "title"):
        frame[column] = frame[column].astype("str")
    return frame


def collections_tier(**person) -> int | None:
    value = tier_of(golden(person), COLLECTIONS).iloc[0]
    return None if pd.isna(value) else int(value)


def renewals_tier(**person) -> int | None:
    value = tier_of(golden(person), RENEWALS).iloc[0]
    return None if pd.isna(value) else int(value)


@pytest.mark.parametrize(
    "role",
    [
        "Billing",
        "billing",
        "Accounts Payable",
        "Cuentas por Pagar",
        "Facturación",
        "Billing;Decision Maker",
        "Decision Maker;Billing",
        "Influencer; Accounts Payable ",
    ],
)
def test_crm_role_is_the_first_collections_tier(role):
    assert collections_tier(role=role, title="Gerente de Operaciones") == 1


@pytest.mark.parametrize("role", ["Billing Manager", "Decision Maker", "Influencer", "NotBilling"])
def test_crm_role_must_be_a_whole_option(role):
    assert collections_tier(role=role) == 5


def test_multi_select_role_counts_for_both_jobs():
    people = golden({"role": "Billing;Decision Maker"}, {"role": "Economic Buyer;Champion"})
    assert tier_of(people, COLLECTIONS).tolist() == [1, 5]
    assert tier_of(people, RENEWALS).tolist() == [1, 1]


@pytest.mark.parametrize(
    ("title", "tier"),
    [
        ("Responsable de Cuentas por Pagar", 2),
        ("Auxiliar de Cuentas por Pagar", 2),
        ("Accounts Payable Clerk", 2),
        ("AP Specialist", 2),
        ("Jefa de Facturación", 2),
        ("Billing Coordinator", 2),
        ("Tesorería", 2),
        ("Treasury Analyst", 2),
        ("Jefe de Contabilidad", 2),
        ("Accountant", 2),
        ("Cobranza", 2),
        ("Director Financiero", 4),
        ("Gerente Administrativo y Financiero", 4),
        ("CFO", 4),
        ("Controller", 4),
        ("VP Finance", 4),
        ("Contralor", 4),  # Latin American Spanish for controller (21 in the samples)
        ("Contralora", 4),
        ("Responsável de Contas a Pagar", 2),  # Brazilian Portuguese
        ("Diretora de Contabilidade", 2),
        ("Gerente de Operaciones", 5),
        ("Apoderado Legal", 5),  # 'ap' only as a word
        ("Capacitación", 5),
    ],
)
def test_collections_title_rules(title, tier):
    assert collections_tier(title=title) == tier


def test_role_mailbox_comes_between_payables_titles_and_finance_titles():
    assert collections_tier(email_role=True) == 3
    assert collections_tier(email_role=True, title="CFO") == 3
    assert collections_tier(email_role=True, title="Tesorero") == 2
    assert collections_tier(email_role=True, role="Billing") == 1


@pytest.mark.parametrize(
    ("title", "role", "tier"),
    [
        (None, "Decision Maker", 1),
        (None, "owner", 1),
        ("Coordinadora de Logística", "Budget Holder", 1),
        ("CEO", None, 2),
        ("Gerente General", None, 2),
        ("Directora General", None, 2),
        ("Socia Directora", None, 2),
        ("Responsable de Compras", None, 2),
        ("Procurement Manager", None, 2),
        ("Dueño", None, 2),
        ("Fundadora", None, 2),
        ("CFO", None, 2),
        ("Chief Financial Officer", None, 2),
        ("Chief Executive Officer", None, 2),
        ("Gerente de Operaciones", "Influencer", 3),
        ("Coordinadora de Logística", "Champion", 3),
        ("Coordinadora de Logística", None, 4),
        ("Ceográfico", None, 4),  # 'ceo' only as a word
    ],
)
def test_renewals_tiers(title, role, tier):
    assert renewals_tier(title=title, role=role) == tier


def test_recipients_are_the_best_tier_of_each_account():
    people = golden(
        {"account_id": "C1", "title": "CFO"},
        {"account_id": "C1", "title": "Tesorera"},
        {"account_id": "C1", "title": "Analista de Cuentas por Pagar"},
        {"account_id": "C1", "email_role": True},
        {"account_id": "C2", "title": "Gerente de Operaciones"},
        {"account_id": "C2", "title": None},
        {"account_id": "C3", "email_role": True},
        {"account_id": "C3", "title": "Director Financiero"},
        {"account_id": None, "role": "Billing"},
    )
    tier = tier_of(people, COLLECTIONS)
    assert tier.tolist() == [4, 2, 2, 3, 5, 5, 3, 4, 1]
    chosen = recipients(people["account_id"], tier)
    assert chosen.dtype == bool
    # C1: the two payables people; C2: anyone (fallback); C3: the mailbox; no account: nobody.
    assert chosen.tolist() == [False, True, True, False, True, True, True, False, False]


def test_contacts_matching_no_tier_never_receive():
    tiers = [RoleTier(crm_roles=["Billing"])]
    people = golden({"role": "Billing"}, {"title": "CFO"}, {"account_id": "C2"})
    tier = tier_of(people, tiers)
    assert tier.isna().tolist() == [False, True, True]
    assert recipients(people["account_id"], tier).tolist() == [True, False, False]


def test_unified_contacts_carry_tiers_and_recipients(contact_frame):
    sf = [
        {
            "source_id": "1",
            "account_id": "C1",
            "last_name": "Soto",
            "role": "Billing;Decision Maker",
            "email": "l.soto@acme.es",
            "phone": "+34 912 345 678",
        },
        {"source_id": "2", "account_id": "C1", "last_name": "Vidal", "title": "AP Clerk"},
        {"source_id": "3", "account_id": "C2", "last_name": "Mora", "title": "Gerente General"},
    ]
    hs = [
        {"source_id": "9", "account_id": "C2", "last_name": "Caja", "email": "facturacion@mora.es"},
        # Soto again, from HubSpot: one person, not two recipients.
        {"source_id": "8", "account_id": "C1", "last_name": "SOTO", "email": "L.Soto@acme.es"},
    ]
    contacts = unify_contacts(
        [contact_frame("salesforce", sf), contact_frame("hubspot", hs)], contacts_policy(), "ES"
    )
    golden_ = contacts.golden.set_index("last_name")
    assert len(golden_) == 4
    assert golden_.loc["Soto", "collections_tier"] == 1
    assert golden_.loc["Soto", "renewals_tier"] == 1
    assert golden_.loc["Vidal", "collections_tier"] == 2
    assert golden_.loc["Caja", "collections_tier"] == 3
    assert golden_.loc["Mora", "renewals_tier"] == 2
    assert golden_["receives_collections"].to_dict() == {
        "Soto": True,
        "Vidal": False,
        "Mora": False,
        "Caja": True,
    }
    receives_renewals = golden_["receives_renewals"]
    assert receives_renewals[["Soto", "Mora"]].all()
    assert not receives_renewals[["Vidal", "Caja"]].any()
