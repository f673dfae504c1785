"""Which client carries each channel, pointed at the sandbox, the outbox or the real APIs.

Live mode needs each configured provider's credentials; a missing one stops the push before
anything is claimed, naming the environment variable to set.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from config.delivery_policy import DeliveryPolicy
from config.settings import Settings
from tasks.deliver.providers.base import Provider
from tasks.deliver.providers.call_tasks import CallWebhook, HubSpotTasks, SalesforceTasks
from tasks.deliver.providers.in_app import InApp
from tasks.deliver.providers.outbox import Outbox
from tasks.deliver.providers.pool import ClientPool
from tasks.deliver.providers.rbm import RcsBusinessMessaging
from tasks.deliver.providers.sendgrid import SendGrid
from tasks.deliver.providers.smtp import Smtp
from tasks.deliver.providers.twilio import TwilioCalls, TwilioSms
from tasks.deliver.providers.whatsapp import WhatsAppCloud

# Providers that deduplicate on our id: a send that may or may not have gone through is
# simply sent again with the same id instead of being left `unknown`.
HTTP_PROVIDERS = (WhatsAppCloud, RcsBusinessMessaging, TwilioSms, TwilioCalls, SendGrid,
                  SalesforceTasks, HubSpotTasks, CallWebhook, InApp)  # fmt: skip
IDEMPOTENT = frozenset(kind.name for kind in HTTP_PROVIDERS if kind.idempotent)
SANDBOX_SECRET = "sandbox"


class DeliveryConfigError(Exception):
    """Delivery cannot start: a missing credential, template or provider setting."""


def provider_for(channel: str, template: str, policy: DeliveryPolicy) -> str:
    if channel == "voice" and template in policy.automated_calls:
        return "twilio_calls"
    return policy.channels[channel]


def _secret(settings: Settings, name: str, sandbox: bool) -> str:
    if sandbox:
        return SANDBOX_SECRET
    value = getattr(settings, name)
    if value is None:
        raise DeliveryConfigError(
            f"provider_mode=live needs CADENCIA_{name.upper()} (or use provider_mode=sandbox)"
        )
    return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)


def _optional_secret(settings: Settings, name: str, sandbox: bool) -> str | None:
    value = getattr(settings, name)
    if sandbox:
        return SANDBOX_SECRET
    return value.get_secret_value() if value is not None else None


def _setting(settings: Settings, name: str, sandbox: bool, sandbox_value: str) -> str:
    if sandbox:
        return sandbox_value
    value = getattr(settings, name)
    if not value:
        raise DeliveryConfigError(f"provider_mode=live needs CADENCIA_{name.upper()}")
    return str(value)


def build_providers(
    settings: Settings, policy: DeliveryPolicy, needed: set[str], sandbox_url: str | None
) -> dict[str, Provider]:
    """One client per provider in `needed`; `sandbox_url` points them all at the sandbox."""
    if settings.provider_mode == "outbox":
        return {name: Outbox(name, Path(settings.outbox_dir)) for name in needed}
    sandbox = sandbox_url is not None
    base = sandbox_url.rstrip("/") if sandbox_url else None
    hooks = settings.webhooks_url.rstrip("/") if settings.webhooks_url else None
    callback = f"{hooks}/webhooks/twilio" if hooks else None  # `cadencia webhooks` serves it
    timeouts = policy.timeouts

    def client(name: str) -> httpx.AsyncClient:
        timeout = httpx.Timeout(timeouts.read_seconds, connect=timeouts.connect_seconds)
        # Client-like: the providers only call post/patch/aclose.
        return ClientPool(policy.limit(name).concurrency, timeout)  # type: ignore[return-value]

    s, sb = settings, sandbox
    out: dict[str, Provider] = {}
    for name in sorted(needed):
        if name == "whatsapp":
            out[name] = WhatsAppCloud(
                client(name), base or s.whatsapp_api_url, s.whatsapp_api_version,
                _setting(s, "whatsapp_phone_number_id", sb, "100000000000001"),
                _secret(s, "whatsapp_access_token", sb),
            )  # fmt: skip
        elif name == "rbm":
            out[name] = RcsBusinessMessaging(
                client(name), base or s.rbm_api_url,
                _setting(s, "rbm_agent_id", sb, "cadencia-agent"),
                _secret(s, "rbm_access_token", sb),
            )  # fmt: skip
        elif name in ("twilio_sms", "twilio_calls"):
            kind = TwilioSms if name == "twilio_sms" else TwilioCalls
            out[name] = kind(
                client(name), base or s.twilio_api_url,
                _setting(s, "twilio_account_sid", sb, "AC" + "0" * 32),
                _secret(s, "twilio_auth_token", sb),
                _setting(s, "twilio_from", sb, "+34910000000"), callback,
            )  # fmt: skip
        elif name == "sendgrid":
            key = "SG.sandbox" if sb else _secret(s, "sendgrid_api_key", sb)
            out[name] = SendGrid(
                client(name), base or s.sendgrid_api_url, key, s.email_from,
                s.email_from_name, s.support_email,
            )  # fmt: skip
        elif name == "smtp":  # SMTP speaks its own protocol: no HTTP client
            out[name] = Smtp(
                _setting(s, "smtp_host", False, ""), s.smtp_port, s.email_from,
                s.email_from_name, s.smtp_username,
                s.smtp_password.get_secret_value() if s.smtp_password else None,
                s.smtp_starttls, timeouts.read_seconds, s.support_email,
                policy.limit(name).concurrency,
            )  # fmt: skip
        elif name == "salesforce":
            out[name] = SalesforceTasks(
                client(name), base or _setting(s, "salesforce_instance_url", sb, ""),
                _secret(s, "salesforce_access_token", sb),
            )  # fmt: skip
        elif name == "hubspot":
            out[name] = HubSpotTasks(
                client(name), base or s.hubspot_api_url, _secret(s, "hubspot_access_token", sb)
            )
        elif name == "call_webhook":
            url = f"{base}/hooks/call-tasks" if base else _setting(s, "call_webhook_url", sb, "")
            token = _optional_secret(s, "call_webhook_token", sb)
            out[name] = CallWebhook(client(name), url, token)
        elif name == "in_app":
            url = f"{base}/in-app/notifications" if base else _setting(s, "in_app_url", sb, "")
            out[name] = InApp(client(name), url, _optional_secret(s, "in_app_token", sb))
        else:  # pragma: no cover - the policy's Literal forbids it
            raise DeliveryConfigError(f"unknown provider {name!r}")
    return out
