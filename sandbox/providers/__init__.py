"""The emulated providers, keyed as the record and the faults name them."""

from __future__ import annotations

from sandbox.providers.base import Emulator, Settings
from sandbox.providers.crm import HubSpot, Salesforce
from sandbox.providers.internal import CallWebhook, InApp
from sandbox.providers.rbm import Rbm
from sandbox.providers.sendgrid import SendGrid
from sandbox.providers.twilio import TwilioCalls, TwilioSms
from sandbox.providers.whatsapp import WhatsApp

# Most specific paths first: WhatsApp's /{version}/{id}/messages matches almost anything.
EMULATORS: tuple[type[Emulator], ...] = (
    Rbm,
    TwilioSms,
    TwilioCalls,
    SendGrid,
    Salesforce,
    HubSpot,
    CallWebhook,
    InApp,
    WhatsApp,
)


def build(settings: Settings) -> dict[str, Emulator]:
    return {cls.key: cls(settings) for cls in EMULATORS}
