"""The delivery policy (config/delivery.yaml): providers per channel, rate limits, retries,
timeouts and validity windows. Validated before anything is sent, with the line to fix."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.outreach_policy import CHANNELS, load_yaml_model

DELIVERY_FILE = Path(__file__).resolve().parent / "delivery.yaml"
Provider = Literal[
    "sendgrid", "smtp", "whatsapp", "rbm", "twilio_sms", "twilio_calls", "salesforce",
    "hubspot", "call_webhook", "in_app",
]  # fmt: skip
PROVIDERS_OF: dict[str, tuple[str, ...]] = {
    "email": ("sendgrid", "smtp"),
    "whatsapp": ("whatsapp",),
    "rcs": ("rbm",),
    "sms": ("twilio_sms",),
    "voice": ("call_webhook", "salesforce", "hubspot"),
    "in_app": ("in_app",),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limit(_Strict):
    per_second: float | None = Field(default=None, gt=0)  # None: no rate limit
    burst: float | None = Field(default=None, gt=0)
    concurrency: int = Field(default=16, ge=1, le=1000)


class Retries(_Strict):
    attempts: int = Field(default=5, ge=1, le=20)
    base_seconds: float = Field(default=0.5, ge=0)
    max_seconds: float = Field(default=30, gt=0)
    jitter: float = Field(default=0.5, ge=0, le=1)
    max_retry_after_seconds: float = Field(default=120, gt=0)
    max_pushes: int = Field(default=3, ge=1)


class Timeouts(_Strict):
    connect_seconds: float = Field(default=5, gt=0)
    read_seconds: float = Field(default=20, gt=0)


class DeliveryPolicy(_Strict):
    channels: dict[str, Provider]
    automated_calls: list[str] = []
    providers: dict[Provider, Limit] = {}
    retries: Retries = Retries()
    timeouts: Timeouts = Timeouts()
    validity_hours: dict[str, float] = {"default": 24}
    unknown_expire_hours: float = Field(default=48, gt=0)
    claim_lease_seconds: float = Field(default=300, gt=0)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    fallback_on_permanent: bool = True

    @model_validator(mode="after")
    def _coherent(self) -> DeliveryPolicy:
        for channel, provider in self.channels.items():
            if channel not in PROVIDERS_OF:
                raise ValueError(f"unknown channel {channel!r}; channels are {', '.join(CHANNELS)}")
            if provider not in PROVIDERS_OF[channel]:
                raise ValueError(
                    f"{channel} cannot go through {provider}; "
                    f"choose one of {', '.join(PROVIDERS_OF[channel])}"
                )
        missing = [c for c in CHANNELS if c not in self.channels]
        if missing:
            raise ValueError(f"no provider for channel(s) {', '.join(missing)}")
        unknown = [k for k in self.validity_hours if k != "default" and k not in CHANNELS]
        if unknown:
            raise ValueError(f"validity_hours: unknown channel(s) {', '.join(unknown)}")
        if "default" not in self.validity_hours:
            raise ValueError("validity_hours needs a `default`")
        return self

    def limit(self, provider: str) -> Limit:
        return self.providers.get(provider, Limit())  # type: ignore[arg-type]

    def validity(self, channel: str) -> float:
        return self.validity_hours.get(channel, self.validity_hours["default"])


def load_delivery_policy(path: Path = DELIVERY_FILE) -> DeliveryPolicy:
    return load_yaml_model(path, DeliveryPolicy)


@cache
def delivery_policy() -> DeliveryPolicy:
    return load_delivery_policy()
