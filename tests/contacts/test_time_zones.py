"""A contact's time zone (for quiet hours) comes from the number, then the countries."""

from __future__ import annotations

from config.contacts_policy import contacts_policy
from tasks.contacts.build import unify_contacts


def test_zone_of_the_number_then_the_countries(contact_frame) -> None:
    frame = contact_frame(
        "salesforce",
        [
            # A Spanish mobile (Madrid or Canaries) of a contact in Colombia: Spain's main zone.
            {"source_id": "1", "last_name": "Soto", "mobile_phone": "(+34) 612-345-678",
             "country": "CO"},
            # A Spanish mobile of a contact in Spain: the country's zone.
            {"source_id": "2", "last_name": "Ruiz", "mobile_phone": "612 345 679",
             "country": "España"},
            # A Canary Islands landline: the number says exactly where.
            {"source_id": "3", "last_name": "Lima", "phone": "+34 922 123 456", "country": "ES"},
            # No number: the country's zone.
            {"source_id": "4", "last_name": "Paz", "email": "paz@empresa.mx", "country": "México"},
        ],
    )  # fmt: skip
    golden = unify_contacts([frame], contacts_policy(), "ES", workers=1).golden
    zones = dict(zip(golden["last_name"], golden["time_zone"], strict=True))
    assert zones == {
        "Soto": "Europe/Madrid",
        "Ruiz": "Europe/Madrid",
        "Lima": "Atlantic/Canary",
        "Paz": "America/Mexico_City",
    }
